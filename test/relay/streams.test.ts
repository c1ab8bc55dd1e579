/**
 * Streams and ingest over real files: the producer idempotency state comes back after a crash from
 * its last snapshot plus the log written after it, and from the log alone when the snapshot cannot
 * be trusted.
 */
import t from 'tap'
import { join } from 'node:path'
import { readdirSync, truncateSync, statSync } from 'node:fs'
import { codec } from '../../hardware/index.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { Streams } from '../../relay/streams.js'
import { Ingest } from '../../relay/ingest.js'
import { tempDir } from '../helpers/tmp.js'

function open(dir: string) {
  const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
  const logs = new FileLogStore({ root: join(dir, 'streams') })
  const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24 })
  const ingest = new Ingest({ streams, logs, autoCreateStreams: true, autoCreateShardCount: 2, maxBatchRecords: 500, maxDataBytes: 0 })
  return { meta, logs, streams, ingest }
}

const frame = (seq: number, n = 40) => codec.encodeBatch({
  epoch: 9n, sequence: seq,
  records: Array.from({ length: n }, (_, i) => ({ partitionKey: `k${i}`, data: Buffer.from(`${seq}:${i}`), producerTimeMs: 0, clockSynced: true })),
})

async function count(streams: Streams, name: string): Promise<number> {
  let n = 0
  for (const s of streams.get(name)!.shards) n += (await s.log.read(0, 100_000, 1 << 30)).records.length
  return n
}

t.test('stores abandoned without a close or a last snapshot (as a crash leaves them): resent batches from before and after the snapshot are recognised', async (t) => {
  const dir = tempDir(t)
  const a = open(dir)
  await a.streams.init()
  await a.ingest.ingestBatch('dev', 's', frame(0))
  await a.ingest.ingestBatch('dev', 's', frame(1))
  await a.streams.snapshotProducers()
  await a.ingest.ingestBatch('dev', 's', frame(2))
  // Crash: no close, no snapshot of batch 2. The stores are simply abandoned.
  const b = open(dir)
  await b.streams.init()
  for (const seq of [0, 1, 2]) {
    const outcome = await b.ingest.ingestBatch('dev', 's', frame(seq))
    t.equal(outcome.stored, 0, `batch ${seq} is recognised as already stored`)
    t.equal(outcome.duplicates, 40)
  }
  t.equal(await count(b.streams, 's'), 120)
  const fresh = await b.ingest.ingestBatch('dev', 's', frame(3))
  t.equal(fresh.stored, 40, 'a new batch is stored')
  await b.logs.close()
})

t.test('a snapshot that claims more than the log holds is ignored and the log is replayed', async (t) => {
  const dir = tempDir(t)
  const a = open(dir)
  await a.streams.init()
  await a.ingest.ingestBatch('dev', 's', frame(0))
  await a.ingest.ingestBatch('dev', 's', frame(1))
  await a.streams.snapshotProducers()
  await a.logs.close()
  await a.meta.close()
  // Lose the tail of one shard (as a disk might): the snapshot now says more than the log has.
  const shardDir = join(dir, 'streams', a.streams.get('s')!.meta.id, 'shardId-000000000000')
  const seg = join(shardDir, readdirSync(shardDir).find((n) => n.endsWith('.log'))!)
  truncateSync(seg, Math.floor(statSync(seg).size / 2))
  const b = open(dir)
  await b.streams.init()
  const before = await count(b.streams, 's')
  t.ok(before < 80, `some records were lost with the tail (${before} left)`)
  const again = await b.ingest.ingestBatch('dev', 's', frame(1))
  t.equal(await count(b.streams, 's'), before + again.stored)
  t.ok(again.stored > 0, 'the records lost with the tail are stored again when resent, not refused as duplicates')
  const third = await b.ingest.ingestBatch('dev', 's', frame(1))
  t.equal(third.stored, 0, 'and the batch is complete after that')
  await b.logs.close()
})

