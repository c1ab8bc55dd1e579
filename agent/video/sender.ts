/**
 * The video uplink: sends the buffered fragments on the uplink's one MQTT connection and deletes
 * each only when the relay says PERSISTED for it (DESIGN.md, "The wire between agent and relay").
 *
 * - A fragment travels as QoS 1 chunks of at most 96 KiB on `tributary/v1/{device}/video/{stream}`
 *   (shared/video.ts), its session's init segment (sequence 0) first: a media fragment goes only
 *   once the relay has said PERSISTED for its init, and the init goes again when the relay answers
 *   UNKNOWN_SESSION.
 * - A small window: at most `windowFragments` fragments between their first chunk and their ack, and
 *   at most `windowChunks` chunks published without a PUBACK. The records keep their own window on
 *   the same connection, so a video backlog puts at most `windowChunks` chunks ahead of any batch.
 * - After an outage (at each connection) the newest fragment of each camera goes first, as live;
 *   the backlog follows oldest-first at the camera's backfillBytesPerSecond; fragments captured
 *   meanwhile are live too and go ahead of the backlog, uncapped. Cameras take turns.
 * - ERROR acks: CHUNK_OUT_OF_ORDER, CHUNK_MISMATCH, TOO_MANY_PENDING, STORAGE_UNAVAILABLE and
 *   UNKNOWN_SESSION are sent again after a backoff; CHECKSUM_MISMATCH is sent again unless re-reading
 *   the file shows it is the file that is bad; INVALID_MEDIA, FRAGMENT_TOO_LARGE, STREAM_NOT_FOUND and
 *   an unreadable frame drop the fragment (its whole session for an init), counted by code. No
 *   PERSISTED or ERROR within `ackTimeoutMs` of the last chunk's PUBACK: sent again (the relay
 *   dedupes by device, session and sequence). Timing is on the injected clock.
 */
import { encodeFragmentChunks, VideoAckError, type VideoAck } from '../../shared/video.js'
import { topics } from '../../shared/topics.js'
import type { Clock } from '../../hardware/index.js'
import type { UplinkAttachment, UplinkClient } from '../uplink/index.js'
import type { LogFn } from '../log.js'
import { ByteBucket } from './bucket.js'
import type { StoredFragment, VideoStore } from './store.js'

/** Sent again after a backoff: the relay could not take it now, or the chunks went astray. */
const RETRYABLE: ReadonlySet<string> = new Set([VideoAckError.CHUNK_OUT_OF_ORDER, VideoAckError.CHUNK_MISMATCH, VideoAckError.TOO_MANY_PENDING, VideoAckError.STORAGE_UNAVAILABLE, VideoAckError.UNKNOWN_SESSION])
/** Never accepted however often sent: dropped, counted by code. Unreadable-frame codes (VIDEO_FRAME_*) are permanent too. */
const PERMANENT: ReadonlySet<string> = new Set([VideoAckError.INVALID_MEDIA, VideoAckError.FRAGMENT_TOO_LARGE, VideoAckError.STREAM_NOT_FOUND, VideoAckError.FRAME_INVALID])

export interface VideoSenderOptions {
  device: string
  store: VideoStore
  clock: Clock
  log: LogFn
  /** The camera's backfill cap in bytes per second (0: none). */
  backfillBytesPerSecond: (camera: string) => number
  /** Fragments between their first chunk and their ack (default 2). */
  windowFragments?: number
  /** Chunks published and not yet PUBACKed (default 4: 384 KiB ahead of a record batch at most). */
  windowChunks?: number
  /** How long after its last chunk a fragment waits for PERSISTED or ERROR before it is sent again (default 20 s). */
  ackTimeoutMs?: number
  retryInitialMs?: number
  retryMaxMs?: number
}

export interface CameraSendStats {
  /** Media fragments whose every chunk the relay took (each send, resends included). */
  sent: number
  /** Sends after the first of a fragment (timeouts, retryable errors). */
  resent: number
  /** Media fragments the relay said PERSISTED for. */
  persisted: number
  /** RECEIVED acks. */
  received: number
  /** Init segments sent. */
  initsSent: number
  /** Sends that had no answer within the ack timeout. */
  timeouts: number
  /** ERROR acks by code. */
  errors: Record<string, number>
  /** Fragments between their first chunk and their ack now. */
  inFlight: number
}

