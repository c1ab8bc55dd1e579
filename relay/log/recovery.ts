/**
 * Walking a segment's records, and stepping over damage: one routine, used at open (to verify the
 * records, rebuild the index and cut a torn tail) and by every read (damage that appeared later, or
 * lies where open trusted the index). Damage followed by a good record is a hole: remembered in the
 * segment, reported once, never served. Length fields are never trusted alone: every record's
 * checksum is verified, and a new start is only taken where a whole record verifies.
 */
import { promises as fsp } from 'node:fs'
import type { Codec } from '../../hardware/index.js'
import { readLogArrival, readLogLength, readLogOffset } from '../../hardware/index.js'
import { LOG_CRC_START, LOG_HEADER_SIZE, LOG_MAX_FRAME, LOG_OFF_CRC } from '../../shared/logframe.js'
import type { Segment } from './segment.js'
import type { CorruptionReport } from './types.js'

const READ_CHUNK = 1024 * 1024
/** The active segment is walked from its start at open: this much is read first, and a file shorter than that needs no stat. */
const HEAD_BYTES = 16 * 1024
/** How far past the expected offset a record found by resync may be numbered and still be believed. */
const RESYNC_OFFSET_SPAN = 10_000_000

/** One walk over a segment's bytes. */
export interface SegmentWalk {
  segment: Segment
  codec: Codec
  /** The shard's key, for reports. */
  shard: string
  /** Where the walk ends: the committed bytes, or the file's size at open. */
  end: number
  /** The offset one past the segment's last record, when known (-1 in the active segment at open). */
  endOffset: number
  /** At open in the active segment: damage that nothing good follows is a torn write, to cut, not a hole. */
  tornTail: boolean
  now: () => number
  report: (report: CorruptionReport) => void
  /** The first bytes from where the walk starts, already read (at open): walked as its first chunk. */
  head?: Buffer
}

export interface WalkVisitor {
  /** A verified record at `buf[at]`, at byte `position` of the file; false stops the walk. */
  record(buf: Buffer, at: number, position: number): boolean
  /** Damage was stepped over: no record below offset `next` follows it. */
  skipped(next: number): void
}

/** Why a walk ended: it reached its end, the visitor stopped it, or it found a torn tail at `position`. */
export type WalkStop = { kind: 'end' | 'visitor' } | { kind: 'tail'; position: number }

/** Visits every good record from byte `from` (whose offset is `fromOffset`, or -1 when unknown) on. */
export async function walkSegment(w: SegmentWalk, from: number, fromOffset: number, visit: WalkVisitor): Promise<WalkStop> {
  const { segment, codec, end } = w
  let position = from
  let expected = fromOffset
  // A lower bound for offsets from here on, kept when `expected` is not known (after a known hole).
  let floor = Math.max(fromOffset, segment.base)
  let head = w.head && w.head.length > 0 && w.head.length <= end - from ? w.head : undefined
  while (position < end) {
    const hole = segment.holes.get(position)
    if (hole !== undefined) {
      position = hole
      expected = -1
      continue
    }
    const buf = head && position === from ? head : await segment.readAt(position, Math.min(end - position, READ_CHUNK))
    head = undefined
    const scan = codec.scanLog(buf, 0, buf.length, expected)
    for (const p of scan.positions) {
      if (!visit.record(buf, p, position + p)) return { kind: 'visitor' }
    }
    if (scan.positions.length) floor = expected = readLogOffset(buf, scan.positions[scan.positions.length - 1]!) + 1
    if (scan.stop === 'end') { position += scan.end; continue }
    const at = position + scan.end
    let stop = scan.stop
    if (stop === 'torn' && position + buf.length < end) {
      // A record that straddles the end of this chunk: continue from it.
      if (scan.end > 0) { position = at; continue }
      // A record larger than a chunk: read it alone.
      const length = claimedLength(buf, 0, at, end)
      if (length > 0) {
        const one = await segment.readAt(at, length)
        if (codec.scanLog(one, 0, one.length, expected).stop === 'end') {
          if (!visit.record(one, 0, at)) return { kind: 'visitor' }
          floor = expected = readLogOffset(one, 0) + 1
          position = at + length
          continue
        }
        stop = 'damaged'
      }
    }
    // A record whose header claims more bytes than the active segment has is a torn write: cut it, and
    // never look inside its data for records (it may hold anything).
    if (w.tornTail && stop === 'torn') return { kind: 'tail', position: at }
    const known = segment.holes.get(at)
    if (known !== undefined) { position = known; expected = -1; continue }
    const first = expected >= 0 ? expected : floor
    const next = await resync(segment, codec, first, end, claimedEnd(buf, scan.end, at, end))
    if (!next && w.tornTail) return { kind: 'tail', position: at }
    segment.holes.set(at, next ? next.position : end)
    w.report({
      shard: w.shard, file: segment.logPath, position: at,
      firstOffset: first, lastOffset: next ? next.offset - 1 : w.endOffset - 1, detectedAt: w.now(),
    })
    if (!next) {
      // A sealed segment was complete when it was sealed: damage at its end is a hole, not a torn write.
      visit.skipped(w.endOffset)
      return { kind: 'end' }
    }
    visit.skipped(next.offset)
    position = next.position
    floor = expected = next.offset
  }
  return { kind: 'end' }
}

