/**
 * Delivery streams, side by side in one run. The relay runs in its own process (compiled when
 * `dist/` is built), the feeders and sinks' servers in this one or their own.
 *
 *   1. Delivery rate per sink: a stream of 2 shards is filled with N records of ~100 B JSON while no
 *      delivery stream runs; the relay restarts with delivery streams declared (files raw+gzip, files
 *      Parquet, PostgreSQL COPY, an HTTP endpoint in a child process, S3 on Swift when installed), each
 *      from TRIM_HORIZON, and each one's rate is the time until its
 *      tributary_delivery_records_delivered reaches N (read from /metrics every 100 ms). They run one
 *      after another (a relay per sink), so each has the machine to itself.
 *   2. Ingest cost of delivery: devices' MQTT batches (4 publishers in their own process, 500 JSON
 *      records of ~100 B each, QoS 1) for `seconds` into a relay with no delivery stream, then with one
 *      (files, gzip) and with three (files gzip, files Parquet, PostgreSQL) delivering the same stream
 *      live. Floor (issue 14): delivery costs ingest at most 25 %.
 *
 * Floors: files sink ≥ 200,000 records/s (gzip on); Parquet conversion ≥ 100,000 records/s
 * (bench/delivery-format.ts measures the conversion alone). CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/delivery.ts [records=400000] [seconds=10]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { Test } from 'tap'
import { KinesisClient } from '../relay/kinesis/client.js'
import { startSwift, swiftMissing } from '../test/helpers/swift.js'
import { publish } from './processes.js'

const root = join(fileURLToPath(import.meta.url), '..', '..')
const N = Number(process.argv[2] ?? 400_000)
const SECONDS = Number(process.argv[3] ?? 10)
const POSTGRES = process.env.TRIBUTARY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const progress = (s: string) => process.stderr.write(`${s}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// An HTTP endpoint speaking Firehose's protocol, in its own process: `delivery.ts endpoint`.
if (process.argv[2] === 'endpoint') {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const { requestId } = JSON.parse(Buffer.concat(chunks).toString()) as { requestId: string }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId, timestamp: Date.now() }))
    })
  })
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`))
} else {
  await main()
}

interface Relay { child: ChildProcess; endpoint: string; mqttPort: number }

async function startRelay(dataDir: string, deliveryFile?: string): Promise<Relay> {
  const entry = existsSync(join(root, 'dist/relay/cli/entry.js')) ? [join(root, 'dist/relay/cli/entry.js')] : ['--import', 'tsx', join(root, 'relay/cli/entry.ts')]
  const args = [...entry, 'relay', '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', ...(deliveryFile ? ['--delivery-file', deliveryFile] : [])]
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []
  const child = spawn(process.execPath, [...profile, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const ready = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('tributary relay ready'))
      if (line) resolve(line)
    })
    child.on('exit', (code) => reject(new Error(`relay exited with ${code}`)))
  })
  return { child, endpoint: `http://127.0.0.1:${/https?:\/\/[^:]+:(\d+)/.exec(ready)![1]}`, mqttPort: Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1]) }
}

async function stop(relay: Relay): Promise<void> {
  const exited = new Promise((r) => relay.child.once('exit', r))
  relay.child.kill('SIGTERM')
  await exited
}

function record(i: number): string {
  return JSON.stringify({ device: `d${i % 50}`, seq: i, value: Math.round(Math.sin(i) * 1e6) / 1e3, ts: 1_800_000_000_000 + i, site: 'north-ridge' })
}

/** PutRecords from 4 callers until `until()` says stop; how many were stored. */
async function feed(endpoint: string, from: number, until: (n: number) => boolean): Promise<number> {
  const clients = Array.from({ length: 4 }, () => new KinesisClient({ endpoint }))
  let next = from
  await Promise.all(clients.map(async (c) => {
    while (!until(next - from)) {
      const start = next
      next += 500
      const Records = Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `k${(start + i) % 64}`, Data: Buffer.from(record(start + i)).toString('base64') }))
      await c.call('PutRecords', { StreamName: 'bench', Records })
    }
  }))
  for (const c of clients) c.close()
  return next - from
}

