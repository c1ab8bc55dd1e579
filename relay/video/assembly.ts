/**
 * Fragments being put back together from their chunks, bounded and expiring. Each incomplete
 * fragment (keyed by device, stream, session, sequence) reserves its whole declared size when its
 * chunk 0 arrives, against a cap per device and one for the relay, so the memory held is known
 * before it is taken and a fragment that would pass a cap is refused before a byte of it is kept.
 *
 * Chunks must come in order, from chunk 0. A chunk the same as the one just taken (a QoS 1 resend)
 * is ignored; any other chunk out of order drops the fragment (CHUNK_OUT_OF_ORDER), and a chunk 0
 * for a fragment under way starts it again (the device is sending it anew). A chunk whose header
 * disagrees with its fragment's first chunk drops the fragment (CHUNK_MISMATCH). An incomplete
 * fragment that receives nothing for `timeoutMs` of the relay's clock is dropped.
 */
import type { Clock } from '../../hardware/index.js'
import { VideoAckError, type VideoChunk } from '../../shared/video.js'

export interface AssemblyLimits {
  /** Incomplete fragments one device may have. */
  maxPerDevice: number
  /** Bytes (declared sizes) of one device's incomplete fragments. */
  maxBytesPerDevice: number
  /** Incomplete fragments of all devices. */
  maxFragments: number
  /** Bytes of all devices' incomplete fragments. */
  maxBytes: number
  /** An incomplete fragment that receives no chunk this long is dropped. */
  timeoutMs: number
}

export type Offer =
  | { kind: 'taken' }
  | { kind: 'ignored'; why: string }
  | { kind: 'complete'; data: Buffer; first: VideoChunk }
  | { kind: 'refused'; code: VideoAckError; message: string }

interface Pending {
  key: string
  device: string
  first: VideoChunk
  data: Buffer
  next: number
  lastMs: number
}

interface DeviceState {
  pending: Map<string, Pending>
  bytes: number
  /** The fragment of several chunks this device completed last: a repeat of its last chunk alone is ignored. */
  completed: { key: string; last: number; atMs: number } | null
}

export class Assemblies {
  private readonly limits: AssemblyLimits
  private readonly clock: Clock
  private readonly devices = new Map<string, DeviceState>()
  private count = 0
  private bytes = 0
  /** Called for each fragment dropped by expiry. */
  onExpired?: (device: string, key: string) => void

  constructor(limits: AssemblyLimits, clock: Clock) {
    this.limits = limits
    this.clock = clock
  }

  static keyOf(stream: string, session: bigint, sequence: number): string {
    return `${stream}/${session}/${sequence}`
  }

  /** Incomplete fragments held now, and the bytes reserved for them. */
  held(): { fragments: number; bytes: number; devices: number } {
    return { fragments: this.count, bytes: this.bytes, devices: this.devices.size }
  }

  offer(device: string, stream: string, chunk: VideoChunk): Offer {
    const key = Assemblies.keyOf(stream, chunk.session, chunk.sequence)
    const state = this.devices.get(device)
    const pending = state?.pending.get(key)
    const now = this.clock.monoMs()
    if (chunk.chunkIndex === 0) {
      if (pending?.next === 1 && sameHeader(pending.first, chunk)) return this.touch(pending, now, { kind: 'ignored', why: 'a repeat of chunk 0, just taken' })
      if (pending) this.drop(state!, pending)
      // A fragment of one chunk, new or sent again, is complete at once (the store answers a resend with its number).
      if (chunk.chunkCount === 1) return { kind: 'complete', data: Buffer.from(chunk.data), first: chunk }
      return this.start(device, key, chunk, now)
    }
    if (!pending) {
      if (state?.completed?.key === key && state.completed.last === chunk.chunkIndex) return { kind: 'ignored', why: `a repeat of chunk ${chunk.chunkIndex}, the last of a fragment just completed` }
      return { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER, message: `chunk ${chunk.chunkIndex} of ${chunk.chunkCount} arrived with no fragment under way (chunk 0 missing, or the fragment expired or was dropped); send the fragment again from chunk 0` }
    }
    if (!sameHeader(pending.first, chunk)) {
      this.drop(state!, pending)
      return { kind: 'refused', code: VideoAckError.CHUNK_MISMATCH, message: `chunk ${chunk.chunkIndex} disagrees with chunk 0 of its fragment (size, count, checksum, times or flags); send the fragment again from chunk 0` }
    }
    if (chunk.chunkIndex === pending.next - 1) return this.touch(pending, now, { kind: 'ignored', why: `a repeat of chunk ${chunk.chunkIndex}, just taken` })
    if (chunk.chunkIndex !== pending.next) {
      this.drop(state!, pending)
      return { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER, message: `chunk ${chunk.chunkIndex} of ${chunk.chunkCount} arrived where chunk ${pending.next} was due; send the fragment again from chunk 0` }
    }
    pending.data.set(chunk.data, chunk.chunkOffset)
    pending.next++
    pending.lastMs = now
    if (pending.next < chunk.chunkCount) return { kind: 'taken' }
    this.drop(state!, pending)
    state!.completed = { key, last: chunk.chunkCount - 1, atMs: now }
    return { kind: 'complete', data: pending.data, first: pending.first }
  }

