/**
 * Video fragments the relay persists, beside their ceilings, in one run. 1080p H.264 from ffmpeg
 * (testsrc2 at 2 Mbit/s, a key frame every 2 s: fragments of ~500 KB) is split once with the camera's
 * Mp4Splitter; devices (mqtt.js, in their own process) send its fragments again and again under new
 * sequence numbers of one session each, as chunk frames of at most 96 KiB (QoS 1) on their video
 * topic, with a window like the agent's (fragments between first chunk and answer, chunks without a
 * PUBACK). Measured, each for the same time:
 *
 *   1. the relay (in this process): a fragment counts when its PERSISTED ack arrives (file fsynced,
 *      directory too, catalog row committed); latency from handing its first chunk to mqtt.js to that
 *      ack;
 *   2. a bare aedes broker that stores nothing (the transport ceiling): a fragment counts at the
 *      PUBACK of its last chunk;
 *   3. the disk alone (the storage ceiling): 500 KB files written and fsynced by `devices` writers at
 *      once, as the relay's file store does it (new file, write, fsync, close, fsync the directory),
 *      and without the directory's fsync.
 *
 * CSV on stdout, progress on stderr. Floor (issue 12): the relay persists ≥ 200 fragments/s of 500 KB.
 * Usage: npx tsx bench/video-relay.ts [devices=4] [seconds=10] [windowFragments=2] [windowChunks=4]
 * (the devices' process runs this file with `devices` as its first argument).
 */
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { codec, Mp4Splitter } from '../hardware/index.js'
import { topics } from '../shared/topics.js'
import { V_OFF_PRODUCER_TIME, V_OFF_SEQUENCE, encodeFragmentChunks, type VideoAck } from '../shared/video.js'

const FLOOR_FRAGMENTS_PER_S = 200
const STREAM = 'bench-1080p'

/** What the devices' process reports. */
interface DeviceRun {
  fragments: number
  bytes: number
  seconds: number
  p50Ms: number
  p99Ms: number
  errors: Record<string, number>
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!
}

// ---------------------------------------------------------------------------------------------
// The devices' process: `video-relay.ts devices PORT CLIPDIR MODE DEVICES SECONDS WF WC`
// ---------------------------------------------------------------------------------------------

async function runDevices(args: string[]): Promise<void> {
  const [portArg, clipDir, mode, devicesArg, secondsArg, wfArg, wcArg] = args as [string, string, 'persisted' | 'puback', string, string, string, string]
  const [port, devices, seconds, windowFragments, windowChunks] = [portArg, devicesArg, secondsArg, wfArg, wcArg].map(Number) as [number, number, number, number, number]
  const init = readFileSync(join(clipDir, 'init.mp4'))
  const media = readdirSync(clipDir).filter((f) => f.endsWith('.m4s')).sort().map((f) => readFileSync(join(clipDir, f)))
  const latencies: number[] = []
  const errors: Record<string, number> = {}
  let fragments = 0
  let bytes = 0
  const started = performance.now()
  const deadline = started + seconds * 1000

  async function device(d: number): Promise<void> {
    const id = `bench-cam-${d}`
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0 })
    const session = randomBytes(8).readBigUInt64LE(0)
    // Chunks made ahead per distinct fragment; each send copies them and stamps its own sequence.
    const templates = media.map((f) => encodeFragmentChunks({ session, sequence: 1, init: false, keyFrame: true, clockSynced: true, fragmentBytes: f.length, crc32c: codec.crc32c(f), producerTimeMs: Date.now(), durationMs: 2000 }, f))
    const initChunks = encodeFragmentChunks({ session, sequence: 0, init: true, keyFrame: false, clockSynced: true, fragmentBytes: init.length, crc32c: codec.crc32c(init), producerTimeMs: Date.now(), durationMs: 0 }, init)
    /** Fragments sent and not yet answered: sequence → when its first chunk went, and its size. */
    const inFlight = new Map<number, { t0: number; size: number }>()
    let wake: (() => void) | null = null
    const settle = (sequence: number, status: string, code?: string) => {
      const f = inFlight.get(sequence)
      if (!f) return
      inFlight.delete(sequence)
      if (status === 'PERSISTED' || status === 'PUBACK') {
        if (sequence !== 0) {
          fragments++
          bytes += f.size
          latencies.push(performance.now() - f.t0)
        }
      } else {
        errors[code ?? status] = (errors[code ?? status] ?? 0) + 1
      }
      wake?.()
    }
    client.on('message', (_topic, payload) => {
      const ack = JSON.parse(payload.toString()) as VideoAck
      if (ack.status !== 'RECEIVED') settle(ack.sequence, ack.status, ack.code)
    })
    if (mode === 'persisted') await client.subscribeAsync(topics.videoAcks(id), { qos: 1 })
    let unacked = 0
    const topic = topics.video(id, STREAM)
    const sendFragment = async (sequence: number, chunks: Buffer[], size: number) => {
      inFlight.set(sequence, { t0: performance.now(), size })
      // One producer time per fragment: every chunk's header must agree with chunk 0's.
      const producerTimeMs = Date.now()
      for (const [i, template] of chunks.entries()) {
        while (unacked >= windowChunks) await new Promise<void>((r) => { wake = r })
        const chunk = Buffer.from(template)
        if (sequence !== 0) {
          chunk.writeBigUInt64LE(BigInt(sequence), V_OFF_SEQUENCE)
          chunk.writeDoubleLE(producerTimeMs, V_OFF_PRODUCER_TIME)
        }
        unacked++
        const last = i === chunks.length - 1
        client.publish(topic, chunk, { qos: 1 }, (err) => {
          unacked--
          if (err) settle(sequence, 'ERROR', err.message)
          else if (last && mode === 'puback') settle(sequence, 'PUBACK')
          wake?.()
        })
      }
    }
    await sendFragment(0, initChunks, init.length)
    while (inFlight.size > 0) await new Promise<void>((r) => { wake = r })
    let sequence = 1
    while (performance.now() < deadline) {
      while (inFlight.size >= windowFragments) await new Promise<void>((r) => { wake = r })
      const k = (sequence - 1) % templates.length
      await sendFragment(sequence, templates[k]!, media[k]!.length)
      sequence++
    }
    while (inFlight.size > 0) await new Promise<void>((r) => { wake = r })
    await client.endAsync()
  }

  await Promise.all(Array.from({ length: devices }, (_, d) => device(d)))
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const run: DeviceRun = { fragments, bytes, seconds: elapsed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), errors }
  console.log(JSON.stringify(run))
}

