/**
 * Where the relay's CPU goes per record on each path of issue 17, from V8's sampling profiler: the
 * compiled relay (`dist/`, so `npm run build` first) runs in its own process under
 * `node --cpu-prof`, and the profile is cut to the window of each workload:
 *
 * - put: PutRecords through the AWS SDK over HTTP/1.1, 500 records of 100 bytes, 4 calls in flight
 *   (the client of `kinesis-api.ts`, in this process), after a 1 s warm-up that is not counted;
 * - get: GetRecords of everything the put window stored, 10,000-record pages, 4 shards at once;
 * - put10k: PutRecords as `put`, 10 in flight, into 10 streams × 1,000 shards (taken in turn), as
 *   `shards-api.ts` measures it: each call touches ~400 shards, the cost per shard touched shows;
 * - mqtt: devices' batches over MQTT (`mqtt-publishers.ts`: 4 publishers, QoS 1, 500 × 100 B),
 *   in a relay process of its own, after a 1 s warm-up.
 *
 * For each path, CSV on stdout (see `profile-summary.ts`): totals, the top frames by self time and
 * the project's functions by total time, in % of the relay's busy time and µs per record. The
 * .cpuprofile files are kept (their directory is printed on stderr) to open in DevTools.
 * Usage: npx tsx bench/profile.ts [paths=put,get,mqtt] [seconds=5] [top=25]
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { kinesisClient, createBenchStream, putFor, getAll, type Phase } from './kinesis-workload.js'
import { summarise, summaryCsv, type CpuProfile } from './profile-summary.js'

const paths = (process.argv[2] ?? 'put,get,mqtt').split(',')
const seconds = Number(process.argv[3] ?? 5)
const top = Number(process.argv[4] ?? 25)
const here = dirname(fileURLToPath(import.meta.url))
const entry = join(here, '..', 'dist/relay/cli/entry.js')
const IN_FLIGHT = 4
const PUBLISHERS = 4

interface Relay { child: ChildProcess; mqttPort: number; httpPort: number; profileDir: string }

/** The compiled relay under --cpu-prof; its ports are read from its "ready" line. */
async function startRelay(name: string): Promise<Relay> {
  const dataDir = mkdtempSync(join(tmpdir(), `tributary-profile-${name}-`))
  const profileDir = mkdtempSync(join(tmpdir(), `tributary-cpuprofile-${name}-`))
  const child = spawn(process.execPath, [...(process.env.PROFILE_NODE_ARGS ?? '').split(' ').filter(Boolean), '--cpu-prof', '--cpu-prof-dir', profileDir, entry, 'relay', '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', '--auto-create-shards', '4', '--shard-limit', '10004'], { stdio: ['ignore', 'pipe', 'inherit'] })
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  let out = ''
  for await (const chunk of child.stdout!) {
    out += String(chunk)
    const ready = /ready: mqtt:\/\/[^:]+:(\d+) https?:\/\/[^:]+:(\d+)/.exec(out)
    if (ready) return { child, mqttPort: Number(ready[1]), httpPort: Number(ready[2]), profileDir }
  }
  throw new Error(`the relay did not start: ${out}`)
}

/** Stops the relay (SIGTERM: it closes and exits, and V8 writes the profile) and reads its profile. */
async function stopRelay(relay: Relay): Promise<CpuProfile> {
  relay.child.stdout!.resume()
  const exited = once(relay.child, 'exit')
  relay.child.kill('SIGTERM')
  await exited
  const file = readdirSync(relay.profileDir).filter((f) => f.endsWith('.cpuprofile')).sort()[0]
  if (!file) throw new Error(`no profile in ${relay.profileDir}`)
  process.stderr.write(`profile: ${join(relay.profileDir, file)}\n`)
  return JSON.parse(readFileSync(join(relay.profileDir, file), 'utf8')) as CpuProfile
}

function publish(port: number, forSeconds: number): Promise<Phase> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', join(here, 'mqtt-publishers.ts'), String(port), String(PUBLISHERS), String(forSeconds)], (err, stdout) => {
      if (err) reject(err)
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Phase)
    })
  })
}

const report = (label: string, profile: CpuProfile, phase: Phase) => {
  process.stderr.write(`${label}: ${phase.records} records in ${phase.seconds.toFixed(2)} s (${Math.round(phase.records / phase.seconds)} records/s)\n`)
  console.log(summaryCsv(label, summarise(profile, phase.records, { startUs: phase.startUs, endUs: phase.endUs }, top), phase.records))
}

if (paths.includes('put') || paths.includes('get')) {
  const relay = await startRelay('kinesis')
  const client = kinesisClient(`http://127.0.0.1:${relay.httpPort}`, true)
  process.stderr.write('warm-up: PutRecords and GetRecords for 1 s…\n')
  const warm = await createBenchStream(client)
  await putFor(client, warm, 1, IN_FLIGHT)
  await getAll(client, warm)
  const stream = await createBenchStream(client)
  process.stderr.write(`PutRecords for ${seconds} s, ${IN_FLIGHT} in flight…\n`)
  const put = await putFor(client, stream, seconds, IN_FLIGHT)
  process.stderr.write(`GetRecords of ${put.records} records…\n`)
  const get = await getAll(client, stream)
  client.destroy()
  const profile = await stopRelay(relay)
  if (paths.includes('put')) report('putrecords', profile, put)
  if (paths.includes('get')) report('getrecords', profile, get)
}

if (paths.includes('put10k')) {
  const relay = await startRelay('put10k')
  const client = kinesisClient(`http://127.0.0.1:${relay.httpPort}`, true)
  const streams: string[] = []
  for (let s = 0; s < 10; s++) {
    process.stderr.write(`\rcreating stream ${s + 1}/10 of 1,000 shards…`)
    streams.push(await createBenchStream(client, 1000))
  }
  process.stderr.write('\nwarm-up: PutRecords for 1 s…\n')
  await putFor(client, streams, 1, 10)
  process.stderr.write(`PutRecords into 10 × 1,000 shards for ${seconds} s, 10 in flight…\n`)
  const put = await putFor(client, streams, seconds, 10)
  client.destroy()
  report('putrecords-10k-shards', await stopRelay(relay), put)
}

if (paths.includes('mqtt')) {
  const relay = await startRelay('mqtt')
  process.stderr.write('warm-up: MQTT batches for 1 s…\n')
  await publish(relay.mqttPort, 1)
  process.stderr.write(`MQTT batches for ${seconds} s, ${PUBLISHERS} publishers…\n`)
  const run = await publish(relay.mqttPort, seconds)
  const profile = await stopRelay(relay)
  report('mqtt-ingest', profile, run)
}
