/**
 * The main check for delivery streams: a data stream fed by a real agent for a few minutes,
 * with a delivery stream to each sink — files (gzip, partitioned by device with jq), S3 on a real
 * Swift (Parquet, partitioned by device), PostgreSQL (COPY), an HTTP endpoint (gzip) and a Splunk HEC
 * endpoint. Every record arrives in each sink once, under its device's prefix; the Parquet files read
 * back (hyparquet) give the same rows; the gzip objects decompress to the exact records.
 */
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { gunzipSync } from 'node:zlib'
import pg from 'pg'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { parquetReadObjects } from 'hyparquet'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { freePort, spawnRelay } from '../helpers/relay.js'
import { startSwift } from '../helpers/swift.js'
import { tempDir } from '../helpers/tmp.js'

const POSTGRES = process.env.TRIBUTARY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const FEED_MS = Number(process.env.TRIBUTARY_DELIVERY_FEED_MS ?? 150_000)
const DEVICES = ['d0', 'd1', 'd2', 'd3', 'd4']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Reading { device: string; seq: number; value: number; ts: number }

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const raw = Buffer.concat(chunks)
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
}

/** HEC's event body: JSON objects one after another, split where each closes. */
function concatenated(text: string): unknown[] {
  const out: unknown[] = []
  let depth = 0
  let start = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '{') { if (depth++ === 0) start = i }
    else if (c === '}' && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)))
  }
  return out
}

function walk(dir: string): string[] {
  const out: string[] = []
  const visit = (d: string) => {
    let names: string[] = []
    try {
      names = readdirSync(d)
    } catch { /* not there yet */ }
    for (const name of names) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) visit(p)
      else if (!name.startsWith('.')) out.push(relative(dir, p))
    }
  }
  visit(dir)
  return out.sort()
}

