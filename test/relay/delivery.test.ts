/**
 * Delivery streams on a real relay (in process, real files, real SQLite): a data stream's records
 * reach a files sink once each, in batches cut by the buffering hints, named by shard and sequence
 * numbers, in order per key across a split; a transform's answers are honoured; jq partitions the
 * prefix; direct put stores and delivers; positions survive a restart.
 */
import t from 'tap'
import { gunzipSync } from 'node:zlib'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KinesisClient } from '../../relay/kinesis/client.js'
import type { Relay } from '../../relay/relay.js'
import type { DeliveryStreamConfig } from '../../relay/delivery/index.js'
import { normalizeDeliveryConfig } from '../../relay/delivery/index.js'
import { manualClock, testRelay } from '../helpers/relay.js'
import { filesUnder } from '../helpers/files.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const files = filesUnder

/** The records of newline-delimited objects (gunzipped when named .gz). */
function lines(dir: string, filter: (path: string) => boolean = () => true): string[] {
  const out: string[] = []
  for (const [path, body] of [...files(dir)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!filter(path)) continue
    const text = (path.endsWith('.gz') ? gunzipSync(body) : body).toString()
    out.push(...text.split('\n').filter(Boolean))
  }
  return out
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000, tick?: () => void): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    tick?.()
    await sleep(20)
  }
}

async function put(kinesis: KinesisClient, stream: string, records: { key: string; data: string }[]): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    const res = await kinesis.call<{ FailedRecordCount: number }>('PutRecords', { StreamName: stream, Records: records.slice(i, i + 500).map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data).toString('base64') })) })
    if (res.FailedRecordCount) throw new Error(`${res.FailedRecordCount} records failed`)
  }
}

function deliveryConfig(relay: Relay, input: Record<string, unknown>): DeliveryStreamConfig {
  return normalizeDeliveryConfig(input, (name) => relay.delivery.hasTransform(name))
}

t.test('every record of a two-shard stream reaches the files once, gzipped, named by shard and sequence numbers', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'readings', ShardCount: 2 })
  const out = tempDir(t)
  const records = Array.from({ length: 3000 }, (_, i) => ({ key: `k${i % 17}`, data: JSON.stringify({ i, device: `d${i % 3}` }) }))
  await put(kinesis, 'readings', records.slice(0, 1500))
  await relay.delivery.create(deliveryConfig(relay, {
    name: 'to-files', source: { type: 'stream', stream: 'readings', startingPosition: 'TRIM_HORIZON' },
    buffering: { intervalMs: 0 }, processing: { newlineDelimiter: true, compression: 'GZIP' }, sink: { type: 'files', directory: out }, prefix: 'raw/',
  }))
  await put(kinesis, 'readings', records.slice(1500))
  // The objects are written before the checkpoint moves past them; then the counts.
  await until('all 3000 are delivered', () => lines(out).length >= 3000 && relay.delivery.describe('to-files')!.stats.recordsDelivered >= 3000)
  const got = lines(out).map((l) => JSON.parse(l) as { i: number })
  t.equal(got.length, 3000, 'no record twice')
  t.same(new Set(got.map((r) => r.i)).size, 3000, 'every record once')
  const keys = [...files(out).keys()]
  t.ok(keys.every((k) => /^raw\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/to-files-shardId-00000000000[01]-\d+-\d+\.gz$/.test(k)), `objects are prefix/yyyy/MM/dd/HH/name-shard-first-last.gz (${keys[0]})`)
  const d = relay.delivery.describe('to-files')!
  t.equal(d.status, 'ACTIVE')
  t.equal(d.stats.recordsDelivered, 3000)
  t.equal(d.stats.backlogRecords, 0, 'nothing left behind')
  // Positions are the relay's server-side checkpoints.
  const cps = await (await fetch(`${relay.endpoint}/checkpoints/readings/firehose.to-files`)).json() as { Checkpoints: { ShardId: string }[] }
  t.equal(cps.Checkpoints.length, 2, 'a checkpoint per shard, readable at /checkpoints/{stream}/firehose.{name}')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_delivery_records_delivered\{delivery_stream="to-files"\} 3000/, '/metrics counts what was delivered')
  t.match(metrics, /tributary_delivery_backlog_records\{delivery_stream="to-files"\} 0/)
})

