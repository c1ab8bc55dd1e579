/** The agent's clocks, passed in so tests can jump the wall clock. */
export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (may jump). */
  wallMs(): number
  /** Monotonic milliseconds (never jumps; any origin). */
  monoMs(): number
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
}
