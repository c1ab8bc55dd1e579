/**
 * kill -9 of the relay in the middle of delivery, then a restart: no record is missing from any sink.
 * The files and PostgreSQL sinks hold each record once (a rebuilt batch overwrites the same object,
 * its rows conflict on (stream, shard, sequence number)); the HTTP endpoint, which cannot be
 * idempotent, sees a record again only in a request it was already sent, with the same request id.
 */
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { freePort, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { filesUnder } from '../helpers/files.js'
import { tempDir } from '../helpers/tmp.js'

const TOTAL = 20_000
const POSTGRES = process.env.TRIBUTARY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function fileLines(dir: string): string[] {
  return [...filesUnder(dir).values()].flatMap((b) => b.toString().split('\n').filter(Boolean))
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString()
}

t.test('kill -9 of the relay mid-delivery: every record reaches files, PostgreSQL and an HTTP endpoint; duplicates only at the endpoint, only from a request resent', async (t) => {
  const dir = tempDir(t)
  const out = join(dir, 'out')
  const table = `delivery_crash_${process.pid}_${Date.now()}`
  const db = new pg.Client({ connectionString: POSTGRES })
  await db.connect()
  t.teardown(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`)
    await db.end()
  })

  // The HTTP endpoint: slow enough that the kill lands while requests are in flight; it answers Firehose's contract.
  const requests: { id: string; records: string[] }[] = []
  // Before the kill, the endpoint answers three requests and holds the rest: the kill lands with requests in flight.
  let held = true
  const server = createServer(async (req, res) => {
    const id = String(req.headers['x-amz-firehose-request-id'])
    const parsed = JSON.parse(await body(req)) as { requestId: string; records: { data: string }[] }
    // A held request was received (an endpoint may have acted on it) but never answered.
    if (held && requests.length >= 3) return void requests.push({ id, records: parsed.records.map((r) => Buffer.from(r.data, 'base64').toString()) })
    requests.push({ id, records: parsed.records.map((r) => Buffer.from(r.data, 'base64').toString()) })
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: parsed.requestId, timestamp: Date.now() }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const endpointPort = (server.address() as { port: number }).port

  const deliveryFile = join(dir, 'delivery.json')
  const common = { source: { type: 'stream', stream: 'readings', startingPosition: 'TRIM_HORIZON' }, buffering: { sizeBytes: 1024 * 1024, intervalMs: 0 } }
  writeFileSync(deliveryFile, JSON.stringify({
    deliveryStreams: [
      { name: 'to-files', ...common, processing: { newlineDelimiter: true }, sink: { type: 'files', directory: out } },
      { name: 'to-postgres', ...common, sink: { type: 'postgres', connectionString: POSTGRES, table, mode: 'copy' } },
      { name: 'to-http', ...common, sink: { type: 'http', url: `http://127.0.0.1:${endpointPort}/ingest`, accessKey: 'k' } },
    ],
  }))
  const [mqttPort, httpPort] = [await freePort(), await freePort()]
  const args = ['--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--allow-anonymous', '--delivery-file', deliveryFile]
  // The stream and its records first (20,000 of 1 KB: 20 batches of 1 MiB per sink), then the relay with its delivery streams.
  let relay: ChildRelay = await spawnRelay(args.filter((a, i) => a !== '--delivery-file' && args[i - 1] !== '--delivery-file'))
  t.teardown(() => { relay.process.kill('SIGKILL') })
  let kinesis = new KinesisClient({ endpoint: relay.endpoint })
  await kinesis.call('CreateStream', { StreamName: 'readings', ShardCount: 2 })
  const pad = 'x'.repeat(1000)
  for (let i = 0; i < TOTAL; i += 500) {
    const records = Array.from({ length: 500 }, (_, j) => ({ PartitionKey: `k${(i + j) % 31}`, Data: Buffer.from(JSON.stringify({ i: i + j, pad })).toString('base64') }))
    await kinesis.call('PutRecords', { StreamName: 'readings', Records: records })
  }
  relay.process.kill('SIGTERM')
  await relay.exited
  relay = await spawnRelay(args)
  // Kill once delivery is under way in every sink.
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const rows = Number((await db.query(`SELECT count(*) AS n FROM ${table}`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n)
    if (fileLines(out).length > 0 && rows > 0 && requests.length >= 4) break
    await sleep(10)
  }
  relay.process.kill('SIGKILL')
  await relay.exited
  const delivered = { files: fileLines(out).length, http: requests.reduce((n, r) => n + r.records.length, 0) }
  t.ok(delivered.files < TOTAL || delivered.http < TOTAL, `the kill landed mid-delivery (files ${delivered.files}, http ${delivered.http} of ${TOTAL})`)
  const requestsBefore = new Set(requests.map((r) => r.id))

  held = false
  relay = await spawnRelay(args)
  kinesis.close()
  kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const end = Date.now() + 120_000
  const count = async () => Number((await db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
  while (Date.now() < end) {
    const http = new Set(requests.flatMap((r) => r.records)).size
    if (fileLines(out).length >= TOTAL && (await count()) >= TOTAL && http >= TOTAL) break
    await sleep(100)
  }

  const expected = Array.from({ length: TOTAL }, (_, i) => i)
  const files = fileLines(out).map((l) => (JSON.parse(l) as { i: number }).i).sort((a, b) => a - b)
  t.same(files, expected, 'files: every record exactly once')
  const rows = (await db.query(`SELECT convert_from(data, 'UTF8') AS d FROM ${table}`)).rows.map((r: { d: string }) => (JSON.parse(r.d) as { i: number }).i).sort((a: number, b: number) => a - b)
  t.same(rows, expected, 'PostgreSQL: every record exactly once')
  const seen = new Map<string, number>()
  for (const r of requests) for (const rec of r.records) seen.set(rec, (seen.get(rec) ?? 0) + 1)
  t.equal(seen.size, TOTAL, 'HTTP endpoint: every record arrived')
  // A record seen twice came in a request sent again with the same id: the batch in flight at the kill.
  const ids = new Map<string, number>()
  for (const r of requests) ids.set(r.id, (ids.get(r.id) ?? 0) + 1)
  const resent = [...ids].filter(([, n]) => n > 1).map(([id]) => id)
  const doubled = [...seen].filter(([, n]) => n > 1).map(([rec]) => rec)
  const inResent = new Set(requests.filter((r) => resent.includes(r.id)).flatMap((r) => r.records))
  t.ok(doubled.length > 0, 'the requests held at the kill were sent again')
  t.ok(doubled.every((rec) => inResent.has(rec)), `the ${doubled.length} records seen twice were all in requests resent under the same request id`)
  t.ok(resent.every((id) => requestsBefore.has(id)), 'and those requests were first sent before the kill')
})
