/**
 * Issue 18: what the agent writes to its storage per byte of record data, the measure of SD-card
 * wear. The real agent (dist/, with the V8 flags of the unit's ExecStart, outbox at synchronous=FULL)
 * in its own process, started under `strace --seccomp-bpf -e trace=fsync,fdatasync` to count its
 * syncs, forwarding to a relay in a process of its own. For each workload:
 *
 * - serial: three serial sensors at 10 readings/s each (NMEA, JSON lines, length-prefixed binary, on
 *   socat pseudo-terminals) at the default `serial.flushMs`, relay up (`serial-1000ms`: the same
 *   with `serial.flushMs: 1000`);
 * - put: the put API at 10 requests/s of 10 records of 100 bytes, relay up (`put-1s`: the same with
 *   `outbox.commitIntervalMs: 1000`, so that a second's puts share one commit);
 * - backlog: `backlog` records of 100 bytes put while the relay is down (PutRecords of 500, 4 at a
 *   time), then drained once it is up; fill and drain are measured apart.
 *
 * What the agent wrote is `write_bytes` of /proc/<pid>/io (bytes the process caused to be sent to
 * the storage layer, counted when a page is dirtied) over the measured window; the record data is the
 * agent's own count of payload bytes committed (`tributary_agent_record_data_bytes_stored_total`).
 * Beside each, the floor: the same record data appended to a plain file by a process of its own, with
 * as many fdatasyncs as the agent made in the window (each append, then a sync), so what page
 * granularity costs any durable store at that sync rate. MB/day projects the window's rate over 24
 * hours (for the backlog: MB per outage of that size).
 *
 * CSV on stdout, progress on stderr.
 * Usage: npm run build && npx tsx bench/wear.ts [seconds=30] [backlog=1000000] [workloads=serial,serial-1000ms,put,put-1s,backlog]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serialSensors } from './serial-sensors.js'
import { freePort, readyLine } from './processes.js'

const seconds = Number(process.argv[2] ?? 30)
const backlogRecords = Number(process.argv[3] ?? 1_000_000)
const workloads = (process.argv[4] ?? 'serial,serial-1000ms,put,put-1s,backlog').split(',')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const RECORD = Buffer.alloc(100, 0x61)

if (!existsSync(join(root, 'dist/agent/entry.js'))) throw new Error('dist/ is missing: run npm run build first')
for (const tool of ['strace', 'socat']) {
  try { execFileSync('which', [tool], { stdio: 'ignore' }) } catch { throw new Error(`${tool} is not installed (apt-get install ${tool})`) }
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-wear-'))
const children: ChildProcess[] = []
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
process.on('exit', cleanup)

async function startRelay(name: string, mqttPort = 0): Promise<{ child: ChildProcess; mqttPort: number }> {
  const child = spawn(process.execPath, [join(root, 'dist/relay/cli/entry.js'), 'relay', '--data-dir', join(dir, `relay-${name}`), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
  children.push(child)
  const port = Number(/mqtt:\/\/[^:]+:(\d+)/.exec(await readyLine(child, 'tributary relay ready'))![1])
  child.stdout!.resume()
  return { child, mqttPort: port }
}

interface Agent { strace: ChildProcess; pid: number; statusPort: number; putPort: number | null; syncLog: string; outbox: string }

/** The agent as the unit starts it, under strace counting its syncs (only those stop it: seccomp-bpf). */
async function startAgent(name: string, config: Record<string, unknown>): Promise<Agent> {
  const outbox = join(dir, `${name}-outbox.db`)
  const path = join(dir, `${name}.json`)
  writeFileSync(path, JSON.stringify({ device: `wear-${name}`, status: { port: 0 }, ...config, outbox: { ...(config.outbox as object | undefined), path: outbox, maxBytes: 1024 * 1024 * 1024 } }))
  const execStart = /^ExecStart=@NODE@ (.*) @AGENT@ /m.exec(readFileSync(join(root, 'deploy/tributary-agent.service'), 'utf8'))
  const nodeFlags = execStart ? execStart[1]!.split(' ') : []
  const syncLog = join(dir, `${name}.syncs`)
  const strace = spawn('strace', ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-ttt', '-o', syncLog, process.execPath, ...nodeFlags, join(root, 'dist/agent/entry.js'), 'agent', 'run', '--config', path], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(strace)
  const ready = await readyLine(strace, 'tributary agent ready')
  strace.stdout!.resume()
  const pid = Number(execFileSync('pgrep', ['-P', String(strace.pid)], { encoding: 'utf8' }).trim().split('\n')[0])
  const put = /put-api=http:\/\/[^:]+:(\d+)/.exec(ready)
  return { strace, pid, statusPort: Number(/status=http:\/\/[^:]+:(\d+)/.exec(ready)![1]), putPort: put ? Number(put[1]) : null, syncLog, outbox }
}

async function stopAgent(agent: Agent): Promise<void> {
  process.kill(agent.pid, 'SIGTERM')
  await new Promise((r) => agent.strace.once('exit', r))
}

const writeBytes = (pid: number) => Number(/write_bytes: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1])
const outboxBytes = (path: string) => ['', '-wal'].reduce((n, s) => n + (existsSync(path + s) ? statSync(path + s).size : 0), 0)

