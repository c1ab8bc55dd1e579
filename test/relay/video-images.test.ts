/**
 * GetImages through the real SDK (@aws-sdk/client-kinesis-video-archived-media, endpoint overridden)
 * over fragments a device sent over MQTT: JPEGs that sharp decodes, of the asked size, one per
 * sampling interval, each the key frame at or before its time point; PNG; one dimension keeping the
 * aspect ratio; NO_MEDIA in a gap; pages of MaxResults (at most 25) with NextToken; AWS's errors for
 * bad parameters, a deleted stream and an unknown one; the cache counted in /metrics.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import sharp from 'sharp'
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamCommand } from '@aws-sdk/client-kinesis-video'
import { GetImagesCommand, type GetImagesInput, type GetImagesOutput } from '@aws-sdk/client-kinesis-video-archived-media'
import { ByteLru } from '../../relay/video/playback/images.js'
import { manualClock, type TestClock } from '../helpers/relay.js'
import { chunksOf, clip, failure, videoDevice, videoRelay, type Clip, type VideoDevice } from './video-fixtures.js'

const KEY = { accessKeyId: 'AKIDIMAGESTEST', secretAccessKey: 'images-secret' }
const T0 = 1_900_000_000_000
/** Fragments 1-10 cover T0..T0+10 s, then a 5 s gap, then fragments 11-20 cover T0+15..T0+25 s. */
const AFTER_GAP = T0 + 15_000

async function send(d: VideoDevice, clock: TestClock, stream: string, c: Clip): Promise<void> {
  await d.send(stream, chunksOf(1n, 0, c.init))
  await d.until(0, 'PERSISTED', 1n)
  for (let seq = 1; seq <= 20; seq++) {
    clock.advance(1000)
    const producerTimeMs = seq <= 10 ? T0 + (seq - 1) * 1000 : AFTER_GAP + (seq - 11) * 1000
    await d.send(stream, chunksOf(1n, seq, c.fragments[seq - 1]!, { producerTimeMs }))
    await d.until(seq, 'PERSISTED', 1n)
  }
}

