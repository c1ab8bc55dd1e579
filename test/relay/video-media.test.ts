/**
 * GetMediaForFragmentList (through the real SDK) and GetMedia (signed requests of our own: the SDK's
 * kinesis-video-media client is not a dependency) over fragments a device sent over MQTT: Matroska
 * that ffprobe reads and decodes, with the packets of the stored fragments unchanged, and — read
 * with an EBML reader of the test's own, as a Kinesis Video parser reads it — one document per
 * fragment whose tags before the cluster name its number and server and producer timestamps, and,
 * for GetMedia, whose tags after it carry the millis behind now and a continuation token. GetMedia
 * from EARLIEST streams the stored fragments then follows a new one, ends after 20 s without one on
 * the relay's (manual) clock, and resumes from its continuation token.
 */
import t from 'tap'
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import { Hash } from '@smithy/core/serde'
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video'
import { GetMediaForFragmentListCommand, KinesisVideoArchivedMediaClient, ListFragmentsCommand, type Fragment } from '@aws-sdk/client-kinesis-video-archived-media'
import type { Relay } from '../../relay/relay.js'
import { manualClock, type TestClock } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { chunksOf, clip, run, videoDevice, videoRelay, type Clip, type VideoDevice } from './video-fixtures.js'

const KEY = { accessKeyId: 'AKIDMEDIATEST', secretAccessKey: 'media-secret' }
const T0 = 1_900_000_000_000

/** Sends fragments `from`..`to` (1-based, the init segment first when `from` is 1) with producer times 1 s apart from T0. */
async function send(d: VideoDevice, clock: TestClock | null, stream: string, c: Clip, session: bigint, from: number, to: number, baseMs = T0): Promise<void> {
  if (from === 1) {
    await d.send(stream, chunksOf(session, 0, c.init))
    await d.until(0, 'PERSISTED', session)
  }
  for (let seq = from; seq <= to; seq++) {
    clock?.advance(1000)
    await d.send(stream, chunksOf(session, seq, c.fragments[seq - 1]!, { producerTimeMs: baseMs + (seq - 1) * 1000 }))
    await d.until(seq, 'PERSISTED', session)
  }
}

// ---- an EBML reader, as a Kinesis Video parser walks GetMedia's output ----
const ID = { EBML: 0x1a45dfa3, Segment: 0x18538067, Tags: 0x1254c367, Tag: 0x7373, SimpleTag: 0x67c8, TagName: 0x45a3, TagString: 0x4487, Cluster: 0x1f43b675, SimpleBlock: 0xa3, Tracks: 0x1654ae6b, CodecID: 0x86 } as const

interface Doc {
  /** Tags before the first cluster (the fragment's), and after the last (GetMedia's). */
  before: Record<string, string>
  after: Record<string, string>
  clusters: number
  blocks: number
  codec?: string
}

/** A variable-length integer at `at`: its value (the marker bit removed unless `keepMarker`), its length; null when cut short. */
function vint(b: Buffer, at: number, keepMarker = false): { value: number; length: number; unknown: boolean } | null {
  if (at >= b.length) return null
  const first = b[at]!
  let length = 1
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++
  if (length > 8 || at + length > b.length) return null
  let value = BigInt(keepMarker ? first : first & (0xff >> length))
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(b[at + i]!)
  const unknown = !keepMarker && value === (1n << BigInt(7 * length)) - 1n
  return { value: Number(value), length, unknown }
}

function simpleTags(b: Buffer, from: number, to: number, into: Record<string, string>): void {
  for (let at = from; at < to;) {
    const id = vint(b, at, true)!
    const size = vint(b, at + id.length)!
    const body = at + id.length + size.length
    if (id.value === ID.Tag || id.value === ID.Tags) simpleTags(b, body, body + size.value, into)
    if (id.value === ID.SimpleTag) {
      let name = ''
      let value = ''
      for (let p = body; p < body + size.value;) {
        const cid = vint(b, p, true)!
        const csize = vint(b, p + cid.length)!
        const cbody = p + cid.length + csize.length
        if (cid.value === ID.TagName) name = b.toString('utf8', cbody, cbody + csize.value)
        if (cid.value === ID.TagString) value = b.toString('utf8', cbody, cbody + csize.value)
        p = cbody + csize.value
      }
      into[name] = value
    }
    at = body + size.value
  }
}

