/**
 * The agent's own cost of a camera: the real agent (dist/, with the V8 flags of the unit's ExecStart)
 * capturing 720p at 15 fps, fragments of 2 s at 2 Mbit/s, sent to a relay in its own process; one run
 * per input, one after the other:
 *
 *   - synthetic (ffmpeg's testsrc2, encoded with libx264: `codec: encode`),
 *   - an RTSP camera (GStreamer's RTSP test server, test/helpers/rtsp-server.py, serving 1280x720 at
 *     15 fps with a key frame every 2 s at 2 Mbit/s; `codec: copy`).
 *
 * After a warm-up, over the measured time: the agent process's CPU (utime + stime from /proc/PID/stat,
 * the process alone, not its children) as a share of one core and its resident set (VmRSS, sampled
 * every second); beside it the CPU of its ffmpeg (the agent's child; a restarted ffmpeg is counted from
 * when it is first seen) and of the RTSP server (the camera, not the device); and the fragments the
 * relay persisted meanwhile (from its /metrics). Limits (issue 12): the agent's own process under 5 %
 * of a core and 100 MB RSS; the exit code is 1 when a limit is broken or nothing was persisted.
 * CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/video-agent.ts [seconds=30] [warmup=10]   (needs `npm run build`, ffmpeg and
 * GStreamer's RTSP server: python3-gi gir1.2-gst-rtsp-server-1.0, as .ci/run installs them)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const seconds = Number(process.argv[2] ?? 30)
const warmup = Number(process.argv[3] ?? 10)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const CPU_LIMIT_PCT = 5
const RSS_LIMIT_MB = 100
const WIDTH = 1280
const HEIGHT = 720
const FPS = 15
const BITRATE_KBPS = 2000
const FRAGMENT_MS = 2000
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resolves with the first stdout line starting with `prefix`. */
function readyLine(child: ChildProcess, prefix: string, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s`)), 30_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith(prefix))
      if (line) { clearTimeout(timer); resolve(line) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}`)) })
  })
}

/** utime + stime of one process in seconds (null once it is gone). */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch {
    return null
  }
}

function rssMB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024
}

/** Child processes of `pid` (every thread's children) running `name`. */
function childrenNamed(pid: number, name: string): number[] {
  const out: number[] = []
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number)) {
        try {
          if (readFileSync(`/proc/${c}/comm`, 'utf8').trim() === name) out.push(c)
        } catch { /* gone */ }
      }
    }
  } catch { /* gone */ }
  return out
}

/** CPU of a changing set of processes: each counted from when it is first seen to when it is last seen. */
class CpuTally {
  private readonly first = new Map<number, number>()
  private readonly last = new Map<number, number>()
  sample(pids: number[]): void {
    for (const pid of pids) {
      const s = cpuSeconds(pid)
      if (s === null) continue
      if (!this.first.has(pid)) this.first.set(pid, s)
      this.last.set(pid, s)
    }
  }
  seconds(): number {
    let sum = 0
    for (const [pid, s] of this.last) sum += s - this.first.get(pid)!
    return sum
  }
  get processes(): number {
    return this.first.size
  }
}

/** The relay's counts of persisted video fragments (init segments included) of one stream, and their bytes. */
async function persisted(httpPort: number, stream: string): Promise<{ fragments: number; bytes: number }> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  const sum = (metric: string) => text.split('\n').filter((l) => l.startsWith(`${metric}{`) && l.includes(`stream="${stream}"`)).reduce((a, l) => a + Number(l.split(' ').pop()), 0)
  return { fragments: sum('tributary_video_fragments_persisted_total'), bytes: sum('tributary_video_bytes_persisted_total') }
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-video-agent-'))
const children: ChildProcess[] = []
const cleanup = () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
process.on('exit', cleanup)

