/**
 * Each data stream's incoming records and bytes over the last hour, for the console's chart: a ring
 * of 360 ten-second steps per stream. Fed once per stored batch (a map lookup and two additions, not
 * per record), stepped by the relay's clock.
 */
import type { RateSeries } from './console/views.js'

export const RATE_STEP_MS = 10_000
export const RATE_STEPS = 360

interface Ring {
  records: number[]
  bytes: number[]
  /** This step's counts, not yet in the ring. */
  stepRecords: number
  stepBytes: number
  /** Steps in a row with nothing stored: a ring quiet for the whole hour is dropped (a deleted stream's). */
  quietSteps: number
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
      ring = { records: [], bytes: [], stepRecords: 0, stepBytes: 0, quietSteps: 0 }
      this.rings.set(stream, ring)
    }
    ring.stepRecords += records
    ring.stepBytes += bytes
  }

  /**
   * A step has passed: its counts join the ring, the oldest leave past an hour. A ring with nothing
   * in the whole hour is dropped: it reads as zeros all the same, and a deleted stream's goes.
   */
  step(): void {
    for (const [stream, ring] of this.rings) {
      ring.quietSteps = ring.stepRecords === 0 ? ring.quietSteps + 1 : 0
      if (ring.quietSteps >= RATE_STEPS) {
        this.rings.delete(stream)
        continue
      }
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

  of(stream: string): RateSeries {
    const ring = this.rings.get(stream)
    const perSecond = (n: number) => n / (RATE_STEP_MS / 1000)
    return { stepMs: RATE_STEP_MS, recordsPerSecond: (ring?.records ?? []).map(perSecond), bytesPerSecond: (ring?.bytes ?? []).map(perSecond) }
  }
}
