/**
 * Which fragments an HLS session lists, in which order, with which media sequence numbers and where
 * discontinuities fall — as AWS's GetHLSStreamingSessionURL describes its modes:
 *
 * - ON_DEMAND: the fragments in the time range, ordered by the chosen timestamp, the oldest
 *   MaxMediaPlaylistFragmentResults of them; fragments with the same producer timestamp count once
 *   (the newest ingested is kept). The list ends (EXT-X-ENDLIST).
 * - LIVE: the newest fragments as they are ingested (in ingest order, from the session's first
 *   window on); a fragment older (by producer time, with PRODUCER_TIMESTAMP) than the newest already
 *   listed — a backfilled one — is never added, so a gap stays a gap.
 * - LIVE_REPLAY: from StartTimestamp in timestamp order, each fragment added once the durations of
 *   those before it have elapsed on the relay's clock since the session began, then following live;
 *   with an EndTimestamp it ends once every fragment up to it is listed.
 *
 * A change of capture session (a new init segment, EXT-X-MAP) is always a discontinuity, whatever
 * the DiscontinuityMode: RFC 8216 §4.3.2.3 asks for one where the encoding sequence changes.
 *
 * Media sequence numbers count candidates from the session's start, so a fragment keeps its number
 * across reloads (RFC 8216 §6.2.2), and the discontinuity sequence counts the discontinuities that
 * have left the window. A timeline follows from its session (in the token) and the catalog alone;
 * the relay caches each session's incremental state, and a relay that lost it (restart, eviction)
 * rebuilds it from the start.
 */
import type { FragmentRecord } from '../catalog.js'
import type { VideoStore } from '../store.js'
import type { HlsSession } from './session-token.js'

export interface Entry {
  id: number
  msn: number
  /** EXT-X-DISCONTINUITY before this segment. */
  disc: boolean
  durationMs: number
  /** The session's timestamp (producer or server) of the fragment's start. */
  timeMs: number
  /** The init segment of its capture session (its EXT-X-MAP). */
  initId: number
  bytes: number
  codec: string
  width: number
  height: number
}

export interface Playlist {
  entries: Entry[]
  mediaSequence: number
  discontinuitySequence: number
  ended: boolean
}

/** ON_DISCONTINUITY: a gap or overlap above this is a discontinuity (AWS's 50 ms). */
const GAP_MS = 50
const PAGE = 500
/** Sessions whose timelines are kept between requests. */
const MAX_CACHED = 1000

/** The init segment id of a fragment's session, or null when retention has taken it. */
export type InitOf = (row: FragmentRecord) => number | null

interface State {
  window: Entry[]
  /** LIVE_REPLAY: fetched, not yet due. */
  pending: FragmentRecord[]
  nextMsn: number
  discSeq: number
  cursor: { at: number; id: number } | null
  last: Entry | null
  /** LIVE_REPLAY: durations of the entries listed so far. */
  listedMs: number
  drained: boolean
}

export class Timelines {
  private readonly cache = new Map<string, State>()

  constructor(private readonly store: VideoStore, private readonly initOf: InitOf) {}

