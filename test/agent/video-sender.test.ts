/**
 * The video uplink over a real MQTT connection: the agent's Uplink (with its records outbox) and the
 * VideoSender sharing it, against a real aedes broker acting as the relay: it reassembles the chunks
 * with shared/video.ts, checks them and answers on video-acks as the relay does (RECEIVED,
 * PERSISTED with a fragment number that a resend gets again, or ERROR with a code), and can be told
 * to stay silent, to answer an error, or to answer late. Time that decides outcomes (ack timeouts,
 * retry backoff, the backfill rate) is the manual clock's.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { spawn as spawnProcess } from 'node:child_process'
import type { PublishPacket } from 'aedes'
import { validateAgentConfig } from '../../agent/config.js'
import { Outbox } from '../../agent/outbox/index.js'
import { Uplink, relayTransport, type Transport } from '../../agent/uplink/index.js'
import { VideoSender, VideoStore, type CameraBuffer, type VideoSenderOptions } from '../../agent/video/index.js'
import { Camera, loadCodec, manualClock, type ManualClock } from '../../hardware/index.js'
import type { CapturedFragment } from '../../hardware/video/types.js'
import { parseTopic, topics } from '../../shared/topics.js'
import { decodeVideoChunk, MAX_CHUNK_PAYLOAD, type VideoAck, type VideoChunk } from '../../shared/video.js'
import { tempDir } from '../helpers/tmp.js'
import { testRelay as realRelay } from '../helpers/relay.js'
import { decodeCheck, playable, storedFragments } from '../helpers/video.js'

const codec = loadCodec(process.env)
const DEVICE = 'cam-dev'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(10)
  }
}

/** What the test relay does with a fragment once its chunks are in: the default (null), an error, nothing, RECEIVED alone, persisting it without saying so, or its answer later. */
type Decision = null | { code: string } | 'silent' | 'received-only' | 'persisted-unsaid' | { delayMs: number }

interface TestRelay {
  port: number
  /** Every chunk, as it arrived. */
  chunks: (Omit<VideoChunk, 'data'> & { stream: string; payloadBytes: number })[]
  /** `stream/session/sequence` of each fragment whose chunks were all in, in order (resends too). */
  completed: string[]
  /** The same, with the number of the connection (1, 2, …) the fragment came on. */
  completedOn: { key: string; connection: number }[]
  /** What was persisted, by `stream/session/sequence`, with the number given. */
  stored: Map<string, { number: string; data: Buffer }>
  /** Sessions whose init segment was persisted: a media fragment of another is UNKNOWN_SESSION. */
  sessions: Set<string>
  acks: VideoAck[]
  recordBatches: number
  decide: (key: string, chunk: VideoChunk, data: Buffer) => Decision
  /** Cuts every device connection (the network goes; the relay's state stays). */
  cut(): void
}

