/**
 * Video over MQTT: chunk frames from the broker's `authorizePublish` (which aedes runs before it
 * writes the PUBACK), put back together (assembly.ts), checked, stored (store.ts), and answered per
 * fragment on the device's video-acks topic: RECEIVED once every chunk is in and the checksum holds,
 * PERSISTED with the fragment number once the file is fsynced and its row committed, or ERROR with a
 * code and a message.
 *
 * PUBACK: a chunk is acknowledged once it is taken into memory (or refused with an ERROR: bad input
 * is answered, never retried forever). A complete fragment is stored in the background while the
 * device's next chunks come in, up to STORES_AHEAD fragments per device; past that, the last chunk's
 * PUBACK waits for its fragment's store, so a device's window paces it to the disk. (aedes reads a
 * connection's next packets only once the current ones are handled: holding every last chunk until
 * its store is done would leave the link idle during each fsync.) The device deletes a fragment only
 * on PERSISTED, so a relay that dies mid-fragment loses nothing it acknowledged. When the relay cannot
 * store (the data directory at its cap, a failing disk) the device is told (ERROR STORAGE_UNAVAILABLE):
 * a chunk refused before it is taken gets no PUBACK and the connection is closed, as for record
 * batches; a store that fails in the background closes the connection too. The device keeps the
 * fragment and retries.
 */
import { codec as defaultCodec, type Clock, type Codec } from '../../hardware/index.js'
import { ErrorCode, StorageError } from '../../shared/errors.js'
import {
  CHUNK_HEADER_SIZE, V_OFF_MAGIC, V_OFF_SEQUENCE, V_OFF_SESSION, V_OFF_VERSION, VIDEO_FRAME_VERSION, VIDEO_MAGIC_0, VIDEO_MAGIC_1,
  VideoAckError, VideoFrameError, decodeVideoChunk, type VideoAck, type VideoChunk, type VideoFrameProblem,
} from '../../shared/video.js'
import { Assemblies, type AssemblyLimits } from './assembly.js'
import type { VideoStore } from './store.js'
import { VideoApiError, VideoErrorType } from './errors.js'
import type { VideoStreamRecord } from './catalog.js'
import type { VideoStreams } from './streams.js'

export interface VideoIngestOptions {
  store: VideoStore
  streams: VideoStreams
  clock: Clock
  limits: AssemblyLimits
  autoCreateStreams: boolean
  autoCreateMaxPerDevice: number
  /** Retention of streams a device creates by publishing to them. */
  autoCreateRetentionHours: number
  /** Publishes an ack to the device's video-acks topic; resolves once it is handed to the broker. */
  publish: (device: string, ack: VideoAck) => Promise<void>
  codec?: Codec
  log?: (event: string, fields: Record<string, unknown>) => void
  /** Observers for /metrics. */
  onPersisted?: (stream: string, bytes: number, duplicate: boolean) => void
  onError?: (code: string) => void
  onExpired?: () => void
  /** Closes the device's connections: a store in the background found that the relay cannot store now. */
  disconnect?: (device: string) => void
}

/** The outcome of one chunk for the broker: PUBACK, or no PUBACK and the connection closed. */
export type ChunkOutcome = { ack: true } | { ack: false; error: StorageError }

/** After a device is refused for storage, its chunks already on the way are refused quietly this long (its connection is closing). */
const REFUSED_QUIET_MS = 1000
/** Complete fragments of one device stored in the background at once, before its PUBACKs wait on the disk. */
const STORES_AHEAD = 2

export class VideoIngest {
  private readonly o: VideoIngestOptions
  private readonly codec: Codec
  readonly assemblies: Assemblies
  /** Devices refused for storage, and when (monotonic ms). */
  private readonly refused = new Map<string, number>()
  /** Stores under way in the background, by device. */
  private readonly storing = new Map<string, Set<Promise<ChunkOutcome>>>()

  constructor(options: VideoIngestOptions) {
    this.o = options
    this.codec = options.codec ?? defaultCodec
    this.assemblies = new Assemblies(options.limits, options.clock)
    this.assemblies.onExpired = (device, key) => {
      this.o.onExpired?.()
      this.o.log?.('video_fragment_expired', { device, fragment: key })
    }
  }

