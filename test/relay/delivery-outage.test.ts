/**
 * A sink that is down for longer than the retry duration: the batches that failed land in the error
 * location with their error, and delivery resumes on its own when the sink returns. Each sink is a
 * real server: an HTTP endpoint answering 500, PostgreSQL behind a proxy that refuses connections,
 * Swift (S3) with its proxy stopped. The relay runs on a manual clock, so the retry duration passes
 * when the test says so, however loaded the machine.
 */
import t, { type Test } from 'tap'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, connect, type Server, type Socket } from 'node:net'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { ListObjectsV2Command, GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { normalizeDeliveryConfig } from '../../relay/delivery/index.js'
import type { Relay } from '../../relay/relay.js'
import { manualClock, testRelay, type TestClock } from '../helpers/relay.js'
import { filesUnder } from '../helpers/files.js'
import { startSwift, swiftMissing } from '../helpers/swift.js'

const POSTGRES = process.env.TRIBUTARY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface ErrorLine { errorCode: string; errorMessage: string; rawData: string; attemptsMade: number }

function errorLines(dir: string): ErrorLine[] {
  return [...filesUnder(dir).values()].flatMap((b) => b.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ErrorLine))
}

/** Waits for `check`, moving the relay's clock on by `stepMs` each round (the retries' backoff runs on it). */
async function until(what: string, check: () => boolean | Promise<boolean>, clock: TestClock, stepMs = 500, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    clock.advance(stepMs)
    await sleep(25)
  }
}

async function setup(t: Test, clock: TestClock): Promise<{ relay: Relay; kinesis: KinesisClient; put: (from: number, n: number) => Promise<void> }> {
  const relay = await testRelay(t, {}, { clock })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'src', ShardCount: 1 })
  const put = async (from: number, n: number) => {
    await kinesis.call('PutRecords', { StreamName: 'src', Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: 'k', Data: Buffer.from(JSON.stringify({ i: from + i })).toString('base64') })) })
  }
  return { relay, kinesis, put }
}

const decoded = (lines: ErrorLine[]) => lines.map((l) => (JSON.parse(Buffer.from(l.rawData, 'base64').toString()) as { i: number }).i).sort((a, b) => a - b)
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)

t.test('an HTTP endpoint answering 500 past the retry duration: the batch goes to the error location, and delivery resumes when it answers again', async (t) => {
  const clock = manualClock()
  let failing = true
  const received: number[] = []
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { requestId: string; records: { data: string }[] }
      if (failing) return res.writeHead(500).end('the endpoint is down')
      for (const r of body.records) received.push((JSON.parse(Buffer.from(r.data, 'base64').toString()) as { i: number }).i)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: body.requestId, timestamp: Date.now() }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { relay, put } = await setup(t, clock)
  await relay.delivery.create(normalizeDeliveryConfig({
    name: 'to-http', source: { type: 'stream', stream: 'src' }, buffering: { intervalMs: 0 }, retryDurationMs: 30_000,
    sink: { type: 'http', url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, timeoutMs: 5000 },
  }))
  await put(0, 100)
  const errors = join(relay.config.dataDir, 'delivery', 'errors', 'to-http')
  await until('the failed batch is in the error location', () => errorLines(errors).length >= 100, clock)
  const lines = errorLines(errors)
  t.same(decoded(lines), range(0, 100), 'every record of the failed batch, with its original data')
  t.ok(lines.every((l) => l.errorCode.startsWith('HttpEndpoint.') && l.attemptsMade > 1 && l.errorMessage.includes('500')), `with the error (${lines[0]!.errorCode}: ${lines[0]!.errorMessage}) after ${lines[0]!.attemptsMade} attempts`)
  t.ok(readdirSync(errors).includes('http-endpoint-failed'), 'under the error output type')
  failing = false
  await put(100, 50)
  await until('the next records reach the endpoint', () => received.length >= 50, clock)
  t.same(received.sort((a, b) => a - b), range(100, 50), 'delivery resumed on its own')
  const stats = relay.delivery.describe('to-http')!.stats
  t.same(stats.recordsFailed, { 'http-endpoint-failed': 100 })
  t.ok(Object.keys(stats.failuresByCode).some((c) => c.startsWith('HttpEndpoint.')), 'failures are counted by code')
})