t.test('a stream of 300 shards, more than the store keeps open, with the journal: after a crash every batch before and after the snapshot is recognised, and the table is the one the log makes', async (t) => {
  const dir = tempDir(t)
  const stores = () => {
    const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
    const logs = new FileLogStore({ root: join(dir, 'streams'), journalPath: join(dir, 'streams.journal'), maxOpenFiles: 16 })
    const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24 })
    const ingest = new Ingest({ streams, logs, autoCreateStreams: false, autoCreateShardCount: 2, maxBatchRecords: 500, maxDataBytes: 0 })
    return { meta, logs, streams, ingest }
  }
  const a = stores()
  await a.streams.init()
  await a.streams.create('wide', 300)
  for (const seq of [0, 1, 2]) await a.ingest.ingestBatch('dev', 'wide', frame(seq, 500))
  await a.streams.snapshotProducers()
  for (const seq of [3, 4]) await a.ingest.ingestBatch('dev', 'wide', frame(seq, 500))
  const covered = (streams: Streams) => Object.fromEntries(streams.get('wide')!.shards.map((s) => [s.meta.shardId, s.log.endOffset()]))
  const live = a.streams.get('wide')!.producers.snapshot(covered(a.streams))
  // Crash: nothing closed, no snapshot of batches 3 and 4.
  const b = stores()
  await b.streams.init()
  t.same(b.streams.get('wide')!.producers.snapshot(covered(b.streams)), live, 'the rebuilt table is the one the crashed relay had')
  for (const seq of [0, 1, 2, 3, 4]) {
    const outcome = await b.ingest.ingestBatch('dev', 'wide', frame(seq, 500))
    t.equal(outcome.stored, 0, `batch ${seq} is recognised as already stored`)
  }
  t.equal(await count(b.streams, 'wide'), 2500)
  t.equal((await b.ingest.ingestBatch('dev', 'wide', frame(5, 500))).stored, 500, 'a new batch is stored')
  await b.logs.close()
  await b.meta.close()
})

t.test('deleting a stream while records are being written harms no other stream', async (t) => {
  const dir = tempDir(t)
  const a = open(dir)
  await a.streams.init()
  const doomed = await a.streams.create('doomed', 2)
  await a.streams.create('other', 1)
  const writes = Array.from({ length: 20 }, (_, i) => a.ingest.putRecords(doomed, [{ partitionKey: `k${i}`, data: Buffer.from('x'), producerTimeMs: 0, clockSynced: false }]).then(() => 'stored', (e: Error & { code?: string }) => e.code))
  await a.streams.delete('doomed')
  const late = await a.ingest.putRecords(doomed, [{ partitionKey: 'late', data: Buffer.from('x'), producerTimeMs: 0, clockSynced: false }]).then(() => 'stored', (e: Error & { code?: string }) => e.code)
  t.equal(late, 'STREAM_NOT_FOUND', 'a write to the deleted stream is refused with a clear code')
  const outcomes = await Promise.all(writes)
  t.same([...new Set(outcomes)], ['STREAM_NOT_FOUND'], 'writes caught by the deletion are refused, not acknowledged')
  t.equal(a.logs.failed, null, 'the store is not marked as failing')
  const stored = await a.ingest.putRecords(a.streams.get('other')!, [{ partitionKey: 'k', data: Buffer.from('fine'), producerTimeMs: 0, clockSynced: false }])
  t.equal(stored.length, 1, 'other streams keep working')
  await a.logs.close()
})

t.test('two devices naming a new stream at once share one creation', async (t) => {
  const dir = tempDir(t)
  const a = open(dir)
  await a.streams.init()
  const [x, y] = await Promise.all([a.streams.ensure('fresh', 2), a.streams.ensure('fresh', 2)])
  t.equal(x, y)
  t.equal(a.streams.list().length, 1)
  await a.logs.close()
})

t.test('batches that arrive while their stream is being auto-created keep their order', async (t) => {
  const dir = tempDir(t)
  const a = open(dir)
  await a.streams.init()
  const one = (seq: number) => codec.encodeBatch({ epoch: 1n, sequence: seq, records: [{ partitionKey: 'same-key', data: Buffer.from(String(seq)), producerTimeMs: 0, clockSynced: true }] })
  await Promise.all([0, 1, 2, 3, 4].map((seq) => a.ingest.ingestBatch('dev', 'born', one(seq))))
  const shard = a.streams.get('born')!.shards.find((s) => s.log.endOffset() > 0)!
  const { records } = await shard.log.read(0, 10, 1 << 20)
  t.same(records.map((r) => r.data.toString()), ['0', '1', '2', '3', '4'])
  await a.logs.close()
})
