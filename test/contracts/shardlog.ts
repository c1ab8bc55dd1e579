/**
 * The contract every LogStore implementation keeps: the file store, the in-memory store and both
 * behind the encrypting wrapper run it (test/relay/log-contract.test.ts), and the distributed ones
 * of DESIGN.md's scale-out section will run the same suite. Time is always the injected clock.
 */
import type { Test } from 'tap'
import { batchLogInputs, type LogStore } from '../../relay/log/types.js'
import { codec } from '../../hardware/index.js'
import { LogFlag, type LogRecordInput } from '../../shared/logframe.js'

export interface StoreSetup {
  segmentBytes?: number
  maxStreamBytes?: number
  now?: () => number
}

export interface LogStoreHarness {
  /** Opens a store over the same backing state (a directory, a volume) each time it is called within one test. */
  open(setup?: StoreSetup): Promise<LogStore>
  /**
   * From now on, every commit of this shard of the store opened last fails, as a failing disk would.
   * A store whose backing service must be told (a JetStream stream sealed) returns a promise.
   */
  breakWrites(stream: string, shard: string): void | Promise<void>
}

export type LogStoreFactory = (t: Test) => LogStoreHarness

const rec = (i: number, key = `k${i % 7}`): LogRecordInput => ({
  partitionKey: key, data: Buffer.from(`record-${i}`), producerTimeMs: 1000 + i, flags: 0,
})
const sized = (i: number, bytes: number): LogRecordInput => ({ ...rec(i), data: Buffer.alloc(bytes, i & 0xff) })
const shard = (n: number) => `shardId-${String(n).padStart(12, '0')}`
const offsets = (records: readonly { offset: number }[]) => records.map((r) => r.offset)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

