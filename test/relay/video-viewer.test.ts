/**
 * The video console (`/console/video`) without a browser: the page and its assets (hls.js from
 * node_modules) are served; without a session cookie the page is the login form and the API answers
 * 401; a wrong admin token is refused; the right one gives an HttpOnly, SameSite=Strict cookie that
 * expires on the relay's (manual) clock; POSTs need the CSRF header; and the cookie-authenticated API
 * lists streams, fragments and the timeline's gaps, and answers an HLS URL that ffprobe plays — on a
 * relay with access keys (SigV4 on) and on one without (the console still wants the admin token).
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { manualClock, testRelay, type TestClock } from '../helpers/relay.js'
import { chunksOf, clip, videoDevice, type VideoDevice } from './video-fixtures.js'
import { CONSOLE_HEADERS as HEADER, consoleCookie as signIn } from '../helpers/console.js'

const exec = promisify(execFile)
const KEY = { accessKeyId: 'AKIDVIEWERTEST', secretAccessKey: 'viewer-secret' }

async function setup(t: Test, withKeys = true) {
  const clock = manualClock()
  const relay = await testRelay(t, withKeys ? { accessKeys: [KEY], httpHost: '127.0.0.1' } : { httpHost: '127.0.0.1' }, { clock })
  const video = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => video.destroy())
  return { relay, clock, video }
}

async function login(endpoint: string, token: string): Promise<Response> {
  return fetch(`${endpoint}/console/login`, { method: 'POST', headers: HEADER, body: JSON.stringify({ token }) })
}


function api(endpoint: string, name: string, body: unknown, cookie?: string, headers: Record<string, string> = HEADER): Promise<Response> {
  return fetch(`${endpoint}/console/api/${name}`, { method: 'POST', headers: { ...headers, ...(cookie ? { cookie } : {}) }, body: JSON.stringify(body) })
}

/** The device sends an init segment, then fragments `fragmentMs` apart from `fromMs`, leaving out those in `skip`. */
async function send(d: VideoDevice, clock: TestClock, stream: string, o: { session: bigint; fromMs: number; count: number; skip?: number[]; seqFrom?: number }): Promise<void> {
  const c = clip(20, 1)
  const seq0 = o.seqFrom ?? 1
  await d.send(stream, chunksOf(o.session, 0, c.init))
  await d.until(0, 'PERSISTED', o.session)
  for (let i = 0; i < o.count; i++) {
    if (o.skip?.includes(i)) continue
    clock.advance(1000)
    const seq = seq0 + i
    await d.send(stream, chunksOf(o.session, seq, c.fragments[(seq - 1) % c.fragments.length]!, { producerTimeMs: o.fromMs + i * 1000, durationMs: 1000 }))
    await d.until(seq, 'PERSISTED', o.session)
  }
}

t.test('the page and its assets are served; without a cookie the page is the login form and the API answers 401', async (t) => {
  const { relay } = await setup(t)
  const page = await fetch(`${relay.endpoint}/console/video`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/)
  const html = await page.text()
  t.match(html, /<form id="login">/, 'the login form')
  t.notMatch(html, /<video/, 'not the viewer')
  const hls = await fetch(`${relay.endpoint}/console/assets/hls.min.js`)
  t.equal(hls.status, 200)
  t.match(hls.headers.get('content-type'), /^text\/javascript/)
  const body = await hls.text()
  t.ok(body.length > 100_000 && body.includes('Hls'), `hls.js from node_modules (${body.length} bytes)`)
  for (const asset of ['login.js', 'video.js', 'console.css']) t.equal((await fetch(`${relay.endpoint}/console/assets/${asset}`)).status, 200, asset)
  t.equal((await fetch(`${relay.endpoint}/console/assets/nothing.js`)).status, 404)
  const root = await fetch(`${relay.endpoint}/console`, { redirect: 'manual' })
  t.equal(root.status, 302)
  t.equal(root.headers.get('location'), '/console/devices', 'the console opens on its devices page')

  const noCookie = await api(relay.endpoint, 'streams', {})
  t.equal(noCookie.status, 401)
  t.match(await noCookie.json(), { code: 'AUTH_FAILED', message: /not signed in/ })
  // A /console path is the console's, never the Kinesis API's 404 or SigV4 refusal.
  t.equal((await fetch(`${relay.endpoint}/console/api/streams`, { method: 'POST', headers: { 'x-amz-target': 'Kinesis_20131202.ListStreams', ...HEADER } })).status, 401)
})