t.test('a batch is cut when the buffer reaches its size, and not before its interval otherwise', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'big', ShardCount: 1 })
  const out = tempDir(t)
  await relay.delivery.create(deliveryConfig(relay, {
    name: 'sized', source: { type: 'stream', stream: 'big' },
    buffering: { sizeBytes: 1024 * 1024, intervalMs: 60_000 }, sink: { type: 'files', directory: out },
  }))
  const tick = () => clock.advance(1)
  // 30 records of 100 KB: 3 MB, so two full batches of ≥1 MiB and a remainder that waits for the interval.
  const blob = 'x'.repeat(100_000)
  await put(kinesis, 'big', Array.from({ length: 30 }, (_, i) => ({ key: 'k', data: `${String(i).padStart(3, '0')}${blob}` })))
  await until('two size-cut objects are written', () => files(out).size >= 2, 20_000, tick)
  await sleep(300)
  clock.advance(50)
  await sleep(200)
  const sized = [...files(out).values()]
  t.equal(sized.length, 2, 'the rest waits for the interval')
  t.ok(sized.every((b) => b.length >= 1024 * 1024 && b.length < 1024 * 1024 + 200_000), `each cut at the size hint (${sized.map((b) => b.length).join(', ')} bytes)`)
  clock.advance(60_000)
  await until('the remainder is written once the interval has passed', () => files(out).size === 3, 20_000, tick)
  const all = [...files(out)].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, b]) => b.toString()).join('')
  t.equal(all.length, 30 * 100_003, 'every byte once (raw, no delimiter)')
  t.equal(all.slice(0, 3), '000')
})