type Phase = 'loading' | 'sending' | 'awaiting' | 'waiting'

interface Attempt {
  f: StoredFragment
  live: boolean
  phase: Phase
  chunks: Buffer[] | null
  next: number
  unacked: number
  /** awaiting: when it is sent again without an answer; waiting: when it may go again. */
  dueMs: number
  tries: number
  /** Bumped at each send: callbacks of an earlier send are ignored. */
  gen: number
  /** When it started, for the order in which chunks go. */
  order: number
}

export class VideoSender implements UplinkAttachment {
  readonly topics: readonly string[]
  private readonly o: Required<Omit<VideoSenderOptions, 'store' | 'clock' | 'log' | 'backfillBytesPerSecond' | 'device'>> & VideoSenderOptions
  private readonly store: VideoStore
  private readonly clock: Clock
  private client: UplinkClient | null = null
  private readonly attempts = new Map<number, Attempt>()
  private readonly live = new Map<string, number[]>()
  private readonly buckets = new Map<string, ByteBucket>()
  /** `camera/session` of init segments the relay has persisted. */
  private readonly initsPersisted = new Set<string>()
  private readonly counters = new Map<string, Omit<CameraSendStats, 'inFlight'>>()
  private chunksInFlight = 0
  private order = 0
  private turn = 0
  private wake: { at: number; cancel: () => void } | null = null
  private stopped = false
  private pumping = false
  private again = false
  private readonly onAdded = (f: StoredFragment) => {
    if (f.init || !this.client) return
    this.liveQueue(f.camera).push(f.id)
    this.pump()
  }
  private readonly onRemoved = (gone: StoredFragment[]) => {
    for (const f of gone) {
      const a = this.attempts.get(f.id)
      if (a) { a.gen++; this.attempts.delete(f.id) }
      if (f.init) this.initsPersisted.delete(`${f.camera}/${f.session}`)
    }
    this.pump()
  }

  constructor(options: VideoSenderOptions) {
    this.o = { windowFragments: 2, windowChunks: 4, ackTimeoutMs: 20_000, retryInitialMs: 500, retryMaxMs: 30_000, ...options }
    this.store = options.store
    this.clock = options.clock
    this.topics = [topics.videoAcks(options.device)]
    this.store.on('added', this.onAdded)
    this.store.on('removed', this.onRemoved)
  }

  stats(camera: string): CameraSendStats {
    let inFlight = 0
    for (const a of this.attempts.values()) if (a.f.camera === camera && !a.f.init && a.phase !== 'waiting') inFlight++
    const c = this.count(camera)
    return { ...c, errors: { ...c.errors }, inFlight }
  }

  connected(client: UplinkClient): void {
    this.reset()
    this.client = client
    // The newest fragment of each camera is the live one; the rest is backlog, oldest first.
    for (const camera of this.store.cameras()) {
      const newest = this.store.newest(camera)
      this.live.set(camera, newest ? [newest.id] : [])
      this.bucket(camera).reset()
    }
    this.pump()
  }

  disconnected(): void {
    // Nothing in flight survives the connection: what the relay did not persist is sent again next time.
    this.reset()
  }

  stop(): void {
    this.stopped = true
    this.reset()
    this.store.off('added', this.onAdded)
    this.store.off('removed', this.onRemoved)
  }

  message(_topic: string, payload: Buffer): void {
    if (this.stopped) return
    try {
      this.handle(payload)
    } catch (err) {
      // The buffer could not record the outcome (a failing disk): the fragment stays and is sent again; never a crash.
      this.o.log('video_ack_handling_failed', { error: (err as Error).message })
    }
  }

