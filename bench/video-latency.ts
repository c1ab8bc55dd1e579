/**
 * LIVE HLS latency, camera to screen (issue 13): a synthetic camera on a real agent process (640x360
 * at 15 fps, `fragmentMs` fragments) into a relay in this process, watched LIVE on the relay's video
 * console by headless Chromium (Debian's chromium, playwright-core). Every 500 ms the page's latency is
 * read: now minus the playhead's EXT-X-PROGRAM-DATE-TIME (the camera's producer time: agent, relay
 * and browser share this machine's clock), after a 10 s warm-up, for `seconds`.
 *
 * CSV on stdout (fragment_ms,samples,p50_s,p95_s,max_s,stalls), progress on stderr.
 * Floor (issue 13): p95 < 6 s with 2 s fragments (Kinesis Video itself: 3–5 s).
 * Usage: npx tsx bench/video-latency.ts [seconds=45] [fragmentMs=2000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { resolveRelayConfig } from '../shared/config.js'
import { startRelay } from '../relay/relay.js'
import { spawnAgent, writeAgentConfig } from '../test/helpers/agent.js'

const FLOOR_P95_S = 6
const WARMUP_MS = 10_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
declare const window: { viewer: { latencyMs(): number | null; errors: { fatal: boolean }[] } }
declare const document: { getElementById(id: string): { currentTime: number; paused: boolean; readyState: number } | null }

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 45)
  const fragmentMs = Number(process.argv[3] ?? 2000)
  const dir = mkdtempSync(join(tmpdir(), 'video-latency-'))
  const relay = await startRelay(resolveRelayConfig({}, {}, { dataDir: join(dir, 'relay'), mqttHost: '127.0.0.1', mqttPort: 0, httpHost: '127.0.0.1', httpPort: 0, allowAnonymous: true }), () => {})
  const endpoint = `http://127.0.0.1:${relay.httpPort}`
  const agent = await spawnAgent(writeAgentConfig(dir, {
    device: 'bench-cam',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    status: { port: 0 },
    streams: {},
    sources: [{ type: 'camera', name: 'cam', stream: 'bench-cam', input: 'synthetic', width: 640, height: 360, fps: 15, bitrateKbps: 800, fragmentMs }],
  }))
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required'],
  })
  try {
    process.stderr.write('waiting for the camera\'s first fragments...\n')
    const deadline = Date.now() + 60_000
    for (;;) {
      const s = relay.video.streams.get('bench-cam')
      if (s && relay.video.store.list({ streamId: s.id, by: 'number', limit: 3 }).length >= 2) break
      if (Date.now() > deadline) throw new Error('the camera sent no fragments within 60 s')
      await sleep(250)
    }
    const page = await context.newPage()
    const login = await page.request.post(`${endpoint}/console/login`, { headers: { 'x-tributary-console': '1' }, data: { token: relay.adminToken } })
    if (login.status() !== 204) throw new Error(`console login answered ${login.status()}`)
    await page.goto(`${endpoint}/console/video?stream=bench-cam&mode=LIVE`)
    await page.waitForFunction(() => { const v = document.getElementById('video'); return Boolean(v && v.currentTime > 0 && !v.paused) }, undefined, { timeout: 30_000 })
    process.stderr.write(`playing LIVE; warming up ${WARMUP_MS / 1000} s, then sampling for ${seconds} s\n`)
    await sleep(WARMUP_MS)
    const samples: number[] = []
    let stalls = 0
    const end = Date.now() + seconds * 1000
    while (Date.now() < end) {
      await sleep(500)
      const { ms, starving } = await page.evaluate(() => ({ ms: window.viewer.latencyMs(), starving: (document.getElementById('video')?.readyState ?? 0) < 3 }))
      if (ms !== null) samples.push(ms / 1000)
      if (starving) stalls++
    }
    const fatal = (await page.evaluate(() => window.viewer.errors)).filter((e) => e.fatal).length
    if (fatal) throw new Error(`${fatal} fatal playback errors`)
    samples.sort((a, b) => a - b)
    const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!
    const p95 = at(0.95)
    console.log('fragment_ms,samples,p50_s,p95_s,max_s,stalls')
    console.log([fragmentMs, samples.length, at(0.5).toFixed(2), p95.toFixed(2), samples[samples.length - 1]!.toFixed(2), stalls].join(','))
    process.stderr.write(`LIVE latency p95 ${p95.toFixed(2)} s: ${p95 < FLOOR_P95_S ? 'meets' : 'MISSES'} the floor (< ${FLOOR_P95_S} s)\n`)
  } finally {
    await context.close()
    agent.process.kill('SIGKILL')
    await relay.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`)
  process.exit(1)
})