// ---------------------------------------------------------------------------------------------
// The bench: brokers in this process, devices in a child.
// ---------------------------------------------------------------------------------------------

/** ~500 KB fragments of 1080p: 10 s of testsrc2 at 30 fps and 2 Mbit/s, a key frame every 2 s. */
function makeClip(dir: string): { init: number; fragments: number[] } {
  const out = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', '-t', '10',
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-b:v', '2M', '-maxrate', '2M', '-bufsize', '4M', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-write_prft', 'wallclock', '-f', 'mp4', 'pipe:1',
  ], { maxBuffer: 64 * 1024 * 1024 })
  if (out.status !== 0) throw new Error(`ffmpeg failed: ${out.stderr.toString()}`)
  const sizes: number[] = []
  let init = 0
  for (const unit of new Mp4Splitter().push(out.stdout)) {
    if (unit.kind === 'init') {
      writeFileSync(join(dir, 'init.mp4'), unit.data)
      init = unit.data.length
    } else {
      writeFileSync(join(dir, `${String(sizes.length + 1).padStart(4, '0')}.m4s`), unit.data)
      sizes.push(unit.data.length)
    }
  }
  if (init === 0 || sizes.length === 0) throw new Error('ffmpeg gave no init segment or no fragment')
  return { init, fragments: sizes }
}

/** Files written and fsynced by `writers` at once for `seconds`: new file, write, fsync, close, [fsync its directory]. */
async function diskRate(dir: string, size: number, writers: number, seconds: number, syncDir: boolean): Promise<{ files: number; seconds: number; p50Ms: number; p99Ms: number }> {
  const data = randomBytes(size)
  const times: number[] = []
  let files = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    const sub = join(dir, `w${w}`)
    mkdirSync(sub)
    for (let n = 0; performance.now() < deadline; n++) {
      const t0 = performance.now()
      const handle = await open(join(sub, `${String(n).padStart(16, '0')}.m4s`), 'wx', 0o600)
      try {
        await handle.writeFile(data)
        await handle.sync()
      } finally {
        await handle.close()
      }
      if (syncDir) {
        const d = await open(sub, 'r')
        try { await d.sync() } finally { await d.close() }
      }
      times.push(performance.now() - t0)
      files++
    }
  }))
  times.sort((a, b) => a - b)
  return { files, seconds: (performance.now() - started) / 1000, p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) }
}