async function testRelay(t: Test): Promise<TestRelay> {
  const { Aedes } = await import('aedes')
  const broker = await Aedes.createBroker()
  const pending = new Map<string, { parts: Buffer[]; next: number }>()
  let numbers = 0
  const r: TestRelay = {
    port: 0, chunks: [], completed: [], completedOn: [], stored: new Map(), sessions: new Set(), acks: [], recordBatches: 0, decide: () => null,
    cut: () => { for (const c of Object.values(broker.clients)) (c as unknown as { conn: net.Socket }).conn.destroy() },
  }
  const answer = (ack: Omit<VideoAck, 'type'>) => {
    const message: VideoAck = { type: 'video-ack', ...ack }
    r.acks.push(message)
    broker.publish({ cmd: 'publish', topic: topics.videoAcks(DEVICE), payload: Buffer.from(JSON.stringify(message)), qos: 1, retain: false, dup: false } as PublishPacket, () => {})
  }
  const connections = new WeakMap<object, number>()
  let connected = 0
  broker.on('client', (client) => { connections.set(client, ++connected) })
  broker.authorizePublish = (client, packet, done) => {
    const parsed = parseTopic(packet.topic)
    if (parsed?.kind === 'records') { r.recordBatches++; return done(null) }
    if (parsed?.kind !== 'video') return done(null)
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const chunk = decodeVideoChunk(payload)
    done(null)
    const { data, ...header } = chunk
    r.chunks.push({ ...header, stream: parsed.stream, payloadBytes: payload.length })
    const key = `${parsed.stream}/${chunk.session}/${chunk.sequence}`
    const id = { stream: parsed.stream, session: chunk.session.toString(), sequence: chunk.sequence }
    if (chunk.chunkIndex === 0) pending.set(key, { parts: [], next: 0 })
    const p = pending.get(key)
    if (!p || p.next !== chunk.chunkIndex) { pending.delete(key); answer({ ...id, status: 'ERROR', code: 'CHUNK_OUT_OF_ORDER' }); return }
    p.parts.push(Buffer.from(data))
    if (++p.next < chunk.chunkCount) return
    pending.delete(key)
    const whole = Buffer.concat(p.parts)
    r.completed.push(key)
    r.completedOn.push({ key, connection: client ? connections.get(client) ?? 0 : 0 })
    const decision = r.decide(key, chunk, whole)
    if (decision === 'silent') return
    if (typeof decision === 'object' && decision && 'code' in decision) { answer({ ...id, status: 'ERROR', code: decision.code as VideoAck['code'] }); return }
    if (codec.crc32c(whole) !== chunk.crc32c) { answer({ ...id, status: 'ERROR', code: 'CHECKSUM_MISMATCH' }); return }
    const session = `${parsed.stream}/${chunk.session}`
    if (!chunk.init && !r.sessions.has(session)) { answer({ ...id, status: 'ERROR', code: 'UNKNOWN_SESSION' }); return }
    answer({ ...id, status: 'RECEIVED' })
    if (decision === 'received-only') return
    const persist = () => {
      if (chunk.init) r.sessions.add(session)
      let s = r.stored.get(key)
      if (!s) r.stored.set(key, s = { number: String(++numbers).padStart(20, '0'), data: whole })
      if (decision !== 'persisted-unsaid') answer({ ...id, status: 'PERSISTED', fragmentNumber: s.number })
    }
    if (typeof decision === 'object' && decision && 'delayMs' in decision) setTimeout(persist, decision.delayMs)
    else persist()
  }
  const server = net.createServer(broker.handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.port = (server.address() as net.AddressInfo).port
  t.teardown(async () => {
    r.cut()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await new Promise<void>((resolve) => broker.close(() => resolve()))
  })
  return r
}

interface Rig {
  relay: TestRelay
  clock: ManualClock
  store: VideoStore
  sender: VideoSender
  uplink: Uplink
  outbox: Outbox
  dir: string
  /** Most video chunks ever published without their PUBACK at the moment a record batch was published. */
  videoAheadOfRecords: () => number
}

async function rig(t: Test, o: { cameras?: Partial<CameraBuffer>[]; sender?: Partial<VideoSenderOptions>; backfill?: number; mqttPort?: number; before?: (videoDir: string) => Promise<void> } = {}): Promise<Rig> {
  const relay = await testRelay(t)
  const dir = tempDir(t)
  await o.before?.(join(dir, 'video'))
  const clock = manualClock()
  const config = validateAgentConfig({
    device: DEVICE, relay: { url: `mqtt://127.0.0.1:${o.mqttPort ?? relay.port}` }, outbox: { path: join(dir, 'outbox.db'), commitIntervalMs: 5 },
    uplink: { backoffInitialMs: 50, backoffMaxMs: 100, batchRecords: 50 }, status: { port: 0 }, streams: { s: {} },
  })
  const outbox = new Outbox({ ...config.outbox, policies: config.streams, clock })
  const store = new VideoStore({
    dir: join(dir, 'video'), clock, log: () => {}, crc32c: (b) => codec.crc32c(b),
    cameras: (o.cameras ?? [{}]).map((c) => ({ name: 'cam', stream: 'front', maxBytes: 256 * 1024 * 1024, maxAgeSeconds: 0, onFull: 'drop-oldest' as const, ...c })),
  })
  const sender = new VideoSender({ device: DEVICE, store, clock, log: () => {}, backfillBytesPerSecond: () => o.backfill ?? 0, ...o.sender })
  // The real transport, watched: how many video chunks are unacknowledged whenever a record batch goes.
  let videoOut = 0
  let ahead = 0
  const real = relayTransport(config.relay)
  const transport: Transport = (options) => {
    const client = real(options)
    const publish = client.publish.bind(client)
    client.publish = ((topic: string, payload: Buffer | string, opts: { qos: 0 | 1 }, cb?: (err?: Error) => void) => {
      const kind = parseTopic(topic)?.kind
      if (kind === 'records') ahead = Math.max(ahead, videoOut)
      if (kind !== 'video') return publish(topic, payload, opts, cb)
      videoOut++
      return publish(topic, payload, opts, (err?: Error) => { videoOut--; cb?.(err) })
    }) as typeof client.publish
    return client
  }
  const uplink = new Uplink({ config, outbox, clock, log: () => {}, transport, codec, random: () => 0, status: () => ({ device: DEVICE, online: true, at: new Date(clock.wallMs()).toISOString() }) })
  uplink.attach(sender)
  t.teardown(async () => {
    sender.stop()
    await uplink.stop()
    await store.close()
    outbox.close()
  })
  return { relay, clock, store, sender, uplink, outbox, dir, videoAheadOfRecords: () => ahead }
}

const SESSION = 0xfeedbeefcafef00dn
async function capture(store: VideoStore, camera: string, session: bigint, sequences: number[], bytes: number, withInit = true): Promise<Map<number, Buffer>> {
  if (withInit) await store.addSession(camera, { id: session, init: randomBytes(900), codec: 'avc1.42C01E', width: 320, height: 240, timescale: 15360, startedWallMs: 1_800_000_000_000 })
  const out = new Map<number, Buffer>()
  for (const sequence of sequences) {
    const f: CapturedFragment = { session, sequence, data: randomBytes(bytes), producerTimeMs: 1_800_000_000_000 + sequence * 2000, clockSynced: true, durationMs: 2000, keyFrame: true, decodeTime: 0n }
    await store.addFragment(camera, f)
    out.set(sequence, f.data)
  }
  return out
}
const key = (sequence: number, session = SESSION, stream = 'front') => `${stream}/${session}/${sequence}`
const media = (relay: TestRelay, stream = 'front') => relay.completed.filter((k) => k.startsWith(`${stream}/`) && !k.endsWith('/0'))

t.test('each fragment travels as QoS 1 chunks of at most 96 KiB after its session\'s init segment, and leaves the buffer only on PERSISTED', async (t) => {
  const { relay, store, sender, uplink, clock } = await rig(t, { sender: { ackTimeoutMs: 10_000 } })
  const data = await capture(store, 'cam', SESSION, [1, 2, 3], 250_000)
  // The relay takes fragment 2 whole (RECEIVED) but does not persist it the first time.
  let held = true
  relay.decide = (k) => (k === key(2) && held ? (held = false, 'received-only') : null)
  uplink.start()
  await until('fragments 1 and 3 are persisted', () => relay.stored.has(key(1)) && relay.stored.has(key(3)))
  await until('the agent has heard RECEIVED for fragment 2 (and the rest)', () => sender.stats('cam').received === 4)
  await until('the agent has deleted 1 and 3', () => store.stats('cam').fragments === 1)
  t.same([...store.fragments('cam')].map((f) => f.sequence), [2], 'RECEIVED alone deletes nothing')
  t.equal(relay.completed[0], key(0), 'the init segment went first')
  t.ok(relay.chunks.every((c) => c.payloadBytes <= MAX_CHUNK_PAYLOAD), `every chunk within ${MAX_CHUNK_PAYLOAD} bytes`)
  t.same(relay.chunks.filter((c) => c.sequence === 1).map((c) => `${c.chunkIndex}/${c.chunkCount}`), ['0/3', '1/3', '2/3'], 'a 250 kB fragment is 3 chunks, in order')
  t.match(relay.chunks.find((c) => c.sequence === 1), { session: SESSION, keyFrame: true, clockSynced: true, durationMs: 2000, producerTimeMs: 1_800_000_000_000 + 2000, fragmentBytes: 250_000 })
  clock.advance(9_999)
  await sleep(100)
  t.equal(relay.completed.filter((k) => k === key(2)).length, 1, 'not sent again before the ack timeout')
  clock.advance(1)
  await until('fragment 2 is sent again and persisted', () => store.stats('cam').fragments === 0)
  t.equal(relay.completed.filter((k) => k === key(2)).length, 2, 'sent again after the timeout')
  for (const [seq, bytes] of data) t.same(relay.stored.get(key(seq))?.data, bytes, `fragment ${seq} arrived intact`)
  t.match(sender.stats('cam'), { sent: 4, resent: 1, persisted: 3, timeouts: 1, initsSent: 1, errors: {} })
  t.same(store.stats('cam').dropped, {}, 'nothing dropped')
})

t.test('a resend of a fragment the relay already persisted (its answer lost) is answered with the same number and removes it once', async (t) => {
  const { relay, store, uplink, clock, sender } = await rig(t, { sender: { ackTimeoutMs: 5_000 } })
  await capture(store, 'cam', SESSION, [1], 10_000)
  let unsaid = true
  relay.decide = (k) => (k === key(1) && unsaid ? (unsaid = false, 'persisted-unsaid') : null)
  uplink.start()
  await until('persisted, without a word to the agent', () => relay.stored.has(key(1)) && sender.stats('cam').received === 2)
  t.equal(store.stats('cam').fragments, 1, 'still buffered')
  clock.advance(5_000)
  await until('the agent has it removed', () => store.stats('cam').fragments === 0)
  t.equal(relay.completed.filter((k) => k === key(1)).length, 2, 'sent twice')
  t.match(relay.acks.filter((a) => a.sequence === 1 && a.status === 'PERSISTED'), [{ fragmentNumber: relay.stored.get(key(1))!.number }], 'answered with the number it was stored under')
  t.equal(relay.stored.size, 2, 'stored once (with its init)')
  t.match(sender.stats('cam'), { persisted: 1, timeouts: 1, resent: 1 })
})

t.test('after an outage the newest fragment goes first, then the backlog oldest-first at backfillBytesPerSecond, with new fragments ahead of it', async (t) => {
  const { relay, store, uplink, clock, sender } = await rig(t, { backfill: 10_000 })
  await capture(store, 'cam', SESSION, [1, 2, 3, 4, 5, 6], 10_000)
  uplink.start()
  await until('the live fragment and the first of the backlog are persisted', () => media(relay).length === 2 && sender.stats('cam').persisted === 2)
  t.same(relay.completed.slice(0, 3), [key(0), key(6), key(1)], 'init, the newest, then the oldest')
  await sleep(100)
  t.equal(media(relay).length, 2, 'the rest waits for the rate cap (10 kB/s, 10 kB fragments)')
  clock.advance(999)
  await sleep(100)
  t.equal(media(relay).length, 2, 'not before a second has passed')
  clock.advance(1)
  await until('the next of the backlog goes', () => media(relay).length === 3)
  t.equal(media(relay)[2], key(2))
  // A fragment captured now is live: it goes at once, ahead of the backlog and outside its cap.
  await capture(store, 'cam', SESSION, [7], 10_000, false)
  await until('the new fragment goes at once', () => media(relay).length === 4)
  t.equal(media(relay)[3], key(7))
  for (let i = 0; i < 3; i++) {
    const n = media(relay).length
    clock.advance(1000)
    await until(`backlog fragment ${i + 3}`, () => media(relay).length === n + 1)
  }
  t.same(media(relay), [key(6), key(1), key(2), key(7), key(3), key(4), key(5)], 'live first, then oldest-first')
  await until('the buffer is empty', () => store.stats('cam').fragments === 0)
})

t.test('UNKNOWN_SESSION: the init segment is sent again, then the fragment', async (t) => {
  const { relay, store, uplink, clock, sender } = await rig(t, { sender: { windowFragments: 1, retryInitialMs: 500 } })
  await capture(store, 'cam', SESSION, [1, 2], 20_000)
  let forgotten = false
  // The relay lost the session (its init) between the two fragments (2, the live one, went first).
  relay.decide = (k) => { if (k === key(1) && !forgotten) { forgotten = true; relay.sessions.clear() } return null }
  uplink.start()
  await until('the agent hears fragment 1 refused', () => sender.stats('cam').errors.UNKNOWN_SESSION === 1)
  clock.advance(500)
  await until('the buffer is empty', () => store.stats('cam').fragments === 0)
  t.same(relay.completed, [key(0), key(2), key(1), key(0), key(1)], 'init, 2, 1 (refused), init again, 1')
  t.match(sender.stats('cam'), { errors: { UNKNOWN_SESSION: 1 }, initsSent: 2, persisted: 2 })
})

t.test('retryable errors are sent again with a growing backoff; permanent ones drop the fragment, counted by code', async (t) => {
  const { relay, store, uplink, clock, sender, dir } = await rig(t, {
    cameras: [{ name: 'cam', stream: 'front' }, { name: 'gone', stream: 'nowhere' }],
    sender: { windowFragments: 1, retryInitialMs: 500, retryMaxMs: 10_000 },
  })
  await capture(store, 'cam', SESSION, [1, 2, 3, 4, 5, 6], 5_000)
  await capture(store, 'gone', 7n, [1, 2], 5_000)
  const times = new Map<string, number>()
  relay.decide = (k) => {
    const n = (times.get(k) ?? 0) + 1
    times.set(k, n)
    if (k === key(1) && n <= 2) return { code: 'TOO_MANY_PENDING' }
    if (k === key(2)) return { code: 'INVALID_MEDIA' }
    if (k === key(3)) return { code: 'FRAGMENT_TOO_LARGE' }
    if (k === key(4) && n === 1) return { code: 'CHECKSUM_MISMATCH' } // damaged on the way: the file is fine
    if (k === key(5)) {
      // Damaged on the agent's disk since it was stored: re-reading shows it.
      const f = store.find('cam', SESSION.toString(), 5)!
      const path = join(dir, 'video', f.file)
      const bytes = readFileSync(path)
      bytes[100]! ^= 0xff
      writeFileSync(path, bytes)
      return { code: 'CHECKSUM_MISMATCH' }
    }
    if (k === key(6) && n === 1) return { code: 'STORAGE_UNAVAILABLE' }
    if (k === key(0, 7n, 'nowhere')) return { code: 'STREAM_NOT_FOUND' }
    return null
  }
  uplink.start()
  await until('every fragment has had its first answer', () => [2, 3, 4, 5, 6].every((s) => times.has(key(s))) && times.has(key(0, 7n, 'nowhere')))
  await until('the agent has heard the first refusal', () => sender.stats('cam').errors.TOO_MANY_PENDING === 1)
  t.equal(times.get(key(1)), 1)
  clock.advance(499)
  await sleep(100)
  t.equal(times.get(key(1)), 1, 'TOO_MANY_PENDING: not again before 500 ms')
  clock.advance(1)
  await until('fragment 1 is sent again and refused again', () => sender.stats('cam').errors.TOO_MANY_PENDING === 2)
  clock.advance(999)
  await sleep(100)
  t.equal(times.get(key(1)), 2, 'the second wait is longer: not before 1000 ms')
  clock.advance(1)
  await until('fragment 1 goes a third time', () => times.get(key(1)) === 3)
  for (let i = 0; i < 20 && store.stats('cam').fragments > 0; i++) { clock.advance(1000); await sleep(20) }
  await until('the buffer is empty', () => store.stats('cam').fragments === 0 && store.stats('gone').fragments === 0)
  t.same([...relay.stored.keys()].filter((k) => k.startsWith('front/') && !k.endsWith('/0')).sort(), [key(1), key(4), key(6)], 'the retryable ones got through')
  t.same(store.stats('cam').dropped, { INVALID_MEDIA: 1, FRAGMENT_TOO_LARGE: 1, CHECKSUM_MISMATCH: 1 }, 'permanent errors dropped and counted by code')
  t.same(store.stats('gone').dropped, { STREAM_NOT_FOUND: 2 }, 'an init refused for good takes its session\'s fragments, counted')
  t.equal(times.get(key(4)), 2, 'a checksum mismatch with a sound file is sent again')
  t.equal(times.get(key(5)), 1, 'a damaged file is not')
  t.match(sender.stats('cam').errors, { TOO_MANY_PENDING: 2, INVALID_MEDIA: 1, FRAGMENT_TOO_LARGE: 1, CHECKSUM_MISMATCH: 2, STORAGE_UNAVAILABLE: 1 })
})

t.test('a connection lost mid-transfer: nothing unpersisted is lost, everything goes again on the next connection, the live fragment first', async (t) => {
  const { relay, store, uplink, clock } = await rig(t)
  await capture(store, 'cam', SESSION, Array.from({ length: 12 }, (_, i) => i + 1), 200_000)
  relay.decide = () => ({ delayMs: 20 })
  uplink.start()
  await until('a few are persisted', () => relay.stored.size >= 4)
  relay.cut()
  await until('the agent sees the connection go', () => uplink.stats.state === 'backoff')
  await capture(store, 'cam', SESSION, [13], 200_000, false)
  clock.advance(100)
  await until('everything is persisted', () => store.stats('cam').fragments === 0)
  const after = relay.completedOn.filter((c) => c.connection === 2 && !c.key.endsWith('/0')).map((c) => c.key)
  t.equal(after[0], key(13), 'the newest goes first after the outage')
  t.equal([...relay.stored.keys()].filter((k) => !k.endsWith('/0')).length, 13, 'all 13 persisted, none lost')
  t.same(store.stats('cam').dropped, {})
})

t.test('a fragment goes to the stream it was captured for, even when the camera\'s stream or the camera itself has left the config since', async (t) => {
  const { relay, store, uplink } = await rig(t, {
    cameras: [{ name: 'cam', stream: 'front' }],
    before: async (dir) => {
      const earlier = new VideoStore({ dir, clock: manualClock(), log: () => {}, crc32c: (b) => codec.crc32c(b), cameras: [
        { name: 'cam', stream: 'porch', maxBytes: 64 * 1024 * 1024, maxAgeSeconds: 0, onFull: 'drop-oldest' },
        { name: 'old', stream: 'shed', maxBytes: 64 * 1024 * 1024, maxAgeSeconds: 0, onFull: 'drop-oldest' },
      ] })
      await capture(earlier, 'cam', SESSION, [1, 2], 3000)
      await capture(earlier, 'old', 9n, [1], 3000)
      await earlier.close()
    },
  })
  t.same(store.cameras().sort(), ['cam', 'old'], 'the camera no longer configured still has its buffer')
  uplink.start()
  await until('both cameras\' buffers are empty', () => store.stats('cam').fragments === 0 && store.stats('old').fragments === 0)
  t.same([...relay.stored.keys()].sort(), [key(0, SESSION, 'porch'), key(1, SESSION, 'porch'), key(2, SESSION, 'porch'), key(0, 9n, 'shed'), key(1, 9n, 'shed')].sort())
})

t.test('records keep flowing on the same connection while a video backlog drains', async (t) => {
  const { relay, store, uplink, outbox, videoAheadOfRecords } = await rig(t, { sender: { windowChunks: 4 } })
  await capture(store, 'cam', SESSION, Array.from({ length: 40 }, (_, i) => i + 1), 150_000)
  // The relay takes a while to persist each fragment, so the backlog takes seconds to drain.
  relay.decide = () => ({ delayMs: 100 })
  uplink.start()
  await until('the video has started', () => relay.stored.size >= 2)
  await outbox.enqueue(Array.from({ length: 500 }, (_, i) => ({ stream: 's', partitionKey: `k${i % 7}`, data: Buffer.from(`reading ${i}`) })))
  await until('every record is delivered', () => outbox.backlog() === 0)
  const left = store.stats('cam').fragments
  t.ok(left >= 20, `the records did not wait for the video backlog (${left} of 40 fragments still buffered)`)
  t.ok(relay.recordBatches >= 10, `${relay.recordBatches} record batches`)
  t.ok(videoAheadOfRecords() <= 4, `at most 4 video chunks (the chunk window) were ahead of any record batch (${videoAheadOfRecords()})`)
  await until('the video drains too', () => store.stats('cam').fragments === 0, 30_000)
})

const hasFfmpeg = (() => { try { return spawnProcess('ffmpeg', ['-version']).pid !== undefined } catch { return false } })()

t.test('against the real relay: a real camera\'s backlog (ffmpeg, 9 fragments) arrives whole, the newest first, each stored once', { skip: hasFfmpeg ? false : 'ffmpeg is not installed' }, async (t) => {
  const relay = await realRelay(t)
  // One fragment at a time, so the relay's ingest order is the send order (with two, the relay may persist neighbours either way round).
  const { store, uplink, clock, sender } = await rig(t, { mqttPort: relay.mqttPort, cameras: [{ name: 'cam', stream: 'yard' }], sender: { windowFragments: 1 } })
  // The real Camera on a synthetic source, run faster than real time (no -re) for 8 one-second fragments, while the agent is offline.
  const camera = new Camera({
    input: { kind: 'synthetic', device: '', width: 160, height: 120, fps: 10, bitrateKbps: 200, fragmentMs: 1000, codec: 'encode', inputFormat: '' },
    clock, restartInitialMs: 3_600_000, restartMaxMs: 3_600_000,
    spawn: (command, args) => {
      const out = args.filter((a) => a !== '-re')
      out.splice(out.indexOf('-f', out.indexOf('-movflags')), 0, '-frames:v', '81')
      return spawnProcess(command, out, { stdio: ['ignore', 'pipe', 'pipe'] })
    },
  })
  t.teardown(() => camera.stop())
  const adds: Promise<unknown>[] = []
  camera.on('session', (s) => adds.push(store.addSession('cam', s)))
  camera.on('fragment', (f) => adds.push(store.addFragment('cam', f)))
  camera.start()
  await new Promise<void>((resolve) => camera.once('restart', () => resolve())) // ffmpeg is done
  await Promise.all(adds)
  const buffered = [...store.fragments('cam')]
  t.equal(buffered.length, 9, '81 frames at 10 fps: nine 1 s fragments buffered')
  const newest = buffered.at(-1)!
  uplink.start()
  await until('every fragment is persisted and deleted', () => store.stats('cam').fragments === 0, 30_000)
  const stored = storedFragments(relay.config.dataDir, 'yard')
  t.equal(stored.length, buffered.length, 'each stored once')
  t.equal(stored[0]!.sequence, newest.sequence, 'the newest (live) first')
  t.same(stored.slice(1).map((f) => f.sequence), buffered.slice(0, -1).map((f) => f.sequence), 'then the backlog, oldest first')
  t.ok(stored.every((f) => f.keyFrame && f.session === newest.session), 'key frames, one session')
  const check = await decodeCheck(playable(relay.config.dataDir, stored[3]!))
  t.ok(check.frames >= 9 && check.firstKey && check.errors === '', `a stored fragment decodes behind its init (${check.frames} frames${check.errors ? `, ${check.errors}` : ''})`)
  t.match(sender.stats('cam'), { persisted: buffered.length, errors: {}, timeouts: 0 })
})