t.test('a wrong admin token is refused; the right one gives an HttpOnly SameSite=Strict cookie that opens the page and the API', async (t) => {
  const { relay } = await setup(t)
  const wrong = await login(relay.endpoint, 'x'.repeat(relay.adminToken.length))
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('set-cookie'), null, 'no cookie for a wrong token')
  t.equal((await login(relay.endpoint, '')).status, 401)
  t.equal((await fetch(`${relay.endpoint}/console/login`, { method: 'POST', headers: HEADER, body: 'not json' })).status, 400)
  const noHeader = await fetch(`${relay.endpoint}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: relay.adminToken }) })
  t.equal(noHeader.status, 403, 'a POST without the CSRF header is refused')
  t.equal(noHeader.headers.get('set-cookie'), null)

  const right = await login(relay.endpoint, relay.adminToken)
  t.equal(right.status, 204)
  const setCookie = right.headers.get('set-cookie')!
  t.match(setCookie, /^tributary_console=v1\.\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; /)
  t.match(setCookie, /; HttpOnly/)
  t.match(setCookie, /; SameSite=Strict/)
  t.match(setCookie, /; Path=\/console/)
  t.match(setCookie, /; Max-Age=43200/)
  const cookie = setCookie.split(';')[0]!

  const viewer = await (await fetch(`${relay.endpoint}/console/video`, { headers: { cookie } })).text()
  t.match(viewer, /<video id="video"/, 'the viewer page with the cookie')
  t.match(viewer, /<script src="\/console\/assets\/hls\.min\.js"><\/script>/)
  t.equal((await api(relay.endpoint, 'streams', {}, cookie)).status, 200)
  t.equal((await api(relay.endpoint, 'streams', {}, cookie, { 'content-type': 'application/json' })).status, 403, 'the cookie without the CSRF header is refused')
  t.equal((await api(relay.endpoint, 'nothing', {}, cookie)).status, 404)

  // A forged tag, or a cookie edited to last longer, opens nothing.
  const [, value] = cookie.split('=') as [string, string]
  const parts = value.split('.')
  const forged = `tributary_console=${parts.slice(0, 3).join('.')}.${'A'.repeat(32)}`
  const longer = `tributary_console=v1.${Number(parts[1]) + 3600_000}.${parts[2]}.${parts[3]}`
  for (const bad of [forged, longer, 'tributary_console=garbage']) {
    t.equal((await api(relay.endpoint, 'streams', {}, bad)).status, 401, bad)
    t.match(await (await fetch(`${relay.endpoint}/console/video`, { headers: { cookie: bad } })).text(), /<form id="login">/)
  }
  const out = await fetch(`${relay.endpoint}/console/logout`, { method: 'POST', headers: { ...HEADER, cookie } })
  t.equal(out.status, 204)
  t.match(out.headers.get('set-cookie'), /^tributary_console=; .*Max-Age=0/)
})

t.test('the cookie expires after 12 hours on the relay\'s clock', async (t) => {
  const { relay, clock } = await setup(t)
  const cookie = await signIn(relay.endpoint, relay.adminToken)
  clock.advance(12 * 3600_000 - 1000)
  t.equal((await api(relay.endpoint, 'streams', {}, cookie)).status, 200, 'a second before expiry')
  clock.advance(1000)
  t.equal((await api(relay.endpoint, 'streams', {}, cookie)).status, 401, 'at expiry')
  t.match(await (await fetch(`${relay.endpoint}/console/video`, { headers: { cookie } })).text(), /<form id="login">/)
})

t.test('the API lists streams and fragments, draws the timeline\'s gaps, and answers an HLS URL ffprobe plays', async (t) => {
  const { relay, clock, video } = await setup(t)
  await video.send(new CreateStreamCommand({ StreamName: 'porch', DataRetentionInHours: 24 }))
  await video.send(new CreateStreamCommand({ StreamName: 'yard', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-1')
  const t0 = Math.floor(clock.now() / 1000) * 1000 - 60_000
  // Fragments 0-11 of 1 s, with 4 and 5 missing: spans [t0, t0+4 s) and [t0+6 s, t0+12 s).
  await send(d, clock, 'porch', { session: 7n, fromMs: t0, count: 12, skip: [4, 5] })
  const cookie = await signIn(relay.endpoint, relay.adminToken)

  const streams = await (await api(relay.endpoint, 'streams', {}, cookie)).json() as { StreamInfoList: { StreamName: string }[] }
  t.same(streams.StreamInfoList.map((s) => s.StreamName), ['porch', 'yard'])

  const fragments = await api(relay.endpoint, 'fragments', { StreamName: 'porch', MaxResults: 100 }, cookie)
  t.equal(fragments.status, 200)
  const listed = (await fragments.json() as { Fragments: { ProducerTimestamp: number }[] }).Fragments
  t.equal(listed.length, 10, 'ListFragments in-process: 10 fragments')

  const tl = await api(relay.endpoint, 'timeline', { StreamName: 'porch', StartTimestamp: (t0 - 3600_000) / 1000, EndTimestamp: (t0 + 3600_000) / 1000 }, cookie)
  t.equal(tl.status, 200)
  t.same(await tl.json(), {
    fromMs: t0 - 3600_000, toMs: t0 + 3600_000, fragments: 10, truncated: false,
    spans: [{ startMs: t0, endMs: t0 + 4000, fragments: 4 }, { startMs: t0 + 6000, endMs: t0 + 12_000, fragments: 6 }],
    gaps: [{ startMs: t0 + 4000, endMs: t0 + 6000 }],
  }, 'two spans and the 2 s gap between them')
  t.match(await (await api(relay.endpoint, 'timeline', { StreamName: 'nope', StartTimestamp: 0, EndTimestamp: 1 }, cookie)).json(), { code: 'ResourceNotFoundException' })
  t.equal((await api(relay.endpoint, 'timeline', { StreamName: 'porch', StartTimestamp: 'yesterday', EndTimestamp: 1 }, cookie)).status, 400)
  t.equal((await api(relay.endpoint, 'timeline', { StreamName: 'porch', StartTimestamp: 10, EndTimestamp: 1 }, cookie)).status, 400)
  const empty = await (await api(relay.endpoint, 'timeline', { StreamName: 'yard', StartTimestamp: t0 / 1000, EndTimestamp: t0 / 1000 + 60 }, cookie)).json()
  t.match(empty, { fragments: 0, spans: [], gaps: [] })

  // The cameras page: each stream's newest fragment, from which its tile's still is taken.
  const cameras = await (await api(relay.endpoint, 'cameras', {}, cookie)).json() as { now: number; cameras: { name: string; newest: { producerMs: number; serverMs: number; durationMs: number } | null }[] }
  t.equal(cameras.now, clock.now(), "the relay's clock, against which the page ages the newest video")
  t.same(cameras.cameras.map((c) => c.name), ['porch', 'yard'])
  t.same(cameras.cameras[0]!.newest, { producerMs: t0 + 11_000, serverMs: clock.now(), durationMs: 1000 }, 'porch: the last fragment sent')
  t.equal(cameras.cameras[1]!.newest, null, 'yard: no video yet')
  t.equal((await api(relay.endpoint, 'cameras', {})).status, 401, 'not without the cookie')

  const hls = await api(relay.endpoint, 'hls', {
    StreamName: 'porch', PlaybackMode: 'ON_DEMAND', DisplayFragmentTimestamp: 'ALWAYS',
    HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: t0 / 1000, EndTimestamp: (t0 + 60_000) / 1000 } },
  }, cookie)
  t.equal(hls.status, 200)
  const url = (await hls.json() as { HLSStreamingSessionURL: string }).HLSStreamingSessionURL
  t.match(url, new RegExp(`^${relay.endpoint}/hls/v1/getHLSMasterPlaylist\\.m3u8\\?SessionToken=`), 'a URL on the relay as the browser reached it')
  const probe = await exec('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=nb_read_frames', '-of', 'json', url], { timeout: 30_000 })
  const json = JSON.parse(probe.stdout) as { format: { duration: string }; streams: { nb_read_frames: string }[] }
  t.ok(Math.abs(Number(json.format.duration) - 10) < 0.6, `ffprobe reads the 10 stored seconds (${json.format.duration} s)`)
  t.equal(Number(json.streams[0]!.nb_read_frames), 100)
  // The thumbnail strip's call: GetImages in-process, JPEGs of the asked width, NO_MEDIA in the gap.
  const images = await api(relay.endpoint, 'images', {
    StreamName: 'porch', ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: t0 / 1000, EndTimestamp: (t0 + 12_000) / 1000,
    SamplingInterval: 2000, Format: 'JPEG', WidthPixels: 160, MaxResults: 12,
  }, cookie)
  t.equal(images.status, 200)
  const shown = (await images.json() as { Images: { TimeStamp: number; ImageContent?: string; Error?: string }[] }).Images
  t.same(shown.map((i) => i.TimeStamp * 1000 - t0), [0, 2000, 4000, 6000, 8000, 10_000], 'a time point every 2 s')
  t.same(shown.map((i) => i.Error ?? 'image'), ['image', 'image', 'NO_MEDIA', 'image', 'image', 'image'], 'NO_MEDIA in the gap')
  const jpeg = Buffer.from(shown[0]!.ImageContent!, 'base64')
  t.equal(jpeg.subarray(0, 3).toString('hex'), 'ffd8ff', 'a JPEG')
  const missing = await api(relay.endpoint, 'hls', { StreamName: 'yard', PlaybackMode: 'LIVE' }, cookie)
  t.equal(missing.status, 404)
  t.match(await missing.json(), { message: /No fragments found/ })
})

t.test('without access keys the console still wants the admin token', async (t) => {
  const { relay } = await setup(t, false)
  t.match(await (await fetch(`${relay.endpoint}/console/video`)).text(), /<form id="login">/)
  t.equal((await api(relay.endpoint, 'streams', {})).status, 401)
  const cookie = await signIn(relay.endpoint, relay.adminToken)
  t.equal((await api(relay.endpoint, 'streams', {}, cookie)).status, 200)
})
