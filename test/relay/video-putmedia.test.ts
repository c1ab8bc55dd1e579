/**
 * PutMedia against a real relay: ffmpeg makes Matroska (testsrc2 → libx264 → -f matroska) and it is
 * piped into a chunked POST /putMedia with the producer's headers; acks arrive per fragment
 * (BUFFERING, RECEIVED, PERSISTED with its number) with the producer's own timecodes, ListFragments
 * shows the fragments, and their bytes play (init segment and fragment through ffprobe). Bad headers
 * are refused before the body is read, a body that is not Matroska gets ERROR 4006 and stores
 * nothing, and a signed request is checked with the signing name kinesisvideo.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import http from 'node:http'
import { Readable } from 'node:stream'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import { Hash } from '@smithy/core/serde'
import { KinesisVideoArchivedMediaClient, ListFragmentsCommand } from '@aws-sdk/client-kinesis-video-archived-media'
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import type { Relay } from '../../relay/relay.js'
import { testRelay } from '../helpers/relay.js'

interface Ack { EventType: string; FragmentTimecode?: number; FragmentNumber?: string; ErrorId?: number }

/** ffmpeg writing `seconds` of testsrc2 as Matroska to stdout, a key frame each second. */
function matroska(seconds: number, extra: string[] = []): Readable {
  const ffmpeg = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-g', '10', '-keyint_min', '10', '-sc_threshold', '0',
    ...extra, '-f', 'matroska', 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  return ffmpeg.stdout
}

/** A chunked POST /putMedia of `body`; resolves with the status, the error type and the acks (one JSON object a line). */
function putMedia(relay: Relay, headers: Record<string, string>, body: Readable): Promise<{ status: number; errorType: string | undefined; acks: Ack[]; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/putMedia', headers: { 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => {
        const acks = res.headers['content-type'] === 'application/json' && res.statusCode === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ack) : []
        resolve({ status: res.statusCode!, errorType: res.headers['x-amzn-errortype'] as string | undefined, acks, text })
      })
    })
    req.on('error', reject)
    body.pipe(req)
  })
}

const headersFor = (stream: string, type = 'RELATIVE', startSeconds = 1_800_000_000.5) => ({
  'x-amzn-stream-name': stream, 'x-amzn-fragment-timecode-type': type, 'x-amzn-producer-start-timestamp': String(startSeconds),
})

async function listFragments(relay: Relay, stream: string) {
  const archive = new KinesisVideoArchivedMediaClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  try {
    return (await archive.send(new ListFragmentsCommand({ StreamName: stream }))).Fragments!
  } finally {
    archive.destroy()
  }
}

t.test('Matroska from ffmpeg, POSTed chunked, is acknowledged fragment by fragment and listed', async (t) => {
  const relay = await testRelay(t)
  const video = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => video.destroy())
  await video.send(new CreateStreamCommand({ StreamName: 'kvs', DataRetentionInHours: 1 }))
  const out = await putMedia(relay, headersFor('kvs'), matroska(5))
  t.equal(out.status, 200)
  const persisted = out.acks.filter((a) => a.EventType === 'PERSISTED')
  t.equal(persisted.length, 5, 'five 1-second fragments persisted')
  t.same(persisted.map((a) => a.FragmentTimecode), [0, 1000, 2000, 3000, 4000], 'FragmentTimecode is the producer\'s (relative) timecode')
  for (const p of persisted) {
    const mine = out.acks.filter((a) => a.FragmentTimecode === p.FragmentTimecode).map((a) => a.EventType)
    t.same(mine, ['BUFFERING', 'RECEIVED', 'PERSISTED'], `fragment at ${p.FragmentTimecode}: BUFFERING, RECEIVED, PERSISTED`)
  }
  t.notOk(out.acks.some((a) => a.EventType === 'ERROR'))
  const listed = await listFragments(relay, 'kvs')
  t.same(listed.map((f) => f.FragmentNumber), persisted.map((a) => a.FragmentNumber), 'ListFragments shows them, with the numbers the acks gave')
  t.same(listed.map((f) => f.ProducerTimestamp!.getTime()), [0, 1, 2, 3, 4].map((i) => 1_800_000_000_500 + i * 1000), 'producer time: the start timestamp plus the relative timecode')
  t.ok(listed.every((f) => f.FragmentLengthInMilliseconds === 1000))
  // The stored bytes play: the session's init segment and a fragment, through ffprobe.
  const stream = relay.video.streams.get('kvs')!
  const rows = relay.video.store.list({ streamId: stream.id, by: 'number', limit: 10 })
  const init = relay.video.store.catalog.fragment(stream.id, '', rows[0]!.session, 0)!
  const bytes = Buffer.concat([await relay.video.store.read(init), await relay.video.store.read(rows[2]!)])
  const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', '-i', 'pipe:0'], { input: bytes })
  t.equal(probe.status, 0, probe.stderr.toString())
  t.match(JSON.parse(probe.stdout.toString()), { streams: [{ codec_name: 'h264', width: 320, height: 240, nb_read_frames: 10 }] }, 'a fragment decodes: 10 frames of H.264')
  t.match(await (await fetch(`${relay.endpoint}/metrics`)).text(), /tributary_video_fragments_persisted_total\{stream="kvs",source="putmedia"\} 6/)
})