async function metric(agent: Agent, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  return sum
}

async function backlog(agent: Agent): Promise<number> {
  return ((await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { outbox: { backlog: number } }).outbox.backlog
}

/** Syncs the agent made between two wall-clock instants (seconds), from strace's log. */
function syncsBetween(agent: Agent, from: number, to: number): number {
  let n = 0
  for (const line of readFileSync(agent.syncLog, 'utf8').split('\n')) {
    const m = /^\d+\s+(\d+\.\d+) f(data)?sync\(/.exec(line)
    if (m && Number(m[1]) >= from && Number(m[1]) <= to) n++
  }
  return n
}

/** A window: what the agent wrote, its syncs, the record data it committed and the outbox's growth. */
interface Window { seconds: number; records: number; dataBytes: number; written: number; syncs: number; growth: number }

async function measure(agent: Agent, work: () => Promise<void>): Promise<Window> {
  const w0 = writeBytes(agent.pid)
  const d0 = await metric(agent, 'tributary_agent_record_data_bytes_stored_total')
  const r0 = await metric(agent, 'tributary_agent_records_stored_total')
  const g0 = outboxBytes(agent.outbox)
  const t0 = Date.now() / 1000
  await work()
  const t1 = Date.now() / 1000
  return {
    seconds: t1 - t0,
    records: (await metric(agent, 'tributary_agent_records_stored_total')) - r0,
    dataBytes: (await metric(agent, 'tributary_agent_record_data_bytes_stored_total')) - d0,
    written: writeBytes(agent.pid) - w0,
    syncs: syncsBetween(agent, t0, t1),
    growth: outboxBytes(agent.outbox) - g0,
  }
}

/** The floor: `bytes` appended to a plain file in `syncs` equal appends, each followed by fdatasync, by a process of its own. */
function floor(bytes: number, syncs: number): number {
  const script = `
    const fs = require('node:fs')
    const [path, bytes, syncs] = process.argv.slice(1)
    const fd = fs.openSync(path, 'a')
    const n = Math.max(1, Number(syncs)), total = Number(bytes)
    for (let i = 0; i < n; i++) {
      const size = Math.round(total / n * (i + 1)) - Math.round(total / n * i)
      if (size > 0) fs.writeSync(fd, Buffer.alloc(size, 0x61))
      fs.fdatasyncSync(fd)
    }
    fs.closeSync(fd)
    console.log(/write_bytes: (\\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1])`
  const path = join(dir, `floor-${Math.random().toString(36).slice(2)}`)
  const out = execFileSync(process.execPath, ['-e', script, path, String(bytes), String(syncs)], { encoding: 'utf8' })
  rmSync(path, { force: true })
  return Number(out.trim())
}

const rows: string[] = []
function report(workload: string, w: Window, perDay: boolean): void {
  const floorBytes = floor(w.dataBytes, w.syncs)
  const day = (b: number) => (perDay ? (b / w.seconds) * 86400 : b) / 1e6
  const amp = w.written / w.dataBytes
  rows.push([workload, w.seconds.toFixed(1), w.records, w.dataBytes, w.written, amp.toFixed(2), w.syncs, w.growth, floorBytes, (floorBytes / w.dataBytes).toFixed(2), day(w.written).toFixed(1), day(floorBytes).toFixed(1), perDay ? 'MB/day' : 'MB/outage'].join(','))
  process.stderr.write(`wear: ${workload}: ${(w.written / 1e6).toFixed(2)} MB written for ${(w.dataBytes / 1e6).toFixed(2)} MB of record data (${amp.toFixed(2)}×; floor ${(floorBytes / w.dataBytes).toFixed(2)}×), ${w.syncs} syncs\n`)
}

/** `flushMs` other than the default: readings gather that long before their commit. */
async function serialWorkload(flushMs?: number): Promise<void> {
  const name = flushMs === undefined ? 'serial' : `serial-${flushMs}ms`
  const relay = await startRelay(name)
  const sensors = await serialSensors(dir, children)
  const agent = await startAgent(name, {
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    streams: { sensors: {} },
    sources: sensors.sources('sensors'),
    ...(flushMs === undefined ? {} : { serial: { flushMs } }),
  })
  await sensors.start()
  process.stderr.write(`wear: ${name}: 3 sensors at 10 Hz, warming up 5 s, then ${seconds} s\n`)
  await sleep(5000)
  const w = await measure(agent, () => sleep(seconds * 1000))
  await sensors.stop()
  await stopAgent(agent)
  relay.child.kill('SIGTERM')
  report(flushMs === undefined ? 'serial-3x10Hz' : `serial-3x10Hz-flush-${flushMs}ms`, w, true)
}

function putRecords(port: number, n: number, from: number): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecords' },
    body: JSON.stringify({ StreamName: 'events', Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: `k${(from + i) % 64}`, Data: RECORD.toString('base64') })) }),
  })
}

