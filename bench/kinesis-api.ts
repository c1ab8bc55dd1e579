/**
 * The Kinesis API through the unmodified AWS SDK (@aws-sdk/client-kinesis): PutRecords (500 records
 * of 100 bytes per call, 8 calls in flight) then GetRecords of everything, against the relay and
 * against kinesalite (the common local emulator, in-memory) in the same run, each server in its own
 * process. Both with the SDK's HTTP/1.1 handler (kinesalite speaks only HTTP/1.1); the relay also
 * with the SDK's default HTTP/2 handler. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/kinesis-api.ts [seconds=5]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import net from 'node:net'
import { KinesisClient, CreateStreamCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand, DescribeStreamCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'

const seconds = Number(process.argv[2] ?? 5)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const IN_FLIGHT = 8
const data = Buffer.alloc(100, 0x61)

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

async function measure(name: string, endpoint: string, h1: boolean): Promise<{ put: number; get: number }> {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, ...(h1 ? { requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: 32 } as never }) } : {}) })
  const StreamName = `bench-${Math.random().toString(36).slice(2, 8)}`
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 4 }))
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeStreamCommand({ StreamName }))
    if (d.StreamDescription?.StreamStatus === 'ACTIVE') break
    await new Promise((r) => setTimeout(r, 50))
  }
  process.stderr.write(`${name}: PutRecords for ${seconds} s…\n`)
  let put = 0
  const deadline = Date.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, w) => {
    let n = 0
    while (Date.now() < deadline) {
      await client.send(new PutRecordsCommand({ StreamName, Records: Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `k${w}-${n}-${i}`, Data: data })) }))
      put += 500
      n++
    }
  }))
  const putRate = put / ((performance.now() - started) / 1000)
  process.stderr.write(`${name}: GetRecords of ${put} records…\n`)
  const d = await client.send(new DescribeStreamCommand({ StreamName }))
  const getStarted = performance.now()
  let got = 0
  await Promise.all((d.StreamDescription?.Shards ?? []).map(async (shard) => {
    let it = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
    for (;;) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10000 }))
      got += page.Records?.length ?? 0
      if (!page.Records?.length || page.MillisBehindLatest === 0 && (page.Records?.length ?? 0) < 10000) break
      it = page.NextShardIterator
    }
  }))
  const getRate = got / ((performance.now() - getStarted) / 1000)
  client.destroy()
  return { put: putRate, get: getRate }
}

const children: ChildProcess[] = []
const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-api-'))
try {
  const relayPort = await freePort()
  // The relay as it is installed (compiled) when `npm run bench` has built it; else from the sources.
  const relayArgs = existsSync(join(root, 'dist/relay/cli/entry.js')) ? [join(root, 'dist/relay/cli/entry.js')] : ['--import', 'tsx', join(root, 'relay/cli/entry.ts')]
  children.push(spawn(process.execPath, [...relayArgs, 'relay', '--data-dir', dir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', String(relayPort)], { stdio: 'ignore' }))
  const kinesalitePort = await freePort()
  const kinesalitePath = createRequire(import.meta.url).resolve('kinesalite')
  children.push(spawn(process.execPath, ['-e', `require(${JSON.stringify(kinesalitePath)})({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 }).listen(${kinesalitePort}, '127.0.0.1')`], { stdio: 'ignore' }))
  await waitForPort(relayPort)
  await waitForPort(kinesalitePort)
  const relayH1 = await measure('relay HTTP/1.1', `http://127.0.0.1:${relayPort}`, true)
  const relayH2 = await measure('relay HTTP/2', `http://127.0.0.1:${relayPort}`, false)
  const kinesalite = await measure('kinesalite HTTP/1.1', `http://127.0.0.1:${kinesalitePort}`, true)
  console.log('server,handler,putrecords_records_per_s,getrecords_records_per_s,put_vs_kinesalite,get_vs_kinesalite')
  const row = (server: string, handler: string, r: { put: number; get: number }) =>
    console.log(`${server},${handler},${Math.round(r.put)},${Math.round(r.get)},${(r.put / kinesalite.put).toFixed(2)},${(r.get / kinesalite.get).toFixed(2)}`)
  row('tributary', 'http1.1', relayH1)
  row('tributary', 'http2', relayH2)
  row('kinesalite', 'http1.1', kinesalite)
} finally {
  for (const c of children) c.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}