t.test('ABSOLUTE timecodes are kept as the producer sent them', async (t) => {
  const relay = await testRelay(t)
  await relay.video.streams.create({ name: 'abs', retentionHours: 1 })
  const out = await putMedia(relay, headersFor('abs', 'ABSOLUTE', 0), matroska(3, ['-output_ts_offset', '1800000100']))
  const persisted = out.acks.filter((a) => a.EventType === 'PERSISTED')
  t.same(persisted.map((a) => a.FragmentTimecode), [1_800_000_100_000, 1_800_000_101_000, 1_800_000_102_000])
  t.same((await listFragments(relay, 'abs')).map((f) => f.ProducerTimestamp!.getTime()), [1_800_000_100_000, 1_800_000_101_000, 1_800_000_102_000])
})

t.test('bad headers are refused before the body is read; a body that is not Matroska gets ERROR 4006 and stores nothing', async (t) => {
  const relay = await testRelay(t)
  await relay.video.streams.create({ name: 'here', retentionHours: 1 })
  const nowhere = await putMedia(relay, headersFor('nowhere'), Readable.from([Buffer.alloc(10)]))
  t.match(nowhere, { status: 404, errorType: 'ResourceNotFoundException' })
  const noType = await putMedia(relay, { 'x-amzn-stream-name': 'here', 'x-amzn-producer-start-timestamp': '1' }, Readable.from([Buffer.alloc(10)]))
  t.match(noType, { status: 400, errorType: 'InvalidArgumentException', text: /x-amzn-fragment-timecode-type/ })
  const noStart = await putMedia(relay, { 'x-amzn-stream-name': 'here', 'x-amzn-fragment-timecode-type': 'RELATIVE' }, Readable.from([Buffer.alloc(10)]))
  t.match(noStart, { status: 400, errorType: 'InvalidArgumentException', text: /x-amzn-producer-start-timestamp/ })
  const garbage = await putMedia(relay, headersFor('here'), Readable.from([Buffer.from('this is not matroska'.repeat(100))]))
  t.equal(garbage.status, 200)
  t.same(garbage.acks, [{ EventType: 'ERROR', ErrorId: 4006 }], 'ERROR with AWS\'s INVALID_MKV_DATA')
  t.same(await listFragments(relay, 'here'), [])
  t.equal(relay.video.store.totalBytes(), 0, 'nothing stored')
  const good = await putMedia(relay, headersFor('here'), matroska(2))
  t.equal(good.acks.filter((a) => a.EventType === 'PERSISTED').length, 2, 'the relay serves the next producer as before')
})

t.test('with access keys, PutMedia is signed for kinesisvideo with an unsigned (streamed) payload', async (t) => {
  const key = { accessKeyId: 'AKIDPUTMEDIA', secretAccessKey: 'put-secret' }
  const relay = await testRelay(t, { accessKeys: [key], httpHost: '127.0.0.1' })
  await relay.video.streams.create({ name: 'signed', retentionHours: 1 })
  const sign = async (service: string) => {
    const request = new HttpRequest({
      method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: relay.httpPort, path: '/putMedia',
      headers: { host: `127.0.0.1:${relay.httpPort}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headersFor('signed') },
    })
    const signer = new SignatureV4({ credentials: key, region: 'us-east-1', service, sha256: Hash.bind(null, 'sha256') })
    return (await signer.sign(request)).headers as Record<string, string>
  }
  const unsigned = await putMedia(relay, headersFor('signed'), Readable.from([Buffer.alloc(10)]))
  t.match(unsigned, { status: 403, errorType: 'MissingAuthenticationTokenException' })
  const wrongService = await putMedia(relay, await sign('kinesis'), Readable.from([Buffer.alloc(10)]))
  t.match(wrongService, { status: 400, errorType: 'InvalidSignatureException', text: /kinesisvideo/ })
  const signed = await putMedia(relay, await sign('kinesisvideo'), matroska(2))
  t.equal(signed.status, 200)
  t.equal(signed.acks.filter((a) => a.EventType === 'PERSISTED').length, 2)
})

t.test('a producer that hangs up mid-stream leaves no ffmpeg behind and keeps what was persisted', async (t) => {
  const relay = await testRelay(t)
  await relay.video.streams.create({ name: 'cut', retentionHours: 1 })
  const whole = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10', '-t', '6',
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-g', '10', '-f', 'matroska', 'pipe:1'], { maxBuffer: 64 * 1024 * 1024 }).stdout
  const ffmpegs = () => spawnSync('pgrep', ['-P', String(process.pid), 'ffmpeg']).stdout.toString().trim().split('\n').filter(Boolean).length
  const acks: Ack[] = []
  await new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/putMedia', headers: { 'transfer-encoding': 'chunked', ...headersFor('cut') } }, (res) => {
      res.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n').filter(Boolean)) acks.push(JSON.parse(line) as Ack)
        // Two fragments in: hang up with the rest unsent.
        if (acks.filter((a) => a.EventType === 'PERSISTED').length >= 2) { req.destroy(); resolve() }
      })
      res.on('error', () => {})
    })
    req.on('error', () => {})
    // Everything but the last second, so the stream is still open when the acks arrive.
    req.write(whole.subarray(0, Math.floor(whole.length * 0.8)))
  })
  const persisted = acks.filter((a) => a.EventType === 'PERSISTED').map((a) => a.FragmentNumber)
  for (let waited = 0; ffmpegs() > 0 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50))
  t.equal(ffmpegs(), 0, 'the remuxing ffmpeg was stopped')
  const listed = (await listFragments(relay, 'cut')).map((f) => f.FragmentNumber)
  t.same(listed.slice(0, persisted.length), persisted, 'the fragments acknowledged PERSISTED are kept')
  const next = await putMedia(relay, headersFor('cut'), matroska(2))
  t.equal(next.acks.filter((a) => a.EventType === 'PERSISTED').length, 2, 'and the next producer is served')
})
