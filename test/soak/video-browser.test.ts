/**
 * The video console in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core, kept off the network) signs in with the admin token on the login form, then
 * - plays LIVE a synthetic camera on a real agent process (2 s fragments) with the playhead within 8 s
 *   of the camera's clock: latency = now − the playhead's EXT-X-PROGRAM-DATE-TIME (the camera's
 *   producer time; agent, relay and browser share this machine's clock), printed;
 * - shows moving video: two screenshots of the video element 1 s apart differ;
 * - plays ON_DEMAND across a capture session change (two ffmpeg encodes sent as two sessions) to the
 *   end with no hls.js or media error (non-fatal notices of a player starved by a loaded machine are
 *   printed, not failed), the timeline drawn, the thumbnail strip filled by GetImages.
 * Soak tier (real time, about a minute): `npm run test:soak`.
 */
import t from 'tap'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { chromiumMissing, launchChromium, until } from '../helpers/browser.js'
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { testRelay } from '../helpers/relay.js'
import { spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'
import { chunksOf, clip, videoDevice } from '../relay/video-fixtures.js'

const KEY = { accessKeyId: 'AKIDBROWSERTEST', secretAccessKey: 'browser-secret' }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface ViewerError { type: string; details: string; fatal: boolean }
interface Viewer { errors: ViewerError[]; mode: string | null; ready?: boolean; images: number; timeline: { spans: unknown[]; gaps: unknown[] } | null; latencyMs(): number | null }
declare const window: { viewer: Viewer; viewerPlay(mode: string, fromMs?: number): Promise<void> }
declare const document: { getElementById(id: string): { currentTime: number; paused: boolean; ended: boolean } | null; querySelectorAll(s: string): { length: number } }

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

t.test('the console plays LIVE within 8 s of the camera, moving, and ON_DEMAND across a session change with no error', { skip: chromiumMissing }, async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t, { accessKeys: [KEY], httpHost: '127.0.0.1' })
  const kvs = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => kvs.destroy())
  await kvs.send(new CreateStreamCommand({ StreamName: 'gate-cam', DataRetentionInHours: 1, MediaType: 'video/h264' }))
  await kvs.send(new CreateStreamCommand({ StreamName: 'archive', DataRetentionInHours: 1, MediaType: 'video/h264' }))

  // The ON_DEMAND stream: two capture sessions, two separate ffmpeg encodes, one after the other.
  const d = await videoDevice(t, relay.mqttPort, 'cam-archive')
  const t0 = Date.now() - 600_000
  let seq = 0
  for (const [session, c, fromMs] of [[1n, clip(8, 1), t0], [2n, clip(6, 1), t0 + 8000]] as const) {
    await d.send('archive', chunksOf(session, 0, c.init))
    await d.until(0, 'PERSISTED', session)
    for (const [i, f] of c.fragments.entries()) {
      seq = i + 1
      await d.send('archive', chunksOf(session, seq, f, { producerTimeMs: fromMs + i * 1000, durationMs: 1000 }))
      await d.until(seq, 'PERSISTED', session)
    }
  }

  // The LIVE camera: a real agent with a synthetic camera, 2 s fragments.
  const config = writeAgentConfig(dir, {
    device: 'gate-1',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    status: { port: 0 },
    streams: {},
    sources: [{ type: 'camera', name: 'gate', stream: 'gate-cam', input: 'synthetic', width: 320, height: 240, fps: 10, bitrateKbps: 300, fragmentMs: 2000 }],
  })
  const agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })

  const context = await launchChromium(t, dir, { args: ['--autoplay-policy=no-user-gesture-required'] })
  const page: Page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))

  // Sign in through the login form.
  await page.goto(`${relay.endpoint}/console/video`)
  await page.fill('#token', 'wrong-token')
  await page.click('button[type=submit]')
  await page.waitForFunction(() => (document.getElementById('login-error') as unknown as { textContent: string }).textContent !== '')
  t.match(await page.textContent('#login-error'), /admin token wrong/, 'a wrong token is refused on the form')
  await page.fill('#token', relay.adminToken)
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
  await page.waitForSelector('#video')
  const cookie = (await page.context().cookies()).find((c) => c.name === 'tributary_console')!
  t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/console' }, 'the session cookie')
  await page.waitForFunction(() => window.viewer.ready === true)
  t.same(await page.$$eval('#stream option', (os) => os.map((o) => (o as unknown as { value: string }).value)), ['archive', 'gate-cam'])

  // LIVE: wait for the camera's first fragments, then play.
  await until('the camera has fragments on the relay', async () => (await relay.video.store.list({ streamId: relay.video.streams.get('gate-cam')!.id, by: 'number', limit: 3 })).length >= 2, 30_000)
  await page.selectOption('#stream', 'gate-cam')
  await page.click('#live')
  await page.waitForFunction(() => { const v = document.getElementById('video'); return Boolean(v && v.currentTime > 0 && !v.paused) }, undefined, { timeout: 30_000 })
  const samples: number[] = []
  for (let i = 0; i < 20; i++) {
    await sleep(1000)
    const ms = await page.evaluate(() => window.viewer.latencyMs())
    if (ms !== null) samples.push(ms)
  }
  t.ok(samples.length >= 15, `latency sampled ${samples.length} times`)
  const p50 = percentile(samples, 0.5)
  const max = Math.max(...samples)
  console.log(`# LIVE latency (now − playhead's program date time), 2 s fragments: p50 ${(p50 / 1000).toFixed(2)} s, p95 ${(percentile(samples, 0.95) / 1000).toFixed(2)} s, max ${(max / 1000).toFixed(2)} s over ${samples.length} samples`)
  t.ok(max < 8000, `the playhead stays within 8 s of the camera's clock (max ${(max / 1000).toFixed(2)} s)`)
  t.ok(Math.min(...samples) > 0, 'the playhead is behind now, not ahead')

  // Moving video: two screenshots of the video element 1 s apart differ.
  const a = await page.locator('#video').screenshot()
  await sleep(1000)
  const b = await page.locator('#video').screenshot()
  t.notOk(a.equals(b), 'two screenshots 1 s apart differ')
  const liveErrors = await page.evaluate(() => window.viewer.errors)
  t.same(liveErrors.filter((e) => e.fatal), [], 'no fatal error while LIVE')

  // ON_DEMAND across the session change, to the end.
  await page.selectOption('#stream', 'archive')
  await page.waitForFunction(() => window.viewer.timeline !== null && window.viewer.timeline.spans.length > 0)
  t.match(await page.evaluate(() => window.viewer.timeline), { spans: [{ startMs: t0, endMs: t0 + 14_000, fragments: 14 }], gaps: [] }, 'the timeline: one span of 14 s across both sessions')
  await page.evaluate((from) => { window.viewer.errors = []; return window.viewerPlay('ON_DEMAND', from) }, t0)
  await page.waitForFunction(() => { const v = document.getElementById('video'); return Boolean(v && (v.ended || v.currentTime >= 13.5)) }, undefined, { timeout: 45_000 })
  const end = await page.evaluate(() => document.getElementById('video')!.currentTime)
  t.ok(end >= 13.5, `played across the session change to ${end.toFixed(2)} s of 14`)
  // A loaded machine (CI runs the soak files in parallel) can starve the player: hls.js then reports
  // non-fatal notices that it handles itself (a stall, a nudge past it, a fragment it fetched again
  // that added nothing to the buffer). Those are printed; anything else (a fatal error, a hole it
  // seeks over at the session change, a parsing or append error) fails.
  const onDemandErrors = await page.evaluate(() => window.viewer.errors)
  const loadNotices = new Set(['bufferStalledError', 'bufferNudgeOnStall', 'bufferAppendNoProgress'])
  const notices = onDemandErrors.filter((e) => !e.fatal && e.type === 'mediaError' && loadNotices.has(e.details))
  if (notices.length) console.log(`# ON_DEMAND, non-fatal notices under load: ${JSON.stringify(notices)}`)
  t.same(onDemandErrors.filter((e) => !notices.includes(e)), [], 'no hls.js or media error ON_DEMAND (beyond non-fatal notices of a starved player)')
  await page.waitForFunction(() => window.viewer.images > 0, undefined, { timeout: 20_000 }).catch(() => {})
  const thumbs = await page.$$eval('#thumbs img', (is) => is.length)
  t.ok(thumbs > 0, `the thumbnail strip shows ${thumbs} GetImages thumbnails`)
  t.same(pageErrors, [], 'no script error on the page')
})
