/**
 * HLS playback through the real SDK (@aws-sdk/client-kinesis-video-archived-media's
 * GetHLSStreamingSessionURL, endpoint overridden) and real players (ffprobe/ffmpeg's HLS demuxer)
 * over fragments a device sent over MQTT: ON_DEMAND plays the stored duration and decodes every frame,
 * a capture session change plays across an EXT-X-DISCONTINUITY and a second EXT-X-MAP, LIVE follows
 * new fragments (plain and blocking reloads) and never adds a backfilled one, LIVE_REPLAY is paced on
 * the relay's clock, MPEG_TS plays, and tokens (expired, forged), ranges with nothing in them and
 * deleted streams are answered as AWS answers them. Time-dependent outcomes run on a manual clock.
 */
import t from 'tap'
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamCommand } from '@aws-sdk/client-kinesis-video'
import { GetHLSStreamingSessionURLCommand, KinesisVideoArchivedMediaClient, type GetHLSStreamingSessionURLInput } from '@aws-sdk/client-kinesis-video-archived-media'
import { manualClock, type TestClock } from '../helpers/relay.js'
import { chunksOf, clip, failure, run, videoDevice, videoRelay, type Clip, type VideoDevice } from './video-fixtures.js'

const KEY = { accessKeyId: 'AKIDHLSTEST', secretAccessKey: 'hls-secret' }
const T0 = 1_900_000_000_000

interface Sent { producerMs: number; number: string }

/**
 * A device sends `c`'s init segment as `session`, then its fragments with producer times from
 * `fromMs`, `fragmentMs` apart (`skip` leaves gaps), the relay's clock moving `stepMs` before each.
 */
async function send(d: VideoDevice, clock: TestClock | null, stream: string, c: Clip, o: { session: bigint; fromMs: number; fragmentMs: number; stepMs?: number; count?: number; skip?: number[]; seqFrom?: number }): Promise<Sent[]> {
  const seq0 = o.seqFrom ?? 1
  if (seq0 === 1) {
    await d.send(stream, chunksOf(o.session, 0, c.init))
    await d.until(0, 'PERSISTED', o.session)
  }
  const out: Sent[] = []
  const count = o.count ?? c.fragments.length
  for (let i = 0; i < count; i++) {
    if (o.skip?.includes(i)) continue
    if (clock) clock.advance(o.stepMs ?? o.fragmentMs)
    const seq = seq0 + i
    const producerMs = o.fromMs + i * o.fragmentMs
    // The capture's own fragment at that place, so its media time goes on as a camera's does.
    await d.send(stream, chunksOf(o.session, seq, c.fragments[(seq - 1) % c.fragments.length]!, { producerTimeMs: producerMs, durationMs: o.fragmentMs }))
    out.push({ producerMs, number: (await d.until(seq, 'PERSISTED', o.session)).fragmentNumber! })
  }
  return out
}

async function sessionUrl(archive: KinesisVideoArchivedMediaClient, input: GetHLSStreamingSessionURLInput): Promise<string> {
  return (await archive.send(new GetHLSStreamingSessionURLCommand(input))).HLSStreamingSessionURL!
}

/** The media playlist a master playlist names, fetched. */
async function mediaPlaylist(master: string): Promise<{ url: string; text: string }> {
  const text = await (await fetch(master)).text()
  const line = text.split('\n').find((l) => l.startsWith('getHLSMediaPlaylist.m3u8'))!
  const url = new URL(line, master).toString()
  return { url, text: await (await fetch(url)).text() }
}

/** ffprobe's duration and frame count of a URL, and what ffmpeg says decoding all of it (nothing, when it decodes cleanly). */
async function play(url: string): Promise<{ duration: number; frames: number; errors: string }> {
  const probe = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=nb_read_frames', '-of', 'json', url])
  const json = JSON.parse(probe.stdout) as { format: { duration: string }; streams: { nb_read_frames: string }[] }
  const decode = await run('ffmpeg', ['-hide_banner', '-v', 'error', '-i', url, '-f', 'null', '-'])
  return { duration: Number(json.format.duration), frames: Number(json.streams[0]!.nb_read_frames), errors: (probe.stderr + decode.stderr).trim() }
}

/** Lines starting with `tag` (EXT-X-DISCONTINUITY alone: not its -SEQUENCE). */
const count = (text: string, tag: string) => text.split('\n').filter((l) => (tag === '#EXT-X-DISCONTINUITY' ? l === tag : l.startsWith(tag))).length

