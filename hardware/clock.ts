/**
 * The clock, passed in (to the agent and the relay) so tests can jump the wall clock and run time
 * forward by hand.
 *
 * Decisions that depend on elapsed time (ages, backoff, the drain rate, the watchdog, periodic work)
 * read and wait on this clock. Bounds on I/O (a socket's connect timeout, the goodbye before a
 * close) are real time: they are about the network, not about the agent's schedule.
 */
import { existsSync } from 'node:fs'

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (may jump). */
  wallMs(): number
  /** Monotonic milliseconds (never jumps; any origin). */
  monoMs(): number
  /** Whether the wall clock is known to be synchronised (NTP); recorded with every reading. */
  synced(): boolean
  /** Calls `fn` once `ms` of monotonic time have passed; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void
}

/** Calls `fn` every `ms` on `clock` until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let cancel = () => {}
  let stopped = false
  const arm = () => { cancel = clock.after(ms, () => { if (stopped) return; arm(); fn() }) }
  arm()
  return () => { stopped = true; cancel() }
}

/** A monotonic clock that goes on from `carriedMs`: running time kept across restarts (the outbox clock). */
export function runningTime(clock: Clock, carriedMs: number): () => number {
  const start = clock.monoMs()
  return () => carriedMs + (clock.monoMs() - start)
}

/** systemd-timesyncd creates this file once the clock has been synchronised. */
const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized'

/** The longest delay one Node timer holds. */
const MAX_TIMER_MS = 2 ** 31 - 1

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
    after: (ms, fn) => {
      // libuv runs timers on a millisecond loop clock, which can fire one up to a millisecond early
      // against performance.now(): wait out the rest, so a timer is never early on monoMs().
      // Node holds at most 2^31-1 ms in one timer (a longer one fires at once, with a warning):
      // a longer wait is taken in such steps.
      const due = performance.now() + ms
      const fire = () => {
        const left = due - performance.now()
        if (left > 0) timer = setTimeout(fire, Math.min(MAX_TIMER_MS, Math.ceil(left)))
        else fn()
      }
      let timer = setTimeout(fire, Math.min(MAX_TIMER_MS, ms))
      return () => clearTimeout(timer)
    },
  }
}

export const systemClock: Clock = makeSystemClock()

/** The stand-in for tests: time moves only when the test moves it. */
export interface ManualClock extends Clock {
  /** Moves both clocks forward by `ms`, running each timer that falls due, in due order, at its time. */
  advance(ms: number): void
  /** Moves the wall clock alone (an NTP step, an RTC reset); timers are not affected. */
  jumpWall(ms: number): void
  /** How long until the earliest pending timer is due, or null when none is pending. */
  nextDueMs(): number | null
}

export function manualClock(options: { wallMs?: number; synced?: boolean } = {}): ManualClock {
  let wall = options.wallMs ?? 1_800_000_000_000
  let mono = 0
  let seq = 0
  const timers = new Map<number, { due: number; fn: () => void }>()
  const earliest = () => {
    let found: [number, { due: number; fn: () => void }] | null = null
    for (const entry of timers) if (!found || entry[1].due < found[1].due) found = entry
    return found
  }
  return {
    wallMs: () => wall,
    monoMs: () => mono,
    synced: () => options.synced ?? true,
    after: (ms, fn) => {
      const id = seq++
      timers.set(id, { due: mono + Math.max(0, ms), fn })
      return () => { timers.delete(id) }
    },
    advance: (ms) => {
      const until = mono + ms
      for (let next = earliest(); next && next[1].due <= until; next = earliest()) {
        timers.delete(next[0])
        wall += next[1].due - mono
        mono = next[1].due
        next[1].fn()
      }
      wall += until - mono
      mono = until
    },
    jumpWall: (ms) => { wall += ms },
    nextDueMs: () => {
      const next = earliest()
      return next ? next[1].due - mono : null
    },
  }
}
