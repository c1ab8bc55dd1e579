/**
 * A progressive (not fragmented) MP4 of stored fragments, as GetClip answers: `ftyp`, then `moov`
 * with the whole sample table, then one `mdat` whose bytes are the fragments' samples copied as they
 * are (no decoding: what `ffmpeg -c copy` does). Because every sample's size and duration is known
 * from the fragments' `trun`s before a byte of media is sent, the `moov` comes first (what ffmpeg's
 * `+faststart` makes with a second pass) and the `mdat` is streamed straight from the fragment files
 * as it is sent: nothing is held but the sample tables.
 *
 * One chunk per run of samples (one per fragment, as ffmpeg writes them). Each capture session's
 * sample entry (its `avc1` with SPS/PPS) is copied from its init segment into `stsd`; sessions with
 * identical entries share one, and `stsc` names each chunk's. Sessions' timelines are laid end to end.
 *
 * Box layout: ISO/IEC 14496-12 (§8.2 mvhd, §8.3 tkhd, §8.4 mdia, §8.6 stts/ctts/stss, §8.7 stsc/stsz/co64).
 */
import type { FragmentSamples, InitTrack } from './samples.js'

export interface ClipPart {
  init: InitTrack
  samples: FragmentSamples
}

export interface ClipLayout {
  /** ftyp + moov + the mdat header: send these first. */
  head: Buffer
  /** Bytes of the whole file. */
  size: number
  /** For each part, the byte ranges of its fragment to send, in order. */
  ranges: { part: number; offset: number; bytes: number }[]
  durationMs: number
  samples: number
}

function box(type: string, ...body: Buffer[]): Buffer {
  const size = 8 + body.reduce((s, b) => s + b.length, 0)
  const head = Buffer.alloc(8)
  head.writeUInt32BE(size, 0)
  head.write(type, 4, 'latin1')
  return Buffer.concat([head, ...body])
}

function fullBox(type: string, version: number, flags: number, ...body: Buffer[]): Buffer {
  const vf = Buffer.alloc(4)
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xff_ffff), 0)
  return box(type, vf, ...body)
}

function u32s(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4)
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4))
  return b
}

function u64(value: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(value))
  return b
}

/** The unity matrix of mvhd and tkhd (16.16 and 2.30 fixed point). */
const MATRIX = u32s([0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000])

/** Times at or past 2^32 need version 1 boxes. */
const wide = (...values: number[]) => values.some((v) => v >= 2 ** 32)

function mvhd(durationMs: number): Buffer {
  const v1 = wide(durationMs)
  const times = v1 ? Buffer.concat([u64(0), u64(0), u32s([1000]), u64(durationMs)]) : u32s([0, 0, 1000, durationMs])
  const rest = Buffer.concat([u32s([0x0001_0000]), Buffer.from([0x01, 0x00]), Buffer.alloc(10), MATRIX, Buffer.alloc(24), u32s([2])])
  return fullBox('mvhd', v1 ? 1 : 0, 0, times, rest)
}

function tkhd(durationMs: number, width: number, height: number): Buffer {
  const v1 = wide(durationMs)
  // flags 3: enabled, in movie
  const times = v1 ? Buffer.concat([u64(0), u64(0), u32s([1, 0]), u64(durationMs)]) : u32s([0, 0, 1, 0, durationMs])
  const rest = Buffer.concat([Buffer.alloc(8), Buffer.alloc(4) /* layer, alternate group */, Buffer.alloc(4) /* volume 0, reserved */, MATRIX, u32s([width * 0x1_0000, height * 0x1_0000])])
  return fullBox('tkhd', v1 ? 1 : 0, 3, times, rest)
}

function mdhd(timescale: number, duration: number): Buffer {
  const v1 = wide(duration)
  const times = v1 ? Buffer.concat([u64(0), u64(0), u32s([timescale]), u64(duration)]) : u32s([0, 0, timescale, duration])
  // language 'und' packed as three 5-bit letters
  return fullBox('mdhd', v1 ? 1 : 0, 0, times, Buffer.from([0x55, 0xc4, 0x00, 0x00]))
}

function hdlr(): Buffer {
  return fullBox('hdlr', 0, 0, u32s([0]), Buffer.from('vide', 'latin1'), Buffer.alloc(12), Buffer.from('VideoHandler\0', 'latin1'))
}

/** Run-length pairs (count, value) of a sequence. */
function runs(values: Iterable<number>): number[] {
  const out: number[] = []
  for (const v of values) {
    if (out.length && out[out.length - 1] === v) out[out.length - 2]!++
    else out.push(1, v)
  }
  return out
}

/**
 * Lays out a clip of `parts` (in playing order): the head to send first, then the byte ranges of
 * each part's fragment. Durations are in the first part's timescale (others are rescaled).
 */
