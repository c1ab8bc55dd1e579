/**
 * Records/s of 100 B JSON records through the record sinks: PostgreSQL in insert mode (a few
 * rows-per-statement settings) and in copy mode, a local HTTP endpoint (plain and gzip) and a
 * Splunk HEC stand-in. Batches of one shard, loaded one after another as a delivery stream does;
 * each configuration loads fresh rows into a fresh table. The endpoints run in a child process so
 * that their parsing does not share the sink's thread. CSV on stdout, progress on stderr.
 * Each PostgreSQL configuration runs `rounds` times, interleaved, since a shared server's rate drifts.
 * Usage: npx tsx bench/delivery-sinks.ts [records=200000] [batch=10000] [rounds=2]
 * PostgreSQL: TRIBUTARY_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import pg from 'pg'
import { HttpEndpointSink, PostgresSink, SplunkSink } from '../relay/delivery/sinks/index.js'
import type { OutputRecord, RecordBatch, RecordSink } from '../relay/delivery/types.js'

const N = Number(process.argv[2] ?? 200_000)
const BATCH = Number(process.argv[3] ?? 10_000)
const ROUNDS = Number(process.argv[4] ?? 2)
const CONNECTION = process.env.TRIBUTARY_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const never = new AbortController().signal

/** A 100-byte JSON record (padded to exactly 100 bytes). */
function data(i: number): Buffer {
  const head = `{"id":${i},"device":"sensor-${i % 512}","temp":${(20 + (i % 100) / 10).toFixed(1)},"pad":"`
  return Buffer.from(head + 'x'.repeat(100 - head.length - 2) + '"}')
}

const SEQ_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000n
const batches: RecordBatch[] = []
for (let from = 0; from < N; from += BATCH) {
  const records: OutputRecord[] = []
  for (let i = from; i < Math.min(N, from + BATCH); i++) {
    records.push({ shardId: 'shardId-000000000000', sequenceNumber: (SEQ_BASE + BigInt(i) * 4096n).toString(), partitionKey: `k${i % 64}`, arrivalMs: Date.now(), data: data(i), partitionKeys: {} })
  }
  batches.push({ deliveryStream: 'bench', shardId: 'shardId-000000000000', firstSequence: records[0]!.sequenceNumber, lastSequence: records.at(-1)!.sequenceNumber, records, sourceArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/bench' })
}

async function run(sink: RecordSink): Promise<number> {
  await sink.deliver(batches[0]!, never) // warm-up: connections, table creation, prepared statements
  const started = performance.now()
  for (const b of batches) await sink.deliver(b, never)
  return N / ((performance.now() - started) / 1000)
}

// The endpoints: answer HTTP endpoint requests with their request id, and HEC requests with success.
const ENDPOINT = `
import http from 'node:http'
import { gunzipSync } from 'node:zlib'
const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    let body = Buffer.concat(chunks)
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
    if (req.url.startsWith('/services/collector')) return res.end('{"text":"Success","code":0}')
    const parsed = JSON.parse(body.toString('utf8'))
    res.end(JSON.stringify({ requestId: parsed.requestId, timestamp: Date.now() }))
  })
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
`

const rows: string[] = ['sink,mode,records,batch_records,records_per_s']
const report = (sink: string, mode: string, rate: number) => {
  rows.push(`${sink},${mode},${N},${BATCH},${Math.round(rate)}`)
  process.stderr.write(`  ${sink} ${mode}: ${Math.round(rate).toLocaleString('en')} records/s\n`)
}

const db = new pg.Client({ connectionString: CONNECTION })
await db.connect()
const configs: Array<{ mode: 'insert' | 'copy'; insertRows?: number; label: string }> = [
  { mode: 'insert', insertRows: 500, label: 'insert-500-rows' },
  { mode: 'insert', insertRows: 2_000, label: 'insert-2000-rows (default)' },
  { mode: 'insert', insertRows: 8_000, label: 'insert-8000-rows' },
  { mode: 'copy', label: 'copy-binary' },
]
for (let round = 0; round < ROUNDS; round++) for (const c of configs) {
  const table = `bench_delivery_${process.pid}_${c.label.replace(/\W+/g, '_')}`
  process.stderr.write(`postgres ${c.label}, ${N} records…\n`)
  const sink = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table, mode: c.mode }, { insertRows: c.insertRows })
  try {
    report('postgres', c.label, await run(sink))
  } finally {
    await sink.close()
    await db.query(`DROP TABLE IF EXISTS ${table}`)
  }
}
await db.end()

const child = spawn(process.execPath, ['--input-type=module', '-e', ENDPOINT], { stdio: ['ignore', 'pipe', 'inherit'] })
const [line] = await once(child.stdout!, 'data') as [Buffer]
const base = `http://127.0.0.1:${line.toString().trim()}`
try {
  for (const encoding of ['NONE', 'GZIP'] as const) {
    process.stderr.write(`http endpoint ${encoding}, ${N} records…\n`)
    const sink = new HttpEndpointSink({ type: 'http', url: `${base}/firehose`, contentEncoding: encoding, commonAttributes: {}, timeoutMs: 30_000 })
    report('http-endpoint', encoding === 'GZIP' ? 'gzip' : 'plain', await run(sink))
    await sink.close()
  }
  for (const endpointType of ['Event', 'Raw'] as const) {
    process.stderr.write(`splunk ${endpointType}, ${N} records…\n`)
    const sink = new SplunkSink({ type: 'splunk', url: base, token: 't', endpointType, sourcetype: '_json', timeoutMs: 30_000 }, { deliveryStream: 'bench' })
    report('splunk-hec', endpointType.toLowerCase(), await run(sink))
    await sink.close()
  }
} finally {
  child.kill()
}
console.log(rows.join('\n'))