/** A relay holding 20 one-second fragments of 320x240 testsrc2 (10 fps) in stream 'yard', with the gap above. */
async function yard(t: Test) {
  const clock = manualClock(T0)
  const s = await videoRelay(t, KEY, clock)
  await s.video.send(new CreateStreamCommand({ StreamName: 'yard', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, s.relay.mqttPort, 'cam-img')
  await send(d, clock, 'yard', clip(20, 1))
  return s
}

const ask = (fromMs: number, toMs: number, over: Partial<GetImagesInput> = {}): GetImagesInput => ({
  StreamName: 'yard', ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: new Date(fromMs), EndTimestamp: new Date(toMs),
  SamplingInterval: 1000, Format: 'JPEG', ...over,
})

async function cacheCounts(endpoint: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${endpoint}/metrics`)).text()
  const out: Record<string, number> = { 'frame/hit': 0, 'frame/miss': 0, 'image/hit': 0, 'image/miss': 0, 'ffmpeg/ok': 0, 'ffmpeg/failed': 0 }
  for (const line of text.split('\n')) {
    const m = /^tributary_video_image_cache_total\{(.*)\} (\d+)$/.exec(line)
    if (!m) continue
    const kind = /kind="(\w+)"/.exec(m[1]!)![1]
    const outcome = /outcome="(\w+)"/.exec(m[1]!)![1]
    out[`${kind}/${outcome}`] = Number(m[2])
  }
  return out
}

const decoded = (images: GetImagesOutput['Images']) => Promise.all((images ?? []).map(async (i) => {
  const bytes = Buffer.from(i.ImageContent!, 'base64')
  return { at: i.TimeStamp!.getTime(), bytes, meta: await sharp(bytes).metadata() }
}))

t.test('JPEGs of the requested size at the requested interval, each the key frame at or before its time point; PNG; one dimension keeps the aspect ratio', async (t) => {
  const { archive } = await yard(t)
  const out = await archive.send(new GetImagesCommand(ask(T0, T0 + 10_000, { WidthPixels: 160, HeightPixels: 100, FormatConfig: { JPEGQuality: '60' } })))
  t.equal(out.NextToken, undefined, 'ten images fit one page')
  const images = await decoded(out.Images)
  t.same(images.map((i) => i.at), Array.from({ length: 10 }, (_, k) => T0 + k * 1000), 'one time point per second from StartTimestamp, EndTimestamp excluded')
  for (const i of images) t.match(i.meta, { format: 'jpeg', width: 160, height: 100 }, `${i.at - T0} ms: a JPEG stretched to 160x100`)
  t.equal(new Set(images.map((i) => i.bytes.toString('base64'))).size, 10, 'testsrc2 moves: ten different pictures')
  // Each is its own fragment's key frame: decoded here from the fragment as sent, scaled and encoded alike.
  const c = clip(20, 1)
  for (const k of [0, 3, 9]) {
    const rgb = spawnSync('ffmpeg', ['-v', 'error', '-f', 'mp4', '-i', 'pipe:0', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { input: Buffer.concat([c.init, c.fragments[k]!]) }).stdout
    const expected = await sharp(rgb, { raw: { width: 320, height: 240, channels: 3 } }).resize(160, 100, { fit: 'fill' }).jpeg({ quality: 60 }).toBuffer()
    t.ok(images[k]!.bytes.equals(expected), `T0+${k} s: fragment ${k + 1}'s first frame`)
  }

  // 200 ms apart inside one 1 s fragment (one key frame, at its start): the same picture.
  const fine = await decoded((await archive.send(new GetImagesCommand(ask(T0 + 3000, T0 + 4400, { SamplingInterval: 200 })))).Images)
  t.equal(fine.length, 7)
  t.equal(new Set(fine.slice(0, 5).map((i) => i.bytes.toString('base64'))).size, 1, 'T0+3.0..3.8 s: the key frame at 3.0 s')
  t.not(fine[5]!.bytes.toString('base64'), fine[0]!.bytes.toString('base64'), 'T0+4.0 s: the next fragment\'s key frame')
  t.match(fine[0]!.meta, { format: 'jpeg', width: 320, height: 240 }, 'no size asked: the frame\'s own')

  const png = await decoded((await archive.send(new GetImagesCommand(ask(T0 + 2000, T0 + 4000, { Format: 'PNG', HeightPixels: 60 })))).Images)
  t.equal(png.length, 2)
  for (const i of png) t.match(i.meta, { format: 'png', width: 80, height: 60 }, 'PNG, width from the 4:3 frame')
  const wide = await decoded((await archive.send(new GetImagesCommand(ask(T0, T0 + 1000, { WidthPixels: 640 })))).Images)
  t.match(wide[0]!.meta, { width: 640, height: 480 }, 'width alone: height follows the aspect ratio')

  // Server timestamps select too: fragment n was stored at T0 + n s on the relay's clock.
  const byServer = await decoded((await archive.send(new GetImagesCommand(ask(T0 + 1000, T0 + 3000, { ImageSelectorType: 'SERVER_TIMESTAMP' })))).Images)
  t.equal(byServer.length, 2)
  t.same(byServer.map((i) => i.meta.format), ['jpeg', 'jpeg'])
})

