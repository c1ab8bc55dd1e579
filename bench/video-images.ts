/**
 * GetImages on the relay (issue 13): images/s at 640x360 JPEG (quality 80), cold (every time point a
 * key frame not yet decoded: ffmpeg decodes it, sharp scales and encodes it) beside warm (the same
 * requests again: every image from the cache), for each source size.
 *
 * The relay runs in this process with `fragments` one-second fragments (a key frame each) of
 * testsrc2 per source size (20 s encoded once and stored again and again, each 20 s as a capture
 * session of its own, as a camera restarted: each stored fragment is its own cache entry, so cold
 * stays cold). One client asks for the whole range in pages of 25
 * (AWS's page size) at SamplingInterval 1000 ms, one page after another: `fragments` images a pass.
 * The cache's hits and misses are read from /metrics after each pass, so a warm pass that decoded
 * anything says so.
 *
 * CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/video-images.ts [fragments=300] [warmPasses=3] [sources=640x360,1280x720]
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { codec, Mp4Splitter } from '../hardware/index.js'

const WIDTH = 640
const HEIGHT = 360

function encode(size: string): { init: Buffer; fragments: Buffer[] } {
  const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=15`, '-t', '20',
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-b:v', '2M',
    '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1'], { maxBuffer: 256 * 1024 * 1024 })
  if (ff.status !== 0) throw new Error(`ffmpeg: ${ff.stderr.toString()}`)
  let init: Buffer | null = null
  const fragments: Buffer[] = []
  for (const unit of new Mp4Splitter().push(ff.stdout)) {
    if (unit.kind === 'init') init = Buffer.from(unit.data)
    else fragments.push(Buffer.from(unit.data))
  }
  if (!init) throw new Error('no init segment')
  return { init, fragments }
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 300)
  const warmPasses = Number(process.argv[3] ?? 3)
  const sources = (process.argv[4] ?? '640x360,1280x720').split(',')
  if (count > 300) throw new Error('fragments: at most 300 (GetImages answers at most 300 s)')
  const work = mkdtempSync(join(tmpdir(), 'tributary-bench-images-'))
  process.on('exit', () => rmSync(work, { recursive: true, force: true }))

  const { resolveRelayConfig } = await import('../shared/config.js')
  const { startRelay } = await import('../relay/relay.js')
  const relay = await startRelay(resolveRelayConfig({}, process.env, { dataDir: join(work, 'relay'), mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, httpHost: '127.0.0.1', allowAnonymous: true }), () => {})
  const endpoint = `http://127.0.0.1:${relay.httpPort}`

  const counts = async () => {
    const text = await (await fetch(`${endpoint}/metrics`)).text()
    const get = (kind: string, outcome: string) => Number(new RegExp(`^tributary_video_image_cache_total\\{[^}]*kind="${kind}"[^}]*outcome="${outcome}"[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
    return { frameMiss: get('frame', 'miss'), imageHit: get('image', 'hit'), imageMiss: get('image', 'miss'), ffmpeg: get('ffmpeg', 'ok') + get('ffmpeg', 'failed') }
  }

  console.log('benchmark,source,images,seconds,images_per_s,p50_page_ms,p95_page_ms,notes')
  const results: { source: string; cold: number; warm: number }[] = []
  for (const source of sources) {
    process.stderr.write(`${source}: encoding 20 s of testsrc2 (a key frame each second)…\n`)
    const { init, fragments } = encode(source)
    const name = `bench-${source}`
    const stream = relay.video.streams.create({ name, retentionHours: 24 })
    const t0 = Date.now() - count * 1000 - 60_000
    const put = async (session: bigint, sequence: number, data: Buffer, producerTimeMs: number) => {
      const out = await relay.video.store.put({ stream, device: 'cam', session, sequence, producerTimeMs, clockSynced: true, data, crc32c: codec.crc32c(data) })
      if (!out.ok) throw new Error(out.message)
    }
    process.stderr.write(`${source}: storing ${count} fragments…\n`)
    for (let i = 0; i < count; i++) {
      const session = BigInt(Math.floor(i / fragments.length) + 1)
      const sequence = (i % fragments.length) + 1
      if (sequence === 1) await put(session, 0, init, t0 + i * 1000)
      await put(session, sequence, fragments[i % fragments.length]!, t0 + i * 1000)
    }

    const pass = async () => {
      const pages: number[] = []
      let images = 0
      let errors = 0
      let NextToken: string | undefined
      const start = performance.now()
      do {
        const t = performance.now()
        const res = await fetch(`${endpoint}/getImages`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ StreamName: name, ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: t0 / 1000, EndTimestamp: (t0 + count * 1000) / 1000, SamplingInterval: 1000, Format: 'JPEG', WidthPixels: WIDTH, HeightPixels: HEIGHT, MaxResults: 25, ...(NextToken ? { NextToken } : {}) }),
        })
        if (res.status !== 200) throw new Error(`GetImages answered ${res.status}: ${await res.text()}`)
        const page = await res.json() as { Images: { ImageContent?: string; Error?: string }[]; NextToken?: string }
        pages.push(performance.now() - t)
        for (const i of page.Images) i.ImageContent ? images++ : errors++
        NextToken = page.NextToken
      } while (NextToken)
      pages.sort((a, b) => a - b)
      return { images, errors, seconds: (performance.now() - start) / 1000, p50: pages[Math.floor(pages.length / 2)]!, p95: pages[Math.min(pages.length - 1, Math.floor(pages.length * 0.95))]! }
    }

    process.stderr.write(`${source}: cold pass (${count} key frames decoded)…\n`)
    const before = await counts()
    const cold = await pass()
    const afterCold = await counts()
    const coldRate = cold.images / cold.seconds
    console.log(`getimages-cold,${source},${cold.images},${cold.seconds.toFixed(2)},${coldRate.toFixed(1)},${cold.p50.toFixed(0)},${cold.p95.toFixed(0)},key frames decoded ${afterCold.frameMiss - before.frameMiss} by ${afterCold.ffmpeg - before.ffmpeg} ffmpeg runs; images made ${afterCold.imageMiss - before.imageMiss}${cold.errors ? `; ${cold.errors} without image` : ''}`)
    let warmImages = 0
    let warmSeconds = 0
    const warmPages: number[] = []
    for (let i = 0; i < warmPasses; i++) {
      process.stderr.write(`${source}: warm pass ${i + 1}/${warmPasses}…\n`)
      const warm = await pass()
      warmImages += warm.images
      warmSeconds += warm.seconds
      warmPages.push(warm.p50)
    }
    const afterWarm = await counts()
    const warmRate = warmImages / warmSeconds
    warmPages.sort((a, b) => a - b)
    console.log(`getimages-warm,${source},${warmImages},${warmSeconds.toFixed(2)},${warmRate.toFixed(1)},${warmPages[Math.floor(warmPages.length / 2)]!.toFixed(0)},-,${warmPasses} passes; cache hits ${afterWarm.imageHit - afterCold.imageHit}; key frames decoded ${afterWarm.frameMiss - afterCold.frameMiss}`)
    results.push({ source, cold: coldRate, warm: warmRate })
  }
  process.stderr.write(`\nGetImages at ${WIDTH}x${HEIGHT} JPEG q80, images/s:\n  source      cold     warm\n`)
  for (const r of results) process.stderr.write(`  ${r.source.padEnd(10)} ${r.cold.toFixed(1).padStart(6)}  ${r.warm.toFixed(1).padStart(7)}  (${(r.warm / r.cold).toFixed(0)}x)\n`)
  await relay.close()
}

await main()