  private handle(payload: Buffer): void {
    let ack: VideoAck
    try {
      ack = JSON.parse(payload.toString('utf8')) as VideoAck
    } catch {
      this.o.log('video_ack_unreadable', { bytes: payload.length })
      return
    }
    if (ack?.type !== 'video-ack' || typeof ack.stream !== 'string' || typeof ack.session !== 'string' || !Number.isSafeInteger(ack.sequence)) {
      this.o.log('video_ack_unreadable', { bytes: payload.length })
      return
    }
    const f = this.find(ack)
    if (!f) return // an answer to a send that no longer matters (a resend's twin, a dropped fragment)
    const a = this.attempts.get(f.id)
    const c = this.count(f.camera)
    // Any answer means every chunk is in: the relay acknowledges the last chunk only once it is stored, often after PERSISTED.
    if (a?.phase === 'sending' && a.next === a.chunks!.length) this.sent(a)
    if (ack.status === 'RECEIVED') {
      c.received++
      // Assembled on the relay: persisting it may take a while, so its answer gets the time again.
      if (a?.phase === 'awaiting') a.dueMs = this.clock.monoMs() + this.o.ackTimeoutMs
      return
    }
    if (ack.status === 'PERSISTED') {
      if (a) { a.gen++; this.attempts.delete(f.id) }
      if (f.init) this.initsPersisted.add(`${f.camera}/${f.session}`)
      else {
        c.persisted++
        this.store.remove(f.id, null)
      }
      this.pump()
      return
    }
    if (ack.status !== 'ERROR') return
    const code = String(ack.code ?? 'UNKNOWN')
    c.errors[code] = (c.errors[code] ?? 0) + 1
    this.o.log('video_ack_error', { camera: f.camera, stream: f.stream, session: f.session, sequence: f.sequence, code, message: ack.message })
    if (PERMANENT.has(code) || code.startsWith('VIDEO_FRAME_')) {
      this.drop(f, code)
    } else if (code === VideoAckError.CHECKSUM_MISMATCH) {
      // Bytes damaged on the way are sent again; a file damaged on the disk is dropped.
      this.store.read(f).then(
        (data) => { if (this.store.intact(f, data)) this.retry(f); else this.drop(f, code) },
        () => this.drop(f, 'missing_file'),
      ).catch((err: Error) => this.o.log('video_ack_handling_failed', { error: err.message }))
    } else {
      if (code === VideoAckError.UNKNOWN_SESSION) this.initsPersisted.delete(`${f.camera}/${f.session}`)
      if (!RETRYABLE.has(code)) this.o.log('video_ack_unknown_code', { code })
      this.retry(f)
    }
  }

  /** Fills the windows: chunks of the fragments being sent, then new fragments. */
  pump(): void {
    // A drop inside the loop announces itself and asks for a pump: that one runs as another turn of this loop.
    if (this.pumping) { this.again = true; return }
    this.pumping = true
    try {
      do {
        this.again = false
        const client = this.client
        if (!client || !client.connected || this.stopped) return
        this.timeouts()
        for (;;) {
          this.publishChunks(client)
          if (this.active() >= this.o.windowFragments) break
          const next = this.next()
          if (!next) break
          this.start(client, next.f, next.live)
        }
        this.arm()
      } while (this.again)
    } catch (err) {
      // A drop the buffer could not commit (a failing disk): try again in a while.
      this.o.log('video_pump_failed', { error: (err as Error).message })
      this.wake?.cancel()
      const cancel = this.clock.after(this.o.retryInitialMs, () => { this.wake = null; this.pump() })
      this.wake = { at: this.clock.monoMs() + this.o.retryInitialMs, cancel }
    } finally {
      this.pumping = false
    }
  }

  private reset(): void {
    this.client = null
    for (const a of this.attempts.values()) a.gen++
    this.attempts.clear()
    this.live.clear()
    this.chunksInFlight = 0
    this.wake?.cancel()
    this.wake = null
  }

  private count(camera: string): Omit<CameraSendStats, 'inFlight'> {
    let c = this.counters.get(camera)
    if (!c) this.counters.set(camera, c = { sent: 0, resent: 0, persisted: 0, received: 0, initsSent: 0, timeouts: 0, errors: {} })
    return c
  }

  private bucket(camera: string): ByteBucket {
    let b = this.buckets.get(camera)
    if (!b) this.buckets.set(camera, b = new ByteBucket(this.o.backfillBytesPerSecond(camera), this.clock))
    return b
  }

  private liveQueue(camera: string): number[] {
    let q = this.live.get(camera)
    if (!q) this.live.set(camera, q = [])
    return q
  }

