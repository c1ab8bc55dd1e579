/**
 * The Kinesis API through the unmodified AWS SDK (@aws-sdk/client-kinesis): PutRecords (500 records
 * of 100 bytes per call, 4 calls in flight unless told) then GetRecords of everything, against the
 * relay, against kinesalite (the common local emulator, in-memory) and against a canned server that
 * does no work (`canned-kinesis.ts`: the ceiling of this client and transport, issue 17), in the same
 * run, each server in its own process. All with the SDK's HTTP/1.1 handler (kinesalite speaks only
 * HTTP/1.1); the relay and the canned server also with the SDK's default HTTP/2 handler. Each relay
 * row is measured next to its canned row, so its share of the ceiling (relay ÷ canned, same handler)
 * comes from neighbouring minutes. A warm-up (PutRecords and GetRecords for `warmup` seconds against
 * the relay and the canned server, not counted) first, so no row pays for the SDK's or the server's
 * JIT compilation. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/kinesis-api.ts [seconds=5] [inflight=4] [warmup=1]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import net from 'node:net'
import { kinesisClient, createBenchStream, putFor, getAll } from './kinesis-workload.js'

const seconds = Number(process.argv[2] ?? 5)
const inFlight = Number(process.argv[3] ?? 4)
const warmup = Number(process.argv[4] ?? 1)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

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

interface Rates { put: number; get: number }

async function measure(name: string, endpoint: string, http1: boolean, forSeconds = seconds): Promise<Rates> {
  const client = kinesisClient(endpoint, http1)
  const StreamName = await createBenchStream(client)
  process.stderr.write(`${name}: PutRecords for ${forSeconds} s, ${inFlight} in flight…\n`)
  const put = await putFor(client, StreamName, forSeconds, inFlight)
  process.stderr.write(`${name}: GetRecords of ${put.records} records…\n`)
  const get = await getAll(client, StreamName)
  client.destroy()
  return { put: put.records / put.seconds, get: get.records / get.seconds }
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
  const canned = spawn(process.execPath, ['--import', 'tsx', join(here, 'canned-kinesis.ts')], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(canned)
  const [line] = await once(canned.stdout!, 'data') as [Buffer]
  const cannedPorts = JSON.parse(line.toString()) as { http1: number; http2: number }
  await waitForPort(relayPort)
  await waitForPort(kinesalitePort)
  if (warmup > 0) {
    await measure('warm-up, relay', `http://127.0.0.1:${relayPort}`, true, warmup)
    await measure('warm-up, canned', `http://127.0.0.1:${cannedPorts.http1}`, true, warmup)
  }
  const relayH1 = await measure('relay HTTP/1.1', `http://127.0.0.1:${relayPort}`, true)
  const cannedH1 = await measure('canned HTTP/1.1', `http://127.0.0.1:${cannedPorts.http1}`, true)
  const relayH2 = await measure('relay HTTP/2', `http://127.0.0.1:${relayPort}`, false)
  const cannedH2 = await measure('canned HTTP/2', `http://127.0.0.1:${cannedPorts.http2}`, false)
  const kinesalite = await measure('kinesalite HTTP/1.1', `http://127.0.0.1:${kinesalitePort}`, true)
  console.log('server,handler,in_flight,putrecords_records_per_s,getrecords_records_per_s,put_vs_kinesalite,get_vs_kinesalite,put_share_of_canned,get_share_of_canned')
  const row = (server: string, handler: string, r: Rates, ceiling: Rates) =>
    console.log(`${server},${handler},${inFlight},${Math.round(r.put)},${Math.round(r.get)},${(r.put / kinesalite.put).toFixed(2)},${(r.get / kinesalite.get).toFixed(2)},${(r.put / ceiling.put).toFixed(2)},${(r.get / ceiling.get).toFixed(2)}`)
  row('tributary', 'http1.1', relayH1, cannedH1)
  row('tributary', 'http2', relayH2, cannedH2)
  row('kinesalite', 'http1.1', kinesalite, cannedH1)
  row('canned', 'http1.1', cannedH1, cannedH1)
  row('canned', 'http2', cannedH2, cannedH2)
  process.stderr.write(`relay's share of the canned ceiling (HTTP/1.1): PutRecords ${(relayH1.put / cannedH1.put).toFixed(2)} (target 0.7), GetRecords ${(relayH1.get / cannedH1.get).toFixed(2)} (target 0.85)\n`)
} finally {
  for (const c of children) c.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}
