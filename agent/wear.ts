/**
 * How fast the agent wears its storage: the bytes it has caused to be written (`write_bytes` of
 * /proc/self/io, counted by the kernel when the agent dirties a page: the outbox, its WAL, the video
 * buffer), today's total and a projection over 24 hours from the last hour's rate, against a budget
 * in MB per day. An SD card's endurance is what it can be written, so this is the figure that says
 * how long a card will last. Days are UTC days; the figures start with the process (nothing is
 * written to keep them: that would be wear of its own).
 */
import { readFileSync } from 'node:fs'
import type { Clock } from '../hardware/index.js'

/** The projection is over at most this much of the latest samples. */
const WINDOW_MS = 60 * 60 * 1000
/** No projection before this much has been sampled: the start's own writes (the outbox's check, its schema) would dominate. */
const MIN_PROJECTION_MS = 60 * 1000
/** No budget warning before this much has been sampled. */
const MIN_WARNING_MS = 10 * 60 * 1000
const DAY_MS = 24 * 60 * 60 * 1000

export interface StorageWear {
  /** Bytes written since the agent started. */
  writtenBytes: number
  /** Bytes written since the start of today (UTC) or since the agent started, whichever is later. */
  writtenTodayBytes: number
  /** When `writtenTodayBytes` starts counting (ISO 8601). */
  todaySince: string
  /** The last hour's rate (less after a start) over 24 hours, in MB (10^6 bytes); null in the first minute. */
  projectedMBPerDay: number | null
  /** The budget from the config (outbox.writeBudgetMBPerDay); 0: none. */
  budgetMBPerDay: number
  /** The projection has been above the budget over at least 10 minutes of samples. */
  overBudget: boolean
}

/** `write_bytes` of this process, or null where /proc does not say (not Linux, or hidden). */
export function procWriteBytes(): number | null {
  try {
    const m = /^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

export class WriteMeter {
  private readonly clock: Clock
  private readonly read: () => number | null
  private readonly budgetMBPerDay: number
  private readonly samples: { atMs: number; wallMs: number; bytes: number }[] = []
  private readonly startBytes: number
  private readonly startMs: number
  private day: { startWallMs: number; bytes: number; sinceWallMs: number }

  /** Null when the process's write count cannot be read. */
  static start(clock: Clock, budgetMBPerDay: number, read: () => number | null = procWriteBytes): WriteMeter | null {
    const bytes = read()
    return bytes === null ? null : new WriteMeter(clock, budgetMBPerDay, read, bytes)
  }

  private constructor(clock: Clock, budgetMBPerDay: number, read: () => number | null, bytes: number) {
    this.clock = clock
    this.read = read
    this.budgetMBPerDay = budgetMBPerDay
    this.startBytes = bytes
    this.startMs = clock.monoMs()
    const wall = clock.wallMs()
    this.day = { startWallMs: dayStart(wall), bytes, sinceWallMs: wall }
    this.samples.push({ atMs: this.startMs, wallMs: wall, bytes })
  }

  /** Takes a sample (the agent does every minute, and at each status). */
  sample(): void {
    const bytes = this.read()
    if (bytes === null) return
    const atMs = this.clock.monoMs()
    const wallMs = this.clock.wallMs()
    // A new UTC day counts from the last sample of the old one (the bytes between are split no finer).
    if (dayStart(wallMs) !== this.day.startWallMs) {
      const last = this.samples[this.samples.length - 1]!
      this.day = { startWallMs: dayStart(wallMs), bytes: last.bytes, sinceWallMs: dayStart(wallMs) }
    }
    // Status asked for often (a watching CLI, every second) keeps a sample or two a second, not one a
    // call: within a second of the sample before it, the last one is replaced.
    const sample = { atMs, wallMs, bytes }
    const n = this.samples.length
    if (n > 1 && atMs - this.samples[n - 2]!.atMs < 1000) this.samples[n - 1] = sample
    else this.samples.push(sample)
    // Keep one sample at or before the window's start, so the window stays full.
    while (this.samples.length > 2 && this.samples[1]!.atMs <= atMs - WINDOW_MS) this.samples.shift()
  }

  status(): StorageWear {
    this.sample()
    const last = this.samples[this.samples.length - 1]!
    const first = this.samples[0]!
    const spanMs = last.atMs - first.atMs
    const projected = spanMs >= MIN_PROJECTION_MS ? ((last.bytes - first.bytes) / spanMs) * DAY_MS / 1e6 : null
    const sampledMs = last.atMs - this.startMs
    return {
      writtenBytes: last.bytes - this.startBytes,
      writtenTodayBytes: last.bytes - this.day.bytes,
      todaySince: new Date(this.day.sinceWallMs).toISOString(),
      projectedMBPerDay: projected === null ? null : Math.round(projected * 10) / 10,
      budgetMBPerDay: this.budgetMBPerDay,
      overBudget: this.budgetMBPerDay > 0 && projected !== null && sampledMs >= MIN_WARNING_MS && projected > this.budgetMBPerDay,
    }
  }
}

function dayStart(wallMs: number): number {
  return wallMs - (((wallMs % DAY_MS) + DAY_MS) % DAY_MS)
}