t.test('ON_DEMAND plays the stored fragments (ffprobe: their duration, every frame decoded) as AWS\'s playlist shape', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'porch', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-1')
  const c = clip(20, 1)
  const sent = await send(d, clock, 'porch', c, { session: 11n, fromMs: T0, fragmentMs: 1000 })
  t.equal(sent.length, 20)
  const url = await sessionUrl(archive, {
    StreamName: 'porch', PlaybackMode: 'ON_DEMAND',
    HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(T0), EndTimestamp: new Date(T0 + 60_000) } },
  })
  t.match(url, new RegExp(`^${relay.endpoint}/hls/v1/getHLSMasterPlaylist\\.m3u8\\?SessionToken=[A-Za-z0-9_-]+$`), 'a URL on the relay, AWS\'s shape')

  const master = await fetch(url)
  t.equal(master.headers.get('content-type'), 'application/vnd.apple.mpegurl')
  const masterText = await master.text()
  t.match(masterText, /^#EXTM3U\n/)
  t.match(masterText, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.42C0..",RESOLUTION=320x240\n/)
  const { text } = await mediaPlaylist(url)
  t.match(text, /#EXT-X-VERSION:7\n/)
  t.match(text, /#EXT-X-TARGETDURATION:1\n/)
  t.match(text, /#EXT-X-MEDIA-SEQUENCE:0\n/)
  t.match(text, /#EXT-X-PLAYLIST-TYPE:VOD\n/)
  t.match(text, /#EXT-X-ENDLIST\n$/)
  t.equal(count(text, '#EXTINF:'), 20, 'one segment per fragment')
  t.equal(count(text, '#EXT-X-MAP:'), 1, 'one init segment: one capture session')
  t.equal(count(text, '#EXT-X-DISCONTINUITY'), 0, 'PRODUCER_TIMESTAMP: DiscontinuityMode NEVER by default')
  t.equal(count(text, '#EXT-X-PROGRAM-DATE-TIME'), 0, 'DisplayFragmentTimestamp NEVER by default')
  t.same(text.split('\n').filter((l) => l.startsWith('getMP4MediaFragment')).map((l) => new URL(l, url).searchParams.get('FragmentNumber')), sent.map((s) => s.number), 'the fragments, oldest first, by their numbers')

  const played = await play(url)
  t.ok(Math.abs(played.duration - 20) <= 1, `ffprobe: ${played.duration} s of 20 s stored (± 1 fragment)`)
  t.equal(played.frames, 200, 'every frame (20 s at 10 fps) is read')
  t.equal(played.errors, '', 'decoded with no error')

  // A narrower range, by server time (ALWAYS discontinuities by default), MaxMediaPlaylistFragmentResults.
  const narrow = await sessionUrl(archive, {
    StreamName: 'porch', PlaybackMode: 'ON_DEMAND', MaxMediaPlaylistFragmentResults: 4, DisplayFragmentTimestamp: 'ALWAYS',
    HLSFragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(T0 + 5000), EndTimestamp: new Date(T0 + 60_000) } },
  })
  const n = (await mediaPlaylist(narrow)).text
  t.equal(count(n, '#EXTINF:'), 4, 'the oldest 4 of the range')
  t.equal(count(n, '#EXT-X-DISCONTINUITY'), 3, 'SERVER_TIMESTAMP: a discontinuity between every fragment (ALWAYS)')
  t.same(n.split('\n').filter((l) => l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')).map((l) => l.slice(25)),
    [5, 6, 7, 8].map((s) => new Date(T0 + s * 1000).toISOString()), 'EXT-X-PROGRAM-DATE-TIME: the server timestamps (fragments stored 1 s apart on the relay\'s clock)')
})

t.test('a capture session change plays across EXT-X-DISCONTINUITY and a second EXT-X-MAP; gaps follow DiscontinuityMode', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'gate', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-2')
  const c = clip(6, 1)
  // ffmpeg restarted: a second session, its init segment and timestamps from 0 again; a fragment of it lost (a gap).
  await send(d, clock, 'gate', c, { session: 21n, fromMs: T0, fragmentMs: 1000 })
  await send(d, clock, 'gate', c, { session: 22n, fromMs: T0 + 8000, fragmentMs: 1000, skip: [3] })
  const range = { StartTimestamp: new Date(T0), EndTimestamp: new Date(T0 + 60_000) }
  const url = await sessionUrl(archive, { StreamName: 'gate', PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })
  const { text } = await mediaPlaylist(url)
  t.equal(count(text, '#EXTINF:'), 11)
  t.equal(count(text, '#EXT-X-MAP:'), 2, 'each session its own init segment')
  const lines = text.split('\n')
  const disc = lines.indexOf('#EXT-X-DISCONTINUITY')
  t.ok(disc > 0 && lines[disc + 1]!.startsWith('#EXT-X-MAP:'), 'the discontinuity, then the new session\'s EXT-X-MAP')
  t.equal(count(text, '#EXT-X-DISCONTINUITY'), 1, 'NEVER: only the session change (its timestamps start again) is marked')
  const played = await play(url)
  t.equal(played.frames, 110, 'every frame of both sessions is read')
  t.equal(played.errors, '', 'and decodes with no error')

  const onGap = (await mediaPlaylist(await sessionUrl(archive, { StreamName: 'gate', PlaybackMode: 'ON_DEMAND', DiscontinuityMode: 'ON_DISCONTINUITY', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } }))).text
  t.equal(count(onGap, '#EXT-X-DISCONTINUITY'), 2, 'ON_DISCONTINUITY: the session change and the 1 s gap')
  const alwaysUrl = await sessionUrl(archive, { StreamName: 'gate', PlaybackMode: 'ON_DEMAND', DiscontinuityMode: 'ALWAYS', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })
  t.equal(count((await mediaPlaylist(alwaysUrl)).text, '#EXT-X-DISCONTINUITY'), 10, 'ALWAYS: between every two fragments')
  const alwaysPlayed = await play(alwaysUrl)
  t.equal(alwaysPlayed.frames, 110)
  t.equal(alwaysPlayed.errors, '', 'which plays too')
})

t.test('LIVE lists the newest fragments as they are persisted (plain and blocking reloads) and never adds a backfilled one', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'yard', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-3')
  const c = clip(12, 1)
  const first = await send(d, clock, 'yard', c, { session: 31n, fromMs: T0, fragmentMs: 1000, count: 3 })
  const url = await sessionUrl(archive, { StreamName: 'yard', MaxMediaPlaylistFragmentResults: 3, HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP' } })
  const { url: media, text } = await mediaPlaylist(url)
  const numbers = (p: string) => p.split('\n').filter((l) => l.startsWith('getMP4MediaFragment')).map((l) => new URL(l, media).searchParams.get('FragmentNumber'))
  t.same(numbers(text), first.map((s) => s.number), 'the newest three')
  t.match(text, /#EXT-X-MEDIA-SEQUENCE:0\n/)
  t.notMatch(text, /#EXT-X-ENDLIST/, 'a live playlist does not end')
  t.match(text, /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n/)
  t.notMatch(text, /#EXT-X-PLAYLIST-TYPE/)

  const more = await send(d, clock, 'yard', c, { session: 31n, fromMs: T0 + 3000, fragmentMs: 1000, count: 2, seqFrom: 4 })
  const reload = await (await fetch(media)).text()
  t.same(numbers(reload), [first[2]!.number, ...more.map((s) => s.number)], 'a plain reload: the window slid by two')
  t.match(reload, /#EXT-X-MEDIA-SEQUENCE:2\n/, 'each fragment keeps its media sequence number')

  // A blocking reload for the next segment (msn 5) is answered once it is persisted.
  const started = Date.now()
  const blocked = fetch(`${media}&_HLS_msn=5`).then((r) => r.text())
  await new Promise((r) => setTimeout(r, 300))
  const next = await send(d, clock, 'yard', c, { session: 31n, fromMs: T0 + 5000, fragmentMs: 1000, count: 1, seqFrom: 6 })
  const answered = await blocked
  t.equal(numbers(answered).pop(), next[0]!.number, 'the blocked reload answers with the new fragment')
  t.match(answered, /#EXT-X-MEDIA-SEQUENCE:3\n/)
  t.ok(Date.now() - started < 3000, `within three target durations (${Date.now() - started} ms)`)

  // A fragment from the past arriving late (an agent's backfill) is not added to a live playlist.
  await send(d, clock, 'yard', c, { session: 31n, fromMs: T0 - 60_000, fragmentMs: 1000, count: 1, seqFrom: 7 })
  t.same(numbers(await (await fetch(media)).text()), numbers(answered), 'the backfilled fragment is not listed')
  const after = await send(d, clock, 'yard', c, { session: 31n, fromMs: T0 + 6000, fragmentMs: 1000, count: 1, seqFrom: 8 })
  const latest = await (await fetch(media)).text()
  t.equal(numbers(latest).pop(), after[0]!.number, 'newer fragments still are')
  t.match(latest, /#EXT-X-MEDIA-SEQUENCE:4\n/)

  // A live playlist has no end: ffmpeg plays 2.5 s of it from its first segment, then stops.
  const live = await run('ffmpeg', ['-hide_banner', '-v', 'error', '-live_start_index', '0', '-i', url, '-t', '2.5', '-f', 'null', '-'])
  t.equal(live.stderr.trim(), '', 'ffmpeg plays the live window with no error')

  clock.advance(31_000)
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'yard' }))), { name: 'ResourceNotFoundException', status: 404, message: /No fragments found.*30 seconds/ }, 'LIVE needs a fragment from the last 30 s')
})

t.test('LIVE_REPLAY adds each fragment as the one before it has played on the relay\'s clock, then ends at EndTimestamp', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'dock', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-4')
  const c = clip(8, 1)
  const sent = await send(d, clock, 'dock', c, { session: 41n, fromMs: T0, fragmentMs: 1000, stepMs: 100 })
  const url = await sessionUrl(archive, {
    StreamName: 'dock', PlaybackMode: 'LIVE_REPLAY', MaxMediaPlaylistFragmentResults: 10,
    HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(T0 + 2000), EndTimestamp: new Date(T0 + 5000) } },
  })
  const { url: media, text } = await mediaPlaylist(url)
  const numbers = (p: string) => p.split('\n').filter((l) => l.startsWith('getMP4MediaFragment')).map((l) => new URL(l, media).searchParams.get('FragmentNumber'))
  t.same(numbers(text), [sent[2]!.number], 'at first, the fragment at StartTimestamp')
  clock.advance(1000)
  t.same(numbers(await (await fetch(media)).text()), [sent[2]!.number, sent[3]!.number], 'a second later, the next')
  clock.advance(2000)
  const all = await (await fetch(media)).text()
  t.same(numbers(all), sent.slice(2, 6).map((s) => s.number), 'up to EndTimestamp (inclusive)')
  t.match(all, /#EXT-X-ENDLIST\n$/, 'and then it ends')
})

t.test('MPEG_TS sessions serve TS segments (ffmpeg -c copy) that play', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'shed', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-5')
  await send(d, clock, 'shed', clip(6, 1), { session: 51n, fromMs: T0, fragmentMs: 1000 })
  const url = await sessionUrl(archive, {
    StreamName: 'shed', PlaybackMode: 'ON_DEMAND', ContainerFormat: 'MPEG_TS',
    HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(T0), EndTimestamp: new Date(T0 + 10_000) } },
  })
  const { url: media, text } = await mediaPlaylist(url)
  t.match(text, /#EXT-X-VERSION:3\n/)
  t.equal(count(text, '#EXT-X-MAP'), 0)
  t.equal(count(text, 'getTSFragment.ts?'), 6)
  const segment = await fetch(new URL(text.split('\n').find((l) => l.startsWith('getTSFragment'))!, media))
  t.equal(segment.headers.get('content-type'), 'video/mp2t')
  t.equal(Buffer.from(await segment.arrayBuffer())[0], 0x47, 'an MPEG-TS packet (sync byte)')
  const played = await play(url)
  t.equal(played.frames, 60)
  t.ok(Math.abs(played.duration - 6) <= 1, `duration ${played.duration} s`)
  t.equal(played.errors, '')
  const mp4Url = new URL(media)
  mp4Url.pathname = '/hls/v1/getMP4MediaFragment.mp4'
  t.match(await (await fetch(mp4Url)).json(), { message: /ContainerFormat is MPEG_TS/ })
})