  /** Drops incomplete fragments idle past the timeout (the relay calls it on its clock). */
  expire(): number {
    const now = this.o.clock.monoMs()
    for (const [device, at] of this.refused) if (now - at >= REFUSED_QUIET_MS) this.refused.delete(device)
    return this.assemblies.expire()
  }

  /**
   * One chunk payload from `device` for `streamName`. Everything up to taking the chunk runs before
   * the first await, so chunks handled together (aedes dispatches a socket read's packets at once)
   * are taken in the order they arrived.
   */
  async take(device: string, streamName: string, payload: Buffer): Promise<ChunkOutcome> {
    let chunk: VideoChunk
    try {
      chunk = decodeVideoChunk(payload)
    } catch (err) {
      if (!(err instanceof VideoFrameError)) throw err
      return this.badFrame(device, streamName, payload, err)
    }
    const refusedAt = this.refused.get(device)
    if (refusedAt !== undefined) {
      if (this.o.clock.monoMs() - refusedAt < REFUSED_QUIET_MS) return { ack: false, error: new StorageError(ErrorCode.STORAGE_FULL, 'refused a moment ago: the relay cannot store now') }
      this.refused.delete(device)
    }
    const base = { type: 'video-ack' as const, stream: streamName, session: chunk.session.toString(), sequence: chunk.sequence }
    const error = async (code: VideoAckError | VideoFrameProblem, message: string): Promise<ChunkOutcome> => {
      this.o.onError?.(code)
      this.o.log?.('video_fragment_refused', { device, stream: streamName, session: base.session, sequence: chunk.sequence, code, message })
      await this.o.publish(device, { ...base, status: 'ERROR', code, message })
      return { ack: true }
    }
    if (chunk.chunkIndex === 0) {
      const found = this.streamFor(device, streamName)
      if ('refused' in found) return error(VideoAckError.STREAM_NOT_FOUND, found.refused)
      try {
        this.o.store.checkCapacity(chunk.fragmentBytes)
      } catch (err) {
        if (err instanceof StorageError) return this.unavailable(device, base, err)
        throw err
      }
    }
    const offer = this.assemblies.offer(device, streamName, chunk)
    switch (offer.kind) {
      case 'taken':
      case 'ignored':
        return { ack: true }
      case 'refused':
        return error(offer.code, offer.message)
      case 'complete':
        break
    }
    const data = offer.data
    const first = offer.first
    const crc = this.codec.crc32c(data) >>> 0
    if (crc !== first.crc32c >>> 0) {
      return error(VideoAckError.CHECKSUM_MISMATCH, `the fragment's CRC-32C is ${crc.toString(16)}, its header says ${(first.crc32c >>> 0).toString(16)}; send it again`)
    }
    await this.o.publish(device, { ...base, status: 'RECEIVED' })
    const persist = async (): Promise<ChunkOutcome> => {
      // The stream may have been deleted while the fragment arrived.
      const stream = this.o.streams.get(streamName)
      if (!stream) return error(VideoAckError.STREAM_NOT_FOUND, `stream ${streamName} was deleted`)
      let outcome
      try {
        outcome = await this.o.store.put({
          stream, device, session: first.session, sequence: first.sequence, producerTimeMs: first.producerTimeMs,
          clockSynced: first.clockSynced, data, crc32c: first.crc32c,
        })
      } catch (err) {
        if (err instanceof StorageError) return this.unavailable(device, base, err)
        throw err
      }
      if (!outcome.ok) return error(outcome.code, outcome.message)
      this.o.onPersisted?.(streamName, data.length, outcome.duplicate)
      await this.o.publish(device, { ...base, status: 'PERSISTED', fragmentNumber: outcome.fragmentNumber })
      return { ack: true }
    }
    const mine = this.storing.get(device) ?? new Set<Promise<ChunkOutcome>>()
    if (mine.size >= STORES_AHEAD) return persist()
    // In the background: the PUBACK goes now, and what the store finds is the device's to hear.
    const stored = persist().then((outcome) => {
      if (!outcome.ack) this.o.disconnect?.(device)
      return outcome
    }, (err: Error) => {
      this.o.log?.('video_ingest_error', { device, stream: streamName, session: base.session, sequence: chunk.sequence, error: err.stack ?? String(err) })
      this.o.disconnect?.(device)
      return { ack: false as const, error: new StorageError(ErrorCode.STORAGE_FAILED, err.message) }
    }).finally(() => {
      mine.delete(stored)
      if (!mine.size && this.storing.get(device) === mine) this.storing.delete(device)
    })
    mine.add(stored)
    this.storing.set(device, mine)
    return { ack: true }
  }