/** The documents in `b` (a cut-short tail is left out of the last). */
function readMkv(b: Buffer): Doc[] {
  const docs: Doc[] = []
  let doc: Doc | null = null
  for (let at = 0; at < b.length;) {
    const id = vint(b, at, true)
    const size = id && vint(b, at + id.length)
    if (!id || !size) break
    const body = at + id.length + size.length
    if (id.value === ID.Segment) { at = body; continue } // its children follow at this level (unknown size)
    if (body + size.value > b.length) break
    if (id.value === ID.EBML) docs.push(doc = { before: {}, after: {}, clusters: 0, blocks: 0 })
    else if (doc && id.value === ID.Tags) simpleTags(b, body, body + size.value, doc.clusters ? doc.after : doc.before)
    else if (doc && id.value === ID.Cluster) {
      doc.clusters++
      for (let p = body; p < body + size.value;) {
        const cid = vint(b, p, true)!
        const csize = vint(b, p + cid.length)!
        if (cid.value === ID.SimpleBlock) doc.blocks++
        p += cid.length + csize.length + csize.value
      }
    } else if (doc && id.value === ID.Tracks) {
      const at0 = b.indexOf(Buffer.from([0x86]), body)
      const len = vint(b, at0 + 1)!
      doc.codec = b.toString('latin1', at0 + 1 + len.length, at0 + 1 + len.length + len.value)
    }
    at = body + size.value
  }
  return docs
}

const secs = (d: Date | undefined) => (d!.getTime() / 1000).toFixed(3)
/** ffmpeg's words on every segment after the first of concatenated GetMedia documents (AWS's own output draws the same). */
const SEGMENT_NOTE = /Found unknown-length element with ID 0x18538067 at pos\. 0x[0-9a-f]+ for which no syntax for parsing is available\./

async function listAll(archive: KinesisVideoArchivedMediaClient, stream: string): Promise<Fragment[]> {
  return (await archive.send(new ListFragmentsCommand({ StreamName: stream }))).Fragments!.sort((a, b) => (a.FragmentNumber! < b.FragmentNumber! ? -1 : 1))
}

t.test('GetMediaForFragmentList: Matroska ffprobe reads, decodes and tags, one tagged document per fragment in the order asked', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'porch', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-1')
  const c = clip(8, 1)
  await send(d, clock, 'porch', c, 1n, 1, 8)
  const all = await listAll(archive, 'porch')
  const asked = [all[2]!, all[3]!, all[4]!]
  const out = await archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: asked.map((f) => f.FragmentNumber!) }))
  t.equal(out.ContentType, 'video/webm')
  const bytes = Buffer.from(await out.Payload!.transformToByteArray())
  const dir = tempDir(t)
  const file = join(dir, 'media.mkv')
  writeFileSync(file, bytes)

  const probe = JSON.parse((await run('ffprobe', ['-v', 'error', '-show_entries', 'format=format_name:format_tags:stream=codec_name,width,height', '-of', 'json', file])).stdout) as {
    format: { format_name: string; tags: Record<string, string> }; streams: { codec_name: string; width: number; height: number }[]
  }
  t.match(probe.format.format_name, /matroska/)
  t.match(probe.streams[0], { codec_name: 'h264', width: 320, height: 240 })
  t.match(probe.format.tags, { AWS_KINESISVIDEO_FRAGMENT_NUMBER: asked[0]!.FragmentNumber, AWS_KINESISVIDEO_SERVER_TIMESTAMP: secs(asked[0]!.ServerTimestamp), AWS_KINESISVIDEO_PRODUCER_TIMESTAMP: secs(asked[0]!.ProducerTimestamp) },
    'ffprobe -show_entries format_tags: the fragment-number tags')

  const docs = readMkv(bytes)
  t.equal(docs.length, 3, 'one document per fragment')
  t.same(docs.map((x) => x.before), asked.map((f) => ({
    AWS_KINESISVIDEO_FRAGMENT_NUMBER: f.FragmentNumber, AWS_KINESISVIDEO_SERVER_TIMESTAMP: secs(f.ServerTimestamp), AWS_KINESISVIDEO_PRODUCER_TIMESTAMP: secs(f.ProducerTimestamp),
  })), 'each document tagged with its fragment\'s number and timestamps')
  t.same(docs.map((x) => [x.clusters, x.blocks, x.codec]), asked.map(() => [1, 10, 'V_MPEG4/ISO/AVC']), 'each fragment one cluster of its ten frames')

  // Decoded, the stored samples unchanged; ffmpeg notes each further document's Segment, as it does for AWS's.
  const in3to5 = join(dir, 'stored.mp4')
  writeFileSync(in3to5, Buffer.concat([c.init, c.fragments[2]!, c.fragments[3]!, c.fragments[4]!]))
  const decode = await run('ffmpeg', ['-hide_banner', '-v', 'error', '-i', file, '-f', 'null', '-'])
  t.same(decode.stderr.split('\n').filter((l) => l.trim() && !SEGMENT_NOTE.test(l)), [], 'decodes with no error')
  const hashes = async (f: string) => (await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=data_hash', '-show_data_hash', 'MD5', '-of', 'csv=p=0', f])).stdout.trim().split('\n')
  t.same(await hashes(file), await hashes(in3to5), 'the packets are the stored samples')

  const shuffled = [all[6]!, all[0]!, all[5]!]
  const again = await archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: shuffled.map((f) => f.FragmentNumber!) }))
  t.same(readMkv(Buffer.from(await again.Payload!.transformToByteArray())).map((x) => x.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER), shuffled.map((f) => f.FragmentNumber), 'in the order asked')

  const missing = '9'.padEnd(47, '0')
  await t.rejects(archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: [all[0]!.FragmentNumber!, missing] })), { name: 'ResourceNotFoundException', message: new RegExp(`Fragment ${missing} is not in stream porch`) })
  await t.rejects(archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: [] })), { name: 'InvalidArgumentException', message: /length greater than or equal to 1/ })
  await t.rejects(archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: Array(1001).fill(all[0]!.FragmentNumber!) })), { name: 'InvalidArgumentException', message: /length less than or equal to 1000/ })
  await t.rejects(archive.send(new GetMediaForFragmentListCommand({ StreamName: 'porch', Fragments: ['12x'] })), { name: 'InvalidArgumentException', message: /regular expression pattern/ })
  await t.rejects(archive.send(new GetMediaForFragmentListCommand({ StreamName: 'nowhere', Fragments: [all[0]!.FragmentNumber!] })), { name: 'ResourceNotFoundException' })
})

