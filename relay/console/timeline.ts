/**
 * Where a stream has video over a time range, for the viewer's timeline: the stored fragments by
 * producer time merged into spans (a fragment that starts within GAP_TOLERANCE_MS of where the last
 * ended continues its span), and the gaps between the spans.
 */
import type { VideoStore } from '../video/store.js'

/** Jitter between one fragment's end and the next one's start that is not a gap. */
export const GAP_TOLERANCE_MS = 500
/** Fragments read for one timeline at most (24 h of 2 s fragments is 43,200). */
export const MAX_TIMELINE_FRAGMENTS = 50_000
const PAGE = 1000

export interface Span { startMs: number; endMs: number; fragments: number }
export interface Gap { startMs: number; endMs: number }
export interface Timeline { fromMs: number; toMs: number; fragments: number; spans: Span[]; gaps: Gap[]; truncated: boolean }

export function timelineOf(store: VideoStore, streamId: string, fromMs: number, toMs: number): Timeline {
  const spans: Span[] = []
  let fragments = 0
  let after: { at: number; id: number } | undefined
  let truncated = false
  for (;;) {
    const rows = store.list({ streamId, by: 'producer', from: fromMs, to: toMs, after, limit: PAGE })
    for (const r of rows) {
      const end = r.producerMs + r.durationMs
      const last = spans[spans.length - 1]
      if (last && r.producerMs <= last.endMs + GAP_TOLERANCE_MS) {
        last.endMs = Math.max(last.endMs, end)
        last.fragments++
      } else {
        spans.push({ startMs: r.producerMs, endMs: end, fragments: 1 })
      }
    }
    fragments += rows.length
    if (rows.length < PAGE) break
    if (fragments >= MAX_TIMELINE_FRAGMENTS) { truncated = true; break }
    const tail = rows[rows.length - 1]!
    after = { at: tail.producerMs, id: tail.id }
  }
  const gaps = spans.slice(1).map((s, i) => ({ startMs: spans[i]!.endMs, endMs: s.startMs }))
  return { fromMs, toMs, fragments, spans, gaps, truncated }
}