if (!existsSync(join(root, 'dist/agent/entry.js'))) throw new Error('dist/ is missing: run npm run build first')
const relay = spawn(process.execPath, ['--import', 'tsx', join(root, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
children.push(relay)
const relayReady = await readyLine(relay, 'tributary relay ready', 'the relay')
relay.stdout!.resume()
const mqttPort = Number(/mqtt:\/\/[^:]+:(\d+)/.exec(relayReady)![1])
const httpPort = Number(/http:\/\/[^:]+:(\d+)/.exec(relayReady)![1])

// The camera: stdin stays open, the server exits when it closes.
const rtsp = spawn('/usr/bin/python3', [join(root, 'test/helpers/rtsp-server.py'), '--width', String(WIDTH), '--height', String(HEIGHT), '--fps', String(FPS), '--gop', String((FPS * FRAGMENT_MS) / 1000), '--bitrate', String(BITRATE_KBPS), '--path', '/cam'], { stdio: ['pipe', 'pipe', 'ignore'] })
children.push(rtsp)
const rtspUrl = /READY (rtsp:\/\/\S+)/.exec(await readyLine(rtsp, 'READY', 'the RTSP test server'))![1]!
rtsp.stdout!.resume()

// The agent exactly as the unit starts it: the same V8 flags as its ExecStart.
const execStart = /^ExecStart=@NODE@ (.*) @AGENT@ /m.exec(readFileSync(join(root, 'deploy/tributary-agent.service'), 'utf8'))
const nodeFlags = execStart ? execStart[1]!.split(' ') : []

const cases = [
  { name: 'synthetic-encode', camera: `{ type: camera, name: synth, stream: bench-synthetic, input: synthetic, width: ${WIDTH}, height: ${HEIGHT}, fps: ${FPS}, bitrateKbps: ${BITRATE_KBPS}, fragmentMs: ${FRAGMENT_MS}, codec: encode }`, stream: 'bench-synthetic' },
  { name: 'rtsp-copy', camera: `{ type: camera, name: rtsp, stream: bench-rtsp, input: rtsp, url: "${rtspUrl}", width: ${WIDTH}, height: ${HEIGHT}, fps: ${FPS}, bitrateKbps: ${BITRATE_KBPS}, fragmentMs: ${FRAGMENT_MS}, codec: copy }`, stream: 'bench-rtsp' },
]

console.log('benchmark,input,size,fps,seconds,agent_cpu_pct_of_one_core,agent_rss_mean_mb,agent_rss_max_mb,ffmpeg_cpu_pct,ffmpeg_processes,camera_server_cpu_pct,fragments_persisted,mb_persisted_per_s,camera_state,ffmpeg_restarts,backlog_fragments')
let ok = true
for (const c of cases) {
  const caseDir = join(dir, c.name)
  const config = join(dir, `${c.name}.yaml`)
  writeFileSync(config, [
    `device: bench-video-${c.name}`, 'relay:', `  url: mqtt://127.0.0.1:${mqttPort}`,
    'outbox:', `  path: ${join(caseDir, 'outbox.db')}`, 'status:', '  port: 0', 'streams: {}', 'sources:', `  - ${c.camera}`,
  ].join('\n'))
  const agent = spawn(process.execPath, [...nodeFlags, join(root, 'dist/agent/entry.js'), 'agent', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(agent)
  let agentErr = ''
  agent.stderr!.on('data', (d: Buffer) => { agentErr = (agentErr + d.toString()).slice(-4000) })
  const ready = await readyLine(agent, 'tributary agent ready', `the agent (${c.name})`).catch((err: Error) => { throw new Error(`${err.message}: ${agentErr}`) })
  const statusPort = Number(/status=http:\/\/[^:]+:(\d+)/.exec(ready)![1])
  agent.stdout!.resume()
  const pid = agent.pid!
  process.stderr.write(`${c.name}: warming up for ${warmup} s, then measuring for ${seconds} s\n`)
  await sleep(warmup * 1000)

  const ffmpeg = new CpuTally()
  ffmpeg.sample(childrenNamed(pid, 'ffmpeg'))
  const camera0 = cpuSeconds(rtsp.pid!)!
  const cpu0 = cpuSeconds(pid)!
  const before = await persisted(httpPort, c.stream)
  const t0 = performance.now()
  const rss: number[] = []
  for (let i = 0; i < seconds; i++) {
    await sleep(1000)
    rss.push(rssMB(pid))
    ffmpeg.sample(childrenNamed(pid, 'ffmpeg'))
    if (i % 10 === 9) process.stderr.write(`  ${i + 1} s: rss ${rss.at(-1)!.toFixed(1)} MB\n`)
  }
  const elapsed = (performance.now() - t0) / 1000
  const cpuPct = ((cpuSeconds(pid)! - cpu0) / elapsed) * 100
  const ffmpegPct = (ffmpeg.seconds() / elapsed) * 100
  const cameraPct = c.name.startsWith('rtsp') ? (((cpuSeconds(rtsp.pid!)! - camera0) / elapsed) * 100).toFixed(1) : '-'
  const after = await persisted(httpPort, c.stream)
  const stored = after.fragments - before.fragments
  const bytesPerS = (after.bytes - before.bytes) / elapsed
  const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { video?: { cameras: Record<string, { state: string; sessions: number; restarts: Record<string, number>; backlog: { fragments: number }; errors: Record<string, number> }> } }
  const cam = Object.values(status.video?.cameras ?? {})[0]
  const restarts = cam ? Object.values(cam.restarts).reduce((a, b) => a + b, 0) : NaN
  const maxRss = Math.max(...rss)
  const meanRss = rss.reduce((a, b) => a + b, 0) / rss.length
  console.log(`video-agent,${c.name},${WIDTH}x${HEIGHT},${FPS},${elapsed.toFixed(1)},${cpuPct.toFixed(2)},${meanRss.toFixed(1)},${maxRss.toFixed(1)},${ffmpegPct.toFixed(1)},${ffmpeg.processes},${cameraPct},${stored},${(bytesPerS / 1e6).toFixed(2)},${cam?.state ?? '-'},${restarts},${cam?.backlog.fragments ?? '-'}`)
  const within = cpuPct < CPU_LIMIT_PCT && maxRss < RSS_LIMIT_MB && stored > 0
  process.stderr.write(`${c.name}: agent cpu ${cpuPct.toFixed(2)} % (limit ${CPU_LIMIT_PCT} %), rss max ${maxRss.toFixed(1)} MB (limit ${RSS_LIMIT_MB} MB), ffmpeg ${ffmpegPct.toFixed(1)} %, ${stored} fragments persisted: ${within ? 'within limits' : 'OVER A LIMIT or nothing persisted'}\n`)
  ok &&= within
  agent.kill('SIGTERM')
  await new Promise((r) => agent.once('exit', r))
}
rtsp.kill('SIGTERM')
relay.kill('SIGTERM')
await new Promise((r) => relay.once('exit', r))
process.exit(ok ? 0 : 1)