t.test('an agent feeds a stream for minutes; a delivery stream to each sink delivers every record once, partitioned, readable', async (t) => {
  const dir = tempDir(t)
  const swift = await startSwift(t)
  await swift.createBucket('archive')
  const table = `delivery_soak_${process.pid}_${Date.now()}`
  const db = new pg.Client({ connectionString: POSTGRES })
  await db.connect()
  t.teardown(async () => { await db.query(`DROP TABLE IF EXISTS ${table}`); await db.end() })

  // An HTTP endpoint (Firehose's protocol) and a Splunk HEC, both keeping what they are sent.
  const http: string[] = []
  const splunk: string[] = []
  const server = createServer(async (req, res) => {
    const text = (await body(req)).toString()
    if (req.url === '/services/collector/event') {
      if (req.headers.authorization !== 'Splunk hec-token') return res.writeHead(403).end('{"text":"Invalid token","code":4}')
      for (const event of concatenated(text)) splunk.push(JSON.stringify((event as { event: unknown }).event))
      return res.writeHead(200).end('{"text":"Success","code":0}')
    }
    const parsed = JSON.parse(text) as { requestId: string; records: { data: string }[] }
    for (const r of parsed.records) http.push(Buffer.from(r.data, 'base64').toString().trim())
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: parsed.requestId, timestamp: Date.now() }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`

  const out = join(dir, 'files')
  const source = { type: 'stream', stream: 'readings', startingPosition: 'TRIM_HORIZON' }
  const buffering = { sizeBytes: 1024 * 1024, intervalMs: 5000 }
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({
    buckets: { archive: { endpoint: swift.endpoint, region: swift.region, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } } },
    deliveryStreams: [
      {
        name: 'files', source, buffering, sink: { type: 'files', directory: out },
        processing: { newlineDelimiter: true, compression: 'GZIP', partitioning: { keys: { device: '.device' } } },
        prefix: 'device=!{partitionKeyFromQuery:device}/!{timestamp:yyyy/MM/dd}/',
      },
      {
        name: 'parquet', source, buffering, sink: { type: 's3', bucket: 'archive', endpoint: swift.endpoint, region: swift.region, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } },
        processing: {
          format: { type: 'parquet', compression: 'SNAPPY', columns: [{ name: 'device' }, { name: 'seq', type: 'int64' }, { name: 'value', type: 'double' }, { name: 'ts', type: 'timestamp-millis' }] },
          partitioning: { keys: { device: '.device' } },
        },
        prefix: 'readings/device=!{partitionKeyFromQuery:device}/',
      },
      { name: 'postgres', source, buffering, sink: { type: 'postgres', connectionString: POSTGRES, table, mode: 'copy' } },
      { name: 'endpoint', source, buffering, sink: { type: 'http', url: `${endpoint}/firehose`, contentEncoding: 'GZIP', accessKey: 'secret' } },
      { name: 'splunk', source, buffering, sink: { type: 'splunk', url: endpoint, token: 'hec-token', endpointType: 'Event' } },
    ],
  }))

  const mqttPort = await freePort()
  const relay = await spawnRelay(['--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0', '--allow-anonymous', '--auto-create-shards', '2', '--delivery-file', deliveryFile])
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const agent = await spawnAgent(writeAgentConfig(dir, {
    device: 'edge-1', relay: { url: `mqtt://127.0.0.1:${mqttPort}` }, outbox: { path: join(dir, 'agent', 'outbox.db') },
    status: { port: 0 }, streams: { readings: { priority: 1 } }, sources: [{ type: 'put-api', port: 0 }],
  }))
  t.teardown(() => { agent.process.kill('SIGKILL') })

  // The feed: ~400 readings a second from five devices, through the agent's local put API.
  const sent: Reading[] = []
  const started = Date.now()
  let lastProgress = started
  while (Date.now() - started < FEED_MS) {
    const batch = Array.from({ length: 100 }, (_, i): Reading => ({ device: DEVICES[(sent.length + i) % DEVICES.length]!, seq: sent.length + i, value: Math.round(Math.sin(sent.length + i) * 1e6) / 1e3, ts: Date.now() }))
    const res = await putRecords(agent.putApiPort!, 'readings', batch.map((r) => ({ key: r.device, data: JSON.stringify(r) })))
    if (res.status !== 200) throw new Error(`put API answered ${res.status}: ${await res.text()}`)
    sent.push(...batch)
    if (Date.now() - lastProgress > 30_000) {
      lastProgress = Date.now()
      t.comment(`fed ${sent.length} readings in ${Math.round((Date.now() - started) / 1000)} s`)
    }
    await sleep(250)
  }
  t.comment(`fed ${sent.length} readings`)
  const byId = new Map(sent.map((r) => [r.seq, r]))

  // Until every sink holds as many as were sent.
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const s3 = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } })
  t.teardown(() => s3.destroy())
  const s3Keys = async () => {
    const keys: string[] = []
    let token: string | undefined
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'archive', ContinuationToken: token }))
      keys.push(...(page.Contents ?? []).map((o) => o.Key!))
      token = page.NextContinuationToken
    } while (token)
    return keys
  }
  const status = async () => (await fetch(`${relay.endpoint}/metrics`)).text()
  const deadline = Date.now() + 180_000
  for (;;) {
    const metrics = await status()
    const delivered = DEVICES.length && ['files', 'parquet', 'postgres', 'endpoint', 'splunk'].map((name) => Number(new RegExp(`tributary_delivery_records_delivered\\{delivery_stream="${name}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0))
    if (delivered.every((n) => n >= sent.length)) break
    if (Date.now() > deadline) throw new Error(`not everything was delivered: ${delivered.join(', ')} of ${sent.length}`)
    await sleep(1000)
  }

  // Files: gzip objects under device=<device>/yyyy/MM/dd/, decompressing to the exact records.
  const fileRecords: Reading[] = []
  const misplaced: string[] = []
  for (const key of walk(out)) {
    const lines = gunzipSync(readFileSync(join(out, key))).toString().split('\n').filter(Boolean)
    for (const line of lines) {
      const r = JSON.parse(line) as Reading
      if (!key.startsWith(`device=${r.device}/`)) misplaced.push(`${r.seq} in ${key}`)
      if (line !== JSON.stringify(byId.get(r.seq))) misplaced.push(`${r.seq} differs: ${line}`)
      fileRecords.push(r)
    }
  }
  t.same(misplaced.slice(0, 5), [], 'files: each record under its device, byte for byte as sent')
  t.equal(fileRecords.length, sent.length, `files: ${fileRecords.length} records, as many as were sent`)
  t.equal(new Set(fileRecords.map((r) => r.seq)).size, sent.length, 'files: each once')

  // S3 (Swift): Parquet objects under readings/device=<device>/, read back by hyparquet.
  const rows: Reading[] = []
  const wrongPrefix: string[] = []
  for (const key of await s3Keys()) {
    const bytes = await (await s3.send(new GetObjectCommand({ Bucket: 'archive', Key: key }))).Body!.transformToByteArray()
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    for (const row of await parquetReadObjects({ file }) as { device: string; seq: bigint | number; value: number; ts: Date | number | bigint }[]) {
      const r: Reading = { device: row.device, seq: Number(row.seq), value: row.value, ts: row.ts instanceof Date ? row.ts.getTime() : Number(row.ts) }
      if (!key.startsWith(`readings/device=${r.device}/`) || !key.endsWith('.parquet')) wrongPrefix.push(key)
      rows.push(r)
    }
  }
  t.same(wrongPrefix.slice(0, 3), [], 'S3: Parquet objects under each device\'s prefix')
  t.equal(rows.length, sent.length, `S3: ${rows.length} Parquet rows`)
  const differing = rows.filter((r) => JSON.stringify(r) !== JSON.stringify(byId.get(r.seq)))
  t.same(differing.slice(0, 3), [], 'S3: the Parquet rows are the records, field by field')
  t.equal(new Set(rows.map((r) => r.seq)).size, sent.length, 'S3: each once')

  // PostgreSQL: a row per record, once.
  const pgRows = (await db.query(`SELECT data_json FROM ${table}`)).rows as { data_json: Reading }[]
  t.equal(pgRows.length, sent.length, `PostgreSQL: ${pgRows.length} rows`)
  t.equal(new Set(pgRows.map((r) => r.data_json.seq)).size, sent.length, 'PostgreSQL: each record once')

  // The HTTP endpoint and Splunk: every record (duplicates would mean a retry, which nothing caused here).
  t.equal(new Set(http).size, sent.length, `HTTP endpoint: every record (${http.length} received)`)
  t.equal(http.length, sent.length, 'HTTP endpoint: none twice')
  t.equal(new Set(splunk).size, sent.length, `Splunk: every record as an event (${splunk.length} received)`)

  const list = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(list, /tributary_delivery_backlog_records\{delivery_stream="parquet"\} 0/, 'no backlog left')
  agent.process.kill('SIGTERM')
  await agent.exited
  relay.process.kill('SIGTERM')
  await relay.exited
})
