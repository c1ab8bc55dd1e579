/**
 * GetClip through the real SDK (@aws-sdk/client-kinesis-video-archived-media, endpoint overridden)
 * over fragments a device sent over MQTT: a 10 s window is a plain (not fragmented) MP4 whose moov
 * comes first, of 10 ± 2 s by ffprobe, every frame decoding, its packets the stored fragments'
 * byte for byte (remuxed, not decoded); two capture sessions make one playable clip; AWS's limits
 * (200 fragments, 100 MB) and errors; SigV4 like the other actions.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video'
import { GetClipCommand, KinesisVideoArchivedMediaClient, type GetClipInput } from '@aws-sdk/client-kinesis-video-archived-media'
import { codec } from '../../hardware/index.js'
import { manualClock, type TestClock } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { chunksOf, clip, failure, run, splitFmp4, videoDevice, videoRelay, type Clip, type VideoDevice } from './video-fixtures.js'

const KEY = { accessKeyId: 'AKIDCLIPTEST', secretAccessKey: 'clip-secret' }
const T0 = 1_900_000_000_000

/** A device sends `c`'s init segment as `session`, then `count` of its fragments with producer times from `fromMs`, 1 s apart. */
async function send(d: VideoDevice, clock: TestClock | null, stream: string, c: Clip, session: bigint, fromMs: number, count = c.fragments.length): Promise<void> {
  await d.send(stream, chunksOf(session, 0, c.init))
  await d.until(0, 'PERSISTED', session)
  for (let seq = 1; seq <= count; seq++) {
    clock?.advance(1000)
    await d.send(stream, chunksOf(session, seq, c.fragments[(seq - 1) % c.fragments.length]!, { producerTimeMs: fromMs + (seq - 1) * 1000 }))
    await d.until(seq, 'PERSISTED', session)
  }
}

async function getClip(archive: KinesisVideoArchivedMediaClient, input: GetClipInput): Promise<{ contentType: string | undefined; bytes: Buffer }> {
  const out = await archive.send(new GetClipCommand(input))
  return { contentType: out.ContentType, bytes: Buffer.from(await out.Payload!.transformToByteArray()) }
}

/** The top-level MP4 boxes of a file, in order. */
function topBoxes(b: Buffer): string[] {
  const out: string[] = []
  for (let at = 0; at < b.length;) {
    let size = b.readUInt32BE(at)
    if (size === 1) size = Number(b.readBigUInt64BE(at + 8))
    out.push(b.toString('latin1', at + 4, at + 8))
    at += size
  }
  return out
}

/** ffprobe's MD5 of every video packet's data, in order. */
async function packetHashes(file: string): Promise<string[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=data_hash', '-show_data_hash', 'MD5', '-of', 'csv=p=0', file])
  return stdout.trim().split('\n')
}

const range = (fromMs: number, toMs: number, type: 'PRODUCER_TIMESTAMP' | 'SERVER_TIMESTAMP' = 'PRODUCER_TIMESTAMP') =>
  ({ FragmentSelectorType: type, TimestampRange: { StartTimestamp: new Date(fromMs), EndTimestamp: new Date(toMs) } })

t.test('a 10 s window is a progressive MP4 of 10 ± 2 s, moov first, every frame decoding, the stored samples byte for byte', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'porch', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-1')
  const c = clip(30, 1)
  await send(d, clock, 'porch', c, 1n, T0)
  const { contentType, bytes } = await getClip(archive, { StreamName: 'porch', ClipFragmentSelector: range(T0 + 10_000, T0 + 19_999) })
  t.equal(contentType, 'video/mp4')
  t.same(topBoxes(bytes), ['ftyp', 'moov', 'mdat'], 'not fragmented: one moov (first, so it plays as it downloads) and one mdat')
  const dir = tempDir(t)
  const file = join(dir, 'clip.mp4')
  writeFileSync(file, bytes)
  const probe = JSON.parse((await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration,format_name:stream=codec_name,width,height,nb_read_frames', '-of', 'json', file])).stdout) as {
    format: { duration: string; format_name: string }; streams: { codec_name: string; width: number; height: number; nb_read_frames: string }[]
  }
  const duration = Number(probe.format.duration)
  t.ok(Math.abs(duration - 10) <= 2, `ffprobe: ${duration} s`)
  t.match(probe.format.format_name, /mp4/)
  t.match(probe.streams[0], { codec_name: 'h264', width: 320, height: 240, nb_read_frames: '100' }, 'ten 1 s fragments at 10 fps')
  t.equal((await run('ffmpeg', ['-hide_banner', '-v', 'error', '-i', file, '-f', 'null', '-'])).stderr.trim(), '', 'decodes with no error')

  // The same fragments as stored (init + fragments 11..20 laid end to end): the same packets.
  const stored = join(dir, 'stored.mp4')
  writeFileSync(stored, Buffer.concat([c.init, ...c.fragments.slice(10, 20)]))
  t.same(await packetHashes(file), await packetHashes(stored), 'every packet is the stored sample, unchanged')

  // Server timestamps select as well: the relay's clock moved 1 s before each fragment.
  const byServer = await getClip(archive, { StreamName: 'porch', ClipFragmentSelector: range(T0 + 1000, T0 + 5000, 'SERVER_TIMESTAMP') })
  writeFileSync(join(dir, 'server.mp4'), byServer.bytes)
  t.equal((await packetHashes(join(dir, 'server.mp4'))).length, 50, 'five fragments by server time (inclusive bounds)')
})