  /** By the stream each fragment was captured for (a camera's stream may have changed in the config since). */
  private find(ack: VideoAck): StoredFragment | undefined {
    for (const camera of this.store.cameras()) {
      const f = this.store.find(camera, ack.session, ack.sequence)
      if (f?.stream === ack.stream) return f
    }
    return undefined
  }

  private active(): number {
    let n = 0
    for (const a of this.attempts.values()) if (a.phase !== 'waiting') n++
    return n
  }

  /**
   * The next fragment to send: a retry that is due, else each camera's live fragments, else its
   * backlog oldest-first within its rate cap; cameras take turns. A media fragment whose session's
   * init the relay has not persisted yields its init instead (once).
   */
  private next(): { f: StoredFragment; live: boolean } | null {
    const now = this.clock.monoMs()
    const ready = (f: StoredFragment, live: boolean): { f: StoredFragment; live: boolean } | null => {
      if (f.init || this.initsPersisted.has(`${f.camera}/${f.session}`)) return { f, live }
      const init = this.store.initOf(f.camera, f.session)
      if (!init) { this.drop(f, 'no_init'); return null }
      return this.attempts.has(init.id) ? null : { f: init, live: true }
    }
    for (const a of [...this.attempts.values()].sort((x, y) => x.f.id - y.f.id)) {
      if (a.phase !== 'waiting' || a.dueMs > now) continue
      if (!a.live && this.bucket(a.f.camera).waitMs() > 0) continue
      const r = ready(a.f, a.live)
      if (r) return r
    }
    const cameras = this.store.cameras()
    for (let k = 0; k < cameras.length; k++) {
      const camera = cameras[(this.turn + k) % cameras.length]!
      const q = this.liveQueue(camera)
      while (q.length) {
        const f = this.store.get(q[0]!)
        if (!f || this.attempts.has(f.id)) { q.shift(); continue }
        const r = ready(f, true)
        if (!r) break
        if (r.f === f) q.shift()
        this.turn = (this.turn + k + 1) % cameras.length
        return r
      }
    }
    for (let k = 0; k < cameras.length; k++) {
      const camera = cameras[(this.turn + k) % cameras.length]!
      if (this.bucket(camera).waitMs() > 0) continue
      const queued = new Set(this.liveQueue(camera))
      for (const f of this.store.fragments(camera)) {
        if (this.attempts.has(f.id) || queued.has(f.id)) continue
        const r = ready(f, false)
        if (!r) break
        this.turn = (this.turn + k + 1) % cameras.length
        return r
      }
    }
    return null
  }

  private start(client: UplinkClient, f: StoredFragment, live: boolean): void {
    const earlier = this.attempts.get(f.id)
    const a: Attempt = earlier ?? { f, live, phase: 'loading', chunks: null, next: 0, unacked: 0, dueMs: 0, tries: 0, gen: 0, order: 0 }
    a.phase = 'loading'
    a.gen++
    a.order = this.order++
    a.chunks = null
    a.next = 0
    a.unacked = 0
    a.tries++
    this.attempts.set(f.id, a)
    const c = this.count(f.camera)
    if (a.tries > 1) c.resent++
    if (!a.live && !f.init) this.bucket(f.camera).spend(f.size)
    const gen = a.gen
    this.store.read(f).then((data) => {
      if (this.client !== client || a.gen !== gen || this.attempts.get(f.id) !== a) return
      // Damaged since it was stored (the disk): no use sending what the relay would refuse.
      if (!this.store.intact(f, data)) { this.drop(f, VideoAckError.CHECKSUM_MISMATCH); return }
      try {
        a.chunks = encodeFragmentChunks({
          session: BigInt(f.session), sequence: f.sequence, init: f.init, keyFrame: f.keyFrame, clockSynced: f.clockSynced,
          fragmentBytes: f.size, crc32c: f.crc32c, producerTimeMs: f.producerTimeMs, durationMs: f.durationMs,
        }, data)
      } catch (err) {
        // Nothing the wire can carry (over 16 MiB, say): no use keeping it.
        this.o.log('video_fragment_unsendable', { camera: f.camera, file: f.file, error: (err as Error).message })
        this.drop(f, VideoAckError.FRAGMENT_TOO_LARGE)
        return
      }
      a.phase = 'sending'
      this.pump()
    }, (err: Error) => {
      if (a.gen !== gen || this.attempts.get(f.id) !== a) return
      this.o.log('video_fragment_unreadable', { camera: f.camera, file: f.file, error: err.message })
      this.drop(f, 'missing_file')
    }).catch((err: Error) => this.o.log('video_send_failed', { camera: f.camera, file: f.file, error: err.message }))
  }