/** `commitIntervalMs` other than the default 100: each put waits up to that long for its commit, which puts of the meantime share. */
async function putWorkload(commitIntervalMs?: number): Promise<void> {
  const name = commitIntervalMs ? `put-${commitIntervalMs}ms` : 'put'
  const relay = await startRelay(name)
  const agent = await startAgent(name, { relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` }, streams: { events: {} }, sources: [{ type: 'put-api', port: 0 }], ...(commitIntervalMs ? { outbox: { commitIntervalMs } } : {}) })
  let sent = 0
  let failed = 0
  const tick = setInterval(() => {
    void putRecords(agent.putPort!, 10, sent).then((r) => { if (r.status !== 200) failed++ }, () => { failed++ })
    sent += 10
  }, 100)
  process.stderr.write(`wear: put: 10 requests/s of 10 × 100 B, warming up 3 s, then ${seconds} s\n`)
  await sleep(3000)
  const w = await measure(agent, () => sleep(seconds * 1000))
  clearInterval(tick)
  if (failed) throw new Error(`${failed} puts failed`)
  await stopAgent(agent)
  relay.child.kill('SIGTERM')
  report(commitIntervalMs ? `put-10x10-commit-${commitIntervalMs}ms` : 'put-10x10', w, true)
}

async function backlogWorkload(): Promise<void> {
  const port = await freePort()
  const agent = await startAgent('backlog', { relay: { url: `mqtt://127.0.0.1:${port}` }, streams: { events: {} }, sources: [{ type: 'put-api', port: 0 }], uplink: { backoffMaxMs: 200 } })
  process.stderr.write(`wear: backlog: ${backlogRecords} records of 100 B with the relay down\n`)
  const fill = await measure(agent, async () => {
    let next = 0
    let lastShown = 0
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < backlogRecords) {
        const n = Math.min(500, backlogRecords - next)
        const from = next
        next += n
        const r = await putRecords(agent.putPort!, n, from)
        if (r.status !== 200) throw new Error(`put failed: ${r.status} ${await r.text()}`)
        if (next - lastShown >= 100_000) { lastShown = next; process.stderr.write(`  filled ${next}/${backlogRecords}\n`) }
      }
    }))
  })
  report('backlog-fill', fill, false)
  const relay = await startRelay('backlog', port)
  const drain = await measure(agent, async () => {
    let shown = Date.now()
    for (;;) {
      const left = await backlog(agent)
      if (left === 0) break
      if (Date.now() - shown > 5000) { shown = Date.now(); process.stderr.write(`  draining: ${left} left\n`) }
      await sleep(200)
    }
  })
  // The drain stores nothing new: its writes are set against the records it sent on.
  drain.dataBytes = fill.dataBytes
  drain.records = fill.records
  report('backlog-drain', drain, false)
  report('backlog-fill+drain', { seconds: fill.seconds + drain.seconds, records: fill.records, dataBytes: fill.dataBytes, written: fill.written + drain.written, syncs: fill.syncs + drain.syncs, growth: fill.growth + drain.growth }, false)
  await stopAgent(agent)
  relay.child.kill('SIGTERM')
}

if (workloads.includes('serial')) await serialWorkload()
for (const w of workloads) if (/^serial-\d+ms$/.test(w)) await serialWorkload(Number(/\d+/.exec(w)![0]))
if (workloads.includes('put')) await putWorkload()
if (workloads.includes('put-1s')) await putWorkload(1000)
if (workloads.includes('backlog')) await backlogWorkload()
console.log('workload,seconds,records,record_data_bytes,agent_write_bytes,bytes_per_data_byte,syncs,outbox_growth_bytes,floor_write_bytes,floor_bytes_per_data_byte,agent_mb,floor_mb,per')
for (const row of rows) console.log(row)
process.exit(0)
