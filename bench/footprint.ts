/**
 * The agent's footprint on a device: the real agent (dist/, with the V8 flags of the unit's ExecStart) with
 * three serial sensors at 10 readings/s each (NMEA, JSON lines, length-prefixed binary) on socat
 * pseudo-terminals, forwarding to a relay in its own process. After a warm-up, the agent's CPU time
 * (utime+stime from /proc) and resident set (VmRSS, sampled every second) are measured.
 * Limits (issue 18's goals): under 1 % of one core and at most 64 MB RSS; the exit code is 1 when a limit is broken.
 * Usage: npx tsx bench/footprint.ts [seconds=60] [warmup=15]   (needs `npm run build` and socat)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import { serialSensors, SENSOR_HZ } from './serial-sensors.js'
import { readyLine } from './processes.js'

const seconds = Number(process.argv[2] ?? 60)
const warmup = Number(process.argv[3] ?? 15)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const CPU_LIMIT_PCT = 1
const RSS_LIMIT_MB = 64
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** utime + stime of a process in seconds, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))
  return (Number(fields[11]) + Number(fields[12])) / ticks
}

function rssMB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return kb / 1024
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-footprint-'))
const children: ChildProcess[] = []
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
process.on('exit', cleanup)

if (!existsSync(join(root, 'dist/agent/entry.js'))) throw new Error('dist/ is missing: run npm run build first')
const relay = spawn(process.execPath, ['--import', 'tsx', join(root, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
children.push(relay)
const mqttPort = /mqtt:\/\/[^:]+:(\d+)/.exec(await readyLine(relay, 'tributary relay ready'))![1]

const sensors = await serialSensors(dir, children)
const config = join(dir, 'agent.json')
writeFileSync(config, JSON.stringify({
  device: 'footprint-bench', relay: { url: `mqtt://127.0.0.1:${mqttPort}` }, outbox: { path: join(dir, 'outbox.db') },
  status: { port: 0 }, streams: { sensors: {} }, sources: sensors.sources('sensors'),
}))
// The agent exactly as the unit starts it: the same V8 flags as its ExecStart.
const execStart = /^ExecStart=@NODE@ (.*) @AGENT@ /m.exec(readFileSync(join(root, 'deploy/tributary-agent.service'), 'utf8'))
// FOOTPRINT_NODE_ARGS adds flags to try (e.g. `--single-threaded`).
const nodeFlags = [...(execStart ? execStart[1]!.split(' ') : []), ...(process.env.FOOTPRINT_NODE_ARGS ?? '').split(' ').filter(Boolean)]
const agent = spawn(process.execPath, [...nodeFlags, join(root, 'dist/agent/entry.js'), 'agent', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'ignore'] })
children.push(agent)
const statusPort = /status=http:\/\/[^:]+:(\d+)/.exec(await readyLine(agent, 'tributary agent ready'))![1]
agent.stdout!.resume()

// The sensors: each writes one reading every 100 ms.
await sensors.start()

process.stderr.write(`footprint: warming up for ${warmup} s, then measuring for ${seconds} s\n`)
await sleep(warmup * 1000)
const pid = agent.pid!
const cpu0 = cpuSeconds(pid)
const t0 = performance.now()
const rss: number[] = []
for (let i = 0; i < seconds; i++) {
  await sleep(1000)
  rss.push(rssMB(pid))
  if (i % 10 === 9) process.stderr.write(`  ${i + 1} s: rss ${rss.at(-1)!.toFixed(1)} MB\n`)
}
const cpuPct = ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100
await sensors.stop()
await sleep(500)
const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { memory: { heapUsedBytes: number; externalBytes: number }; link: { recordsAcked: number }; serial: Record<string, { readings: number; framingErrors: Record<string, number> }> }
const readings = Object.values(status.serial).reduce((s, x) => s + x.readings, 0)
const errors = Object.values(status.serial).reduce((s, x) => s + Object.values(x.framingErrors).reduce((a, b) => a + b, 0), 0)
const maxRss = Math.max(...rss)
const meanRss = rss.reduce((a, b) => a + b, 0) / rss.length

const mb = (b: number) => (b / 1048576).toFixed(1)
console.log('benchmark,sensors,hz_each,seconds,cpu_pct_of_one_core,rss_mean_mb,rss_max_mb,heap_used_mb,external_mb,readings,acked,framing_errors')
console.log(`footprint,3,${SENSOR_HZ},${seconds},${cpuPct.toFixed(2)},${meanRss.toFixed(1)},${maxRss.toFixed(1)},${mb(status.memory.heapUsedBytes)},${mb(status.memory.externalBytes)},${readings},${status.link.recordsAcked},${errors}`)
const ok = cpuPct < CPU_LIMIT_PCT && maxRss <= RSS_LIMIT_MB && readings >= 3 * sensors.sent - 3 && errors === 0
process.stderr.write(`footprint: cpu ${cpuPct.toFixed(2)} % (limit ${CPU_LIMIT_PCT} %), rss max ${maxRss.toFixed(1)} MB (limit ${RSS_LIMIT_MB} MB), ${readings} readings of ${3 * sensors.sent} sent: ${ok ? 'within limits' : 'OVER A LIMIT'}\n`)
agent.kill('SIGTERM')
await new Promise((r) => agent.once('exit', r))
process.exit(ok ? 0 : 1)
