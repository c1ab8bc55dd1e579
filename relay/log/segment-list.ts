/**
 * A shard's segments, oldest first, whatever holds their records (files, memory): the questions
 * every shard log asks of that list. Segments are contiguous: each one's base is the end of the one
 * before, and only the newest takes appends.
 */

/** What a store keeps of each segment. */
export interface SegmentSpan {
  /** Offset of its first record. */
  readonly base: number
  /** Bytes of its records as stored. */
  readonly size: number
  /** Arrival time of its newest record. */
  readonly lastArrival: number
  /** No more records go here. */
  readonly sealed: boolean
}

/** The index of the segment holding `offset` (the last whose base is not above it), or -1. */
export function segmentIndex(segments: readonly SegmentSpan[], offset: number): number {
  let lo = 0
  let hi = segments.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (segments[mid]!.base <= offset) { found = mid; lo = mid + 1 } else hi = mid - 1
  }
  return found
}

export function totalSize(segments: readonly SegmentSpan[]): number {
  let n = 0
  for (const s of segments) n += s.size
  return n
}

/** The oldest segment when retention may delete it (sealed, and not the newest), else null. */
export function oldestSealed<S extends SegmentSpan>(segments: readonly S[]): S | null {
  const first = segments[0]
  return first && segments.length > 1 && first.sealed ? first : null
}

/** Removes and returns the oldest segments while `expired` accepts them, never the newest. */
export function takeExpired<S extends SegmentSpan>(segments: S[], expired: (segment: S) => boolean): S[] {
  const taken: S[] = []
  while (segments.length > 1 && segments[0]!.sealed && expired(segments[0]!)) taken.push(segments.shift()!)
  return taken
}
