/**
 * Retention and size caps, on whole segments: a segment goes when its newest record is past the
 * stream's retention, or, while a stream is over its byte cap, the stream's oldest sealed segment
 * goes first, whichever shard holds it. The active (newest) segment of a shard never goes.
 */
import type { SegmentSpan } from './segment-list.js'

/** A shard log whose oldest segments retention may delete. */
export interface TrimmableLog {
  readonly stream: string
  sizeBytes(): number
  /** Its oldest segment when that one may be deleted (sealed, not the newest), else null. */
  oldestSealed(): SegmentSpan | null
  /** Deletes its oldest segments while `expired` accepts them (never the newest); returns the bytes freed. */
  trim(expired: (segment: SegmentSpan) => boolean): Promise<number>
}

/** Applies each stream's retention, then the per-stream byte cap (0: none); returns the bytes freed. */
export async function enforceRetention(logs: Iterable<TrimmableLog>, retentionMsByStream: (stream: string) => number,
  now: number, maxStreamBytes: number): Promise<number> {
  let freed = 0
  const byStream = new Map<string, TrimmableLog[]>()
  for (const log of logs) {
    const list = byStream.get(log.stream) ?? []
    list.push(log)
    byStream.set(log.stream, list)
  }
  for (const [stream, list] of byStream) {
    const cutoff = now - retentionMsByStream(stream)
    for (const log of list) freed += await log.trim((s) => s.lastArrival < cutoff)
    if (maxStreamBytes > 0) freed += await capStream(list, maxStreamBytes)
  }
  return freed
}

async function capStream(logs: readonly TrimmableLog[], maxBytes: number): Promise<number> {
  let freed = 0
  let total = logs.reduce((n, l) => n + l.sizeBytes(), 0)
  while (total > maxBytes) {
    let oldest: { log: TrimmableLog; segment: SegmentSpan } | null = null
    for (const log of logs) {
      const segment = log.oldestSealed()
      if (segment && (!oldest || segment.lastArrival < oldest.segment.lastArrival)) oldest = { log, segment }
    }
    if (!oldest) break
    const first = oldest.segment
    const bytes = await oldest.log.trim((s) => s === first)
    total -= bytes
    freed += bytes
  }
  return freed
}