export function layoutClip(parts: readonly ClipPart[]): ClipLayout {
  if (parts.length === 0) throw new RangeError('a clip needs at least one fragment')
  const timescale = parts[0]!.init.info.timescale
  const { width, height } = parts[0]!.init.info
  const entries: Buffer[] = []
  const entryOf = (init: InitTrack) => {
    const i = entries.findIndex((e) => e.equals(init.sampleEntry))
    if (i >= 0) return i + 1
    entries.push(init.sampleEntry)
    return entries.length
  }
  const sizes: number[] = []
  const durations: number[] = []
  const offsets: number[] = []
  const sync: number[] = []
  /** `offset`: in the mdat's data; `from`: in the part's fragment. */
  const chunks: { samples: number; entry: number; offset: number; from: number; bytes: number; part: number }[] = []
  let total = 0
  let mediaBytes = 0
  parts.forEach((part, p) => {
    const entry = entryOf(part.init)
    const ratio = timescale / part.init.info.timescale
    let carry = 0
    for (const run of part.samples.runs) {
      chunks.push({ samples: run.sizes.length, entry, offset: mediaBytes, from: run.offset, bytes: run.bytes, part: p })
      mediaBytes += run.bytes
      for (let i = 0; i < run.sizes.length; i++) {
        sizes.push(run.sizes[i]!)
        // Rescaled with the rounding error carried, so a session's length is kept to a tick.
        const exact = run.durations[i]! * ratio + carry
        const d = Math.round(exact)
        carry = exact - d
        durations.push(d)
        total += d
        offsets.push(Math.round(run.offsets[i]! * ratio))
        if (run.sync[i]) sync.push(sizes.length)
      }
    }
  })
  const durationMs = Math.round((total * 1000) / timescale)
  const hasCto = offsets.some((o) => o !== 0)
  const stbl = (base: number) => box('stbl',
    fullBox('stsd', 0, 0, u32s([entries.length]), ...entries),
    fullBox('stts', 0, 0, u32s([runs(durations).length / 2, ...runs(durations)])),
    ...(hasCto ? [fullBox('ctts', 1, 0, u32s([runs(offsets).length / 2, ...runs(offsets)]))] : []),
    ...(sync.length === sizes.length ? [] : [fullBox('stss', 0, 0, u32s([sync.length, ...sync]))]),
    fullBox('stsc', 0, 0, stsc(chunks)),
    fullBox('stsz', 0, 0, u32s([0, sizes.length, ...sizes])),
    fullBox('co64', 0, 0, u32s([chunks.length]), Buffer.concat(chunks.map((c) => u64(base + c.offset)))))
  // A first sample shown after its decode time (B-frames) is moved to time 0 by an edit list.
  const shift = offsets[0] ?? 0
  const edts = shift > 0 ? [box('edts', fullBox('elst', 1, 0, u32s([1]), u64(durationMs), u64(shift), u32s([0x0001_0000])))] : []
  const moov = (base: number) => box('moov', mvhd(durationMs), box('trak',
    tkhd(durationMs, width, height), ...edts,
    box('mdia', mdhd(timescale, total), hdlr(), box('minf',
      fullBox('vmhd', 0, 1, Buffer.alloc(8)),
      box('dinf', fullBox('dref', 0, 0, u32s([1]), fullBox('url ', 0, 1))),
      stbl(base)))))
  const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), u32s([0x200]), Buffer.from('isomiso2avc1mp41', 'latin1'))
  // mdat with a 64-bit size, so a clip of any length has one layout.
  const mdatHead = Buffer.alloc(16)
  mdatHead.writeUInt32BE(1, 0)
  mdatHead.write('mdat', 4, 'latin1')
  mdatHead.writeBigUInt64BE(BigInt(16 + mediaBytes), 8)
  // co64's entries are 8 bytes whatever they hold: the moov's size does not depend on its offsets.
  const base = ftyp.length + moov(0).length + mdatHead.length
  const head = Buffer.concat([ftyp, moov(base), mdatHead])
  return {
    head,
    size: head.length + mediaBytes,
    ranges: chunks.map((c) => ({ part: c.part, offset: c.from, bytes: c.bytes })),
    durationMs,
    samples: sizes.length,
  }
}

/** stsc: (first chunk, samples per chunk, sample description index), one entry where either changes. */
function stsc(chunks: { samples: number; entry: number }[]): Buffer {
  const rows: number[] = []
  chunks.forEach((c, i) => {
    const n = rows.length
    if (n && rows[n - 2] === c.samples && rows[n - 1] === c.entry) return
    rows.push(i + 1, c.samples, c.entry)
  })
  return u32s([rows.length / 3, ...rows])
}
