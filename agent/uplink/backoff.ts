/** Reconnect delays: doubling from initialMs up to maxMs, with "equal jitter"; reset only by progress. */
export class Backoff {
  private attempt = 0
  private readonly initialMs: number
  private readonly maxMs: number
  private readonly random: () => number

  constructor(initialMs: number, maxMs: number, random: () => number = Math.random) {
    this.initialMs = initialMs
    this.maxMs = maxMs
    this.random = random
  }

  /** The delay before the next attempt: between half the current step and the whole of it. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 20))
    this.attempt++
    return base / 2 + this.random() * (base / 2)
  }

  reset(): void {
    this.attempt = 0
  }
}