  private touch(pending: Pending, now: number, offer: Offer): Offer {
    pending.lastMs = now
    return offer
  }

  private start(device: string, key: string, chunk: VideoChunk, now: number): Offer {
    const size = chunk.fragmentBytes
    const l = this.limits
    if (size > l.maxBytesPerDevice || size > l.maxBytes) {
      return { kind: 'refused', code: VideoAckError.FRAGMENT_TOO_LARGE, message: `a ${size}-byte fragment is over the relay's limit of ${Math.min(l.maxBytesPerDevice, l.maxBytes)} bytes held per device` }
    }
    let state = this.devices.get(device)
    const mine = state?.pending.size ?? 0
    const myBytes = state?.bytes ?? 0
    if (mine >= l.maxPerDevice || myBytes + size > l.maxBytesPerDevice) {
      return { kind: 'refused', code: VideoAckError.TOO_MANY_PENDING, message: `${device} has ${mine} incomplete fragments (${myBytes} bytes); the limit is ${l.maxPerDevice} (${l.maxBytesPerDevice} bytes): finish or wait before starting another` }
    }
    if (this.count >= l.maxFragments || this.bytes + size > l.maxBytes) {
      return { kind: 'refused', code: VideoAckError.TOO_MANY_PENDING, message: `the relay holds ${this.count} incomplete fragments (${this.bytes} bytes), its limit; retry later` }
    }
    if (!state) {
      state = { pending: new Map(), bytes: 0, completed: null }
      this.devices.set(device, state)
    }
    const data = Buffer.allocUnsafe(size)
    data.set(chunk.data, 0)
    // The header is kept, not the payload it points into.
    const first = { ...chunk, data: new Uint8Array(0) }
    state.pending.set(key, { key, device, first, data, next: 1, lastMs: now })
    state.bytes += size
    this.count++
    this.bytes += size
    return { kind: 'taken' }
  }

  private drop(state: DeviceState, pending: Pending): void {
    if (!state.pending.delete(pending.key)) return
    state.bytes -= pending.data.length
    this.count--
    this.bytes -= pending.data.length
  }

  /** Drops a device's incomplete fragment (a bad chunk named it), if any. */
  discard(device: string, key: string): boolean {
    const state = this.devices.get(device)
    const pending = state?.pending.get(key)
    if (!pending) return false
    this.drop(state!, pending)
    this.tidy(device, state!)
    return true
  }

  /** Drops everything a device has under way (its connection closed on a storage failure). */
  discardDevice(device: string): void {
    const state = this.devices.get(device)
    if (!state) return
    for (const p of [...state.pending.values()]) this.drop(state, p)
    this.devices.delete(device)
  }

  /** Drops incomplete fragments idle for the timeout; how many. */
  expire(): number {
    const cutoff = this.clock.monoMs() - this.limits.timeoutMs
    let n = 0
    for (const [device, state] of this.devices) {
      for (const p of [...state.pending.values()]) {
        if (p.lastMs > cutoff) continue
        this.drop(state, p)
        this.onExpired?.(device, p.key)
        n++
      }
      if (state.completed && state.completed.atMs <= cutoff) state.completed = null
      this.tidy(device, state)
    }
    return n
  }

  /** A device with nothing under way and no recent completion is forgotten. */
  private tidy(device: string, state: DeviceState): void {
    if (state.pending.size === 0 && !state.completed) this.devices.delete(device)
  }
}

function sameHeader(a: VideoChunk, b: VideoChunk): boolean {
  return a.fragmentBytes === b.fragmentBytes && a.chunkCount === b.chunkCount && a.crc32c === b.crc32c && a.durationMs === b.durationMs &&
    Object.is(a.producerTimeMs, b.producerTimeMs) && a.keyFrame === b.keyFrame && a.clockSynced === b.clockSynced
}
