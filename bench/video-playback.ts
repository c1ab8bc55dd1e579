/**
 * Video playback on the relay (issue 13): GetClip throughput and HLS serving rates, the relay in
 * this process, its clients in their own.
 *
 *   1. GetClip: the largest clip AWS allows (200 fragments of ~500 KB of 1080p: ~100 MB), its
 *      fragments in the page cache (one clip fetched first), fetched by curl to /dev/null again and
 *      again: MB/s and time to the first byte (the moov, made before any sample is sent).
 *   2. HLS: the media playlist of an ON_DEMAND session of those 200 fragments, and of a LIVE
 *      session's window of 5 (plain reloads), and its MP4 media fragments (with their tfdt rewritten),
 *      each requested by `concurrency` clients (Node fetch in a child process) for `seconds`:
 *      requests/s and MB/s.
 *
 * CSV on stdout, progress on stderr. Floor (issue 13): GetClip ≥ 100 MB/s from the page cache.
 * Usage: npx tsx bench/video-playback.ts [seconds=5] [concurrency=8] [clips=5]
 * (the clients' process runs this file with `client` as its first argument).
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { codec, Mp4Splitter } from '../hardware/index.js'

const FLOOR_CLIP_MB_S = 100
const FRAGMENTS = 200
const run = promisify(execFile)

// ---------------------------------------------------------------------------------------------
// The clients' process: `video-playback.ts client SECONDS CONCURRENCY URL...` → JSON on stdout
// ---------------------------------------------------------------------------------------------

async function runClients(args: string[]): Promise<void> {
  const [secondsArg, concurrencyArg, ...urls] = args as [string, string, ...string[]]
  const seconds = Number(secondsArg)
  const concurrency = Number(concurrencyArg)
  let requests = 0
  let bytes = 0
  let failed = 0
  let next = 0
  const end = performance.now() + seconds * 1000
  const worker = async () => {
    while (performance.now() < end) {
      const url = urls[next++ % urls.length]!
      const res = await fetch(url)
      const body = Buffer.from(await res.arrayBuffer())
      if (res.status !== 200) failed++
      requests++
      bytes += body.length
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  console.log(JSON.stringify({ requests, bytes, failed, seconds: (performance.now() - t0) / 1000 }))
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5)
  const concurrency = Number(process.argv[3] ?? 8)
  const clips = Number(process.argv[4] ?? 5)
  const self = fileURLToPath(import.meta.url)
  const work = mkdtempSync(join(tmpdir(), 'tributary-bench-playback-'))
  process.on('exit', () => rmSync(work, { recursive: true, force: true }))

  process.stderr.write('encoding 10 s of 1080p testsrc2 at 4 Mbit/s, a key frame each second…\n')
  const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=15', '-t', '10',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-b:v', '4M', '-minrate', '4M', '-maxrate', '4M', '-bufsize', '1M',
    '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1'], { maxBuffer: 256 * 1024 * 1024 })
  if (ff.status !== 0) throw new Error(`ffmpeg: ${ff.stderr.toString()}`)
  let init: Buffer | null = null
  const fragments: Buffer[] = []
  for (const unit of new Mp4Splitter().push(ff.stdout)) {
    if (unit.kind === 'init') init = Buffer.from(unit.data)
    else fragments.push(Buffer.from(unit.data))
  }
  if (!init) throw new Error('no init segment')
  const mean = fragments.reduce((s, f) => s + f.length, 0) / fragments.length
  process.stderr.write(`  ${fragments.length} fragments of ~${Math.round(mean / 1000)} KB\n`)

  const { resolveRelayConfig } = await import('../shared/config.js')
  const { startRelay } = await import('../relay/relay.js')
  const relay = await startRelay(resolveRelayConfig({}, process.env, { dataDir: join(work, 'relay'), mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, httpHost: '127.0.0.1', allowAnonymous: true }), () => {})
  const endpoint = `http://127.0.0.1:${relay.httpPort}`
  const stream = relay.video.streams.create({ name: 'bench', retentionHours: 24 })
  const t0 = Date.now() - FRAGMENTS * 1000
  const put = async (sequence: number, data: Buffer, producerTimeMs: number) => {
    const out = await relay.video.store.put({ stream, device: 'cam', session: 1n, sequence, producerTimeMs, clockSynced: true, data, crc32c: codec.crc32c(data) })
    if (!out.ok) throw new Error(out.message)
  }
  process.stderr.write(`storing ${FRAGMENTS} fragments…\n`)
  await put(0, init, t0)
  for (let i = 0; i < FRAGMENTS; i++) await put(i + 1, fragments[i % fragments.length]!, t0 + i * 1000)

  const post = async (path: string, body: object) => {
    const res = await fetch(`${endpoint}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    return res
  }
  const range = { StartTimestamp: t0 / 1000, EndTimestamp: (t0 + FRAGMENTS * 1000) / 1000 }
  const clipBody = JSON.stringify({ StreamName: 'bench', ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })

  console.log('benchmark,requests,seconds,requests_per_s,mb_per_s,first_byte_ms,notes')

  process.stderr.write(`GetClip of ${FRAGMENTS} fragments, ${clips + 1} times with curl (the first warms the page cache)…\n`)
  const rates: number[] = []
  const firstBytes: number[] = []
  let size = 0
  for (let i = 0; i <= clips; i++) {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_starttransfer} %{time_total}', '-X', 'POST', '-H', 'content-type: application/json', '--data', clipBody, `${endpoint}/getClip`])
    const [code, bytes, first, total] = stdout.split(' ').map(Number) as [number, number, number, number]
    if (code !== 200) throw new Error(`GetClip answered ${code}`)
    size = bytes
    if (i === 0) continue
    rates.push(bytes / total / 1e6)
    firstBytes.push(first * 1000)
  }
  rates.sort((a, b) => a - b)
  firstBytes.sort((a, b) => a - b)
  const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!
  const clipRate = median(rates)
  console.log(`getclip-page-cache,${clips},-,-,${clipRate.toFixed(0)},${median(firstBytes).toFixed(1)},clip ${(size / 1e6).toFixed(1)} MB (median of ${clips}; min ${rates[0]!.toFixed(0)} max ${rates[rates.length - 1]!.toFixed(0)} MB/s); floor ${FLOOR_CLIP_MB_S} MB/s: ${clipRate >= FLOOR_CLIP_MB_S ? 'met' : 'NOT MET'}`)

  const session = async (body: object) => {
    const { HLSStreamingSessionURL: url } = await (await post('/getHLSStreamingSessionURL', { StreamName: 'bench', ...body })).json() as { HLSStreamingSessionURL: string }
    const master = await (await fetch(url)).text()
    const media = new URL(master.split('\n').find((l) => l.startsWith('getHLSMediaPlaylist'))!, url).toString()
    const playlist = await (await fetch(media)).text()
    const segments = playlist.split('\n').filter((l) => l.startsWith('getMP4MediaFragment')).map((l) => new URL(l, media).toString())
    return { media, segments }
  }
  const clients = async (name: string, urls: string[], notes: string) => {
    process.stderr.write(`${name}: ${concurrency} clients for ${seconds} s…\n`)
    const { stdout } = await run(process.execPath, ['--import', 'tsx', self, 'client', String(seconds), String(concurrency), ...urls], { maxBuffer: 16 * 1024 * 1024 })
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { requests: number; bytes: number; failed: number; seconds: number }
    console.log(`${name},${r.requests},${r.seconds.toFixed(2)},${Math.round(r.requests / r.seconds)},${(r.bytes / r.seconds / 1e6).toFixed(1)},-,${notes}${r.failed ? `; ${r.failed} failed` : ''}`)
  }
  const onDemand = await session({ PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })
  await clients('hls-media-playlist-on-demand', [onDemand.media], `${onDemand.segments.length} segments a playlist`)
  // A LIVE session needs a fragment of the last 30 s: one more, stored now.
  await put(FRAGMENTS + 1, fragments[0]!, Date.now())
  const live = await session({ PlaybackMode: 'LIVE' })
  await clients('hls-media-playlist-live', [live.media], `window of ${live.segments.length} (plain reloads)`)
  await clients('hls-mp4-media-fragment', onDemand.segments, `~${Math.round(mean / 1000)} KB fragments, tfdt rewritten`)
  await relay.close()
}

if (process.argv[2] === 'client') await runClients(process.argv.slice(3))
else await main()
