/**
 * The router: a device batch, PutRecord(s) (as records, or as keys where the body holds them) and a
 * single hash key (the throughput meter's question) route the same record to the same open shard, at the edges of every hash range and after a split,
 * on the C addon and on the TypeScript fallback; and ingest stores each record where it routes.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE, type Codec } from '../../hardware/index.js'
import type { ShardState, StreamState } from '../../relay/streams.js'
import { Ingest } from '../../relay/ingest.js'
import { Router } from '../../relay/router.js'
import { implementations } from '../helpers/codecs.js'
import { fileStreams } from '../helpers/streams.js'

const MAX = (1n << 128n) - 1n

/** The rule itself, written plainly: the open shard whose [start, end] holds the hash key. */
function owner(state: StreamState, hashKey: bigint): ShardState {
  const found = state.open.filter((s) => s.start <= hashKey && hashKey <= s.end)
  if (found.length !== 1) throw new Error(`${found.length} open shards hold ${hashKey}`)
  return found[0]!
}

const md5Of = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))

/** 0, 2^128-1, and each open shard's first and last hash key and their neighbours. */
function edges(state: StreamState): bigint[] {
  const keys = new Set<bigint>([0n, 1n, MAX - 1n, MAX])
  for (const s of state.open) for (const k of [s.start - 1n, s.start, s.start + 1n, s.end - 1n, s.end, s.end + 1n]) if (k >= 0n && k <= MAX) keys.add(k)
  return [...keys]
}

async function splitStream(t: Test, codec: Codec) {
  const { logs, streams } = await fileStreams(t)
  const state = await streams.create('routed', 3)
  // An uneven split, so a boundary falls where no even map would put one.
  const middle = state.open[1]!
  await streams.split(state, middle.meta.shardId, middle.start + (middle.end - middle.start) / 3n + 12_345n)
  const router = new Router(codec)
  const ingest = new Ingest({ streams, logs, codec, router, autoCreateStreams: false, autoCreateShardCount: 1, maxBatchRecords: 10_000, maxDataBytes: 0 })
  return { state, router, ingest }
}

for (const [name, make, skip] of implementations) {
  t.test(`${name}: a batch, PutRecords and a single hash key route alike, at every range's edges and after a split`, { skip }, async (t) => {
    const codec = make()
    const { state, router } = await splitStream(t, codec)
    t.equal(state.open.length, 4, 'the split left four open shards')
    t.ok(state.shards.some((s) => s.meta.endOffset !== null), 'and one closed parent')
    const explicit = edges(state)
    const keys = [...Array.from({ length: 300 }, (_, i) => `key-${i}-${randomBytes(4).toString('hex')}`), 'ключ', '😀', 'ü'.repeat(128)]
    const records = [
      ...explicit.map((h, i) => ({ partitionKey: `edge-${i}`, explicitHashKey: h })),
      ...keys.map((k) => ({ partitionKey: k })),
    ]
    const want = records.map((r) => owner(state, r.explicitHashKey ?? md5Of(r.partitionKey)))

    const single = records.map((r) => router.route(state, r.explicitHashKey ?? md5Of(r.partitionKey)))
    const many = router.routeRecords(state, records)
    const frame = codec.encodeBatch({ epoch: 1n, sequence: 1, records: records.map((r) => ({ ...r, data: Buffer.from('d'), producerTimeMs: 0, clockSynced: false })) })
    const slots = router.routeBatch(state, frame, codec.scanBatch(frame))
    const batch = Array.from(slots, (slot) => state.open[slot]!)

    // PutRecords' keys where a body holds them: the keys hashed in place (records without a hash key).
    const keyed = records.flatMap((r, i) => (r.explicitHashKey === undefined ? [i] : []))
    const body = Buffer.from(JSON.stringify({ Records: keyed.map((i) => ({ PartitionKey: records[i]!.partitionKey })) }))
    const table = new Uint32Array(keyed.length * BATCH_STRIDE)
    let from = 0
    keyed.forEach((i, j) => {
      const key = Buffer.from(JSON.stringify(records[i]!.partitionKey).slice(1, -1))
      const at = body.indexOf(key, from)
      table[j * BATCH_STRIDE + BATCH_KEY_START] = at
      table[j * BATCH_STRIDE + BATCH_KEY_LENGTH] = key.length
      from = at + key.length
    })
    const inBody = router.routeKeys(state, body, table)

    const wrong = (got: ShardState[]) => records.map((r, i) => got[i] === want[i] ? null : `${r.partitionKey}`).filter((x) => x !== null)
    t.same(keyed.map((i, j) => inBody[j] === want[i] ? null : records[i]!.partitionKey).filter((x) => x !== null), [], `routeKeys: ${keyed.length} keys hashed where a body holds them, the same shards`)
    t.same(wrong(single), [], `route(hashKey): ${records.length} records, ${explicit.length} of them at the edges, each in the shard whose range holds it`)
    t.same(wrong(many), [], 'routeRecords: the same shards')
    t.same(wrong(batch), [], 'routeBatch: the same shards')
    t.equal(router.route(state, 0n), state.open[0], '0 goes to the first shard')
    t.equal(router.route(state, MAX), state.open.at(-1), '2^128-1 goes to the last')
    t.same(new Set(want).size, 4, 'every open shard is reached')
  })

  t.test(`${name}: ingest stores a record where the router sends it, from a device and from PutRecords`, { skip }, async (t) => {
    const codec = make()
    const { state, router, ingest } = await splitStream(t, codec)
    const records = [
      ...edges(state).map((h, i) => ({ partitionKey: `edge-${i}`, explicitHashKey: h })),
      ...Array.from({ length: 100 }, (_, i) => ({ partitionKey: `key-${i}` })),
    ].map((r) => ({ ...r, data: Buffer.from(r.partitionKey), producerTimeMs: 0, clockSynced: false }))
    const want = router.routeRecords(state, records)
    const stored = await ingest.putRecords(state, records)
    t.same(stored.map((s, i) => s.shard === want[i]).filter((ok) => !ok), [], 'PutRecords: each record in its routed shard')
    const outcome = await ingest.ingestBatch('dev-1', 'routed', codec.encodeBatch({ epoch: 1n, sequence: 1, records }))
    t.equal(outcome.stored, records.length)
    const fromDevice = new Map<string, ShardState>()
    for (const shard of state.open) {
      for (const r of (await shard.log.read(0, 10_000, 1 << 20)).records) if (r.device === 'dev-1') fromDevice.set(r.partitionKey, shard)
    }
    t.same(records.map((r, i) => fromDevice.get(r.partitionKey) === want[i]).filter((ok) => !ok), [], 'a device batch: each record in the same shard')
  })
}