t.test('time points in a gap answer NO_MEDIA; pages of MaxResults (at most 25) follow NextToken to the end', async (t) => {
  const { archive } = await yard(t)
  const out = await archive.send(new GetImagesCommand(ask(T0 + 8000, T0 + 17_000)))
  const summary = out.Images!.map((i) => [i.TimeStamp!.getTime() - T0, i.Error ?? (i.ImageContent ? 'image' : 'none')])
  t.same(summary, [[8000, 'image'], [9000, 'image'], [10_000, 'NO_MEDIA'], [11_000, 'NO_MEDIA'], [12_000, 'NO_MEDIA'], [13_000, 'NO_MEDIA'], [14_000, 'NO_MEDIA'], [15_000, 'image'], [16_000, 'image']])
  for (const i of out.Images!) if (i.Error) t.equal(i.ImageContent, undefined, 'no content with an error')

  // 25 s at 500 ms: 50 time points; MaxResults 20 -> 20, 20, 10.
  const pages: number[][] = []
  let token: string | undefined
  do {
    const page = await archive.send(new GetImagesCommand(ask(T0, T0 + 25_000, { SamplingInterval: 500, MaxResults: 20, NextToken: token, WidthPixels: 32, HeightPixels: 24 })))
    pages.push(page.Images!.map((i) => i.TimeStamp!.getTime()))
    token = page.NextToken
  } while (token)
  t.same(pages.map((p) => p.length), [20, 20, 10])
  t.same(pages.flat(), Array.from({ length: 50 }, (_, k) => T0 + k * 500), 'every time point once, in order')

  const capped = await archive.send(new GetImagesCommand(ask(T0, T0 + 25_000, { SamplingInterval: 500, MaxResults: 100, WidthPixels: 32, HeightPixels: 24 })))
  t.equal(capped.Images!.length, 25, 'MaxResults above 25 still gives a page of 25 (AWS\'s page size)')
  t.type(capped.NextToken, 'string')

  const otherRange = await failure(archive.send(new GetImagesCommand(ask(T0, T0 + 24_000, { SamplingInterval: 500, NextToken: capped.NextToken }))))
  t.match(otherRange, { name: 'InvalidArgumentException', status: 400, message: /another stream or time range/ })
  const forged = Buffer.from(capped.NextToken!, 'base64')
  forged[forged.length - 2] ^= 1
  t.match(await failure(archive.send(new GetImagesCommand(ask(T0, T0 + 25_000, { SamplingInterval: 500, NextToken: forged.toString('base64') })))), { name: 'InvalidArgumentException', message: /Invalid NextToken/ })

  const empty = await archive.send(new GetImagesCommand(ask(T0 - 60_000, T0 - 58_000)))
  t.same(empty.Images!.map((i) => i.Error), ['NO_MEDIA', 'NO_MEDIA'], 'a range with no fragments: NO_MEDIA at each time point')
})

t.test('bad parameters answer AWS\'s errors naming the problem; a deleted or unknown stream answers ResourceNotFoundException', async (t) => {
  const { archive, video } = await yard(t)
  const bad = async (over: Partial<GetImagesInput>, message: RegExp, from = T0, to = T0 + 5000) =>
    t.match(await failure(archive.send(new GetImagesCommand(ask(from, to, over)))), { name: 'InvalidArgumentException', status: 400, message }, String(message))
  await bad({ SamplingInterval: 199 }, /SamplingInterval must be at least 200 ms; got 199/)
  await bad({}, /within 300 seconds/, T0, T0 + 300_001)
  await bad({}, /EndTimestamp must be later than StartTimestamp/, T0 + 5000, T0)
  await bad({ WidthPixels: 3841 }, /widthPixels.*3840/)
  await bad({ HeightPixels: 0 }, /heightPixels/)
  await bad({ MaxResults: 0 }, /maxResults/)
  await bad({ FormatConfig: { JPEGQuality: '101' } }, /JPEGQuality must be an integer from 1 to 100; got '101'/)
  await bad({ FormatConfig: { JPEGQuality: 'best' } }, /JPEGQuality must be an integer from 1 to 100/)
  await bad({ Format: 'GIF' as 'JPEG' }, /format.*JPEG, PNG|\[JPEG, PNG\]/)
  await bad({ ImageSelectorType: 'CAMERA' as 'PRODUCER_TIMESTAMP' }, /imageSelectorType/)
  await bad({ SamplingInterval: undefined }, /samplingInterval.*must not be null/)

  t.match(await failure(archive.send(new GetImagesCommand(ask(T0, T0 + 5000, { StreamName: 'nowhere' })))), { name: 'ResourceNotFoundException', status: 404 })
  const arn = (await video.send(new DescribeStreamCommand({ StreamName: 'yard' }))).StreamInfo!.StreamARN!
  await video.send(new DeleteStreamCommand({ StreamARN: arn }))
  t.match(await failure(archive.send(new GetImagesCommand(ask(T0, T0 + 5000)))), { name: 'ResourceNotFoundException', status: 404 }, 'deleted stream')
})

