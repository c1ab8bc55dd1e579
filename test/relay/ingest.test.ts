/**
 * Ingest on its own (real shard logs and metadata, no broker): what a device batch that fails
 * half-way leaves behind and how its resend is completed without duplicates; how a batch that cannot
 * be scanned is named; PutRecords appending where the API layer already routed.
 */
import t, { type Test } from 'tap'
import { codec, type Codec } from '../../hardware/index.js'
import { OFF_BATCH_SEQ } from '../../shared/frame.js'
import { ErrorCode, StorageError } from '../../shared/errors.js'
import { Ingest } from '../../relay/ingest.js'
import { Router } from '../../relay/router.js'
import { fileStreams } from '../helpers/streams.js'

/** A stream of `shards` shards with an Ingest whose codec counts the keys it hashes. */
async function oneStream(t: Test, name: string, shards: number) {
  const { logs, streams } = await fileStreams(t)
  const state = await streams.create(name, shards)
  let hashed = 0
  const counting: Codec = { ...codec, md5Many: (keys) => { hashed += keys.length; return codec.md5Many(keys) } }
  const router = new Router(counting)
  const ingest = new Ingest({ streams, logs, codec: counting, router, autoCreateStreams: false, autoCreateShardCount: 1, maxBatchRecords: 10_000, maxDataBytes: 0 })
  return { logs, streams, state, router, ingest, hashed: () => hashed }
}

t.test('a batch whose append fails on one shard is completed, not duplicated, when the device resends it', async (t) => {
  const { logs, state, ingest } = await oneStream(t, 'half', 4)
  const frame = codec.encodeBatch({
    epoch: 5n, sequence: 1,
    records: Array.from({ length: 200 }, (_, i) => ({ partitionKey: `key-${i}`, data: Buffer.from(`r${i}`), producerTimeMs: i, clockSynced: true })),
  })
  // The third shard refuses once, as a failing disk or a missing encryption key would.
  const victim = state.open[2]!.log
  const appendBatch = victim.appendBatch.bind(victim)
  let failures = 0
  victim.appendBatch = (slice) => {
    if (failures++ === 0) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the disk said no')
    return appendBatch(slice)
  }
  await t.rejects(ingest.ingestBatch('dev-1', 'half', frame), { code: 'STORAGE_FAILED' }, 'no PUBACK for the first attempt')
  await logs.commit()
  const before = state.open.reduce((n, s) => n + s.log.endOffset(), 0)
  t.ok(before > 0 && before < 200, `the shards before the failure took their records (${before})`)
  const resend = await ingest.ingestBatch('dev-1', 'half', frame)
  t.equal(resend.duplicates, before, 'the resend finds those already stored')
  t.equal(resend.stored, 200 - before, 'and stores only the rest')
  const keys: string[] = []
  for (const shard of state.open) keys.push(...(await shard.log.read(0, 1000, 1 << 20)).records.map((r) => r.partitionKey))
  t.equal(keys.length, 200)
  t.equal(new Set(keys).size, 200, 'every record once')
})

const putInputs = (n: number) => Array.from({ length: n }, (_, i) => ({ partitionKey: `p${i}`, data: Buffer.from(`d${i}`), producerTimeMs: 0, clockSynced: false }))

t.test('PutRecords given the routes the API layer computed appends there without hashing the keys again', async (t) => {
  const { state, router, ingest, hashed } = await oneStream(t, 's', 4)
  const records = putInputs(50)
  const shards = router.routeRecords(state, records)
  t.equal(hashed(), 50, 'routed once, in one call')
  const stored = await ingest.putRecords(state, records, shards)
  t.equal(hashed(), 50, 'not hashed again')
  t.ok(stored.every((s, i) => s.shard === shards[i]), 'each record went where it was routed')
  await t.rejects(ingest.putRecords(state, records, shards.slice(1)), { name: 'RangeError' }, 'a route list of another length is refused')
})

t.test('routes computed before a split are computed again, so no record lands in a closed shard', async (t) => {
  const { streams, state, router, ingest } = await oneStream(t, 's', 2)
  const records = putInputs(40)
  const stale = router.routeRecords(state, records)
  const parent = state.open[0]!
  await streams.split(state, parent.meta.shardId, parent.start + (parent.end - parent.start) / 2n)
  t.ok(stale.includes(parent), 'some records were routed to the shard that is now closed')
  const stored = await ingest.putRecords(state, records, stale)
  t.ok(stored.every((s) => s.shard.meta.endOffset === null), 'only open shards')
  const now = router.routeRecords(state, records)
  t.ok(stored.every((s, i) => s.shard === now[i]), 'each where it routes now')
})

t.test('a batch that cannot be scanned is named by its header, or as unreadable when it has none', async (t) => {
  const { ingest } = await oneStream(t, 's', 1)
  const good = codec.encodeBatch({ epoch: 42n, sequence: 7, records: putInputs(2) })
  const damaged = Buffer.from(good)
  damaged[damaged.length - 1]! ^= 1
  t.match((await ingest.ingestBatch('d', 's', damaged)).reject, { code: 'FRAME_BAD_CHECKSUM', epoch: '42', batchSequence: 7 }, 'a damaged body: named')
  t.match((await ingest.ingestBatch('d', 's', Buffer.from('{"not":"a frame at all, but long enough"}'))).reject, { code: 'FRAME_BAD_MAGIC', epoch: '0', batchSequence: -1 }, 'another format: unreadable')
  t.match((await ingest.ingestBatch('d', 's', good.subarray(0, 10))).reject, { code: 'FRAME_TRUNCATED', epoch: '0', batchSequence: -1 }, 'shorter than a header: unreadable')
  const huge = Buffer.from(good)
  huge.writeUInt32LE(0x0020_0000, OFF_BATCH_SEQ + 4)
  t.match((await ingest.ingestBatch('d', 's', huge)).reject, { epoch: '42', batchSequence: -1 }, 'a sequence above 2^53-1 is not echoed inexactly')
})