t.test('a clip over a capture session change plays whole', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'gate', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-2')
  await send(d, clock, 'gate', clip(6, 1), 1n, T0)
  await send(d, clock, 'gate', clip(4, 2, '320x240'), 2n, T0 + 7000)
  const { bytes } = await getClip(archive, { StreamName: 'gate', ClipFragmentSelector: range(T0, T0 + 60_000) })
  const file = join(tempDir(t), 'clip.mp4')
  writeFileSync(file, bytes)
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=nb_read_frames', '-of', 'json', file])
  const probe = JSON.parse(stdout) as { format: { duration: string }; streams: { nb_read_frames: string }[] }
  t.equal(probe.streams[0]!.nb_read_frames, '100', 'both sessions\' frames')
  t.ok(Math.abs(Number(probe.format.duration) - 10) < 0.5, `${probe.format.duration} s: the sessions laid end to end`)
  t.equal((await run('ffmpeg', ['-hide_banner', '-v', 'error', '-i', file, '-f', 'null', '-'])).stderr.trim(), '')
})

t.test('AWS\'s limits: more than 200 fragments or 100 MB is refused; bad ranges and missing streams answer AWS\'s errors', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'many', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-3')
  await send(d, clock, 'many', clip(10, 1), 1n, T0, 201)
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'many', ClipFragmentSelector: range(T0, T0 + 200_000) }))),
    { name: 'InvalidArgumentException', status: 400, message: /more than 200 fragments/ }, '201 fragments: refused')
  const ok = await getClip(archive, { StreamName: 'many', ClipFragmentSelector: range(T0, T0 + 199_000) })
  t.equal(topBoxes(ok.bytes).join(' '), 'ftyp moov mdat', '200 fragments: served')

  // Large fragments (lossless noise, ~4.8 MB each) stored as the MQTT path stores them: 22 pass 100 MB.
  const noise = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', "nullsrc=s=640x480:r=10,geq=lum='random(1)*255':cb=128:cr=128", '-t', '2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-g', '10', '-keyint_min', '10', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1'], { maxBuffer: 64 * 1024 * 1024 })
  const big = splitFmp4(noise.stdout)
  const stream = relay.video.streams.create({ name: 'big', retentionHours: 24 })
  const put = async (sequence: number, data: Buffer, producerTimeMs: number) => {
    const out = await relay.video.store.put({ stream, device: 'cam-4', session: 4n, sequence, producerTimeMs, clockSynced: true, data, crc32c: codec.crc32c(data) })
    if (!out.ok) throw new Error(out.message)
  }
  await put(0, big.init, T0)
  for (let i = 0; i < 22; i++) await put(i + 1, big.fragments[i % big.fragments.length]!, T0 + i * 1000)
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'big', ClipFragmentSelector: range(T0, T0 + 60_000) }))),
    { name: 'InvalidArgumentException', message: /over the 100 MB GetClip returns/ }, `${22 * big.fragments[0]!.length} bytes: refused`)
  const some = await getClip(archive, { StreamName: 'big', ClipFragmentSelector: range(T0, T0 + 3000) })
  t.ok(some.bytes.length > 4 * big.fragments[0]!.length * 0.99, 'a shorter range of them is served')

  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'many', ClipFragmentSelector: range(T0 + 3_600_000, T0 + 3_700_000) }))), { name: 'ResourceNotFoundException', status: 404, message: /^No fragments found/ })
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'many', ClipFragmentSelector: range(T0 + 5000, T0 + 5000) }))), { name: 'InvalidArgumentException', message: /EndTimestamp must be later than StartTimestamp/ })
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'many', ClipFragmentSelector: range(T0, T0 + 25 * 3_600_000) }))), { name: 'InvalidArgumentException', message: /within 24 hours/ })
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'many' } as GetClipInput))), { name: 'InvalidArgumentException', message: /at 'clipFragmentSelector' failed to satisfy constraint: Member must not be null/ })
  t.match(await failure(archive.send(new GetClipCommand({ StreamName: 'nowhere', ClipFragmentSelector: range(T0, T0 + 1000) }))), { name: 'ResourceNotFoundException', status: 404 })
  t.match(await failure(archive.send(new GetClipCommand({ ClipFragmentSelector: range(T0, T0 + 1000) }))), { name: 'InvalidArgumentException', message: /StreamName or StreamARN/ })
})

t.test('GetClip is signed like the other actions (SigV4, kinesisvideo)', async (t) => {
  const { relay, video, archive } = await videoRelay(t, KEY)
  await video.send(new CreateStreamCommand({ StreamName: 'roof', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-5')
  const now = Date.now()
  await send(d, null, 'roof', clip(4, 1), 5n, now - 10_000)
  const { bytes } = await getClip(archive, { StreamName: 'roof', ClipFragmentSelector: range(now - 20_000, now) })
  t.same(topBoxes(bytes), ['ftyp', 'moov', 'mdat'])
  const unsigned = await fetch(`${relay.endpoint}/getClip`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: 'roof', ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: (now - 20_000) / 1000, EndTimestamp: now / 1000 } } }) })
  t.equal(unsigned.status, 403)
  t.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
})
