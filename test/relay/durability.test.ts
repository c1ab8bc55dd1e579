/**
 * "Acknowledged means durable", checked at the system-call boundary: kill -9 cannot see a missing
 * fsync (the data is still in the page cache), so these tests count the bytes every file handle has
 * written and not yet synced, and require none when a batch or a PutRecords is acknowledged. A
 * store that skipped the sync before acknowledging would fail here.
 */
import t, { type Test } from 'tap'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { Ingest } from '../../relay/ingest.js'
import { fileStreams } from '../helpers/streams.js'
import { tempDir } from '../helpers/tmp.js'

type Handle = fsp.FileHandle & { fd: number }

/** Written-but-unsynced bytes per open file, counted by wrapping FileHandle's write and sync calls. */
async function syncLedger(t: Test) {
  const probe = await fsp.open(join(tempDir(t), 'probe'), 'w')
  const proto = Object.getPrototypeOf(probe) as Record<'write' | 'datasync' | 'sync' | 'close', (this: Handle, ...args: unknown[]) => Promise<unknown>>
  await probe.close()
  const original = { write: proto.write, datasync: proto.datasync, sync: proto.sync, close: proto.close }
  const unsynced = new Map<number, number>()
  let written = 0
  let syncs = 0
  proto.write = async function (this: Handle, ...args: unknown[]) {
    const result = (await original.write.apply(this, args)) as { bytesWritten: number }
    unsynced.set(this.fd, (unsynced.get(this.fd) ?? 0) + result.bytesWritten)
    written += result.bytesWritten
    return result
  }
  // Only what was written before a sync began is known to be on disk when it returns.
  const syncing = (call: typeof original.sync) => async function (this: Handle) {
    const before = unsynced.get(this.fd) ?? 0
    await call.call(this)
    syncs++
    const left = (unsynced.get(this.fd) ?? 0) - before
    if (left > 0) unsynced.set(this.fd, left)
    else unsynced.delete(this.fd)
  }
  proto.datasync = syncing(original.datasync)
  proto.sync = syncing(original.sync)
  // A closed descriptor's number is reused by the next open: its count goes with it (the store keeps
  // its segment files open, so what it acknowledges is never behind a close).
  proto.close = async function (this: Handle) {
    unsynced.delete(this.fd)
    return original.close.call(this)
  }
  t.teardown(() => Object.assign(proto, original))
  return {
    unsyncedBytes: () => [...unsynced.values()].reduce((a, b) => a + b, 0),
    written: () => written,
    syncs: () => syncs,
  }
}

const records = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ partitionKey: `k${i % 7}`, data: Buffer.from(`${tag}-${i}`), producerTimeMs: 0, clockSynced: true }))

t.test('a device batch is acknowledged only once every byte written for it is synced', async (t) => {
  const { logs, streams } = await fileStreams(t)
  const ingest = new Ingest({ streams, logs, autoCreateStreams: true, autoCreateShardCount: 3, maxBatchRecords: 500, maxDataBytes: 0 })
  const ledger = await syncLedger(t)
  for (let sequence = 0; sequence < 5; sequence++) {
    const writtenBefore = ledger.written()
    const outcome = await ingest.ingestBatch('dev-1', 'durable', codec.encodeBatch({ epoch: 1n, sequence, records: records(200, `b${sequence}`) }))
    t.equal(outcome.stored, 200)
    t.ok(ledger.written() > writtenBefore, `batch ${sequence} was written to files`)
    t.equal(ledger.unsyncedBytes(), 0, `when batch ${sequence} is acknowledged nothing written is unsynced`)
  }
  t.ok(ledger.syncs() > 0)
})

t.test('a PutRecords answer comes only once its records are synced', async (t) => {
  const { logs, streams } = await fileStreams(t)
  const ingest = new Ingest({ streams, logs, autoCreateStreams: false, autoCreateShardCount: 1, maxBatchRecords: 500, maxDataBytes: 0 })
  const state = await streams.create('api', 2)
  const ledger = await syncLedger(t)
  const writtenBefore = ledger.written()
  const stored = await ingest.putRecords(state, records(300, 'api').map((r) => ({ ...r, clockSynced: false })))
  t.equal(stored.length, 300)
  t.ok(ledger.written() > writtenBefore, 'the records were written to files')
  t.equal(ledger.unsyncedBytes(), 0, 'and nothing written is unsynced when the answer comes')
})