  /** The session's playlist now (the relay's clock reading `nowMs`). */
  playlist(s: HlsSession, nowMs: number): Playlist {
    if (s.mode === 'ON_DEMAND') return this.onDemand(s)
    let state = this.cache.get(s.id)
    if (state) this.cache.delete(s.id)
    state ??= { window: [], pending: [], nextMsn: 0, discSeq: 0, cursor: null, last: null, listedMs: 0, drained: false }
    this.cache.set(s.id, state)
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!)
    if (s.mode === 'LIVE') this.advanceLive(s, state)
    else this.advanceReplay(s, state, nowMs)
    return {
      entries: state.window.slice(),
      mediaSequence: state.window[0]?.msn ?? state.nextMsn,
      discontinuitySequence: state.discSeq,
      ended: s.mode === 'LIVE_REPLAY' && this.replayEnded(s, state, nowMs),
    }
  }

  private time(s: HlsSession, r: FragmentRecord): number {
    return s.by === 'producer' ? r.producerMs : r.serverMs
  }

  private entry(s: HlsSession, r: FragmentRecord, initId: number, prev: Entry | null, msn: number): Entry {
    const timeMs = this.time(s, r)
    let disc = false
    if (prev) {
      if (prev.initId !== initId) disc = true // a new capture session's timestamps start again: always marked
      else if (s.discontinuity === 'ALWAYS') disc = true
      else if (s.discontinuity === 'ON_DISCONTINUITY') disc = Math.abs(timeMs - (prev.timeMs + prev.durationMs)) > GAP_MS
    }
    return { id: r.id, msn, disc, durationMs: r.durationMs, timeMs, initId, bytes: r.bytes, codec: r.codec, width: r.width, height: r.height }
  }

  private push(s: HlsSession, state: State, r: FragmentRecord): void {
    const initId = this.initOf(r)
    if (initId === null) return
    const e = this.entry(s, r, initId, state.last, state.nextMsn++)
    state.last = e
    state.window.push(e)
    if (state.window.length > s.maxFragments && state.window.shift()!.disc) state.discSeq++
  }

  private advanceLive(s: HlsSession, state: State): void {
    for (;;) {
      const after = state.cursor ?? { at: s.firstId - 1, id: s.firstId - 1 }
      const rows = this.store.list({ streamId: s.streamId, by: 'number', after, limit: PAGE })
      for (const r of rows) {
        state.cursor = { at: r.id, id: r.id }
        // Not older than the newest listed (a backfilled fragment would play out of order).
        if (s.by === 'producer' && state.last && r.producerMs <= state.last.timeMs) continue
        this.push(s, state, r)
      }
      if (rows.length < PAGE) return
    }
  }

  private advanceReplay(s: HlsSession, state: State, nowMs: number): void {
    const elapsed = nowMs - s.createdMs
    for (;;) {
      while (state.pending.length && state.listedMs <= elapsed) {
        const r = state.pending.shift()!
        if (state.last && this.time(s, r) <= state.last.timeMs) continue
        this.push(s, state, r)
        state.listedMs += r.durationMs
      }
      if (state.pending.length || state.listedMs > elapsed) return
      const rows = this.store.list({ streamId: s.streamId, by: s.by, from: s.startMs, to: s.endMs, after: state.cursor ?? undefined, limit: PAGE })
      state.drained = rows.length < PAGE
      const lastRow = rows[rows.length - 1]
      if (lastRow) state.cursor = { at: this.time(s, lastRow), id: lastRow.id }
      state.pending.push(...rows)
      if (rows.length === 0) return
    }
  }

  private replayEnded(s: HlsSession, state: State, nowMs: number): boolean {
    if (s.endMs === undefined || state.pending.length || !state.drained) return false
    // Nothing more can fall in the range once the stream has moved past its end.
    if (s.by === 'server' && nowMs > s.endMs) return true
    return this.store.list({ streamId: s.streamId, by: s.by, from: s.endMs + 1, limit: 1 }).length > 0
  }

  private onDemand(s: HlsSession): Playlist {
    const entries: Entry[] = []
    for (const r of selectRange(this.store, s.streamId, s.by, s.startMs!, s.endMs!, s.maxFragments)) {
      const initId = this.initOf(r)
      if (initId === null) continue
      entries.push(this.entry(s, r, initId, entries[entries.length - 1] ?? null, entries.length))
    }
    return { entries, mediaSequence: 0, discontinuitySequence: 0, ended: true }
  }
}

/**
 * The fragments whose `by` timestamp lies in [from, to], in that timestamp's order, at most `max`;
 * with producer timestamps, of fragments that share one only the newest ingested counts (AWS's rule).
 */
export function selectRange(store: VideoStore, streamId: string, by: 'producer' | 'server', from: number, to: number, max: number): FragmentRecord[] {
  const out: FragmentRecord[] = []
  let after: { at: number; id: number } | undefined
  for (;;) {
    const rows = store.list({ streamId, by, from, to, after, limit: PAGE })
    for (const r of rows) {
      const prev = out[out.length - 1]
      if (by === 'producer' && prev && prev.producerMs === r.producerMs) out[out.length - 1] = r
      else if (out.length === max) return out
      else out.push(r)
    }
    const last = rows[rows.length - 1]
    if (!last || rows.length < PAGE) return out
    after = { at: by === 'producer' ? last.producerMs : last.serverMs, id: last.id }
  }
}
