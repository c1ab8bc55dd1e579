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
 * JIT compilation. With `rounds` > 1 each handler's relay and canned measurements alternate that many
 * times (relay first, then canned first, …) and the rows give medians: of the rates, and of each
 * round's share (relay ÷ canned within the round), which a machine shared with other work disturbs
 * less than any single pair. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/kinesis-api.ts [seconds=5] [inflight=4] [warmup=1] [rounds=1]
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
import { freePort } from './processes.js'

const seconds = Number(process.argv[2] ?? 5)
const inFlight = Number(process.argv[3] ?? 4)
const warmup = Number(process.argv[4] ?? 1)
const rounds = Number(process.argv[5] ?? 1)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** The relay and the canned server, alternating for `rounds` rounds: median rates and median share of the rounds. */
async function pairs(handler: string, relay: string, canned: string, http1: boolean): Promise<{ relay: Rates; canned: Rates; share: Rates }> {
  const relays: Rates[] = []
  const canneds: Rates[] = []
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? ['canned', 'relay'] as const : ['relay', 'canned'] as const
    for (const which of order) {
      const rates = await measure(`${which} ${handler}${rounds > 1 ? ` (round ${r + 1})` : ''}`, which === 'relay' ? relay : canned, http1)
      if (which === 'relay') relays.push(rates)
      else canneds.push(rates)
    }
    process.stderr.write(`${handler} round ${r + 1}: share PutRecords ${(relays[r]!.put / canneds[r]!.put).toFixed(2)}, GetRecords ${(relays[r]!.get / canneds[r]!.get).toFixed(2)}\n`)
  }
  const of = (list: Rates[]) => ({ put: median(list.map((x) => x.put)), get: median(list.map((x) => x.get)) })
  return {
    relay: of(relays),
    canned: of(canneds),
    share: { put: median(relays.map((x, i) => x.put / canneds[i]!.put)), get: median(relays.map((x, i) => x.get / canneds[i]!.get)) },
  }
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
  const relay = `http://127.0.0.1:${relayPort}`
  const h1 = await pairs('HTTP/1.1', relay, `http://127.0.0.1:${cannedPorts.http1}`, true)
  const h2 = await pairs('HTTP/2', relay, `http://127.0.0.1:${cannedPorts.http2}`, false)
  const kinesalite = await measure('kinesalite HTTP/1.1', `http://127.0.0.1:${kinesalitePort}`, true)
  console.log('server,handler,in_flight,rounds,putrecords_records_per_s,getrecords_records_per_s,put_vs_kinesalite,get_vs_kinesalite,put_share_of_canned,get_share_of_canned')
  const row = (server: string, handler: string, r: Rates, share: Rates) =>
    console.log(`${server},${handler},${inFlight},${rounds},${Math.round(r.put)},${Math.round(r.get)},${(r.put / kinesalite.put).toFixed(2)},${(r.get / kinesalite.get).toFixed(2)},${share.put.toFixed(2)},${share.get.toFixed(2)}`)
  const one = { put: 1, get: 1 }
  row('tributary', 'http1.1', h1.relay, h1.share)
  row('tributary', 'http2', h2.relay, h2.share)
  row('kinesalite', 'http1.1', kinesalite, { put: kinesalite.put / h1.canned.put, get: kinesalite.get / h1.canned.get })
  row('canned', 'http1.1', h1.canned, one)
  row('canned', 'http2', h2.canned, one)
  process.stderr.write(`relay's share of the canned ceiling (HTTP/1.1): PutRecords ${h1.share.put.toFixed(2)} (target 0.7), GetRecords ${h1.share.get.toFixed(2)} (target 0.85)\n`)
} finally {
  for (const c of children) c.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}