/** A TCP proxy to PostgreSQL that can refuse: while closed, nothing listens on its port. */
async function pgProxy(t: Test): Promise<{ port: number; open(): Promise<void>; close(): Promise<void> }> {
  let server: Server | null = null
  const sockets = new Set<Socket>()
  let port = 0
  const open = async () => {
    server = createTcpServer((client) => {
      const upstream = connect(5432, '127.0.0.1')
      sockets.add(client).add(upstream)
      client.pipe(upstream).pipe(client)
      const end = () => { client.destroy(); upstream.destroy() }
      client.on('error', end).on('close', end)
      upstream.on('error', end).on('close', end)
    })
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r))
    port = (server.address() as { port: number }).port
  }
  const close = async () => {
    for (const s of sockets) s.destroy()
    sockets.clear()
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
    server = null
  }
  await open()
  t.teardown(close)
  return { get port() { return port }, open, close }
}

t.test('PostgreSQL refusing connections past the retry duration: the batch goes to the error location, and delivery resumes when it takes them', async (t) => {
  const clock = manualClock()
  const proxy = await pgProxy(t)
  const table = `delivery_outage_${process.pid}_${Date.now()}`
  const db = new pg.Client({ connectionString: POSTGRES })
  await db.connect()
  t.teardown(async () => { await db.query(`DROP TABLE IF EXISTS ${table}`); await db.end() })
  const { relay, put } = await setup(t, clock)
  await relay.delivery.create(normalizeDeliveryConfig({
    name: 'to-pg', source: { type: 'stream', stream: 'src' }, buffering: { intervalMs: 0 }, retryDurationMs: 30_000,
    sink: { type: 'postgres', connectionString: POSTGRES.replace(':5432', `:${proxy.port}`), table, mode: 'insert' },
  }))
  await put(0, 10)
  await until('the first batch is loaded', async () => Number((await db.query(`SELECT count(*) AS n FROM ${table}`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n) >= 10, clock)
  await proxy.close()
  await put(10, 100)
  const errors = join(relay.config.dataDir, 'delivery', 'errors', 'to-pg')
  await until('the failed batch is in the error location', () => errorLines(errors).length >= 100, clock)
  t.same(decoded(errorLines(errors)), range(10, 100), 'the records of the batch that could not be loaded')
  t.ok(errorLines(errors).every((l) => l.errorCode === 'Postgres.ConnectionFailed'), 'with the error')
  await proxy.open()
  await put(110, 20)
  await until('the next records are loaded', async () => Number((await db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n) >= 30, clock)
  const rows = (await db.query(`SELECT convert_from(data, 'UTF8') AS d FROM ${table}`)).rows.map((r: { d: string }) => (JSON.parse(r.d) as { i: number }).i).sort((a: number, b: number) => a - b)
  t.same(rows, [...range(0, 10), ...range(110, 20)], 'delivery resumed on its own')
})

t.test('Swift (S3) stopped past the retry duration: the batch goes to the error location, and delivery resumes when it is back', { skip: swiftMissing() ?? false }, async (t) => {
  const clock = manualClock()
  const swift = await startSwift(t)
  await swift.createBucket('outage')
  const { relay, put } = await setup(t, clock)
  await relay.delivery.create(normalizeDeliveryConfig({
    name: 'to-s3', source: { type: 'stream', stream: 'src' }, buffering: { intervalMs: 0 }, retryDurationMs: 30_000,
    processing: { newlineDelimiter: true },
    sink: { type: 's3', bucket: 'outage', endpoint: swift.endpoint, region: swift.region, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } },
  }))
  const s3 = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } })
  t.teardown(() => s3.destroy())
  const stored = async (): Promise<number[]> => {
    const out: number[] = []
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'outage' }))
    for (const o of list.Contents ?? []) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: 'outage', Key: o.Key! }))).Body!.transformToString()
      out.push(...body.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i))
    }
    return out.sort((a, b) => a - b)
  }
  await put(0, 10)
  await until('the first object is in the bucket', async () => (await stored()).length >= 10, clock)
  await swift.stop()
  await put(10, 100)
  const errors = join(relay.config.dataDir, 'delivery', 'errors', 'to-s3')
  await until('the failed batch is in the error location', () => errorLines(errors).length >= 100, clock)
  t.same(decoded(errorLines(errors)), range(10, 100), 'the records of the batch that could not be written, on the relay\'s disk')
  t.ok(errorLines(errors).every((l) => l.errorCode.startsWith('S3.')), `with the error (${errorLines(errors)[0]!.errorCode})`)
  await swift.start()
  await put(110, 20)
  await until('the next records are in the bucket', async () => (await stored().catch(() => [])).length >= 30, clock)
  t.same(await stored(), [...range(0, 10), ...range(110, 20)], 'delivery resumed on its own')
})
