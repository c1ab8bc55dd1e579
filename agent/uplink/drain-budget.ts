/**
 * The drain rate cap: a token bucket in records that may go into debt, so batches stay whole and
 * the average rate holds. It holds at most a second of records (or one batch, if that is more).
 */
import type { Clock } from '../../hardware/index.js'

export class DrainBudget {
  private readonly ratePerSecond: number
  private readonly capacity: number
  private readonly clock: Clock
  private tokens: number
  private lastRefill: number

  /** `ratePerSecond` 0: no cap. */
  constructor(ratePerSecond: number, batchRecords: number, clock: Clock) {
    this.ratePerSecond = ratePerSecond
    this.capacity = Math.max(batchRecords, ratePerSecond)
    this.clock = clock
    this.tokens = batchRecords
    this.lastRefill = clock.monoMs()
  }

  /** How long to wait before the next batch may go: 0 when it may go now. */
  waitMs(): number {
    if (this.ratePerSecond <= 0) return 0
    const now = this.clock.monoMs()
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.lastRefill) / 1000) * this.ratePerSecond)
    this.lastRefill = now
    return this.tokens > 0 ? 0 : Math.ceil((-this.tokens + 1) / this.ratePerSecond * 1000)
  }

  spend(records: number): void {
    if (this.ratePerSecond > 0) this.tokens -= records
  }
}