t.test('images asked again come from the cache (counted in /metrics); another size decodes no frame again', async (t) => {
  const { archive, relay } = await yard(t)
  const before = await cacheCounts(relay.endpoint)
  const first = await archive.send(new GetImagesCommand(ask(T0, T0 + 5000, { WidthPixels: 64, HeightPixels: 48 })))
  const afterFirst = await cacheCounts(relay.endpoint)
  t.equal(afterFirst['image/miss']! - before['image/miss']!, 5, 'five images made')
  t.equal(afterFirst['frame/miss']! - before['frame/miss']!, 5, 'five key frames decoded by ffmpeg')
  t.equal(afterFirst['ffmpeg/ok']! - before['ffmpeg/ok']!, 1, 'in one process (one capture session, its fragments end to end)')
  t.equal(afterFirst['image/hit']! - before['image/hit']!, 0)

  const second = await archive.send(new GetImagesCommand(ask(T0, T0 + 5000, { WidthPixels: 64, HeightPixels: 48 })))
  const afterSecond = await cacheCounts(relay.endpoint)
  t.equal(afterSecond['image/hit']! - afterFirst['image/hit']!, 5, 'all five from the cache')
  t.equal(afterSecond['image/miss']!, afterFirst['image/miss']!, 'none made again')
  t.equal(afterSecond['frame/miss']!, afterFirst['frame/miss']!, 'ffmpeg not run again')
  t.same(second.Images!.map((i) => i.ImageContent), first.Images!.map((i) => i.ImageContent), 'the same images')

  await archive.send(new GetImagesCommand(ask(T0, T0 + 5000, { WidthPixels: 32, HeightPixels: 24 })))
  const afterResize = await cacheCounts(relay.endpoint)
  t.equal(afterResize['image/miss']! - afterSecond['image/miss']!, 5, 'another size: five new images')
  t.equal(afterResize['frame/hit']! - afterSecond['frame/hit']!, 5, 'scaled from the cached frames')
  t.equal(afterResize['frame/miss']!, afterSecond['frame/miss']!, 'ffmpeg not run again')
})

t.test('a fragment that does not decode answers MEDIA_ERROR at its time points; the fragments decoded beside it still give their images', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'porch', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-bad')
  const c = clip(20, 1)
  // Fragment 2's samples zeroed (its boxes intact, so it is stored): no NAL unit in it can be read.
  const broken = Buffer.from(c.fragments[1]!)
  const mdat = broken.indexOf('mdat', 0, 'latin1')
  broken.fill(0, mdat + 4)
  await d.send('porch', chunksOf(1n, 0, c.init))
  await d.until(0, 'PERSISTED', 1n)
  for (let seq = 1; seq <= 4; seq++) {
    clock.advance(1000)
    await d.send('porch', chunksOf(1n, seq, seq === 2 ? broken : c.fragments[seq - 1]!, { producerTimeMs: T0 + (seq - 1) * 1000 }))
    await d.until(seq, 'PERSISTED', 1n)
  }
  const out = await archive.send(new GetImagesCommand(ask(T0, T0 + 4000, { StreamName: 'porch' })))
  t.same(out.Images!.map((i) => i.Error ?? 'image'), ['image', 'MEDIA_ERROR', 'image', 'image'])
  t.match(await cacheCounts(relay.endpoint), { 'ffmpeg/failed': 2, 'ffmpeg/ok': 3 }, 'the four together failed, then each alone: three decoded, the broken one not')
  for (const i of await decoded(out.Images!.filter((i) => i.ImageContent))) t.match(i.meta, { format: 'jpeg', width: 320, height: 240 })
})

t.test('the cache keeps within its byte bound, the least recently used going first; an entry over the bound alone is not kept', async (t) => {
  const lru = new ByteLru(100)
  const b = (n: number) => Buffer.alloc(n)
  t.equal(lru.set('a', b(40)), 40)
  t.equal(lru.set('b', b(40)), 80)
  t.ok(lru.get('a'), 'a used: b is now the oldest')
  t.equal(lru.set('c', b(40)), 80, 'b went')
  t.equal(lru.get('b'), undefined)
  t.ok(lru.get('a') && lru.get('c'))
  t.equal(lru.set('a', b(10)), 50, 'a replaced, its old bytes given back')
  t.equal(lru.set('huge', b(101)), 50, 'over the bound alone: not kept, nothing evicted')
  t.equal(lru.get('huge'), undefined)
  t.equal(lru.set('frame', { width: 2, height: 2, rgb: b(12) } as never), 62, 'frames count their pixels')
})
