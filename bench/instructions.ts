/**
 * Instructions per record on each path of issue 17, counted by valgrind's callgrind: a figure that
 * does not move with what else the machine runs (the VM has no hardware counters for `perf stat`).
 * The compiled relay (`dist/`) runs under `valgrind --tool=callgrind --instr-atstart=no
 * --separate-threads=yes`; after a warm-up run without instrumentation (so V8 has compiled the hot
 * code), `callgrind_control` switches instrumentation on, the workload runs, the counters are dumped
 * and switched off again. Workloads as `profile.ts` (PutRecords and GetRecords through the AWS SDK
 * over HTTP/1.1, 4 in flight; MQTT batches from 4 publishers), only slower: under callgrind the relay
 * runs some 50 times slower, so a few thousand records per path.
 *
 * CSV on stdout: per path, instructions per record on the event loop's thread (thread 1) and on all
 * threads (libuv's pool and V8's compiler and GC helpers too), then the top functions of thread 1 by
 * self instructions as callgrind_annotate names them (JIT-compiled JavaScript shows as `???` addresses,
 * so this names the C and C++ side: the addon, libc, V8's builtins and runtime).
 * The dumps are kept (their directory is printed on stderr) for callgrind_annotate or KCachegrind.
 * `put1k`: PutRecords into one 1,000-shard stream, 10 in flight (the cost of a record nearly alone in its shard).
 * Usage: npx tsx bench/instructions.ts [paths=put,get,mqtt,put1k] [seconds=10] [top=15]
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { kinesisClient, createBenchStream, putFor, getAll, type Phase } from './kinesis-workload.js'

const paths = (process.argv[2] ?? 'put,get,mqtt').split(',')
const seconds = Number(process.argv[3] ?? 10)
const top = Number(process.argv[4] ?? 15)
const here = dirname(fileURLToPath(import.meta.url))
const entry = join(here, '..', 'dist/relay/cli/entry.js')
const IN_FLIGHT = 4
const PUBLISHERS = 4

interface Relay { child: ChildProcess; pid: number; mqttPort: number; httpPort: number; outDir: string }

async function startRelay(name: string): Promise<Relay> {
  const dataDir = mkdtempSync(join(tmpdir(), `tributary-callgrind-${name}-`))
  const outDir = mkdtempSync(join(tmpdir(), `tributary-callgrind-out-${name}-`))
  const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${join(outDir, 'cg.%p')}`,
    process.execPath, '--perf-basic-prof', entry, 'relay', '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', '--auto-create-shards', '4'], { stdio: ['ignore', 'pipe', 'ignore'] })
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  let out = ''
  for await (const chunk of child.stdout!) {
    out += String(chunk)
    const ready = /ready: mqtt:\/\/[^:]+:(\d+) https?:\/\/[^:]+:(\d+)/.exec(out)
    if (ready) return { child, pid: child.pid!, mqttPort: Number(ready[1]), httpPort: Number(ready[2]), outDir }
  }
  throw new Error(`the relay did not start under valgrind: ${out}`)
}

const control = (relay: Relay, ...args: string[]) => execFileSync('callgrind_control', [...args, String(relay.pid)], { stdio: 'ignore' })

/** Runs `work` with instrumentation on; returns the dump's files, thread by thread. */
async function counted<T>(relay: Relay, work: () => Promise<T>): Promise<{ result: T; files: string[] }> {
  const before = new Set(readdirSync(relay.outDir))
  control(relay, '--zero')
  control(relay, '--instr=on')
  const result = await work()
  control(relay, '--dump')
  control(relay, '--instr=off')
  const files = readdirSync(relay.outDir).filter((f) => !before.has(f)).sort().map((f) => join(relay.outDir, f))
  return { result, files }
}

const summaryOf = (file: string) => Number(/^summary: (\d+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 0)

/**
 * V8's names for its JIT-compiled code: `--perf-basic-prof` makes the relay write each code object's
 * start, size and name to /tmp/perf-<pid>.map (the pid is the process valgrind runs), which callgrind
 * only knows as addresses. The last entry covering an address wins (code freed and made again).
 */
function jitNames(pid: number): (address: number) => string | undefined {
  let text = ''
  try { text = readFileSync(`/tmp/perf-${pid}.map`, 'utf8') } catch { return () => undefined }
  const entries = text.split('\n').flatMap((line) => {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.+)$/.exec(line)
    return m ? [{ start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), name: m[3]! }] : []
  })
  return (address) => {
    for (let i = entries.length - 1; i >= 0; i--) if (address >= entries[i]!.start && address < entries[i]!.end) return entries[i]!.name
    return undefined
  }
}

