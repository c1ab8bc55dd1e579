/**
 * How many segment files the relay keeps open. Node.js raises the soft open-file limit to the hard
 * one when it starts (as Go's runtime does), so a service under systemd (hard limit 524,288 since
 * systemd 240) may hold far more files than its default soft 1,024; a container started with
 * `--ulimit nofile=1024:1024` may not. The handle cache takes half of what the process may open,
 * leaving the rest to sockets (devices, API clients, NATS), bounded at 65,536; at a limit of 1,024
 * or less it keeps 256 (half of a limit under 512), so thousands of shards still fit.
 * `--max-open-segments` overrides it.
 */
import { readFileSync } from 'node:fs'

/** The kept-open files when nothing is known of the limit, or it is 512 to 1,024. */
export const MIN_OPEN_SEGMENTS = 256
export const MAX_AUTO_OPEN_SEGMENTS = 65_536

/** The process's soft and hard open-file limits from /proc/self/limits (Infinity for "unlimited"), or null where it cannot be read. */
export function fileLimit(limits = '/proc/self/limits'): { soft: number; hard: number } | null {
  let text: string
  try {
    text = readFileSync(limits, 'utf8')
  } catch {
    return null
  }
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text)
  if (!line) return null
  const value = (s: string) => (s === 'unlimited' ? Infinity : Number(s))
  const soft = value(line[1]!)
  const hard = value(line[2]!)
  return Number.isNaN(soft) || Number.isNaN(hard) ? null : { soft, hard }
}

/** The handle cache's size for a soft limit (see the top of this file). */
export function openSegmentsFor(soft: number | null): number {
  if (soft === null) return MIN_OPEN_SEGMENTS
  // Under 512 files, half of them still: never the whole limit.
  if (soft <= 1024) return Math.max(8, Math.min(MIN_OPEN_SEGMENTS, Math.floor(soft / 2)))
  return Math.min(MAX_AUTO_OPEN_SEGMENTS, Math.floor(soft / 2))
}
