/**
 * Auto-creating a stream a device publishes to (Ingest.autoCreate): each device's cap on the streams
 * it creates, counting the creations still under way once each and no longer than they last, a stream
 * another device is creating shared without counting, the relay's shard limit said to the device as a
 * reject, and any other failure left unacknowledged (the device keeps its batch and resends it).
 * Real SQLite metadata and segment files; a test holds a creation open by gating the metadata write.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { Ingest } from '../../relay/ingest.js'
import { Streams } from '../../relay/streams.js'
import { tempDir } from '../helpers/tmp.js'

/** A relay's streams and ingest with the given caps; `hold(name)` keeps that stream's creation waiting until released. */
async function relay(t: Test, o: { maxPerDevice: number; shardLimit?: number; shardsPerStream?: number }) {
  const dir = tempDir(t)
  const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
  const logs = new FileLogStore({ root: join(dir, 'streams') })
  t.teardown(async () => { await logs.close(); await meta.close() })
  const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24, shardLimit: o.shardLimit })
  await streams.init()
  const held = new Map<string, Promise<void>>()
  const failing = new Map<string, Error>()
  const createStream = meta.createStream.bind(meta)
  meta.createStream = async (m, shards) => {
    await held.get(m.name)
    const err = failing.get(m.name)
    if (err) { failing.delete(m.name); throw err }
    return createStream(m, shards)
  }
  const rejected: [string, number][] = []
  const ingest = new Ingest({
    streams, logs, autoCreateStreams: true, autoCreateShardCount: o.shardsPerStream ?? 1, autoCreateMaxPerDevice: o.maxPerDevice,
    maxBatchRecords: 500, maxDataBytes: 0, onRejected: (...a) => rejected.push(a),
  })
  let sequence = 0
  return {
    streams, ingest, rejected,
    /** Publishes a batch of two records from `device` to `stream`. */
    publish: (device: string, stream: string) => ingest.ingestBatch(device, stream, codec.encodeBatch({
      epoch: 3n, sequence: sequence++,
      records: ['a', 'b'].map((partitionKey) => ({ partitionKey, data: Buffer.from(partitionKey), producerTimeMs: 0, clockSynced: true })),
    })),
    hold(name: string): () => void {
      let release = () => {}
      held.set(name, new Promise<void>((resolve) => { release = resolve }))
      return release
    },
    failOnce(name: string, err: Error) {
      failing.set(name, err)
    },
  }
}

const stored = { stored: 2, duplicates: 0, reject: null }
const capMessage = (device: string, cap: number, stream: string) =>
  `device ${device} has created ${cap} streams by publishing, its limit (auto-create-max-per-device); create ${stream} through the API`

t.test('a device creates streams by publishing up to its cap; the next is refused as LIMIT_EXCEEDED and nothing is created, while its streams still take its batches', async (t) => {
  const r = await relay(t, { maxPerDevice: 2 })
  t.same(await r.publish('d', 's1'), stored)
  t.same(await r.publish('d', 's2'), stored, 'a finished creation is counted once, as the stream it made')
  const refused = await r.publish('d', 's3')
  t.same(refused, {
    stored: 0, duplicates: 0,
    reject: { type: 'reject', stream: 's3', epoch: '3', batchSequence: 2, code: 'LIMIT_EXCEEDED', message: capMessage('d', 2, 's3'), records: [] },
  })
  t.same(r.rejected, [['LIMIT_EXCEEDED', 2]], 'the metrics count both records')
  t.equal(r.streams.get('s3'), undefined, 'the stream was not created')
  t.same(await r.publish('d', 's1'), stored, 'its own streams still take its batches')
  t.same(await r.publish('e', 's3'), stored, 'another device has its own cap')
  t.same(await r.publish('d', 's3'), stored, 'and a stream that exists takes anyone\'s batches')
  await r.streams.delete('s1')
  t.same(await r.publish('d', 's4'), stored, 'a deleted stream no longer counts')
})

t.test('creations still under way count against the cap: of three new streams published to at once, two are created', async (t) => {
  const r = await relay(t, { maxPerDevice: 2 })
  const outcomes = await Promise.all(['s1', 's2', 's3'].map((s) => r.publish('d', s)))
  t.same(outcomes.map((o) => o.reject?.code ?? 'stored'), ['stored', 'stored', 'LIMIT_EXCEEDED'])
  t.same(r.streams.list().map((s) => s.meta.name).sort(), ['s1', 's2'])
})

t.test('a device at its cap may still publish to a stream another device is creating, and sharing that creation does not count against it', async (t) => {
  const r = await relay(t, { maxPerDevice: 1 })
  t.same(await r.publish('e', 'mine'), stored, 'e reaches its cap')
  const [d, e] = await Promise.all([r.publish('d', 'shared'), r.publish('e', 'shared')])
  t.same([d, e], [stored, stored], "e's batch goes into the stream d is creating")
  t.same(r.streams.get('shared')?.tags, { 'tributary:auto-created-by': 'd' })
  const f = await Promise.all([r.publish('f', 'again'), r.publish('g', 'again')])
  t.same(f, [stored, stored])
  t.same(await r.publish('g', 'g-own'), stored, 'g, who only shared a creation, may still create its own')
})

t.test('a creation is counted until it finishes, once, however the device\'s other creations and shared ones end meanwhile', async (t) => {
  const r = await relay(t, { maxPerDevice: 2 })
  const release = r.hold('slow')
  const slow = r.publish('d', 'slow') // under way until released
  // d shares e's creation, which finishes while d's own is still under way.
  t.same(await Promise.all([r.publish('e', 'e-made'), r.publish('d', 'e-made')]), [stored, stored])
  t.same(await r.publish('d', 'quick'), stored, 'd has one creation under way and none made: it may start another')
  // 'quick' has finished (one made) and 'slow' is still under way: d is at its cap.
  t.match(await r.publish('d', 'third'), { stored: 0, reject: { code: 'LIMIT_EXCEEDED', message: capMessage('d', 2, 'third') } })
  release()
  t.same(await slow, stored)
  t.match(await r.publish('d', 'fourth'), { reject: { code: 'LIMIT_EXCEEDED' } }, 'with both made, still at its cap')
  t.same(r.streams.list().map((s) => s.meta.name).sort(), ['e-made', 'quick', 'slow'])
})

t.test("a stream that would pass the relay's shard limit is refused to the device as LIMIT_EXCEEDED, saying why", async (t) => {
  const r = await relay(t, { maxPerDevice: 10, shardLimit: 3, shardsPerStream: 2 })
  t.same(await r.publish('d', 'first'), stored)
  t.same(await r.publish('d', 'second'), {
    stored: 0, duplicates: 0,
    reject: { type: 'reject', stream: 'second', epoch: '3', batchSequence: 1, code: 'LIMIT_EXCEEDED', message: "2 more shards would pass the relay's shard limit of 3 (2 open or being created)", records: [] },
  })
  t.equal(r.streams.get('second'), undefined)
  t.same(await r.publish('d', 'first'), stored)
})

t.test('a creation that fails for another reason is not answered with a reject: the batch is left unacknowledged, and its resend creates the stream', async (t) => {
  const r = await relay(t, { maxPerDevice: 1 })
  r.failOnce('flaky', new Error('SQLITE_FULL: database or disk is full'))
  await t.rejects(r.publish('d', 'flaky'), { message: 'SQLITE_FULL: database or disk is full' }, 'no outcome: the broker sends no PUBACK')
  t.same(r.rejected, [], 'nothing was refused')
  t.same(await r.publish('d', 'flaky'), stored, 'the failed creation did not count against the cap of one')
})