async function delivered(endpoint: string, name: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text()
  return Number(new RegExp(`tributary_delivery_records_delivered\\{delivery_stream="${name}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-delivery-'))
  const children: ChildProcess[] = []
  const cleanups: (() => Promise<void>)[] = []
  const db = new pg.Client({ connectionString: POSTGRES })
  const pgUp = await db.connect().then(() => true, () => false)
  const table = `bench_delivery_${process.pid}`
  try {
    // The HTTP endpoint, in its own process.
    const endpointChild = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'endpoint'], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(endpointChild)
    const endpointPort = await new Promise<number>((resolve) => endpointChild.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))))

    // The records, once, into a data directory each run copies from by filling again (fills are not timed).
    const source = { type: 'stream', stream: 'bench', startingPosition: 'TRIM_HORIZON' }
    // Interval 0: a backlog drains in 5 MiB batches and the last one goes as soon as it is read, not after a wait.
    const buffering = { sizeBytes: 5 * 1024 * 1024, intervalMs: 0 }
    const parquet = { format: { type: 'parquet', compression: 'SNAPPY', columns: [{ name: 'device' }, { name: 'seq', type: 'int64' }, { name: 'value', type: 'double' }, { name: 'ts', type: 'timestamp-millis' }, { name: 'site' }] } }
    const sinks: { name: string; config: Record<string, unknown> }[] = [
      { name: 'files-gzip', config: { sink: { type: 'files', directory: join(dir, 'out-gzip') }, processing: { newlineDelimiter: true, compression: 'GZIP' } } },
      { name: 'files-parquet', config: { sink: { type: 'files', directory: join(dir, 'out-parquet') }, processing: parquet } },
      ...(pgUp ? [{ name: 'postgres-copy', config: { sink: { type: 'postgres', connectionString: POSTGRES, table, mode: 'copy' } } }] : []),
      { name: 'http-endpoint', config: { sink: { type: 'http', url: `http://127.0.0.1:${endpointPort}/` } } },
    ]
    if (!pgUp) progress('PostgreSQL is not reachable: its row is left out')
    // S3: a real Swift with s3api (test/helpers/swift.ts), when its Debian packages are installed.
    const teardowns: (() => unknown)[] = []
    cleanups.push(async () => { for (const f of teardowns.reverse()) await f() })
    if (!swiftMissing()) {
      progress('starting Swift (S3)')
      const swift = await startSwift({ teardown: (f: () => unknown) => teardowns.push(f) } as unknown as Test)
      await swift.createBucket('bench')
      sinks.push({ name: 's3-gzip', config: { sink: { type: 's3', bucket: 'bench', endpoint: swift.endpoint, region: swift.region, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } }, processing: { newlineDelimiter: true, compression: 'GZIP' } } })
    } else progress(`Swift is not installed (${swiftMissing()}): the S3 row is left out`)

    console.log('sink,records,seconds,records_per_s')
    for (const s of process.env.BENCH_SKIP_SINKS ? [] : sinks.filter((x) => !process.env.BENCH_SINK || x.name === process.env.BENCH_SINK)) {
      const dataDir = join(dir, `relay-${s.name}`)
      progress(`${s.name}: filling ${N} records`)
      let relay = await startRelay(dataDir)
      await new KinesisClient({ endpoint: relay.endpoint }).call('CreateStream', { StreamName: 'bench', ShardCount: 2 })
      await feed(relay.endpoint, 0, (n) => n >= N)
      await stop(relay)
      const file = join(dir, `${s.name}.json`)
      writeFileSync(file, JSON.stringify({ deliveryStreams: [{ name: s.name, source, buffering, ...s.config }] }))
      relay = await startRelay(dataDir, file)
      const started = performance.now()
      let last = 0
      for (;;) {
        const n = await delivered(relay.endpoint, s.name)
        if (n >= N) break
        if (n - last >= N / 4) { progress(`${s.name}: ${n} delivered`); last = n }
        await sleep(100)
      }
      const seconds = (performance.now() - started) / 1000
      console.log(`${s.name},${N},${seconds.toFixed(2)},${Math.round(N / seconds)}`)
      await stop(relay)
      rmSync(dataDir, { recursive: true, force: true })
    }

    // Ingest with and without delivery running.
    console.log('\nrun,records,seconds,ingest_records_per_s,ratio')
    let baseline = 0
    const live = [
      { name: 'live-gzip', source, buffering, sink: { type: 'files', directory: join(dir, 'live-gzip') }, processing: { newlineDelimiter: true, compression: 'GZIP' } },
      { name: 'live-parquet', source, buffering, sink: { type: 'files', directory: join(dir, 'live-parquet') }, processing: parquet },
      ...(pgUp ? [{ name: 'live-postgres', source, buffering, sink: { type: 'postgres', connectionString: POSTGRES, table: `${table}_live`, mode: 'copy' } }] : []),
    ]
    for (const count of [0, 1, live.length]) {
      const withDelivery = count > 0
      const dataDir = join(dir, `relay-ingest-${count}`)
      const file = join(dir, 'ingest.json')
      writeFileSync(file, JSON.stringify({ deliveryStreams: live.slice(0, count) }))
      const relay = await startRelay(dataDir, file)
      await new KinesisClient({ endpoint: relay.endpoint }).call('CreateStream', { StreamName: 'bench', ShardCount: 2 })
      await sleep(1500)
      progress(`ingest with ${count} delivery streams: ${SECONDS} s`)
      // Devices' path: MQTT publishers in their own process (bench/mqtt-publishers.ts), JSON records.
      const { records: n, seconds } = await publish(relay.mqttPort, 4, SECONDS, 'json')
      const rate = n / seconds
      if (!withDelivery) baseline = rate
      console.log(`${withDelivery ? `delivering to ${live.slice(0, count).map((l) => l.name.slice(5)).join(' + ')}` : 'no delivery'},${n},${seconds.toFixed(2)},${Math.round(rate)},${(rate / baseline).toFixed(2)}`)
      await stop(relay)
    }
  } finally {
    for (const c of children) c.kill()
    for (const c of cleanups) await c().catch(() => {})
    if (pgUp) {
      await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
      await db.query(`DROP TABLE IF EXISTS ${table}_live`).catch(() => {})
      await db.end()
    }
    rmSync(dir, { recursive: true, force: true })
  }
}