/** The length a record's header claims at `buf[at]` (file position `position`) if believable, else 0. */
function claimedLength(buf: Buffer, at: number, position: number, end: number): number {
  if (buf.length - at < LOG_HEADER_SIZE) return 0
  const length = readLogLength(buf, at)
  return length >= LOG_HEADER_SIZE && length <= LOG_MAX_FRAME && position + length <= end ? length : 0
}

/**
 * Where a damaged record would end if its length field is believable: resync starts there, so
 * bytes inside the damaged record's data are never taken for records.
 */
function claimedEnd(buf: Buffer, at: number, position: number, end: number): number {
  const length = claimedLength(buf, at, position, end)
  return length > 0 ? position + length : position + 1
}

/** The next good record from byte `from` on: a plausible header, an offset from `expected` on, a checksum that holds. */
async function resync(segment: Segment, codec: Codec, expected: number, end: number, from: number): Promise<{ position: number; offset: number } | null> {
  let at = from
  while (at + LOG_HEADER_SIZE <= end) {
    const buf = await segment.readAt(at, Math.min(end - at, READ_CHUNK + LOG_MAX_FRAME))
    const limit = Math.min(buf.length - LOG_HEADER_SIZE, READ_CHUNK)
    for (let i = 0; i <= limit; i++) {
      const length = readLogLength(buf, i)
      if (length < LOG_HEADER_SIZE || length > LOG_MAX_FRAME || i + length > buf.length) continue
      const offset = readLogOffset(buf, i)
      if (offset < expected || offset > expected + RESYNC_OFFSET_SPAN) continue
      if (codec.crc32c(buf, 0, i + LOG_CRC_START, i + length) !== buf.readUInt32LE(i + LOG_OFF_CRC)) continue
      return { position: at + i, offset }
    }
    at += limit + 1
  }
  return null
}

/**
 * Opens one segment file found on disk: trusts its saved index when it is consistent (then only the
 * stretch after the index's last entry is verified), else rebuilds it; cuts a torn tail of the
 * active (`last`) segment. `nextBase` is the base offset of the segment after it.
 */
export async function recoverSegment(segment: Segment, last: boolean, nextBase: number,
  w: Pick<SegmentWalk, 'codec' | 'shard' | 'now' | 'report'>): Promise<void> {
  // The active segment is walked whole: its first bytes, read now, are its first chunk, and give its size when it is short.
  const head = last ? await segment.readAt(0, HEAD_BYTES) : undefined
  const size = head && head.length < HEAD_BYTES ? head.length : await segment.use(async (handle) => (await handle.stat()).size)
  let indexed = false
  if (!last) {
    const idx = await fsp.readFile(segment.indexPath).catch(() => Buffer.alloc(0))
    indexed = segment.loadIndex(idx, size)
  }
  const from = indexed ? segment.positions[segment.positions.length - 1]! : 0
  const fromOffset = indexed ? segment.offsets[segment.offsets.length - 1]! : segment.base
  if (!indexed) { segment.offsets = []; segment.positions = []; segment.times = [] }
  const stop = await walkSegment({ ...w, segment, end: size, endOffset: last ? -1 : nextBase, tornTail: last, head }, from, fromOffset, {
    record: (buf, at, position) => { segment.noteRecord(readLogOffset(buf, at), position, readLogArrival(buf, at)); return true },
    skipped: (next) => { if (next > segment.end) segment.end = next },
  })
  segment.size = size
  if (stop.kind === 'tail') {
    if (stop.position < size) {
      await segment.use(async (handle) => {
        await handle.truncate(stop.position)
        await handle.sync()
      })
    }
    segment.size = stop.position
  }
  segment.written = segment.size
  if (head) segment.keepOpened(head, segment.size)
  if (!indexed && !last && segment.size > 0) await fsp.writeFile(segment.indexPath, segment.encodeIndex(), { mode: 0o600 })
  segment.sealed = !last
}
