/**
 * Ingest on its own (real shard logs and metadata, no broker): what a device batch that fails
 * half-way leaves behind and how its resend is completed without duplicates; how a batch that cannot
 * be scanned is named; PutRecords appending where the API layer already routed; the limits a device
 * batch is held to (records per batch, keys, record size, a missing stream, the data cap, a failed store)
 * and what the metrics hear.
 */
import t, { type Test } from 'tap'
import { codec, type Codec } from '../../hardware/index.js'
import { OFF_BATCH_SEQ } from '../../shared/frame.js'
import { ErrorCode, StorageError } from '../../shared/errors.js'
import { LogFlag } from '../../shared/logframe.js'
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
  await t.rejects(ingest.putRecords(state, records, shards.slice(1)), { name: 'RangeError', message: 'putRecords: 49 shards for 50 records' }, 'a route list of another length is refused, saying so')
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
  t.match((await ingest.ingestBatch('d', 's', damaged)), { stored: 0, duplicates: 0, reject: { type: 'reject', stream: 's', code: 'FRAME_BAD_CHECKSUM', epoch: '42', batchSequence: 7, records: [] } }, 'a damaged body: named')
  t.same((await ingest.ingestBatch('d', 's', damaged)).reject?.records, [], 'the whole batch is refused, no record singled out')
  t.match((await ingest.ingestBatch('d', 's', Buffer.from('{"not":"a frame at all, but long enough"}'))).reject, { code: 'FRAME_BAD_MAGIC', epoch: '0', batchSequence: -1 }, 'another format: unreadable')
  t.match((await ingest.ingestBatch('d', 's', good.subarray(0, 10))).reject, { code: 'FRAME_TRUNCATED', epoch: '0', batchSequence: -1 }, 'shorter than a header: unreadable')
  const huge = Buffer.from(good)
  huge.writeUInt32LE(0x0020_0000, OFF_BATCH_SEQ + 4)
  t.match((await ingest.ingestBatch('d', 's', huge)).reject, { epoch: '42', batchSequence: -1 }, 'a sequence above 2^53-1 is not echoed inexactly')
})

t.test('a scan that fails for another reason than a bad frame is not answered as a bad frame: the batch is left unacknowledged', async (t) => {
  const { streams, logs } = await fileStreams(t)
  const faulty: Codec = { ...codec, scanBatch: () => { throw new Error('the frame scanner failed') } }
  const ingest = new Ingest({ streams, logs, codec: faulty, autoCreateStreams: true, autoCreateShardCount: 1, autoCreateMaxPerDevice: 10, maxBatchRecords: 500, maxDataBytes: 0 })
  await t.rejects(ingest.ingestBatch('d', 's', codec.encodeBatch({ epoch: 1n, sequence: 0, records: putInputs(2) })), { message: 'the frame scanner failed' })
})

/** A stream with an Ingest of the given limits, recording what it tells the metrics. */
async function limited(t: Test, o: { maxBatchRecords?: number; autoCreateStreams?: boolean; maxDataBytes?: number } = {}) {
  const { logs, streams } = await fileStreams(t)
  const stored: [string, number, number, string][] = []
  const rejected: [string, number][] = []
  const ingest = new Ingest({
    streams, logs, autoCreateStreams: o.autoCreateStreams ?? true, autoCreateShardCount: 2,
    maxBatchRecords: o.maxBatchRecords ?? 500, maxDataBytes: o.maxDataBytes ?? 0,
    onStored: (...a) => stored.push(a), onRejected: (...a) => rejected.push(a),
  })
  return { logs, streams, ingest, stored, rejected }
}

const items = (keys: string[], data = 'x') => keys.map((partitionKey) => ({ partitionKey, data: Buffer.from(data), producerTimeMs: 1, clockSynced: true }))
const framed = (sequence: number, records: ReturnType<typeof items>, epoch = 9n) => codec.encodeBatch({ epoch, sequence, records })

/** Every record the stream holds, oldest first per shard. */
async function held(streams: Awaited<ReturnType<typeof fileStreams>>['streams'], name: string) {
  const out: { key: string; flags: number; offset: number }[] = []
  for (const shard of streams.get(name)?.open ?? []) {
    out.push(...(await shard.log.read(0, 10_000, 1 << 24)).records.map((r) => ({ key: r.partitionKey, flags: r.flags, offset: r.offset })))
  }
  return out
}