  /** Chunks go fragment by fragment, in the order the fragments started (one still being read holds the later ones back), within the chunk window. */
  private publishChunks(client: UplinkClient): void {
    const queued = [...this.attempts.values()].filter((a) => a.phase === 'sending' || a.phase === 'loading').sort((x, y) => x.order - y.order)
    for (const a of queued) {
      if (a.phase === 'loading') return
      const chunks = a.chunks!
      while (a.next < chunks.length) {
        if (this.chunksInFlight >= this.o.windowChunks) return
        const chunk = chunks[a.next++]!
        const gen = a.gen
        this.chunksInFlight++
        a.unacked++
        client.publish(topics.video(this.o.device, a.f.stream), chunk, { qos: 1 }, (err) => {
          if (this.client !== client) return
          this.chunksInFlight--
          if (!err && a.gen === gen && this.attempts.get(a.f.id) === a) {
            a.unacked--
            if (a.next === chunks.length && a.unacked === 0) this.sent(a)
          }
          this.pump()
        })
      }
      // Every chunk is out: the next fragment's chunks may follow as the window allows.
    }
  }

  private sent(a: Attempt): void {
    a.phase = 'awaiting'
    a.chunks = null
    a.dueMs = this.clock.monoMs() + this.o.ackTimeoutMs
    const c = this.count(a.f.camera)
    if (a.f.init) c.initsSent++
    else c.sent++
  }

  private retry(f: StoredFragment): void {
    const a = this.attempts.get(f.id)
    if (!a || !this.client) return
    a.gen++
    a.phase = 'waiting'
    a.chunks = null
    const step = Math.min(this.o.retryMaxMs, this.o.retryInitialMs * 2 ** Math.min(a.tries - 1, 20))
    a.dueMs = this.clock.monoMs() + step
    this.pump()
  }

  private drop(f: StoredFragment, reason: string): void {
    const a = this.attempts.get(f.id)
    if (a) { a.gen++; this.attempts.delete(f.id) }
    if (f.init) this.store.removeSession(f.camera, f.session, reason)
    else this.store.remove(f.id, reason)
    this.pump()
  }

  /** One timer for the earliest of: an ack timeout, a retry falling due, a rate cap letting the backlog go on. */
  private arm(): void {
    if (!this.client || this.stopped) return
    const now = this.clock.monoMs()
    let at = Infinity
    // Only what falls due later: a retry already due that could not go waits for room in the window
    // (a PUBACK or an ack will pump), never for a timer (which would spin on a manual clock).
    for (const a of this.attempts.values()) if ((a.phase === 'awaiting' || a.phase === 'waiting') && a.dueMs > now) at = Math.min(at, a.dueMs)
    if (this.active() < this.o.windowFragments) {
      for (const camera of this.store.cameras()) {
        const wait = this.bucket(camera).waitMs()
        if (wait > 0 && this.hasBacklog(camera)) at = Math.min(at, now + wait)
      }
    }
    if (at === Infinity) { this.wake?.cancel(); this.wake = null; return }
    if (this.wake && this.wake.at <= at && this.wake.at > now) return
    this.wake?.cancel()
    const cancel = this.clock.after(at - now, () => {
      this.wake = null
      this.pump()
    })
    this.wake = { at, cancel }
  }

  private hasBacklog(camera: string): boolean {
    for (const f of this.store.fragments(camera)) if (!this.attempts.has(f.id)) return true
    return false
  }

  private timeouts(): void {
    const now = this.clock.monoMs()
    for (const a of this.attempts.values()) {
      if (a.phase !== 'awaiting' || a.dueMs > now) continue
      this.count(a.f.camera).timeouts++
      this.o.log('video_ack_timeout', { camera: a.f.camera, session: a.f.session, sequence: a.f.sequence })
      a.gen++
      a.phase = 'waiting'
      a.dueMs = now
    }
  }
}
