/** The agent's clocks, passed in so tests can jump the wall clock. */
import { existsSync } from 'node:fs'

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (may jump). */
  wallMs(): number
  /** Monotonic milliseconds (never jumps; any origin). */
  monoMs(): number
  /** Whether the wall clock is known to be synchronised (NTP); recorded with every reading. */
  synced(): boolean
}

/** systemd-timesyncd creates this file once the clock has been synchronised. */
const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized'

function makeSystemClock(): Clock {
  let checkedAt = -Infinity
  let synced = false
  return {
    wallMs: () => Date.now(),
    monoMs: () => performance.now(),
    synced: () => {
      const now = performance.now()
      if (now - checkedAt > 60_000) {
        synced = existsSync(TIMESYNC_FLAG)
        checkedAt = now
      }
      return synced
    },
  }
}

export const systemClock: Clock = makeSystemClock()

/** A monotonic clock that goes on from `carriedMs`: running time kept across restarts (the outbox clock). */
export function runningTime(clock: Clock, carriedMs: number): () => number {
  const start = clock.monoMs()
  return () => carriedMs + (clock.monoMs() - start)
}