t.test('a batch of more records than the limit is refused whole as BATCH_TOO_LARGE; one at the limit is stored', async (t) => {
  const { streams, ingest, stored, rejected } = await limited(t, { maxBatchRecords: 3 })
  t.same(await ingest.ingestBatch('d', 's', framed(4, items(['a', 'b', 'c', 'd']))), {
    stored: 0, duplicates: 0,
    reject: { type: 'reject', stream: 's', epoch: '9', batchSequence: 4, code: 'BATCH_TOO_LARGE', message: 'batch holds 4 records, over the limit of 3', records: [] },
  })
  t.same(rejected, [['BATCH_TOO_LARGE', 4]], 'the metrics count all four records as rejected')
  t.equal(streams.get('s'), undefined, 'nothing was created for it')
  t.same(await ingest.ingestBatch('d', 's', framed(5, items(['a', 'b', 'c']))), { stored: 3, duplicates: 0, reject: null })
  t.same(stored, [['s', 3, 3, 'mqtt']], 'the metrics count three records of three bytes from MQTT')
})

t.test('with auto-create off, a batch for a stream that does not exist is refused as STREAM_NOT_FOUND and creates nothing', async (t) => {
  const { streams, ingest, rejected } = await limited(t, { autoCreateStreams: false })
  t.same(await ingest.ingestBatch('d', 'nowhere', framed(1, items(['a', 'b']))), {
    stored: 0, duplicates: 0,
    reject: { type: 'reject', stream: 'nowhere', epoch: '9', batchSequence: 1, code: 'STREAM_NOT_FOUND', message: 'stream nowhere does not exist and auto-create is off', records: [] },
  })
  t.same(rejected, [['STREAM_NOT_FOUND', 2]])
  t.equal(streams.get('nowhere'), undefined)
})

t.test('records whose key breaks the rules are refused by index; the rest of the batch is stored, and a resend stores nothing twice', async (t) => {
  const { streams, ingest, stored, rejected } = await limited(t)
  // 'zz' becomes two bytes that are not UTF-8 (the frame's checksum made good again).
  const frame = framed(7, [...items(['ok-0', '', 'zz', 'k'.repeat(256), 'k'.repeat(257), 'é'.repeat(256)]),
    { partitionKey: 'big', data: Buffer.alloc(1024 * 1024 - 3), producerTimeMs: 1, clockSynced: true },
    { partitionKey: 'big', data: Buffer.alloc(1024 * 1024 - 2), producerTimeMs: 1, clockSynced: true }])
  const at = frame.indexOf('zz')
  frame[at] = 0xff
  frame[at + 1] = 0xfe
  frame.writeUInt32LE(codec.crc32c(frame, 0, 12, 12 + frame.readUInt32LE(8)), 4)
  const outcome = await ingest.ingestBatch('d', 's', frame)
  t.equal(outcome.stored, 4, 'the good key, keys of 256 characters (ASCII or not) and a record of exactly 1 MiB are stored')
  t.equal(outcome.duplicates, 0)
  t.match(outcome.reject, { type: 'reject', stream: 's', epoch: '9', batchSequence: 7 })
  t.same(outcome.reject?.records.map((r) => [r.index, r.code]), [[1, 'PARTITION_KEY_INVALID'], [2, 'PARTITION_KEY_INVALID'], [4, 'PARTITION_KEY_INVALID'], [7, 'RECORD_TOO_LARGE']])
  t.equal(outcome.reject?.records[1]?.message, 'partition key is not valid UTF-8')
  t.ok(outcome.reject?.records.every((r) => r.message.length > 0), 'each refusal says why')
  t.same(rejected, [['PARTITION_KEY_INVALID', 1], ['PARTITION_KEY_INVALID', 1], ['PARTITION_KEY_INVALID', 1], ['RECORD_TOO_LARGE', 1]])
  t.same(stored, [['s', 4, 1 + 1 + 1 + (1024 * 1024 - 3), 'mqtt']], 'the metrics count the stored records and their data bytes')
  t.same((await held(streams, 's')).map((r) => r.key).sort(), ['big', 'k'.repeat(256), 'ok-0', 'é'.repeat(256)].sort())

  const again = await ingest.ingestBatch('d', 's', frame)
  t.same([again.stored, again.duplicates], [0, 4], 'the resend finds the four stored')
  t.same(again.reject?.records.map((r) => r.index), [1, 2, 4, 7], 'and refuses the same records again')
  t.equal((await held(streams, 's')).length, 4)
  t.equal(stored.length, 1, 'the metrics hear of no stored records for the resend')
})

t.test('a resend whose records are all stored already is answered without routing them again', async (t) => {
  const { streams, logs } = await fileStreams(t)
  let routed = 0
  const counting: Codec = { ...codec, hashRoute: (frame, fields, bounds) => { routed++; return codec.hashRoute(frame, fields, bounds) } }
  const ingest = new Ingest({ streams, logs, codec: counting, autoCreateStreams: true, autoCreateShardCount: 4, autoCreateMaxPerDevice: 10, maxBatchRecords: 500, maxDataBytes: 0 })
  const frame = framed(1, items(['a', 'b', 'c', 'd']))
  t.same(await ingest.ingestBatch('d', 's', frame), { stored: 4, duplicates: 0, reject: null })
  t.equal(routed, 1, 'the batch was routed once')
  t.same(await ingest.ingestBatch('d', 's', frame), { stored: 0, duplicates: 4, reject: null })
  t.equal(routed, 1, 'its resend was not routed again')
})