t.test('tokens: expired and forged are refused 403; empty ranges, bad parameters and deleted streams answer AWS\'s errors', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'lane', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-6')
  await send(d, clock, 'lane', clip(4, 1), { session: 61n, fromMs: T0, fragmentMs: 1000 })
  const range = { StartTimestamp: new Date(T0), EndTimestamp: new Date(T0 + 10_000) }
  const url = await sessionUrl(archive, { StreamName: 'lane', PlaybackMode: 'ON_DEMAND', Expires: 300, HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })
  const { url: media, text } = await mediaPlaylist(url)
  t.equal((await fetch(media)).status, 200)

  const refused = async (u: string) => {
    const r = await fetch(u)
    return { status: r.status, type: r.headers.get('x-amzn-errortype'), message: ((await r.json()) as { message: string }).message }
  }
  const token = new URL(url).searchParams.get('SessionToken')!
  const forged = token.slice(0, 20) + (token[20] === 'A' ? 'B' : 'A') + token.slice(21)
  t.match(await refused(url.replace(token, forged)), { status: 403, type: 'NotAuthorizedException', message: /not valid/ }, 'one character changed: refused')
  t.match(await refused(url.replace(token, 'garbage')), { status: 403, type: 'NotAuthorizedException' })
  t.match(await refused(`${relay.endpoint}/hls/v1/getHLSMasterPlaylist.m3u8`), { status: 403, message: /no SessionToken/ })
  const fragment = new URL(text.split('\n').find((l) => l.startsWith('getMP4MediaFragment'))!, media)
  fragment.searchParams.set('FragmentNumber', '9'.padEnd(47, '0'))
  t.match(await refused(fragment.toString()), { status: 404, type: 'ResourceNotFoundException' }, 'a fragment not in the stream')

  clock.advance(299_000)
  t.equal((await fetch(media)).status, 200, 'valid until Expires')
  clock.advance(1000)
  t.match(await refused(media), { status: 403, type: 'NotAuthorizedException', message: /expired/ }, 'expired on the relay\'s clock')

  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(T0 + 3_600_000), EndTimestamp: new Date(T0 + 3_700_000) } } }))),
    { name: 'ResourceNotFoundException', status: 404, message: /^No fragments found/ }, 'a range with no fragments')
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', Expires: 299 }))), { name: 'InvalidArgumentException', message: /at 'expires' failed to satisfy constraint: Member must have value greater than or equal to 300/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', MaxMediaPlaylistFragmentResults: 5001 }))), { name: 'InvalidArgumentException', message: /maxMediaPlaylistFragmentResults/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', HLSFragmentSelector: { TimestampRange: range } }))), { name: 'InvalidArgumentException', message: /must not be set when PlaybackMode is LIVE/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', PlaybackMode: 'ON_DEMAND' }))), { name: 'InvalidArgumentException', message: /required when PlaybackMode is ON_DEMAND/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { TimestampRange: { StartTimestamp: range.StartTimestamp } } }))), { name: 'InvalidArgumentException', message: /EndTimestamp is required/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { TimestampRange: { StartTimestamp: new Date(T0), EndTimestamp: new Date(T0 + 25 * 3_600_000) } } }))), { name: 'InvalidArgumentException', message: /within 24 hours/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane', PlaybackMode: 'BACKWARDS' as 'LIVE' }))), { name: 'InvalidArgumentException', message: /enum value set: \[LIVE, LIVE_REPLAY, ON_DEMAND\]/ })
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'nowhere' }))), { name: 'ResourceNotFoundException', status: 404 })

  const fresh = await sessionUrl(archive, { StreamName: 'lane', PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } })
  const { StreamInfo } = await video.send(new DescribeStreamCommand({ StreamName: 'lane' }))
  await video.send(new DeleteStreamCommand({ StreamARN: StreamInfo!.StreamARN }))
  t.match(await refused(fresh), { status: 404, type: 'ResourceNotFoundException' }, 'the session of a deleted stream')
  t.match(await failure(archive.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'lane' }))), { name: 'ResourceNotFoundException', status: 404 })
})

t.test('GetHLSStreamingSessionURL is signed (SigV4, kinesisvideo) while the HLS GETs need only their token', async (t) => {
  const { relay, video, archive } = await videoRelay(t, KEY)
  await video.send(new CreateStreamCommand({ StreamName: 'roof', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-7')
  const now = Date.now()
  await send(d, null, 'roof', clip(4, 1), { session: 71n, fromMs: now - 10_000, fragmentMs: 1000 })
  const url = await sessionUrl(archive, { StreamName: 'roof' })
  const { text } = await mediaPlaylist(url)
  t.equal(count(text, '#EXTINF:'), 4, 'LIVE: the unsigned GETs are served by token')
  const unsigned = await fetch(`${relay.endpoint}/getHLSStreamingSessionURL`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: 'roof' }) })
  t.equal(unsigned.status, 403, 'the POST without a signature is refused')
  t.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
})
