/**
 * Served fragments carry the stream's timestamps, as AWS's GetMP4MediaFragment does ("the producer
 * timestamps are used in the MP4 fragments"): each capture session's media time is moved onto the
 * session's chosen clock (producer or server, in ms since the Unix epoch) by one offset per capture
 * session, so fragments of one session stay exactly continuous and a restarted camera — whose ffmpeg
 * starts again at 0 — continues the timeline instead of jumping back to it. (Players do not all
 * reset their timeline at EXT-X-DISCONTINUITY: ffmpeg's HLS demuxer drops the first segment after a
 * jump back.)
 *
 * The rewrite touches only the `tfdt` box: its 64-bit baseMediaDecodeTime is set in place; a 32-bit
 * (version 0) one becomes version 1, four bytes longer, and the sizes and offsets that count across
 * it (moof, traf, trun data offsets from the moof, an explicit base data offset) are moved with it.
 */
import { MediaError } from '../media.js'

const fail = (message: string): never => { throw new MediaError('BAD_MEDIA', message) }

interface Box { type: string; start: number; body: number; end: number }

function boxes(b: Buffer, from: number, to: number): Box[] {
  const out: Box[] = []
  for (let at = from; at < to;) {
    if (to - at < 8) fail('a box header is cut short')
    let size = b.readUInt32BE(at)
    let header = 8
    if (size === 1) { size = Number(b.readBigUInt64BE(at + 8)); header = 16 } else if (size === 0) size = to - at
    if (size < header || size > to - at) fail(`box at ${at} has size ${size} (${to - at} left)`)
    out.push({ type: b.toString('latin1', at + 4, at + 8), start: at, body: at + header, end: at + size })
    at += size
  }
  return out
}

/** `fragment` with every track's baseMediaDecodeTime set to `decodeTime` (a copy; the stored bytes are kept). */
export function withDecodeTime(fragment: Buffer, decodeTime: number): Buffer {
  if (!Number.isSafeInteger(decodeTime) || decodeTime < 0) throw new RangeError(`decode time ${decodeTime} is not a non-negative integer`)
  const top = boxes(fragment, 0, fragment.length)
  const moof = top.find((x) => x.type === 'moof') ?? fail('the fragment has no moof')
  const trafs = boxes(fragment, moof.body, moof.end).filter((x) => x.type === 'traf')
  const tfdts = trafs.map((traf) => boxes(fragment, traf.body, traf.end).find((x) => x.type === 'tfdt') ?? fail("'traf' has no 'tfdt'"))
  if (tfdts.every((t) => fragment[t.body] === 1)) {
    const out = Buffer.from(fragment)
    for (const t of tfdts) out.writeBigUInt64BE(BigInt(decodeTime), t.body + 4)
    return out
  }
  // Version 0 somewhere: rebuild the moof with 64-bit tfdts, moving what counts across them.
  const grown = tfdts.filter((t) => fragment[t.body] !== 1).length * 4
  const parts: Buffer[] = [fragment.subarray(0, moof.start)]
  const moofHead = Buffer.from(fragment.subarray(moof.start, moof.body))
  if (moof.body - moof.start !== 8) fail('a moof with a 64-bit size is not rewritten')
  moofHead.writeUInt32BE(moof.end - moof.start + grown, 0)
  parts.push(moofHead)
  for (const child of boxes(fragment, moof.body, moof.end)) {
    if (child.type !== 'traf') { parts.push(fragment.subarray(child.start, child.end)); continue }
    const inner: Buffer[] = []
    let trafGrowth = 0
    for (const box of boxes(fragment, child.body, child.end)) {
      const copy = Buffer.from(fragment.subarray(box.start, box.end))
      if (box.type === 'tfdt') {
        const v1 = Buffer.alloc(20)
        v1.writeUInt32BE(20, 0)
        v1.write('tfdt', 4, 'latin1')
        v1.writeUInt32BE(0x0100_0000 | (copy.readUInt32BE(8) & 0xff_ffff), 8)
        v1.writeBigUInt64BE(BigInt(decodeTime), 12)
        trafGrowth += 20 - copy.length
        inner.push(v1)
        continue
      }
      if (box.type === 'tfhd' && copy.readUInt32BE(8) & 0x01) copy.writeBigUInt64BE(copy.readBigUInt64BE(16) + BigInt(grown), 16)
      if (box.type === 'trun' && copy.readUInt32BE(8) & 0x01) copy.writeInt32BE(copy.readInt32BE(16) + grown, 16)
      inner.push(copy)
    }
    const head = Buffer.from(fragment.subarray(child.start, child.body))
    head.writeUInt32BE(child.end - child.start + trafGrowth, 0)
    parts.push(head, ...inner)
  }
  parts.push(fragment.subarray(moof.end))
  return Buffer.concat(parts)
}