async function main(): Promise<void> {
  const devices = Number(process.argv[2] ?? 4)
  const seconds = Number(process.argv[3] ?? 10)
  const windowFragments = Number(process.argv[4] ?? 2)
  const windowChunks = Number(process.argv[5] ?? 4)
  const self = fileURLToPath(import.meta.url)
  const work = mkdtempSync(join(tmpdir(), 'tributary-bench-video-'))
  const clipDir = join(work, 'clip')
  mkdirSync(clipDir)
  process.on('exit', () => rmSync(work, { recursive: true, force: true }))

  process.stderr.write('encoding 10 s of 1080p testsrc2 at 2 Mbit/s…\n')
  const clip = makeClip(clipDir)
  const meanFragment = clip.fragments.reduce((a, b) => a + b, 0) / clip.fragments.length
  process.stderr.write(`  init ${clip.init} B, ${clip.fragments.length} fragments of ${clip.fragments.map((s) => Math.round(s / 1000)).join(', ')} KB\n`)

  const send = (port: number, mode: 'persisted' | 'puback') => new Promise<DeviceRun>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', self, 'devices', String(port), clipDir, mode, String(devices), String(seconds), String(windowFragments), String(windowChunks)], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`devices failed: ${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as DeviceRun)
    })
  })
  const mb = (bytes: number, s: number) => (bytes / s / 1e6).toFixed(1)
  const row = (name: string, r: { fragments: number; bytes: number; seconds: number; p50Ms: number | null; p99Ms: number | null }, extra: string) =>
    console.log(`${name},${devices},${windowFragments},${windowChunks},${r.fragments},${r.seconds.toFixed(2)},${Math.round(r.fragments / r.seconds)},${mb(r.bytes, r.seconds)},${r.p50Ms?.toFixed(1) ?? '-'},${r.p99Ms?.toFixed(1) ?? '-'},${extra}`)

  console.log('benchmark,devices,window_fragments,window_chunks,fragments,seconds,fragments_per_s,mb_per_s,p50_ms,p99_ms,notes')

  process.stderr.write(`relay (PERSISTED after fsync and commit), ${devices} devices for ${seconds} s…\n`)
  const { resolveRelayConfig } = await import('../shared/config.js')
  const { startRelay } = await import('../relay/relay.js')
  const dataDir = join(work, 'relay')
  const relay = await startRelay(resolveRelayConfig({}, process.env, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true }), () => {})
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const durable = await send(relay.mqttPort, 'persisted')
  const cpu = process.cpuUsage(cpu0)
  const relayCpuPct = ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100
  const stored = readdirSync(join(dataDir, 'video'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.m4s')).length
  await relay.close()
  const errs = Object.entries(durable.errors).map(([k, v]) => `${k}=${v}`).join(' ')
  row('video-relay-persisted', durable, `relay process cpu ${relayCpuPct.toFixed(0)}% of a core; ${stored} fragment files stored${errs ? `; errors ${errs}` : ''}`)
  rmSync(dataDir, { recursive: true, force: true })

  process.stderr.write('bare aedes (stores nothing; a fragment counts at its last chunk\'s PUBACK)…\n')
  const { Aedes } = await import('aedes')
  const bare = await Aedes.createBroker()
  const server = net.createServer(bare.handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const ceiling = await send((server.address() as net.AddressInfo).port, 'puback')
  row('video-bare-aedes-ceiling', ceiling, Object.keys(ceiling.errors).length ? `errors ${JSON.stringify(ceiling.errors)}` : '-')
  await new Promise<void>((resolve) => bare.close(() => resolve()))
  server.close()

  for (const syncDir of [true, false]) {
    process.stderr.write(`disk: ${Math.round(meanFragment / 1000)} KB files, ${devices} writers, write+fsync${syncDir ? '+directory fsync' : ''}…\n`)
    const dir = join(work, `disk-${syncDir}`)
    mkdirSync(dir)
    const disk = await diskRate(dir, Math.round(meanFragment), devices, seconds, syncDir)
    row(syncDir ? 'disk-write-fsync-dirsync' : 'disk-write-fsync', { ...disk, fragments: disk.files, bytes: disk.files * Math.round(meanFragment) }, syncDir ? 'as the relay stores a fragment file' : 'file fsync only')
    rmSync(dir, { recursive: true, force: true })
  }

  const rate = durable.fragments / durable.seconds
  process.stderr.write(`relay ${Math.round(rate)} fragments/s of ~${Math.round(meanFragment / 1000)} KB (floor ${FLOOR_FRAGMENTS_PER_S}): ${rate >= FLOOR_FRAGMENTS_PER_S ? 'above' : 'BELOW'} the floor; relay / bare aedes ${(rate / (ceiling.fragments / ceiling.seconds)).toFixed(2)}\n`)
}

if (process.argv[2] === 'devices') await runDevices(process.argv.slice(3))
else await main()