  /** Resolves once every store under way in the background has finished (the relay closes after it). */
  async settled(): Promise<void> {
    while (this.storing.size) await Promise.all([...this.storing.values()].flatMap((s) => [...s]))
  }

  /** Cannot store now: say so, drop what the device has under way, and withhold the PUBACK. */
  private async unavailable(device: string, base: Omit<VideoAck, 'status'>, err: StorageError): Promise<ChunkOutcome> {
    this.o.onError?.(VideoAckError.STORAGE_UNAVAILABLE)
    this.o.log?.('video_fragment_not_stored', { device, stream: base.stream, session: base.session, sequence: base.sequence, code: err.code, error: err.message })
    this.assemblies.discardDevice(device)
    this.refused.set(device, this.o.clock.monoMs())
    await this.o.publish(device, { ...base, status: 'ERROR', code: VideoAckError.STORAGE_UNAVAILABLE, message: `${err.message}; keep the fragment and retry` })
    return { ack: false, error: err }
  }

  /**
   * A payload that is not a chunk frame. It names no fragment that can be trusted, but when its magic
   * and version are right the session and sequence it claims are reported (and any fragment of that
   * name under way is dropped), so the device can tell which fragment to send again.
   */
  private async badFrame(device: string, stream: string, payload: Buffer, err: VideoFrameError): Promise<ChunkOutcome> {
    let session = '0'
    let sequence = -1
    const readable = payload.length >= CHUNK_HEADER_SIZE && payload[V_OFF_MAGIC] === VIDEO_MAGIC_0 && payload[V_OFF_MAGIC + 1] === VIDEO_MAGIC_1 && payload[V_OFF_VERSION] === VIDEO_FRAME_VERSION
    if (readable) {
      const s = payload.readBigUInt64LE(V_OFF_SESSION)
      const q = payload.readBigUInt64LE(V_OFF_SEQUENCE)
      if (q <= BigInt(Number.MAX_SAFE_INTEGER)) {
        session = s.toString()
        sequence = Number(q)
        this.assemblies.discard(device, Assemblies.keyOf(stream, s, sequence))
      }
    }
    this.o.onError?.(err.code)
    this.o.log?.('video_frame_invalid', { device, stream, code: err.code, error: err.message })
    await this.o.publish(device, { type: 'video-ack', stream, session, sequence, status: 'ERROR', code: err.code, message: err.message })
    return { ack: true }
  }

  /** The stream a device publishes to, created on first use when the relay allows it. */
  private streamFor(device: string, name: string): { stream: VideoStreamRecord } | { refused: string } {
    const existing = this.o.streams.get(name)
    if (existing) return { stream: existing }
    if (!this.o.autoCreateStreams) return { refused: `video stream ${name} does not exist and the relay does not create streams on first use` }
    const made = this.o.streams.createdBy(device)
    if (made >= this.o.autoCreateMaxPerDevice) return { refused: `video stream ${name} does not exist and ${device} has created ${made} streams, its limit` }
    try {
      const stream = this.o.streams.create({ name, retentionHours: this.o.autoCreateRetentionHours, deviceName: device, mediaType: 'video/h264', createdBy: device })
      this.o.log?.('video_stream_created', { stream: name, device })
      return { stream }
    } catch (err) {
      if (err instanceof VideoApiError && err.type !== VideoErrorType.ResourceInUseException) return { refused: `video stream ${name} cannot be created: ${err.message}` }
      if (err instanceof VideoApiError) return { stream: this.o.streams.get(name)! }
      throw err
    }
  }

  held(): { fragments: number; bytes: number; devices: number } {
    return this.assemblies.held()
  }
}
