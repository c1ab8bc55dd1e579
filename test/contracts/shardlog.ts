/**
 * The contract every LogStore implementation keeps. The embedded file store runs it now; the
 * distributed ones of DESIGN.md's scale-out section will run the same suite.
 */
import type { Test } from 'tap'
import { batchLogInputs, type LogStore } from '../../relay/log/types.js'
import { codec } from '../../hardware/index.js'
import type { LogRecordInput } from '../../shared/logframe.js'

export interface LogStoreFactory {
  /** Opens a store over the same backing state each time it is called within one test. */
  (t: Test): () => Promise<LogStore>
}

const rec = (i: number, key = `k${i % 7}`): LogRecordInput => ({
  partitionKey: key, data: Buffer.from(`record-${i}`), producerTimeMs: 1000 + i, flags: 0,
})

export function shardLogContract(t: Test, name: string, factory: LogStoreFactory): void {
  t.test(`${name}: records read back in order with dense offsets after commit`, async (t) => {
    const open = factory(t)
    const store = await open()
    const log = await store.open('s1', 'shardId-000000000000')
    t.equal(log.endOffset(), 0)
    const first = log.append([rec(0), rec(1), rec(2)])
    t.equal(first.firstOffset, 0)
    t.equal(log.endOffset(), 0, 'nothing is visible before the commit')
    await store.commit()
    t.equal(log.endOffset(), 3)
    log.append([rec(3)])
    await store.commit()
    const { records, nextOffset } = await log.read(0, 100, 1 << 20)
    t.same(records.map((r) => r.offset), [0, 1, 2, 3])
    t.same(records.map((r) => r.data.toString()), ['record-0', 'record-1', 'record-2', 'record-3'])
    t.equal(nextOffset, 4)
    const partial = await log.read(1, 2, 1 << 20)
    t.same(partial.records.map((r) => r.offset), [1, 2])
    t.equal(partial.nextOffset, 3)
    await store.close()
  })

  t.test(`${name}: committed records survive a reopen, with producer identity`, async (t) => {
    const open = factory(t)
    let store = await open()
    let log = await store.open('s1', 'shardId-000000000001')
    log.append([{ ...rec(0), device: 'dev-1', epoch: 77n, batchSequence: 5, batchIndex: 2, flags: 4 }])
    await store.commit()
    await store.close()
    store = await open()
    log = await store.open('s1', 'shardId-000000000001')
    t.equal(log.endOffset(), 1)
    const [r] = (await log.read(0, 10, 1 << 20)).records
    t.equal(r?.device, 'dev-1')
    t.equal(r?.epoch, 77n)
    t.equal(r?.batchSequence, 5)
    t.equal(r?.batchIndex, 2)
    await store.close()
  })

  t.test(`${name}: a device batch appended from its frame reads back as the same records appended one by one`, async (t) => {
    const open = factory(t)
    const store = await open()
    const frame = codec.encodeBatch({
      epoch: 9n, sequence: 41,
      records: Array.from({ length: 6 }, (_, i) => ({ partitionKey: `ключ-${i}`, data: Buffer.from(`payload-${i}`), producerTimeMs: 5000 + i, clockSynced: i % 2 === 0 })),
    })
    const slice = { frame, scan: codec.scanBatch(frame), indices: Uint32Array.of(1, 2, 4), device: 'dev-7' }
    const fast = await store.open('s1', 'shardId-000000000010')
    const slow = await store.open('s1', 'shardId-000000000011')
    fast.append([rec(0)])
    slow.append([rec(0)])
    t.equal(fast.appendBatch(slice).firstOffset, 1, 'offsets continue from what the shard holds')
    slow.append(batchLogInputs(slice))
    fast.append([rec(9)])
    await store.commit()
    const a = (await fast.read(0, 100, 1 << 20)).records
    const b = (await slow.read(0, 100, 1 << 20)).records
    t.same(a.map((r) => r.offset), [0, 1, 2, 3, 4])
    const view = (r: (typeof a)[number]) => [r.partitionKey, r.data.toString(), r.producerTimeMs, r.flags, r.device, r.epoch, r.batchSequence, r.batchIndex]
    t.same(a.slice(1, 4).map(view), b.slice(1, 4).map(view))
    t.same(a.slice(1, 4).map((r) => [r.partitionKey, r.device, r.batchIndex, r.epoch]), [['ключ-1', 'dev-7', 1, 9n], ['ключ-2', 'dev-7', 2, 9n], ['ключ-4', 'dev-7', 4, 9n]])
    t.equal(a[4]!.data.toString(), 'record-9')
    await store.close()
  })

  t.test(`${name}: a reader following the tail while commits land sees every record once`, async (t) => {
    const open = factory(t)
    const store = await open()
    const log = await store.open('s1', 'shardId-000000000020')
    const seen: number[] = []
    let writing = true
    const reader = (async () => {
      let next = 0
      while (writing || next < log.endOffset()) {
        const { records, nextOffset } = await log.read(next, 10_000, 1 << 24)
        for (const r of records) seen.push(r.offset)
        next = nextOffset
        if (!records.length) await new Promise((r) => setImmediate(r))
      }
    })()
    const commits: Promise<void>[] = []
    // Commits land at every moment of the reader's reads (some while it waits for the disk).
    for (let i = 0; i < 400; i++) {
      log.append(Array.from({ length: 5 }, (_, j) => rec(i * 5 + j)))
      commits.push(store.commit())
      if (i % 2 === 0) await commits[commits.length - 1]
      else await new Promise((r) => setImmediate(r))
    }
    await Promise.all(commits)
    writing = false
    await reader
    const gaps = seen.filter((o, i) => o !== i)
    t.equal(seen.length, 2000, 'every record was read')
    t.same(gaps.slice(0, 3), [], 'in order, with no offset skipped or repeated')
    await store.close()
  })

  t.test(`${name}: reads honour the record and byte limits`, async (t) => {
    const open = factory(t)
    const store = await open()
    const log = await store.open('s1', 'shardId-000000000002')
    log.append(Array.from({ length: 50 }, (_, i) => ({ ...rec(i), data: Buffer.alloc(1000, i) })))
    await store.commit()
    const byCount = await log.read(0, 7, 1 << 20)
    t.equal(byCount.records.length, 7)
    const byBytes = await log.read(0, 1000, 5000)
    t.ok(byBytes.records.length >= 4 && byBytes.records.length <= 5, `read ${byBytes.records.length} records in 5000 bytes`)
    t.equal(byBytes.nextOffset, byBytes.records.length)
    await store.close()
  })

  t.test(`${name}: offsetAtTime finds the first record at or after a time`, async (t) => {
    const open = factory(t)
    const store = await open()
    const log = await store.open('s1', 'shardId-000000000003')
    log.append([rec(0), rec(1)])
    await store.commit()
    await new Promise((r) => setTimeout(r, 20))
    const mid = Date.now()
    await new Promise((r) => setTimeout(r, 5))
    log.append([rec(2)])
    await store.commit()
    t.equal(await log.offsetAtTime(0), 0)
    t.equal(await log.offsetAtTime(mid), 2)
    t.equal(await log.offsetAtTime(Date.now() + 60_000), 3, 'a time past the last record yields the end')
    await store.close()
  })

  t.test(`${name}: streams are independent and dropping one removes it`, async (t) => {
    const open = factory(t)
    const store = await open()
    const a = await store.open('a', 'shardId-000000000000')
    const b = await store.open('b', 'shardId-000000000000')
    a.append([rec(0)])
    b.append([rec(0), rec(1)])
    await store.commit()
    t.equal(a.endOffset(), 1)
    t.equal(b.endOffset(), 2)
    await store.drop('a')
    t.equal(store.get('a', 'shardId-000000000000'), undefined)
    const again = await store.open('a', 'shardId-000000000000')
    t.equal(again.endOffset(), 0)
    await store.close()
  })

  t.test(`${name}: dropping one shard of a stream leaves its other shards`, async (t) => {
    const open = factory(t)
    let store = await open()
    const s0 = await store.open('s', 'shardId-000000000000')
    const s1 = await store.open('s', 'shardId-000000000001')
    s0.append([rec(0), rec(1)])
    s1.append([rec(0)])
    await store.commit()
    await store.drop('s', 'shardId-000000000000')
    t.equal(store.get('s', 'shardId-000000000000'), undefined, 'the dropped shard is gone')
    t.ok(s0.dropped)
    t.equal(store.totalBytes(), s1.sizeBytes(), 'its bytes no longer count')
    await store.close()
    store = await open()
    t.equal((await store.open('s', 'shardId-000000000000')).endOffset(), 0, 'and stays gone after a reopen')
    t.equal((await store.open('s', 'shardId-000000000001')).endOffset(), 1, 'the other shard keeps its records')
    await store.close()
  })
}