/** callgrind_annotate's function lines: "  59,478,000 (11.09%)  ???:block [/path/lib.so]"; JIT addresses named from the perf map. */
function topFunctions(file: string, jit: (address: number) => string | undefined = () => undefined): { ir: number; share: string; name: string }[] {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const rows: { ir: number; share: string; name: string }[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.+)$/.exec(line)
    if (!m || m[3]!.includes('PROGRAM TOTALS')) continue
    let name = m[3]!.replace(/ \[[^\]]*\/([^/\]]+)\]$/, ' [$1]')
    const address = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(name)
    if (address) name = `JIT ${jit(parseInt(address[1]!, 16)) ?? `0x${address[1]}`}`
    rows.push({ ir: Number(m[1]!.replace(/,/g, '')), share: `${m[2]}%`, name })
    if (rows.length >= top) break
  }
  return rows
}

const csv = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)

function report(label: string, records: number, files: string[], pid: number): void {
  // Thread 1 is the one that started the process: Node's main thread, the event loop.
  const main = files.find((f) => /-0*1$/.test(f))
  const all = files.reduce((sum, f) => sum + summaryOf(f), 0)
  if (!main || !records) throw new Error(`${label}: no dump of thread 1 or no records (${files.join(', ')})`)
  const mainIr = summaryOf(main)
  console.log('path,records,instructions_thread1,instructions_all_threads,per_record_thread1,per_record_all_threads')
  console.log(`${label},${records},${mainIr},${all},${Math.round(mainIr / records)},${Math.round(all / records)}`)
  console.log('')
  console.log('path,rank,function,instructions,share_of_thread1,per_record')
  topFunctions(main, jitNames(pid)).forEach((r, i) => console.log(`${label},${i + 1},${csv(r.name)},${r.ir},${r.share},${Math.round(r.ir / records)}`))
  console.log('')
}

async function stopRelay(relay: Relay): Promise<void> {
  const exited = once(relay.child, 'exit')
  relay.child.kill('SIGTERM')
  await exited
  process.stderr.write(`callgrind dumps kept in ${relay.outDir}\n`)
}

function publish(port: number, forSeconds: number): Promise<Phase> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', join(here, 'mqtt-publishers.ts'), String(port), String(PUBLISHERS), String(forSeconds)], (err, stdout) => {
      if (err) reject(err)
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Phase)
    })
  })
}

if (paths.includes('put') || paths.includes('get')) {
  process.stderr.write('relay under callgrind (kinesis)…\n')
  const relay = await startRelay('kinesis')
  const client = kinesisClient(`http://127.0.0.1:${relay.httpPort}`, true)
  process.stderr.write('warm-up without instrumentation…\n')
  const warm = await createBenchStream(client)
  await putFor(client, warm, seconds, IN_FLIGHT)
  await getAll(client, warm)
  const stream = await createBenchStream(client)
  process.stderr.write(`PutRecords for ${seconds} s, counted…\n`)
  const put = await counted(relay, () => putFor(client, stream, seconds, IN_FLIGHT))
  process.stderr.write(`GetRecords of ${put.result.records} records, counted…\n`)
  const get = await counted(relay, () => getAll(client, stream))
  client.destroy()
  if (paths.includes('put')) report('putrecords', put.result.records, put.files, relay.pid)
  if (paths.includes('get')) report('getrecords', get.result.records, get.files, relay.pid)
  await stopRelay(relay)
}

if (paths.includes('put1k')) {
  // PutRecords of 500 distinct keys into one 1,000-shard stream, 10 in flight: each call touches
  // ~400 shards, so the count shows what a record costs when it is nearly alone in its shard (the
  // 10,000-shard case of shards-api.ts, without creating 10,000 shards under valgrind).
  process.stderr.write('relay under callgrind (1,000 shards)…\n')
  const relay = await startRelay('put1k')
  const client = kinesisClient(`http://127.0.0.1:${relay.httpPort}`, true)
  const stream = await createBenchStream(client, 1000)
  process.stderr.write('warm-up without instrumentation…\n')
  await putFor(client, stream, seconds, 10)
  process.stderr.write(`PutRecords into 1,000 shards for ${seconds} s, counted…\n`)
  const put = await counted(relay, () => putFor(client, stream, seconds, 10))
  client.destroy()
  report('putrecords-1k-shards', put.result.records, put.files, relay.pid)
  await stopRelay(relay)
}

if (paths.includes('mqtt')) {
  process.stderr.write('relay under callgrind (mqtt)…\n')
  const relay = await startRelay('mqtt')
  process.stderr.write('warm-up without instrumentation…\n')
  await publish(relay.mqttPort, seconds)
  process.stderr.write(`MQTT batches for ${seconds} s, counted…\n`)
  const run = await counted(relay, () => publish(relay.mqttPort, seconds))
  report('mqtt-ingest', run.result.records, run.files, relay.pid)
  await stopRelay(relay)
}