t.test('records of a key arrive in order across a split: the parent is delivered before its children', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'resharded', ShardCount: 1 })
  const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${(from + i) % 5}`, data: JSON.stringify({ i: from + i, key: `k${(from + i) % 5}` }) }))
  await put(kinesis, 'resharded', records(0, 500))
  await kinesis.call('SplitShard', { StreamName: 'resharded', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (2n ** 127n).toString() })
  await until('the split is done', async () => (await kinesis.call<{ StreamDescriptionSummary: { StreamStatus: string } }>('DescribeStreamSummary', { StreamName: 'resharded' })).StreamDescriptionSummary.StreamStatus === 'ACTIVE')
  await put(kinesis, 'resharded', records(500, 500))
  const out = tempDir(t)
  await relay.delivery.create(deliveryConfig(relay, { name: 'ordered', source: { type: 'stream', stream: 'resharded' }, buffering: { intervalMs: 0 }, processing: { newlineDelimiter: true }, sink: { type: 'files', directory: out } }))
  await until('all 1000 are delivered', () => lines(out).length >= 1000 && relay.delivery.describe('ordered')!.stats.recordsDelivered >= 1000)
  // Order of delivery: the checkpoint store shows each object's batch; read by file modification order per shard.
  const byKey = new Map<string, number[]>()
  const ordered = [...files(out).keys()].map((k) => ({ k, mtime: statSync(join(out, k)).mtimeMs })).sort((a, b) => a.mtime - b.mtime)
  for (const { k } of ordered) {
    for (const l of readFileSync(join(out, k), 'utf8').split('\n').filter(Boolean)) {
      const r = JSON.parse(l) as { i: number; key: string }
      byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.i])
    }
  }
  const unordered = [...byKey].filter(([, is]) => is.some((v, j) => j > 0 && v < is[j - 1]!)).map(([k]) => k)
  t.same(unordered, [], 'within every key, the order of capture')
  t.equal([...byKey.values()].flat().length, 1000)
  const d = relay.delivery.describe('ordered')!
  t.equal(d.stats.backlogRecords, 0)
})

t.test("a transform's Ok, Dropped and ProcessingFailed answers are honoured; a transform that throws sends its records to the error prefix", async (t) => {
  const dir = tempDir(t)
  const module = join(dir, 'enrich.mjs')
  writeFileSync(module, `export const handler = async (event) => ({
    records: event.records.map((r) => {
      const v = JSON.parse(Buffer.from(r.data, 'base64').toString())
      if (v.i % 10 === 0) return { recordId: r.recordId, result: 'Dropped', data: r.data }
      if (v.i % 10 === 1) return { recordId: r.recordId, result: 'ProcessingFailed', data: r.data }
      return { recordId: r.recordId, result: 'Ok', data: Buffer.from(JSON.stringify({ ...v, enriched: true, shard: r.kinesisRecordMetadata.shardId }) + '\\n').toString('base64') }
    }),
  })\n`)
  const throwing = join(dir, 'broken.mjs')
  writeFileSync(throwing, 'export default async () => { throw new Error("the transform broke") }\n')
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ transforms: { enrich: './enrich.mjs', broken: throwing } }))
  const relay = await testRelay(t, { deliveryFile })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'src', ShardCount: 1 })
  await put(kinesis, 'src', Array.from({ length: 100 }, (_, i) => ({ key: 'k', data: JSON.stringify({ i }) })))
  const out = tempDir(t)
  const failedOut = tempDir(t)
  await relay.delivery.create(deliveryConfig(relay, { name: 'enriched', source: { type: 'stream', stream: 'src' }, buffering: { intervalMs: 0 }, processing: { transform: { name: 'enrich' } }, sink: { type: 'files', directory: out }, prefix: 'ok/', errorPrefix: 'errors/' }))
  await relay.delivery.create(deliveryConfig(relay, { name: 'breaks', source: { type: 'stream', stream: 'src' }, buffering: { intervalMs: 0 }, processing: { transform: { name: 'broken' } }, sink: { type: 'files', directory: failedOut } }))
  await until('the delivered and the failed are written', () => lines(out, (p) => p.startsWith('ok/')).length >= 80 && lines(out, (p) => p.startsWith('errors/')).length >= 10)
  const ok = lines(out, (p) => p.startsWith('ok/')).map((l) => JSON.parse(l) as { i: number; enriched: boolean; shard: string })
  t.equal(ok.length, 80, 'Ok records are delivered; Dropped ones are not, nor failed ones')
  t.ok(ok.every((r) => r.enriched && r.shard === 'shardId-000000000000' && r.i % 10 > 1), 'as the transform returned them, with the Lambda event\'s metadata')
  const errorKeys = [...files(out).keys()].filter((k) => k.startsWith('errors/'))
  t.ok(errorKeys.every((k) => k.startsWith('errors/processing-failed/')), `failures go under the error prefix by type (${errorKeys[0]})`)
  const failed = lines(out, (p) => p.startsWith('errors/')).map((l) => JSON.parse(l) as { errorCode: string; rawData: string; sequenceNumber: string })
  t.same(failed.map((f) => (JSON.parse(Buffer.from(f.rawData, 'base64').toString()) as { i: number }).i % 10), Array(10).fill(1), 'the ProcessingFailed ones, with their original data')
  t.ok(failed.every((f) => f.errorCode === 'Lambda.ProcessingFailed' && /^\d+$/.test(f.sequenceNumber)))
  await until('the throwing transform\'s records are in its error location', () => lines(failedOut).length >= 100)
  const thrown = lines(failedOut).map((l) => JSON.parse(l) as { errorCode: string; errorMessage: string; attemptsMade: number })
  t.equal(thrown.length, 100, 'every record of the batch, none delivered')
  t.ok(thrown.every((f) => f.errorCode === 'Lambda.FunctionError' && f.errorMessage.includes('the transform broke') && f.attemptsMade === 3), 'with the error, after three attempts')
  t.same(relay.delivery.describe('breaks')!.stats.recordsFailed, { 'processing-failed': 100 })
})

t.test('jq partitions the prefix by record fields; records without the field go to the error prefix', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'fleet', ShardCount: 1 })
  await put(kinesis, 'fleet', Array.from({ length: 300 }, (_, i) => ({ key: 'k', data: i % 100 === 99 ? 'not json' : JSON.stringify({ i, site: `s${i % 3}` }) })))
  const out = tempDir(t)
  await relay.delivery.create(deliveryConfig(relay, {
    name: 'by-site', source: { type: 'stream', stream: 'fleet' }, buffering: { intervalMs: 0 },
    processing: { newlineDelimiter: true, partitioning: { keys: { site: '.site' } } }, sink: { type: 'files', directory: out },
    prefix: 'site=!{partitionKeyFromQuery:site}/!{timestamp:yyyy}/',
  }))
  await until('all are written', () => lines(out).length >= 300)
  const year = new Date().getUTCFullYear()
  for (const site of ['s0', 's1', 's2']) {
    const got = lines(out, (p) => p.startsWith(`site=${site}/${year}/`)).map((l) => JSON.parse(l) as { site: string })
    t.ok(got.length >= 98 && got.every((r) => r.site === site), `site=${site}/ holds ${got.length} records, all of that site`)
  }
  const failed = lines(out, (p) => p.startsWith('dynamic-partitioning-failed/'))
  t.equal(failed.length, 3, 'the three records that are not JSON are in the error location')
})

t.test('direct put stores records durably in the backing stream and delivers them; a restart resumes where delivery stood', async (t) => {
  const dataDir = tempDir(t)
  const out = tempDir(t)
  let relay = await testRelay(t, { dataDir })
  await relay.delivery.create(deliveryConfig(relay, { name: 'direct', source: { type: 'direct' }, buffering: { intervalMs: 0 }, processing: { newlineDelimiter: true }, sink: { type: 'files', directory: out } }))
  const ids = await relay.delivery.put('direct', Array.from({ length: 50 }, (_, i) => Buffer.from(`r${i}`)))
  t.equal(new Set(ids.map((r) => r.recordId)).size, 50, 'each record gets an id (its sequence number)')
  await until('the first 50 are delivered', () => lines(out).length >= 50)
  t.ok(relay.streams.get('firehose.direct'), 'the backing stream is a data stream, readable with the Kinesis API')
  await relay.close()
  relay = await testRelay(t, { dataDir })
  t.equal(relay.delivery.describe('direct')?.status, 'ACTIVE', 'the delivery stream is back after the restart')
  await relay.delivery.put('direct', Array.from({ length: 50 }, (_, i) => Buffer.from(`r${50 + i}`)))
  await until('the next 50 are delivered', () => lines(out).length >= 100)
  await sleep(300)
  t.same(lines(out).sort(), Array.from({ length: 100 }, (_, i) => `r${i}`).sort(), 'each once: the restart did not deliver the first 50 again')
  await relay.delivery.delete('direct')
  t.equal(relay.delivery.describe('direct'), undefined)
  t.notOk(relay.streams.get('firehose.direct'), 'deleting it deletes its backing stream')
  await t.rejects(relay.delivery.put('direct', [Buffer.from('x')]), { code: 'NOT_FOUND' })
})

t.test('LATEST starts at the end of the stream as it was at creation, also after a restart', async (t) => {
  const dataDir = tempDir(t)
  const out = tempDir(t)
  let relay = await testRelay(t, { dataDir })
  let kinesis = new KinesisClient({ endpoint: relay.endpoint })
  await kinesis.call('CreateStream', { StreamName: 'late', ShardCount: 1 })
  await put(kinesis, 'late', [{ key: 'k', data: 'old' }])
  await relay.delivery.create(deliveryConfig(relay, { name: 'latest', source: { type: 'stream', stream: 'late', startingPosition: 'LATEST' }, buffering: { intervalMs: 0 }, processing: { newlineDelimiter: true }, sink: { type: 'files', directory: out } }))
  kinesis.close()
  await relay.close()
  relay = await testRelay(t, { dataDir })
  kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await put(kinesis, 'late', [{ key: 'k', data: 'new' }])
  await until('the new record is delivered', () => lines(out).length >= 1)
  await sleep(300)
  t.same(lines(out), ['new'], 'the record before creation is not delivered')
})

t.test('bad delivery stream configs are refused with the field at fault', async (t) => {
  const relay = await testRelay(t)
  const bad = (input: Record<string, unknown>) => () => relay.delivery.create(normalizeDeliveryConfig(input))
  t.throws(() => normalizeDeliveryConfig({ name: 'x y', sink: { type: 'files', directory: '/tmp/x' } }), { field: 'name' })
  t.throws(() => normalizeDeliveryConfig({ name: 'x', buffering: { sizeBytes: 1 }, sink: { type: 'files', directory: '/tmp/x' } }), { field: 'buffering.sizeBytes' })
  t.throws(() => normalizeDeliveryConfig({ name: 'x', sink: { type: 'files', directory: 'relative' } }), { field: 'sink.directory' })
  t.throws(() => normalizeDeliveryConfig({ name: 'x', sink: { type: 'postgres', connectionString: 'postgres://', table: 'a;drop table b' } }), { field: 'sink.table' })
  t.throws(() => normalizeDeliveryConfig({ name: 'x', processing: { transform: { name: 'nope' } }, sink: { type: 'files', directory: '/tmp/x' } }), { field: 'processing.transform.name' })
  t.throws(() => normalizeDeliveryConfig({ name: 'x', processing: { partitioning: { keys: { a: '.a' } } }, sink: { type: 'files', directory: '/tmp/x' } }), { field: 'prefix' })
  await t.rejects(bad({ name: 'nosource', source: { type: 'stream', stream: 'missing' }, sink: { type: 'files', directory: '/tmp/x' } })(), { code: 'STREAM_NOT_FOUND' })
  await t.rejects(bad({ name: 'badprefix', sink: { type: 'files', directory: '/tmp/x' }, prefix: '!{nonsense}' })())
  t.same(relay.delivery.list(), [], 'nothing is left behind by a refused create')
})

t.test('a declared delivery stream whose source changes in the file is made anew, and no data stream of the user is ever deleted with it', async (t) => {
  const dataDir = tempDir(t)
  const dir = tempDir(t)
  const out = tempDir(t)
  const deliveryFile = join(dir, 'delivery.json')
  const declare = (streams: unknown[]) => writeFileSync(deliveryFile, JSON.stringify({ deliveryStreams: streams }))
  const sink = { type: 'files', directory: out }
  let relay = await testRelay(t, { dataDir })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  await kinesis.call('CreateStream', { StreamName: 'readings', ShardCount: 1 })
  kinesis.close()
  await relay.close()
  declare([{ name: 'dx', source: { type: 'stream', stream: 'readings' }, sink }])
  relay = await testRelay(t, { dataDir, deliveryFile })
  t.equal(relay.delivery.describe('dx')?.config.source.type, 'stream')
  await relay.close()
  declare([{ name: 'dx', source: { type: 'direct' }, sink }])
  relay = await testRelay(t, { dataDir, deliveryFile })
  t.equal(relay.delivery.describe('dx')?.config.source.type, 'direct', 'the new source is used')
  const [put] = await relay.delivery.put('dx', [Buffer.from('x')])
  t.ok(relay.streams.get('firehose.dx'), 'records put go to its own backing stream')
  t.not(put!.recordId, undefined)
  await relay.close()
  declare([])
  relay = await testRelay(t, { dataDir, deliveryFile })
  t.equal(relay.delivery.describe('dx'), undefined, 'removed from the file, it is deleted')
  t.ok(relay.streams.get('readings'), 'the data stream it once read is still there')
  t.notOk(relay.streams.get('firehose.dx'), 'its own backing stream is gone')
})

t.test('a create that fails part way leaves nothing behind, and a delete during a create waits for it', async (t) => {
  const relay = await testRelay(t)
  const out = tempDir(t)
  await t.rejects(relay.delivery.create(normalizeDeliveryConfig({ name: 'badjq', source: { type: 'direct' }, processing: { partitioning: { keys: { k: '.a |||| nonsense' } } }, sink: { type: 'files', directory: out }, prefix: 'k=!{partitionKeyFromQuery:k}/' })))
  t.equal(relay.delivery.describe('badjq'), undefined, 'no delivery stream')
  t.notOk(relay.streams.get('firehose.badjq'), 'no backing stream')
  const config = normalizeDeliveryConfig({ name: 'racy', source: { type: 'direct' }, sink: { type: 'files', directory: out } })
  const [created, deleted] = await Promise.allSettled([relay.delivery.create(config), relay.delivery.delete('racy')])
  t.equal(created.status, 'fulfilled')
  t.equal(deleted.status, 'fulfilled', 'the delete ran after the create')
  t.equal(relay.delivery.describe('racy'), undefined)
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.notMatch(metrics, /delivery_stream="racy"/, 'and no runner of it is left')
  await relay.delivery.create(config)
  t.equal(relay.delivery.describe('racy')?.status, 'ACTIVE', 'the name can be used again')
  t.throws(() => normalizeDeliveryConfig({ name: 'x', sink: { type: 'files', directory: out }, prefix: '/abs/' }), { field: 'prefix' })
  await t.rejects(relay.delivery.create(normalizeDeliveryConfig({ name: 'errkeys', sink: { type: 'files', directory: out }, errorPrefix: 'e/!{partitionKeyFromQuery:k}/' })), { field: 'errorPrefix' })
  t.throws(() => relay.delivery.bucket('../../etc'), { field: 'bucket' }, 'a bucket name cannot leave the buckets directory')
  t.equal((relay.delivery.bucket('landing') as { directory: string }).directory, join(relay.config.dataDir, 'delivery', 'buckets', 'landing'))
})

t.test('a jq query that runs away on a record fails that batch after its deadline, and the shard moves on', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'jqs', ShardCount: 1 })
  const out = tempDir(t)
  await relay.delivery.create(deliveryConfig(relay, {
    name: 'runaway', source: { type: 'stream', stream: 'jqs' }, buffering: { intervalMs: 0 },
    processing: { newlineDelimiter: true, partitioning: { keys: { site: 'if .hang then last(range(1e12)) else .site end' } } },
    sink: { type: 'files', directory: out }, prefix: 'site=!{partitionKeyFromQuery:site}/',
  }))
  const tick = () => clock.advance(200)
  await put(kinesis, 'jqs', [{ key: 'k', data: JSON.stringify({ site: 'a', i: 1 }) }])
  await until('the first record is delivered', () => lines(out, (p) => p.startsWith('site=a/')).length === 1, 20_000, tick)
  await put(kinesis, 'jqs', [{ key: 'k', data: JSON.stringify({ hang: true }) }])
  await until('the runaway record is in the error location', () => lines(out, (p) => p.startsWith('dynamic-partitioning-failed/')).length === 1, 30_000, tick)
  await put(kinesis, 'jqs', [{ key: 'k', data: JSON.stringify({ site: 'b', i: 3 }) }])
  await until('the next record is delivered', () => lines(out, (p) => p.startsWith('site=b/')).length === 1, 20_000, tick)
  const failed = JSON.parse(lines(out, (p) => p.startsWith('dynamic-partitioning-failed/'))[0]!) as { errorCode: string; errorMessage: string }
  t.equal(failed.errorCode, 'DynamicPartitioning.MetadataExtractionFailed')
  t.pass('the shard was not stalled by the record')
})

t.test('a delivery file that cannot work stops the relay at start, naming the field', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'delivery.json')
  writeFileSync(file, JSON.stringify({ deliveryStreams: [{ name: 'x', buffering: { sizeBytes: 10 }, sink: { type: 'files', directory: dir } }] }))
  await t.rejects(testRelay(t, { deliveryFile: file }), { name: 'DeliveryConfigError', field: 'deliveryStreams[0].buffering.sizeBytes' })
  writeFileSync(file, '{ not json')
  await t.rejects(testRelay(t, { deliveryFile: file }), { name: 'DeliveryConfigError', field: 'deliveryFile' })
})