export function shardLogContract(t: Test, name: string, factory: LogStoreFactory): void {
  t.test(`${name}: records read back in order with dense offsets, and only once committed`, async (t) => {
    const store = await factory(t).open()
    t.equal(store.get('s1', shard(0)), undefined, 'no log before it is opened')
    const [log, same] = await Promise.all([store.open('s1', shard(0)), store.open('s1', shard(0))])
    t.equal(log, same, 'two opens at once share one log')
    t.equal(store.get('s1', shard(0)), log)
    t.equal(log.key, `s1/${shard(0)}`)
    t.equal(log.endOffset(), 0)
    const first = log.append([rec(0), rec(1), rec(2)])
    t.equal(first.firstOffset, 0)
    t.equal(log.endOffset(), 0, 'nothing is visible before the commit')
    t.equal(log.pendingRecords(), 3)
    t.equal(log.nextOffset(), 3, 'the next append follows the pending ones')
    t.same(offsets((await log.read(0, 100, 1 << 20)).records), [], 'readers see no pending record')
    await store.commit()
    t.equal(log.endOffset(), 3)
    t.equal(log.pendingRecords(), 0)
    t.equal(log.append([rec(3)]).firstOffset, 3)
    await store.commit()
    const { records, nextOffset } = await log.read(0, 100, 1 << 20)
    t.same(offsets(records), [0, 1, 2, 3])
    t.same(records.map((r) => r.data.toString()), ['record-0', 'record-1', 'record-2', 'record-3'])
    t.equal(nextOffset, 4)
    const partial = await log.read(1, 2, 1 << 20)
    t.same(offsets(partial.records), [1, 2])
    t.equal(partial.nextOffset, 3)
    t.same(await log.read(4, 10, 1 << 20), { records: [], nextOffset: 4 }, 'a read at the end finds nothing and stays there')
    t.equal(log.startOffset(), 0)
    await store.close()
  })

  t.test(`${name}: committed records survive a reopen, every field with them`, async (t) => {
    const harness = factory(t)
    let store = await harness.open({ now: () => 5000 })
    let log = await store.open('s1', shard(1))
    t.same(log.append([{ partitionKey: 'ключ', data: Buffer.from('payload'), producerTimeMs: 1234.5, device: 'dev-1', epoch: 77n, batchSequence: 5, batchIndex: 2, flags: 5 }]), { firstOffset: 0, arrivalMs: 5000 })
    log.append([rec(1)])
    await store.commit()
    log.append([rec(2)])
    await store.close()
    store = await harness.open({ now: () => 6000 })
    log = await store.open('s1', shard(1))
    t.equal(log.endOffset(), 3, 'what close committed is there')
    const [r, plain] = (await log.read(0, 10, 1 << 20)).records
    // A store that seals records at rest adds the flag that says so (readers can tell), and nothing else.
    t.same(r && { ...r, flags: r.flags & ~LogFlag.encrypted, data: r.data.toString() }, {
      offset: 0, arrivalMs: 5000, producerTimeMs: 1234.5, flags: 5, partitionKey: 'ключ', device: 'dev-1',
      epoch: 77n, batchSequence: 5, batchIndex: 2, data: 'payload',
    })
    t.same(plain && [plain.device, plain.epoch, plain.batchSequence, plain.batchIndex], ['', 0n, 0, 0], 'a record without a producer identity reads back with none')
    t.equal(log.lastArrivalMs(), 5000)
    t.equal(log.append([rec(3)]).firstOffset, 3, 'appends continue after a reopen')
    await store.close()
  })

  t.test(`${name}: a device batch appended from its frame reads back as the same records appended one by one`, async (t) => {
    const store = await factory(t).open()
    const frame = codec.encodeBatch({
      epoch: 9n, sequence: 41,
      records: Array.from({ length: 6 }, (_, i) => ({ partitionKey: `ключ-${i}`, data: Buffer.from(`payload-${i}`), producerTimeMs: 5000 + i, clockSynced: i % 2 === 0 })),
    })
    const slice = { frame, scan: codec.scanBatch(frame), indices: Uint32Array.of(1, 2, 4), device: 'dev-7' }
    const fast = await store.open('s1', shard(10))
    const slow = await store.open('s1', shard(11))
    fast.append([rec(0)])
    slow.append([rec(0)])
    t.equal(fast.appendBatch(slice).firstOffset, 1, 'offsets continue from what the shard holds')
    slow.append(batchLogInputs(slice))
    fast.append([rec(9)])
    await store.commit()
    const a = (await fast.read(0, 100, 1 << 20)).records
    const b = (await slow.read(0, 100, 1 << 20)).records
    t.same(offsets(a), [0, 1, 2, 3, 4])
    const view = (r: (typeof a)[number]) => [r.partitionKey, r.data.toString(), r.producerTimeMs, r.flags, r.device, r.epoch, r.batchSequence, r.batchIndex]
    t.same(a.slice(1, 4).map(view), b.slice(1, 4).map(view))
    t.same(a.slice(1, 4).map((r) => [r.partitionKey, r.device, r.batchIndex, r.epoch]), [['ключ-1', 'dev-7', 1, 9n], ['ключ-2', 'dev-7', 2, 9n], ['ключ-4', 'dev-7', 4, 9n]])
    t.same(a.slice(1, 4).map((r) => [r.data.toString(), r.producerTimeMs, r.flags & ~LogFlag.encrypted, r.batchSequence]), [['payload-1', 5001, 4, 41], ['payload-2', 5002, 5, 41], ['payload-4', 5004, 5, 41]])
    t.equal(a[4]!.data.toString(), 'record-9')
    await store.close()
  })

  t.test(`${name}: a reader following the tail while commits land sees every record once`, async (t) => {
    const store = await factory(t).open()
    const log = await store.open('s1', shard(20))
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

  t.test(`${name}: reads honour the record and byte limits, counting data and partition keys as appended`, async (t) => {
    const store = await factory(t).open()
    const log = await store.open('s1', shard(2))
    log.append(Array.from({ length: 50 }, (_, i) => sized(i, 1000)))
    await store.commit()
    const byCount = await log.read(0, 7, 1 << 20)
    t.same(offsets(byCount.records), range(0, 7))
    t.equal(byCount.nextOffset, 7)
    const byBytes = await log.read(0, 1000, 5000)
    t.equal(byBytes.records.length, 4, 'four records of 1002 bytes fit in 5000, a fifth does not')
    t.equal(byBytes.nextOffset, 4)
    const alone = await log.read(10, 1000, 1)
    t.same(offsets(alone.records), [10], 'a record larger than the byte limit still comes, alone')
    t.equal(alone.nextOffset, 11)
    // 102 bytes each, as the producer gave them, however they are stored.
    const small = await store.open('s1', shard(3))
    small.append(Array.from({ length: 20 }, (_, i) => sized(i, 100)))
    await store.commit()
    const exact = await small.read(0, 1000, 1020)
    t.same(offsets(exact.records), range(0, 10), 'ten records of 102 bytes fill 1020 bytes exactly')
    t.equal(exact.nextOffset, 10)
    const rest = await small.read(exact.nextOffset, 1000, 1 << 20)
    t.same(offsets(rest.records), range(10, 20), 'and the next read goes on from there')
    await store.close()
  })

  t.test(`${name}: arrival times come from the clock, never go backwards, and offsetAtTime finds the first at or after a time`, async (t) => {
    let now = 1_000_000
    const store = await factory(t).open({ segmentBytes: 4096, now: () => now })
    const log = await store.open('s1', shard(4))
    t.equal(await log.offsetAtTime(0), 0, 'an empty log answers its end')
    t.equal(log.lastArrivalMs(), 0)
    // 30 steps of a second, 10 records of 150 bytes each: several segments and index points.
    for (let step = 0; step < 30; step++) {
      t.equal(log.append(Array.from({ length: 10 }, (_, j) => sized(step * 10 + j, 150))).arrivalMs, now)
      await store.commit()
      now += 1000
    }
    t.equal(log.lastArrivalMs(), 1_029_000)
    const arrivals = (await log.read(0, 1000, 1 << 24)).records.map((r) => r.arrivalMs)
    t.same(arrivals, range(0, 300).map((i) => 1_000_000 + Math.floor(i / 10) * 1000))
    const found: number[] = []
    for (let step = 0; step < 30; step++) found.push(await log.offsetAtTime(1_000_000 + step * 1000 - 500))
    t.same(found, range(0, 30).map((s) => s * 10), 'each step starts at its first record')
    t.equal(await log.offsetAtTime(0), 0)
    t.equal(await log.offsetAtTime(1_010_000), 100, 'a time equal to an arrival finds that record')
    t.equal(await log.offsetAtTime(1_029_001), 300, 'a time past the last record yields the end')
    now = 900_000
    t.equal(log.append([rec(300)]).arrivalMs, 1_029_000, 'a clock that went back does not take arrival times with it')
    await store.commit()
    t.equal(log.lastArrivalMs(), 1_029_000)
    await store.close()
  })

  t.test(`${name}: every append joins the next group commit, whichever shard it is on`, async (t) => {
    const commits: number[] = []
    const store = await factory(t).open()
    const a = await store.open('s1', shard(5))
    const b = await store.open('s2', shard(5))
    a.append([rec(0), rec(1)])
    b.append([rec(0)])
    const both = [store.commit(), store.commit()]
    a.append([rec(2)])
    await Promise.all(both.map((c) => c.then(() => commits.push(a.endOffset() + b.endOffset()))))
    t.ok(commits.every((n) => n >= 3), `every commit waited for what was appended before it (${commits})`)
    await store.commit()
    t.same([a.endOffset(), b.endOffset(), a.pendingRecords(), b.pendingRecords()], [3, 1, 0, 0])
    t.same((await b.read(0, 10, 1 << 20)).records.map((r) => r.data.toString()), ['record-0'])
    await store.close()
  })

  t.test(`${name}: onAppend announces a shard once its records are committed`, async (t) => {
    const store = await factory(t).open()
    const log = await store.open('s1', shard(6))
    const heard: { same: boolean; end: number }[] = []
    const stop = store.onAppend((l) => heard.push({ same: l === log, end: l.endOffset() }))
    log.append([rec(0), rec(1)])
    t.same(heard, [], 'nothing is announced at append')
    await store.commit()
    t.same(heard, [{ same: true, end: 2 }], 'the shard log readers hold is announced, its records readable')
    t.same(offsets((await log.read(0, 10, 1 << 20)).records), [0, 1])
    stop()
    log.append([rec(2)])
    await store.commit()
    t.equal(heard.length, 1, 'a listener that stopped hears nothing more')
    await store.close()
  })

  t.test(`${name}: the records a read returns are the caller's, and an append copies what it is given`, async (t) => {
    const store = await factory(t).open()
    const log = await store.open('s1', shard(7))
    const data = Buffer.from('original')
    log.append([{ ...rec(0), data }])
    data.write('changed!')
    await store.commit()
    const [first] = (await log.read(0, 10, 1 << 20)).records
    t.equal(first?.data.toString(), 'original', 'a buffer changed after the append changes nothing')
    first!.data.fill(0)
    first!.partitionKey = 'other'
    const [again] = (await log.read(0, 10, 1 << 20)).records
    t.same(again && [again.data.toString(), again.partitionKey], ['original', 'k0'], 'a reader changing its records changes nothing')
    await store.close()
  })

  t.test(`${name}: retention deletes whole segments past it, never a shard's newest`, async (t) => {
    const harness = factory(t)
    let now = 1_000_000
    let store = await harness.open({ segmentBytes: 2048, now: () => now })
    const log = await store.open('s', shard(0))
    for (let i = 0; i < 60; i++) {
      log.append([sized(i, 100)])
      await store.commit()
      now += 1000
    }
    const before = store.totalBytes()
    t.equal(before, log.sizeBytes())
    const freed = await store.enforceRetention((stream) => stream === 's' ? 30_000 : 0, now)
    const start = log.startOffset()
    t.ok(freed > 0 && start > 0 && start <= 30, `records older than retention went (freed ${freed}, start ${start})`)
    t.equal(store.totalBytes(), before - freed, 'the running total follows')
    t.equal(log.sizeBytes(), before - freed)
    const { records } = await log.read(0, 1000, 1 << 20)
    t.same(offsets(records), range(start, 60), 'a read from a trimmed offset starts at the oldest record')
    t.equal(await log.offsetAtTime(0), start)
    await store.enforceRetention(() => 0, now + 10_000)
    t.equal(log.endOffset(), 60)
    t.ok(log.startOffset() < 60, `the newest segment is never deleted (start ${log.startOffset()})`)
    t.same(offsets((await log.read(0, 1000, 1 << 20)).records), range(log.startOffset(), 60))
    const kept = log.startOffset()
    await store.close()
    store = await harness.open({ segmentBytes: 2048, now: () => now })
    const again = await store.open('s', shard(0))
    t.same([again.startOffset(), again.endOffset()], [kept, 60], 'and stays deleted after a reopen')
    await store.close()
  })

  t.test(`${name}: a stream over its size cap loses its oldest sealed segments first, across shards`, async (t) => {
    let now = 1_000_000
    const store = await factory(t).open({ segmentBytes: 2048, maxStreamBytes: 6000, now: () => now })
    const a = await store.open('s', shard(0))
    const b = await store.open('s', shard(1))
    const other = await store.open('t', shard(0))
    for (let i = 0; i < 40; i++) {
      a.append([sized(i, 100)])
      b.append([sized(i, 100)])
      if (i < 20) other.append([sized(i, 100)])
      await store.commit()
      now += 1000
    }
    const before = a.sizeBytes() + b.sizeBytes()
    const otherBefore = other.sizeBytes()
    t.ok(before > 6000 && otherBefore < 6000)
    const freed = await store.enforceRetention(() => 3_600_000)
    t.ok(freed > 0 && before - freed <= 6000, `freed ${freed} of ${before} bytes`)
    t.equal(store.totalBytes(), a.sizeBytes() + b.sizeBytes() + other.sizeBytes(), 'the running total follows')
    t.equal(a.endOffset(), 40, 'the newest records stay')
    t.ok(a.startOffset() > 0 && b.startOffset() > 0, 'both shards gave up their oldest segments')
    t.equal(a.startOffset(), b.startOffset(), 'oldest first, whichever shard holds it: shards written alike gave up alike')
    t.equal(other.sizeBytes(), otherBefore, 'a stream under its cap keeps everything')
    await store.close()
  })

  t.test(`${name}: streams are independent and dropping one removes it`, async (t) => {
    const store = await factory(t).open()
    const a = await store.open('a', shard(0))
    const b = await store.open('b', shard(0))
    a.append([rec(0)])
    b.append([rec(0), rec(1)])
    await store.commit()
    t.equal(a.endOffset(), 1)
    t.equal(b.endOffset(), 2)
    await store.drop('a')
    t.equal(store.get('a', shard(0)), undefined)
    t.equal(b.endOffset(), 2, 'the other stream keeps its records')
    const again = await store.open('a', shard(0))
    t.equal(again.endOffset(), 0)
    await store.close()
  })

  t.test(`${name}: a dropped log refuses appends and reads, and its pending appends are never stored`, async (t) => {
    const harness = factory(t)
    let store = await harness.open()
    const log = await store.open('gone', shard(0))
    log.append([rec(0)])
    await store.commit()
    log.append([rec(1)])
    const committing = store.commit()
    await store.drop('gone')
    await committing
    t.ok(log.dropped)
    t.equal(log.pendingRecords(), 0, 'what was pending is discarded')
    t.throws(() => log.append([rec(2)]), { code: 'STREAM_NOT_FOUND' })
    const frame = codec.encodeBatch({ epoch: 1n, sequence: 1, records: [{ partitionKey: 'k', data: Buffer.from('late'), producerTimeMs: 0, clockSynced: false }] })
    t.throws(() => log.appendBatch({ frame, scan: codec.scanBatch(frame), indices: Uint32Array.of(0), device: 'd' }), { code: 'STREAM_NOT_FOUND' })
    await t.rejects(log.read(0, 10, 1 << 20), { code: 'STREAM_NOT_FOUND' })
    t.equal(store.totalBytes(), 0)
    await store.close()
    store = await harness.open()
    t.equal((await store.open('gone', shard(0))).endOffset(), 0, 'nothing of it is left after a reopen')
    await store.close()
  })

  t.test(`${name}: dropping one shard of a stream leaves its other shards`, async (t) => {
    const harness = factory(t)
    let store = await harness.open()
    const s0 = await store.open('s', shard(0))
    const s1 = await store.open('s', shard(1))
    s0.append([rec(0), rec(1)])
    s1.append([rec(0)])
    await store.commit()
    await store.drop('s', shard(0))
    t.equal(store.get('s', shard(0)), undefined, 'the dropped shard is gone')
    t.ok(s0.dropped)
    t.notOk(s1.dropped)
    t.equal(store.totalBytes(), s1.sizeBytes(), 'its bytes no longer count')
    await store.close()
    store = await harness.open()
    t.equal((await store.open('s', shard(0))).endOffset(), 0, 'and stays gone after a reopen')
    t.equal((await store.open('s', shard(1))).endOffset(), 1, 'the other shard keeps its records')
    await store.close()
  })

  t.test(`${name}: the running total counts committed bytes of every open shard, and a healthy store reports no damage`, async (t) => {
    const harness = factory(t)
    let store = await harness.open()
    const a = await store.open('s', shard(0))
    const b = await store.open('s', shard(1))
    a.append([rec(0), rec(1)])
    b.append([rec(2)])
    t.equal(store.totalBytes(), 0, 'pending appends do not count')
    await store.commit()
    t.ok(a.sizeBytes() > b.sizeBytes() && b.sizeBytes() > 0)
    t.equal(store.totalBytes(), a.sizeBytes() + b.sizeBytes())
    t.same(store.corruptions(), [])
    t.equal(store.failed, null)
    store.checkWritable()
    const sizes = [a.sizeBytes(), b.sizeBytes()]
    await store.close()
    store = await harness.open()
    t.equal(store.totalBytes(), 0, 'a new store counts the shards it opened')
    const again = [await store.open('s', shard(0)), await store.open('s', shard(1))]
    t.same(again.map((l) => l.sizeBytes()), sizes)
    t.equal(store.totalBytes(), sizes[0]! + sizes[1]!)
    await store.close()
  })

  t.test(`${name}: a failed commit fails the store: waiters are rejected, pending appends dropped, later appends refused`, async (t) => {
    const harness = factory(t)
    const store = await harness.open()
    const a = await store.open('s', shard(0))
    const b = await store.open('s', shard(1))
    a.append([rec(0)])
    await store.commit()
    await harness.breakWrites('s', shard(0))
    a.append([rec(1), rec(2)])
    b.append([rec(0)])
    await t.rejects(store.commit(), { code: 'STORAGE_FAILED' })
    t.ok(store.failed, 'the store says it failed')
    t.throws(() => store.checkWritable(), { code: 'STORAGE_FAILED' })
    t.same([a.pendingRecords(), a.nextOffset(), a.endOffset()], [0, 1, 1], 'what was pending is forgotten, offsets with it')
    t.throws(() => b.append([rec(1)]), { code: 'STORAGE_FAILED' }, 'appends to any shard are refused')
    await t.rejects(store.commit(), { code: 'STORAGE_FAILED' })
    t.same(offsets((await a.read(0, 10, 1 << 20)).records), [0], 'committed records are still served')
    await store.close()
  })

  t.test(`${name}: closing while a commit runs loses no committed record`, async (t) => {
    const harness = factory(t)
    const store = await harness.open()
    const log = await store.open('s', shard(0))
    log.append([rec(0)])
    const first = store.commit()
    log.append([rec(1)])
    const second = store.commit()
    await store.close()
    await Promise.all([first, second])
    const again = await harness.open()
    const reopened = await again.open('s', shard(0))
    t.equal(reopened.endOffset(), 2, 'both acknowledged records are there')
    t.same(offsets((await reopened.read(0, 10, 1 << 20)).records), [0, 1])
    await again.close()
  })
}