t.test('an Ingest with no metrics observers answers every refusal the same way', async (t) => {
  const { streams, logs } = await fileStreams(t)
  const ingest = (o: { autoCreateStreams: boolean; autoCreateMaxPerDevice: number }) => new Ingest({ streams, logs, autoCreateShardCount: 1, maxBatchRecords: 2, maxDataBytes: 0, ...o })
  const open = ingest({ autoCreateStreams: true, autoCreateMaxPerDevice: 1 })
  t.match(await open.ingestBatch('d', 's', framed(0, items(['a', 'b', 'c']))), { stored: 0, reject: { code: 'BATCH_TOO_LARGE' } })
  t.match(await open.ingestBatch('d', 's', framed(1, items(['a', '']))), { stored: 1, reject: { records: [{ index: 1, code: 'PARTITION_KEY_INVALID' }] } })
  t.match(await open.ingestBatch('d', 'another', framed(2, items(['a']))), { stored: 0, reject: { code: 'LIMIT_EXCEEDED' } })
  t.match(await ingest({ autoCreateStreams: false, autoCreateMaxPerDevice: 1 }).ingestBatch('d', 'nowhere', framed(3, items(['a']))), { stored: 0, reject: { code: 'STREAM_NOT_FOUND' } })
})

t.test('a batch appended while its stream is deleted is not acknowledged: the caller hears the stream is gone', async (t) => {
  const { streams, ingest } = await limited(t)
  await ingest.ingestBatch('d', 'doomed', framed(0, items(['a'])))
  const caught = ingest.ingestBatch('d', 'doomed', framed(1, items(['b', 'c', 'd']))).then(() => null, (err: unknown) => err)
  await streams.delete('doomed')
  t.match(await caught, { code: 'STREAM_NOT_FOUND', message: 'stream doomed was deleted before the records were stored' })
})

t.test('when the store is at its data cap or has failed, nothing is taken: STORAGE_FULL and STORAGE_FAILED say why', async (t) => {
  const { logs, streams, ingest } = await limited(t)
  await ingest.ingestBatch('d', 's', framed(0, items(['a', 'b'])))
  const total = logs.totalBytes()
  t.ok(total > 0)
  const at = (maxDataBytes: number) => new Ingest({ streams, logs, autoCreateStreams: true, autoCreateShardCount: 2, maxBatchRecords: 500, maxDataBytes })
  await t.rejects(at(total).ingestBatch('d', 's', framed(1, items(['c']))), { code: 'STORAGE_FULL', message: `the relay's data directory is at its cap of ${total} bytes` }, 'at the cap')
  t.same(await at(total + 1).ingestBatch('d', 's', framed(2, items(['c']))), { stored: 1, duplicates: 0, reject: null }, 'a byte under it')
  t.throws(() => at(total).checkCapacity(), { code: 'STORAGE_FULL' })
  // A shard whose flush fails fails the store.
  const log = streams.get('s')!.open[0]!.log as unknown as { flush: () => Promise<void> }
  log.flush = () => Promise.reject(new Error('EIO: the disk is gone'))
  const failing = ingest.putRecords(streams.get('s')!, items(Array.from({ length: 20 }, (_, i) => `p${i}`)))
  await t.rejects(failing, { code: 'STORAGE_FAILED' })
  t.throws(() => at(0).checkCapacity(), { code: 'STORAGE_FAILED', message: /EIO: the disk is gone/ })
})

t.test('PutRecords stores each record at the offset it reports, with its explicit-hash-key flag, and counts them as API records', async (t) => {
  const { streams, ingest, stored } = await limited(t)
  const state = await streams.create('api', 2)
  const records = [...items(['a', 'b', 'c', 'd', 'e', 'f']), { partitionKey: 'g', data: Buffer.from('xyz'), producerTimeMs: 1, clockSynced: false, explicitHashKey: 0n }]
  const where = await ingest.putRecords(state, records)
  const back = await held(streams, 'api')
  for (const [i, w] of where.entries()) {
    const found = back.find((r) => r.key === records[i]!.partitionKey)
    t.equal(found?.offset, w.offset, `${records[i]!.partitionKey} is at the offset reported`)
    t.equal(found?.flags, i === 6 ? LogFlag.explicitHashKey : 0, `${records[i]!.partitionKey} carries ${i === 6 ? 'the' : 'no'} explicit-hash-key flag`)
  }
  t.same(stored, [['api', 7, 9, 'api']])
})