/** An open GetMedia: the bytes so far, whether it has ended, and a wait for `n` complete documents. */
interface Follow { bytes: () => Buffer; ended: Promise<void>; docs(n: number, ms?: number): Promise<Doc[]>; status: Promise<number>; close(): void }

function getMedia(relay: Relay, body: object, headers: Record<string, string> = {}): Follow {
  const chunks: Buffer[] = []
  let wake = () => {}
  let endedFlag = false
  let closed = false
  let resolveStatus: (s: number) => void = () => {}
  const status = new Promise<number>((r) => { resolveStatus = r })
  const payload = Buffer.from(JSON.stringify(body))
  const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/getMedia', headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers } })
  const ended = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      resolveStatus(res.statusCode!)
      res.on('data', (d: Buffer) => { chunks.push(d); wake() })
      res.on('end', () => { endedFlag = true; wake(); resolve() })
      // A request the test closes ends it.
      res.on('error', () => resolve())
    })
    req.on('error', (err) => (endedFlag || closed ? resolve() : reject(err)))
  })
  req.end(payload)
  const bytes = () => Buffer.concat(chunks)
  return {
    bytes, ended, status,
    close: () => { closed = true; req.destroy() },
    docs: (n, ms = 10_000) => new Promise<Doc[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fewer than ${n} complete documents within ${ms} ms; have ${readMkv(bytes()).length}`)), ms)
      const check = () => {
        const docs = readMkv(bytes()).filter((x) => x.after.AWS_KINESISVIDEO_CONTINUATION_TOKEN)
        if (docs.length >= n) { clearTimeout(timer); resolve(docs) } else if (endedFlag) { clearTimeout(timer); reject(new Error(`ended with ${docs.length} documents`)) } else wake = check
      }
      check()
    }),
  }
}

t.test('GetMedia from EARLIEST streams what is stored, follows a new fragment, ends after 20 s without one and resumes from its continuation token', async (t) => {
  const clock = manualClock(T0)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'yard', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-2')
  const c = clip(10, 1)
  await send(d, clock, 'yard', c, 2n, 1, 4)
  const follow = getMedia(relay, { StreamName: 'yard', StartSelector: { StartSelectorType: 'EARLIEST' } })
  t.teardown(() => follow.close())
  t.equal(await follow.status, 200)
  const stored = await follow.docs(4)
  const listed = await listAll(archive, 'yard')
  t.same(stored.map((x) => x.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER), listed.map((f) => f.FragmentNumber), 'the stored fragments, oldest first')
  t.same(stored.map((x) => x.after.AWS_KINESISVIDEO_CONTINUATION_TOKEN), listed.map((f) => f.FragmentNumber), 'each followed by its continuation token')
  t.ok(stored.every((x) => /^\d+$/.test(x.after.AWS_KINESISVIDEO_MILLIS_BEHIND_NOW!)), 'and the millis behind now')
  t.equal(stored[3]!.after.AWS_KINESISVIDEO_MILLIS_BEHIND_NOW, '0', 'the newest: stored at the relay\'s now')

  await send(d, clock, 'yard', c, 2n, 5, 5)
  const five = await follow.docs(5)
  const fifth = (await listAll(archive, 'yard'))[4]!
  t.equal(five[4]!.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER, fifth.FragmentNumber, 'a fragment persisted later follows')
  t.equal(five[4]!.before.AWS_KINESISVIDEO_PRODUCER_TIMESTAMP, secs(fifth.ProducerTimestamp))

  clock.advance(19_000)
  await new Promise((r) => setTimeout(r, 300))
  t.equal(readMkv(follow.bytes()).length, 5, 'still open after 19 s without a fragment')
  clock.advance(1000)
  await follow.ended
  t.pass('ended after 20 s without a new fragment (the relay\'s clock)')
  const file = join(tempDir(t), 'live.mkv')
  writeFileSync(file, follow.bytes())
  const frames = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file])
  t.equal(frames.stdout.trim(), '50', 'ffprobe decodes every frame GetMedia sent')

  // Resumed from the last token: only what came after it.
  const token = five[4]!.after.AWS_KINESISVIDEO_CONTINUATION_TOKEN!
  const resumed = getMedia(relay, { StreamName: 'yard', StartSelector: { StartSelectorType: 'CONTINUATION_TOKEN', ContinuationToken: token } })
  t.teardown(() => resumed.close())
  await send(d, clock, 'yard', c, 2n, 6, 6)
  const next = await resumed.docs(1)
  t.equal(next[0]!.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER, (await listAll(archive, 'yard'))[5]!.FragmentNumber, 'CONTINUATION_TOKEN: the fragment after it')

  // Other starts.
  const byNumber = getMedia(relay, { StreamName: 'yard', StartSelector: { StartSelectorType: 'FRAGMENT_NUMBER', AfterFragmentNumber: listed[2]!.FragmentNumber } })
  t.teardown(() => byNumber.close())
  t.same((await byNumber.docs(4)).map((x) => x.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER).slice(0, 2), [listed[2]!.FragmentNumber, listed[3]!.FragmentNumber], 'FRAGMENT_NUMBER: from that fragment on')
  const byTime = getMedia(relay, { StreamName: 'yard', StartSelector: { StartSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: (T0 + 1500) / 1000 } })
  t.teardown(() => byTime.close())
  t.equal((await byTime.docs(1))[0]!.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER, listed[1]!.FragmentNumber, 'PRODUCER_TIMESTAMP: from the fragment holding it')
  const now = getMedia(relay, { StreamName: 'yard', StartSelector: { StartSelectorType: 'NOW' } })
  t.teardown(() => now.close())
  await new Promise((r) => setTimeout(r, 300))
  t.equal(readMkv(now.bytes()).length, 0, 'NOW: nothing already stored')
  await send(d, clock, 'yard', c, 2n, 7, 7)
  t.equal((await now.docs(1))[0]!.before.AWS_KINESISVIDEO_FRAGMENT_NUMBER, (await listAll(archive, 'yard'))[6]!.FragmentNumber, 'NOW: what is persisted after the request')

  const refused = async (body: object) => {
    const r = await fetch(`${relay.endpoint}/getMedia`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: r.status, type: r.headers.get('x-amzn-errortype'), message: ((await r.json()) as { message: string }).message }
  }
  t.match(await refused({ StreamName: 'yard', StartSelector: { StartSelectorType: 'FRAGMENT_NUMBER' } }), { status: 400, type: 'InvalidArgumentException', message: /AfterFragmentNumber is required/ })
  t.match(await refused({ StreamName: 'yard', StartSelector: { StartSelectorType: 'SOMETIME' } }), { status: 400, type: 'InvalidArgumentException', message: /enum value set/ })
  t.match(await refused({ StreamName: 'yard' }), { status: 400, type: 'InvalidArgumentException', message: /startSelector/ })
  t.match(await refused({ StreamName: 'nowhere', StartSelector: { StartSelectorType: 'EARLIEST' } }), { status: 404, type: 'ResourceNotFoundException' })
})

t.test('GetMedia is signed like the other actions (SigV4, kinesisvideo)', async (t) => {
  const { relay, video } = await videoRelay(t, KEY)
  await video.send(new CreateStreamCommand({ StreamName: 'roof', DataRetentionInHours: 24 }))
  const d = await videoDevice(t, relay.mqttPort, 'cam-3')
  await send(d, null, 'roof', clip(3, 1), 3n, 1, 2, Date.now() - 5000)
  const body = { StreamName: 'roof', StartSelector: { StartSelectorType: 'EARLIEST' } }
  const unsigned = getMedia(relay, body)
  t.equal(await unsigned.status, 403)
  const request = new HttpRequest({
    method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: relay.httpPort, path: '/getMedia',
    headers: { host: `127.0.0.1:${relay.httpPort}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  })
  const signer = new SignatureV4({ credentials: KEY, region: 'us-east-1', service: 'kinesisvideo', sha256: Hash.bind(null, 'sha256') })
  const signed = getMedia(relay, body, (await signer.sign(request)).headers as Record<string, string>)
  t.teardown(() => signed.close())
  t.equal(await signed.status, 200)
  t.equal((await signed.docs(2)).length, 2)
})
