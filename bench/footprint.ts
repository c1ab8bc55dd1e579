/**
 * The agent's footprint on a device: the real agent (dist/, with the V8 flags of the unit's ExecStart) with
 * three serial sensors at 10 readings/s each (NMEA, JSON lines, length-prefixed binary) on socat
 * pseudo-terminals, forwarding to a relay in its own process. After a warm-up, the agent's CPU time
 * (utime+stime from /proc) and resident set (VmRSS, sampled every second) are measured.
 * Limits: under 2 % of one core and 80 MB RSS; the exit code is 1 when a limit is broken.
 * Usage: npx tsx bench/footprint.ts [seconds=60] [warmup=15]   (needs `npm run build` and socat)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'

const seconds = Number(process.argv[2] ?? 60)
const warmup = Number(process.argv[3] ?? 15)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const CPU_LIMIT_PCT = 2
const RSS_LIMIT_MB = 80
const HZ = 10
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function readyLine(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith(prefix))
      if (line) resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.join(' ')} exited with ${code}`)))
  })
}

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

function nmea(body: string): string {
  let sum = 0
  for (const c of body) sum ^= c.charCodeAt(0)
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-footprint-'))
const children: ChildProcess[] = []
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
process.on('exit', cleanup)

if (!existsSync(join(root, 'dist/agent/entry.js'))) throw new Error('dist/ is missing: run npm run build first')
const relay = spawn(process.execPath, ['--import', 'tsx', join(root, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
children.push(relay)
const mqttPort = /mqtt:\/\/[^:]+:(\d+)/.exec(await readyLine(relay, 'tributary relay ready'))![1]

const names = ['gps', 'env', 'vib'] as const
const ptys = names.map((name) => ({ name, device: join(dir, `${name}-device`), sensor: join(dir, `${name}-sensor`) }))
for (const p of ptys) {
  children.push(spawn('socat', [`pty,raw,echo=0,link=${p.device}`, `pty,raw,echo=0,link=${p.sensor}`], { stdio: 'ignore' }))
}
while (!ptys.every((p) => existsSync(p.device) && existsSync(p.sensor))) await sleep(10)

const config = join(dir, 'agent.yaml')
writeFileSync(config, [
  'device: footprint-bench', 'relay:', `  url: mqtt://127.0.0.1:${mqttPort}`,
  'outbox:', `  path: ${join(dir, 'outbox.db')}`, 'status:', '  port: 0', 'streams:', '  sensors: {}', 'sources:',
  `  - { type: serial, name: gps, stream: sensors, path: ${ptys[0]!.device}, baudRate: 9600, parser: nmea }`,
  `  - { type: serial, name: env, stream: sensors, path: ${ptys[1]!.device}, baudRate: 115200, parser: json, partitionKeyField: id }`,
  `  - { type: serial, name: vib, stream: sensors, path: ${ptys[2]!.device}, baudRate: 115200, parser: { type: length-prefixed, sync: "0x7e", lengthBytes: 1, lengthAdjust: 1 } }`,
].join('\n'))
// The agent exactly as the unit starts it: the same V8 flags as its ExecStart.
const execStart = /^ExecStart=@NODE@ (.*) @AGENT@ /m.exec(readFileSync(join(root, 'deploy/tributary-agent.service'), 'utf8'))
const nodeFlags = execStart ? execStart[1]!.split(' ') : []
const agent = spawn(process.execPath, [...nodeFlags, join(root, 'dist/agent/entry.js'), 'agent', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'ignore'] })
children.push(agent)
const statusPort = /status=http:\/\/[^:]+:(\d+)/.exec(await readyLine(agent, 'tributary agent ready'))![1]
agent.stdout!.resume()

// The sensors: each writes one reading every 100 ms.
const handles = await Promise.all(ptys.map((p) => open(p.sensor, 'r+')))
let n = 0
const feeder = setInterval(() => {
  n++
  void handles[0]!.write(nmea(`GPGGA,${n},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`))
  void handles[1]!.write(JSON.stringify({ id: 'env-1', n, celsius: 21.5, humidity: 40 }) + '\n')
  const payload = Buffer.alloc(12)
  payload.writeUInt32BE(n)
  payload.writeFloatBE(0.02, 4)
  payload.writeFloatBE(0.5, 8)
  let x = 0
  for (const b of payload) x ^= b
  void handles[2]!.write(Buffer.concat([Buffer.from([0x7e, payload.length]), payload, Buffer.from([x])]))
}, 1000 / HZ)

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
clearInterval(feeder)
await sleep(500)
const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { memory: { heapUsedBytes: number; externalBytes: number }; link: { recordsAcked: number }; serial: Record<string, { readings: number; framingErrors: Record<string, number> }> }
const readings = Object.values(status.serial).reduce((s, x) => s + x.readings, 0)
const errors = Object.values(status.serial).reduce((s, x) => s + Object.values(x.framingErrors).reduce((a, b) => a + b, 0), 0)
const maxRss = Math.max(...rss)
const meanRss = rss.reduce((a, b) => a + b, 0) / rss.length

const mb = (b: number) => (b / 1048576).toFixed(1)
console.log('benchmark,sensors,hz_each,seconds,cpu_pct_of_one_core,rss_mean_mb,rss_max_mb,heap_used_mb,external_mb,readings,acked,framing_errors')
console.log(`footprint,3,${HZ},${seconds},${cpuPct.toFixed(2)},${meanRss.toFixed(1)},${maxRss.toFixed(1)},${mb(status.memory.heapUsedBytes)},${mb(status.memory.externalBytes)},${readings},${status.link.recordsAcked},${errors}`)
const ok = cpuPct < CPU_LIMIT_PCT && maxRss < RSS_LIMIT_MB && readings >= 3 * n - 3 && errors === 0
process.stderr.write(`footprint: cpu ${cpuPct.toFixed(2)} % (limit ${CPU_LIMIT_PCT} %), rss max ${maxRss.toFixed(1)} MB (limit ${RSS_LIMIT_MB} MB), ${readings} readings of ${3 * n} sent: ${ok ? 'within limits' : 'OVER A LIMIT'}\n`)
for (const h of handles) await h.close()
agent.kill('SIGTERM')
await new Promise((r) => agent.once('exit', r))
process.exit(ok ? 0 : 1)
