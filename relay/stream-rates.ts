/**
 * Each data stream's incoming records and bytes over the last hour, for the console's chart: a ring
 * of 360 ten-second steps per stream. Fed once per stored batch (a map lookup and two additions, not
 * per record), stepped by the relay's clock.
 */
import type { StreamState } from './streams.js'

export const RATE_STEP_MS = 10_000
export const RATE_STEPS = 360

interface Ring {
  records: number[]
  bytes: number[]
  /** This step's counts, not yet in the ring. */
  stepRecords: number
  stepBytes: number
}

export interface RateSeries {
  stepMs: number
  /** Records and bytes per second in each step, oldest first; the last is the step that ended last. */
  recordsPerSecond: number[]
  bytesPerSecond: number[]
}

export class StreamRates {
  private readonly rings = new Map<string, Ring>()
  private readonly listeners = new Set<() => void>()

  /** `fn` runs after every step (the console pushes it); returns the unsubscribe. */
  onStep(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** A batch of `records` records and `bytes` data bytes was stored in `stream`. */
  add(stream: string, records: number, bytes: number): void {
    let ring = this.rings.get(stream)
    if (!ring) {
      ring = { records: [], bytes: [], stepRecords: 0, stepBytes: 0 }
      this.rings.set(stream, ring)
    }
    ring.stepRecords += records
    ring.stepBytes += bytes
  }

  /** A step has passed: its counts join the ring, the oldest leave past an hour. */
  step(): void {
    for (const ring of this.rings.values()) {
      ring.records.push(ring.stepRecords)
      ring.bytes.push(ring.stepBytes)
      ring.stepRecords = 0
      ring.stepBytes = 0
      if (ring.records.length > RATE_STEPS) {
        ring.records.shift()
        ring.bytes.shift()
      }
    }
    for (const fn of this.listeners) fn()
  }

  /** The stream was deleted: its series goes with it. */
  forget(stream: string): void {
    this.rings.delete(stream)
  }

  of(stream: string): RateSeries {
    const ring = this.rings.get(stream)
    const perSecond = (n: number) => n / (RATE_STEP_MS / 1000)
    return { stepMs: RATE_STEP_MS, recordsPerSecond: (ring?.records ?? []).map(perSecond), bytesPerSecond: (ring?.bytes ?? []).map(perSecond) }
  }
}

/** What the console shows of a data stream. */
export interface StreamView {
  name: string
  status: string
  mode: string
  retentionHours: number
  encrypted: boolean
  /** Every shard still retained, open or closed, with its hash-key range as fractions of 2^128. */
  shards: { shardId: string; from: number; to: number; open: boolean; parent: string | null; adjacentParent: string | null; records: number }[]
  incoming: RateSeries
}

const SPACE = 2 ** 128

/** What the console shows of each stream, by name. */
export function streamViews(list: readonly StreamState[], rates: StreamRates, encrypted: (streamId: string) => boolean): StreamView[] {
  return [...list].sort((a, b) => a.meta.name.localeCompare(b.meta.name)).map((s) => ({
    name: s.meta.name,
    status: s.meta.status,
    mode: s.meta.mode,
    retentionHours: s.meta.retentionHours,
    encrypted: encrypted(s.meta.id),
    shards: s.shards.map((sh) => ({
      shardId: sh.meta.shardId,
      from: Number(sh.start) / SPACE,
      to: (Number(sh.end) + 1) / SPACE,
      open: sh.meta.endOffset === null,
      parent: sh.meta.parentShardId,
      adjacentParent: sh.meta.adjacentParentShardId,
      records: sh.log.endOffset(),
    })),
    incoming: rates.of(s.meta.name),
  }))
}
