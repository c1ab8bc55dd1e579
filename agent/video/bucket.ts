/**
 * The backfill rate cap: a token bucket in bytes on the injected clock that may go into debt, so a
 * fragment always goes whole and the average rate holds. It starts empty at each connection (the
 * first fragment of a backlog goes at once, the next when the debt is paid) and holds at most a
 * second's worth.
 */
import type { Clock } from '../../hardware/index.js'

export class ByteBucket {
  private readonly bytesPerSecond: number
  private readonly clock: Clock
  private tokens = 0
  private last: number

  /** `bytesPerSecond` 0: no cap. */
  constructor(bytesPerSecond: number, clock: Clock) {
    this.bytesPerSecond = bytesPerSecond
    this.clock = clock
    this.last = clock.monoMs()
  }

  reset(): void {
    this.tokens = 0
    this.last = this.clock.monoMs()
  }

  /** How long until the next fragment may go: 0 when it may go now. */
  waitMs(): number {
    if (this.bytesPerSecond <= 0) return 0
    const now = this.clock.monoMs()
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond)
    this.last = now
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.bytesPerSecond) * 1000)
  }

  spend(bytes: number): void {
    if (this.bytesPerSecond > 0) this.tokens -= bytes
  }
}
