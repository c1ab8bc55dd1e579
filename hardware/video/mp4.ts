/**
 * Fragmented MP4 as ffmpeg writes it with `-movflags frag_keyframe+empty_moov+default_base_moof`
 * and `-write_prft wallclock`: `ftyp moov` once (the init segment), then `prft moof mdat` per
 * fragment. Two layers:
 *
 * - `parseInit(buf)` and `parseFragment(buf, track)`: pure readers of a whole init segment or
 *   fragment (the relay indexes the same bytes with them, and reads a stored fragment's sample table
 *   with `parseFragment(buf, track, { samples: true })`). Total: any bytes either parse or throw an
 *   Mp4Error; nothing is allocated from a length field.
 * - `Mp4Splitter`: fed ffmpeg's stdout in chunks of any size, returns each init segment and fragment
 *   as one Buffer with what the readers say about it. It holds at most one unit (init or fragment) of
 *   at most `maxBytes` (16 MiB, the wire's MAX_FRAGMENT_BYTES); a box header announcing more is refused before anything is held.
 *
 * Box layout (ISO/IEC 14496-12): u32 size (big-endian, header included; 1: a u64 size follows the
 * type; 0: to the end of the file), four-character type, then the body. Full boxes begin their body
 * with u8 version and u24 flags.
 */
import { MAX_FRAGMENT_BYTES } from '../../shared/video.js'
import { Mp4Error, Mp4Problem } from './errors.js'

/** What a fragment needs from the init segment to be read: its track and the track's defaults (trex). */
export interface VideoTrack {
  trackId: number
  /** Ticks per second of the track's media time. */
  timescale: number
  /** trex defaults, used when neither trun nor tfhd gives a value (0 when the init has no trex). */
  defaultSampleDuration: number
  defaultSampleSize: number
  defaultSampleFlags: number
}

export interface InitInfo extends VideoTrack {
  /** RFC 6381 codec string from the sample entry and avcC, e.g. `avc1.42C01E`. */
  codec: string
  /** Coded size from the sample entry (tkhd's when the entry says 0). */
  width: number
  height: number
}

export interface FragmentInfo {
  /** mfhd's sequence number (ffmpeg counts from 1 per run). */
  sequenceNumber: number
  /** tfdt's baseMediaDecodeTime: the first sample's decode time, in timescale ticks. */
  decodeTime: bigint
  /** Sum of the sample durations, in timescale ticks. */
  duration: number
  /** `duration` in milliseconds (may be fractional). */
  durationMs: number
  sampleCount: number
  /** Whether the first sample is a sync sample (a key frame). */
  keyFrame: boolean
  /**
   * prft's NTP time as Unix milliseconds, or null when the fragment has no prft. With `-write_prft
   * wallclock`, ffmpeg 5.1 stamps the time it wrote the fragment out (about when the next fragment's
   * first frame reached the muxer), not the time of this fragment's first frame, although it pairs it
   * with the first frame's media time: the first frame was about `prftTimeMs - durationMs`.
   */
  prftTimeMs: number | null
  /** prft's media time (the decode time it says its wall clock belongs to), or null. */
  prftMediaTime: bigint | null
  /** mdat's payload size in bytes. */
  mediaBytes: number
}

/** What the splitter returns: an init segment or a media fragment, as bytes and as read. */
export type Mp4Unit =
  | { kind: 'init'; data: Buffer; info: InitInfo }
  | { kind: 'fragment'; data: Buffer; info: FragmentInfo }

/** The wire's limit: a unit larger than this could not be sent. */
export const DEFAULT_MAX_UNIT_BYTES = MAX_FRAGMENT_BYTES

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800

// Sample flags (ISO/IEC 14496-12 8.8.3.1): sample_depends_on in bits 24-25, sample_is_non_sync_sample in bit 16.
const DEPENDS_ON_SHIFT = 24
const NON_SYNC_FLAG = 0x0001_0000

// tfhd flags
const TFHD_BASE_DATA_OFFSET = 0x00_0001
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x00_0002
const TFHD_DEFAULT_DURATION = 0x00_0008
const TFHD_DEFAULT_SIZE = 0x00_0010
const TFHD_DEFAULT_FLAGS = 0x00_0020

// trun flags
const TRUN_DATA_OFFSET = 0x00_0001
const TRUN_FIRST_SAMPLE_FLAGS = 0x00_0004
const TRUN_DURATION = 0x00_0100
const TRUN_SIZE = 0x00_0200
const TRUN_FLAGS = 0x00_0400
const TRUN_CTO = 0x00_0800

/** Top-level boxes that may sit between fragments and are skipped without being held. */
const SKIPPED = new Set(['free', 'skip', 'mfra', 'sidx', 'styp', 'emsg', 'udta', 'meta', 'uuid', 'wide'])

/** Whether sample flags describe a sync sample: depends on no other (2), or not marked non-sync while not declared dependent (1). */
export function isSyncSample(flags: number): boolean {
  const dependsOn = (flags >>> DEPENDS_ON_SHIFT) & 3
  if (dependsOn === 2) return true
  if (dependsOn === 1) return false
  return (flags & NON_SYNC_FLAG) === 0
}

/** A 64-bit NTP timestamp (32.32 fixed point, seconds since 1900) as Unix milliseconds; null for times before 1970. */
export function ntpToUnixMs(ntp: bigint): number | null {
  const seconds = Number(ntp >> 32n)
  if (seconds < NTP_UNIX_OFFSET_S) return null
  const fraction = Number(ntp & 0xffff_ffffn)
  return (seconds - NTP_UNIX_OFFSET_S) * 1000 + (fraction * 1000) / 2 ** 32
}

interface Box {
  type: string
  /** Where the box starts (its header). */
  start: number
  /** Where its body starts. */
  body: number
  /** Where it ends (exclusive). */
  end: number
}

function fail(code: Mp4Problem, message: string): never {
  throw new Mp4Error(code, message)
}

function view(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
}

function isFourCC(b: Buffer, at: number): boolean {
  for (let i = at; i < at + 4; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false
  return true
}

/** The boxes laid end to end in b[from, to), each checked to lie inside it. */
function boxes(b: Buffer, from: number, to: number, where: string): Box[] {
  const out: Box[] = []
  let at = from
  while (at < to) {
    if (to - at < 8) fail(Mp4Problem.TRUNCATED, `${where}: ${to - at} bytes left, too few for a box header`)
    let size = b.readUInt32BE(at)
    if (!isFourCC(b, at + 4)) fail(Mp4Problem.BAD_BOX, `${where}: box type ${b.subarray(at + 4, at + 8).toString('hex')} at ${at} is not four characters`)
    const type = b.toString('latin1', at + 4, at + 8)
    let header = 8
    if (size === 1) {
      if (to - at < 16) fail(Mp4Problem.TRUNCATED, `${where}: box '${type}' at ${at} has no room for its 64-bit size`)
      const large = b.readBigUInt64BE(at + 8)
      if (large > BigInt(to - at)) fail(Mp4Problem.TRUNCATED, `${where}: box '${type}' at ${at} says ${large} bytes; ${to - at} are left`)
      size = Number(large)
      header = 16
    } else if (size === 0) {
      size = to - at
    }
    if (size < header) fail(Mp4Problem.BAD_BOX, `${where}: box '${type}' at ${at} has size ${size}, below its ${header}-byte header`)
    if (size > to - at) fail(Mp4Problem.TRUNCATED, `${where}: box '${type}' at ${at} says ${size} bytes; ${to - at} are left`)
    out.push({ type, start: at, body: at + header, end: at + size })
    at += size
  }
  return out
}

function child(b: Buffer, parent: Box, type: string): Box | undefined {
  return boxes(b, parent.body, parent.end, parent.type).find((x) => x.type === type)
}

function need(b: Buffer, parent: Box, type: string, code: Mp4Problem): Box {
  return child(b, parent, type) ?? fail(code, `'${parent.type}' has no '${type}'`)
}

/** Checks that a box's body holds `bytes` bytes from `from`. */
function room(box: Box, from: number, bytes: number): void {
  if (from + bytes > box.end) fail(Mp4Problem.TRUNCATED, `'${box.type}' is ${box.end - box.start} bytes, too short for its fields`)
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0')

/** Reads an init segment (ftyp + moov; moov alone is read too): its video track, codec and size. */
export function parseInit(buf: Uint8Array): InitInfo {
  const b = view(buf)
  const moov = boxes(b, 0, b.length, 'init segment').find((x) => x.type === 'moov') ?? fail(Mp4Problem.BAD_INIT, 'the init segment has no moov')
  const moovChildren = boxes(b, moov.body, moov.end, 'moov')
  let video: { trackId: number; timescale: number; width: number; height: number; codec: string } | null = null
  for (const trak of moovChildren.filter((x) => x.type === 'trak')) {
    const mdia = need(b, trak, 'mdia', Mp4Problem.BAD_INIT)
    const hdlr = need(b, mdia, 'hdlr', Mp4Problem.BAD_INIT)
    room(hdlr, hdlr.body, 12)
    if (b.toString('latin1', hdlr.body + 8, hdlr.body + 12) !== 'vide') continue
    const tkhd = need(b, trak, 'tkhd', Mp4Problem.BAD_INIT)
    room(tkhd, tkhd.body, 4)
    const tkhdV1 = b[tkhd.body] === 1
    room(tkhd, tkhd.body, tkhdV1 ? 92 : 80)
    const trackId = b.readUInt32BE(tkhd.body + (tkhdV1 ? 20 : 12))
    const tkhdWidth = b.readUInt32BE(tkhd.body + (tkhdV1 ? 84 : 72)) >>> 16
    const tkhdHeight = b.readUInt32BE(tkhd.body + (tkhdV1 ? 88 : 76)) >>> 16
    const mdhd = need(b, mdia, 'mdhd', Mp4Problem.BAD_INIT)
    room(mdhd, mdhd.body, 4)
    const mdhdV1 = b[mdhd.body] === 1
    room(mdhd, mdhd.body, mdhdV1 ? 24 : 16)
    const timescale = b.readUInt32BE(mdhd.body + (mdhdV1 ? 20 : 12))
    if (timescale === 0) fail(Mp4Problem.BAD_INIT, 'the video track\'s timescale (mdhd) is 0')
    const stbl = need(b, need(b, mdia, 'minf', Mp4Problem.BAD_INIT), 'stbl', Mp4Problem.BAD_INIT)
    const stsd = need(b, stbl, 'stsd', Mp4Problem.BAD_INIT)
    room(stsd, stsd.body, 8)
    const entry = boxes(b, stsd.body + 8, stsd.end, 'stsd')[0] ?? fail(Mp4Problem.BAD_INIT, 'the video track has no sample entry (stsd is empty)')
    if (entry.type !== 'avc1' && entry.type !== 'avc3') fail(Mp4Problem.UNSUPPORTED_CODEC, `the video track is '${entry.type}', not H.264 (avc1/avc3)`)
    // VisualSampleEntry: 8 bytes of SampleEntry, 16 reserved, u16 width, u16 height, … 78 bytes in all, then boxes.
    room(entry, entry.body, 78)
    const width = b.readUInt16BE(entry.body + 24) || tkhdWidth
    const height = b.readUInt16BE(entry.body + 26) || tkhdHeight
    const avcC = boxes(b, entry.body + 78, entry.end, entry.type).find((x) => x.type === 'avcC') ?? fail(Mp4Problem.BAD_INIT, `'${entry.type}' has no 'avcC'`)
    room(avcC, avcC.body, 4)
    const codec = `${entry.type}.${hex2(b[avcC.body + 1]!)}${hex2(b[avcC.body + 2]!)}${hex2(b[avcC.body + 3]!)}`
    video = { trackId, timescale, width, height, codec }
    break
  }
  if (!video) fail(Mp4Problem.BAD_INIT, 'the init segment has no video track')
  let defaults = { defaultSampleDuration: 0, defaultSampleSize: 0, defaultSampleFlags: 0 }
  const mvex = moovChildren.find((x) => x.type === 'mvex')
  if (mvex) {
    for (const trex of boxes(b, mvex.body, mvex.end, 'mvex').filter((x) => x.type === 'trex')) {
      room(trex, trex.body, 24)
      if (b.readUInt32BE(trex.body + 4) !== video.trackId) continue
      defaults = {
        defaultSampleDuration: b.readUInt32BE(trex.body + 12),
        defaultSampleSize: b.readUInt32BE(trex.body + 16),
        defaultSampleFlags: b.readUInt32BE(trex.body + 20),
      }
    }
  }
  return { ...video, ...defaults }
}

/** Samples of one trun, whose bytes lie end to end in the fragment's bytes. */
export interface FragmentSampleRun {
  /** Where the first sample's bytes start in the fragment's bytes. */
  offset: number
  /** Bytes of all the run's samples. */
  bytes: number
  sizes: number[]
  /** In the track's timescale. */
  durations: number[]
  sync: boolean[]
  /** Composition time offsets (pts − dts), in the track's timescale. */
  offsets: number[]
}

/** What `parseFragment(buf, track, { samples: true })` reads: the fragment and every sample of its truns. */
export interface FragmentSamplesInfo extends FragmentInfo {
  /** The truns that hold samples, in order. */
  runs: FragmentSampleRun[]
}

/**
 * Reads one media fragment: `[prft] moof mdat`, nothing else. `track` is the init segment's (or just
 * its timescale, when the fragment's trun or tfhd carry every default it needs). With `{ samples: true }`
 * it also returns every sample (size, duration, sync flag, composition offset, where its bytes lie) and
 * checks that they lie in mdat even when tfhd names a base data offset; a trun of default-sized samples
 * may then say no more samples than mdat has bytes (one a byte when the default size is 0).
 */
export function parseFragment(buf: Uint8Array, track: VideoTrack | number): FragmentInfo
export function parseFragment(buf: Uint8Array, track: VideoTrack | number, options: { samples: true }): FragmentSamplesInfo
export function parseFragment(buf: Uint8Array, track: VideoTrack | number, options?: { samples?: boolean }): FragmentInfo | FragmentSamplesInfo {
  const withSamples = options?.samples === true
  const b = view(buf)
  const t: VideoTrack = typeof track === 'number'
    ? { trackId: 0, timescale: track, defaultSampleDuration: 0, defaultSampleSize: 0, defaultSampleFlags: 0 }
    : track
  if (!Number.isInteger(t.timescale) || t.timescale <= 0) throw new RangeError(`timescale must be a positive integer, not ${t.timescale}`)
  const top = boxes(b, 0, b.length, 'fragment')
  const order = top.map((x) => x.type).join(' ')
  const hasPrft = top[0]?.type === 'prft'
  const moof = top[hasPrft ? 1 : 0]
  const mdat = top[hasPrft ? 2 : 1]
  if (!moof || moof.type !== 'moof' || !mdat || mdat.type !== 'mdat' || top.length !== (hasPrft ? 3 : 2)) {
    fail(Mp4Problem.BAD_FRAGMENT, `a fragment is [prft] moof mdat; this one is '${order}'`)
  }

  let prftTimeMs: number | null = null
  let prftMediaTime: bigint | null = null
  if (hasPrft) {
    const prft = top[0]!
    room(prft, prft.body, 4)
    const v1 = b[prft.body] === 1
    room(prft, prft.body, v1 ? 24 : 20)
    prftTimeMs = ntpToUnixMs(b.readBigUInt64BE(prft.body + 8))
    prftMediaTime = v1 ? b.readBigUInt64BE(prft.body + 16) : BigInt(b.readUInt32BE(prft.body + 16))
  }

  const moofChildren = boxes(b, moof.body, moof.end, 'moof')
  const mfhd = moofChildren.find((x) => x.type === 'mfhd') ?? fail(Mp4Problem.BAD_FRAGMENT, "'moof' has no 'mfhd'")
  room(mfhd, mfhd.body, 8)
  const sequenceNumber = b.readUInt32BE(mfhd.body + 4)

  // The video track's traf: the one with its track id, or the first when only the timescale is known.
  let traf: Box | undefined
  let tfhd: Box | undefined
  for (const candidate of moofChildren.filter((x) => x.type === 'traf')) {
    const h = need(b, candidate, 'tfhd', Mp4Problem.BAD_FRAGMENT)
    room(h, h.body, 8)
    if (t.trackId === 0 || b.readUInt32BE(h.body + 4) === t.trackId) { traf = candidate; tfhd = h; break }
  }
  if (!traf || !tfhd) fail(Mp4Problem.BAD_FRAGMENT, t.trackId ? `'moof' has no 'traf' for track ${t.trackId}` : "'moof' has no 'traf'")

  const tfhdFlags = b.readUInt32BE(tfhd.body) & 0xff_ffff
  let at = tfhd.body + 8
  const field = (present: boolean, bytes: number): number | null => {
    if (!present) return null
    room(tfhd!, at, bytes)
    const v = bytes === 8 ? Number(b.readBigUInt64BE(at)) : b.readUInt32BE(at)
    at += bytes
    return v
  }
  const baseDataOffset = field((tfhdFlags & TFHD_BASE_DATA_OFFSET) !== 0, 8)
  field((tfhdFlags & TFHD_SAMPLE_DESCRIPTION_INDEX) !== 0, 4)
  const defaultDuration = field((tfhdFlags & TFHD_DEFAULT_DURATION) !== 0, 4) ?? t.defaultSampleDuration
  const defaultSize = field((tfhdFlags & TFHD_DEFAULT_SIZE) !== 0, 4) ?? t.defaultSampleSize
  const defaultFlags = field((tfhdFlags & TFHD_DEFAULT_FLAGS) !== 0, 4) ?? t.defaultSampleFlags

  const trafChildren = boxes(b, traf.body, traf.end, 'traf')
  const tfdt = trafChildren.find((x) => x.type === 'tfdt') ?? fail(Mp4Problem.BAD_FRAGMENT, "'traf' has no 'tfdt' (no decode time)")
  room(tfdt, tfdt.body, 4)
  const tfdtV1 = b[tfdt.body] === 1
  room(tfdt, tfdt.body, tfdtV1 ? 12 : 8)
  const decodeTime = tfdtV1 ? b.readBigUInt64BE(tfdt.body + 4) : BigInt(b.readUInt32BE(tfdt.body + 4))

  let duration = 0
  let sampleCount = 0
  let keyFrame: boolean | null = null
  const runs: FragmentSampleRun[] = []
  // Offsets count from moof (the default base) unless tfhd names a file offset; the samples are
  // checked to lie in mdat when they count from moof, or when the samples are asked for.
  const base = baseDataOffset ?? moof.start
  const checkData = baseDataOffset === null || withSamples
  // Where the next run's data starts, when its trun names no offset.
  let dataAt = base
  for (const trun of trafChildren.filter((x) => x.type === 'trun')) {
    room(trun, trun.body, 8)
    const version = b[trun.body]!
    const flags = b.readUInt32BE(trun.body) & 0xff_ffff
    const count = b.readUInt32BE(trun.body + 4)
    let p = trun.body + 8
    if (flags & TRUN_DATA_OFFSET) { room(trun, p, 4); dataAt = base + b.readInt32BE(p); p += 4 }
    let firstFlags: number | null = null
    if (flags & TRUN_FIRST_SAMPLE_FLAGS) { room(trun, p, 4); firstFlags = b.readUInt32BE(p); p += 4 }
    const perSample = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO].filter((f) => flags & f).length * 4
    // Checked before the loop, so a count from garbage costs nothing.
    if (count * perSample > trun.end - p) fail(Mp4Problem.TRUNCATED, `'trun' says ${count} samples of ${perSample} bytes; it holds ${trun.end - p}`)
    if (!(flags & TRUN_DURATION) && count > 0 && defaultDuration === 0) fail(Mp4Problem.BAD_FRAGMENT, 'sample durations are in neither trun, tfhd nor trex')
    if (withSamples && perSample === 0 && count * Math.max(1, defaultSize) > mdat.end - mdat.body) {
      fail(Mp4Problem.BAD_FRAGMENT, `'trun' says ${count} samples of the default size; mdat holds ${mdat.end - mdat.body} bytes`)
    }
    const run: FragmentSampleRun = { offset: dataAt, bytes: 0, sizes: [], durations: [], sync: [], offsets: [] }
    if (!withSamples && perSample === 0 && count > 0) {
      // Every sample takes the defaults: no loop, so a huge count from garbage costs nothing.
      duration += count * defaultDuration
      run.bytes = count * defaultSize
      if (keyFrame === null) keyFrame = isSyncSample(firstFlags ?? defaultFlags)
    }
    for (let i = 0; (withSamples || perSample > 0) && i < count; i++) {
      let sampleDuration = defaultDuration
      let size = defaultSize
      const first = i === 0 && firstFlags !== null
      let sampleFlags = first ? firstFlags! : defaultFlags
      let cto = 0
      if (flags & TRUN_DURATION) { sampleDuration = b.readUInt32BE(p); p += 4 }
      if (flags & TRUN_SIZE) { size = b.readUInt32BE(p); p += 4 }
      if (flags & TRUN_FLAGS) { const f = b.readUInt32BE(p); p += 4; if (!first) sampleFlags = f }
      if (flags & TRUN_CTO) { cto = version === 0 ? b.readUInt32BE(p) : b.readInt32BE(p); p += 4 }
      duration += sampleDuration
      run.bytes += size
      if (keyFrame === null) keyFrame = isSyncSample(sampleFlags)
      if (withSamples) {
        run.sizes.push(size)
        run.durations.push(sampleDuration)
        run.sync.push(isSyncSample(sampleFlags))
        run.offsets.push(cto)
      }
    }
    sampleCount += count
    if (checkData && (dataAt < mdat.body || dataAt + run.bytes > mdat.end)) {
      fail(Mp4Problem.BAD_FRAGMENT, `samples at [${dataAt}, ${dataAt + run.bytes}) lie outside mdat's data [${mdat.body}, ${mdat.end})`)
    }
    dataAt += run.bytes
    if (withSamples && count > 0) runs.push(run)
  }
  if (sampleCount === 0 || keyFrame === null) fail(Mp4Problem.BAD_FRAGMENT, 'the fragment has no samples')
  const info: FragmentInfo = {
    sequenceNumber,
    decodeTime,
    duration,
    durationMs: (duration * 1000) / t.timescale,
    sampleCount,
    keyFrame,
    prftTimeMs,
    prftMediaTime,
    mediaBytes: mdat.end - mdat.body,
  }
  return withSamples ? { ...info, runs } : info
}


export interface Mp4SplitterOptions {
  /** The largest init segment or fragment (and so the largest box) held; default 16 MiB. */
  maxBytes?: number
}

/**
 * Splits a fragmented MP4 byte stream into its init segment and media fragments, incrementally.
 * `push` keeps views of the chunks it is given until their unit is complete: do not reuse them. After
 * an error the splitter is dead: every later call throws the same error.
 */
export class Mp4Splitter {
  readonly maxBytes: number
  private readonly header = Buffer.alloc(16)
  private headerBytes = 0
  /** Body bytes still to come of the box being read (only meaningful once its header is read). */
  private bodyLeft = 0
  private inBox = false
  private boxType = ''
  private boxStart = 0
  private keep = false
  /** The unit being gathered: views of its bytes so far. */
  private parts: Buffer[] = []
  private held = 0
  /** Boxes of the current fragment so far: '', 'prft', 'moof'. */
  private fragmentAt: '' | 'prft' | 'moof' = ''
  private initStarted = false
  private track: InitInfo | null = null
  private offset = 0
  private failure: Mp4Error | null = null

  constructor(options: Mp4SplitterOptions = {}) {
    const max = options.maxBytes ?? DEFAULT_MAX_UNIT_BYTES
    if (!Number.isSafeInteger(max) || max < 16 || max > 2 ** 32) throw new RangeError(`maxBytes must be an integer in 16..2^32, not ${max}`)
    this.maxBytes = max
  }

  /** The init segment's track, once it has been read. */
  get init(): InitInfo | null {
    return this.track
  }

  /** Bytes held for the unit being gathered. */
  get bufferedBytes(): number {
    return this.held + this.headerBytes
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.offset
  }

  /** Takes the next bytes of the stream; returns the units they complete, in order. */
  push(chunk: Uint8Array): Mp4Unit[] {
    if (this.failure) throw this.failure
    try {
      return this.consume(view(chunk))
    } catch (err) {
      this.failure = err instanceof Mp4Error ? err : new Mp4Error(Mp4Problem.BAD_BOX, String((err as Error)?.message ?? err), { cause: err })
      this.parts = []
      this.held = 0
      this.headerBytes = 0
      throw this.failure
    }
  }

  /** The stream has ended: throws MP4_TRUNCATED when it ended inside a box or between a fragment's boxes. */
  end(): void {
    if (this.failure) throw this.failure
    if (this.headerBytes > 0 || this.inBox) {
      const what = this.inBox ? `box '${this.boxType}' at ${this.boxStart}` : 'a box header'
      this.failure = new Mp4Error(Mp4Problem.TRUNCATED, `the stream ended inside ${what}`)
    } else if (this.fragmentAt || (this.initStarted && !this.track)) {
      this.failure = new Mp4Error(Mp4Problem.TRUNCATED, `the stream ended inside ${this.track ? 'a fragment' : 'the init segment'}`)
    }
    this.parts = []
    this.held = 0
    this.headerBytes = 0
    if (this.failure) throw this.failure
  }

  private consume(b: Buffer): Mp4Unit[] {
    const out: Mp4Unit[] = []
    let i = 0
    while (i < b.length) {
      if (!this.inBox) {
        const want = this.headerBytes < 8 ? 8 : 16
        const n = Math.min(want - this.headerBytes, b.length - i)
        b.copy(this.header, this.headerBytes, i, i + n)
        this.headerBytes += n
        i += n
        if (this.headerBytes < 8) continue
        if (this.header.readUInt32BE(0) === 1 && this.headerBytes < 16) continue
        this.openBox()
        if (this.bodyLeft === 0) this.closeBox(out)
        continue
      }
      const n = Math.min(this.bodyLeft, b.length - i)
      if (this.keep) { this.parts.push(b.subarray(i, i + n)); this.held += n }
      this.bodyLeft -= n
      i += n
      this.offset += n
      if (this.bodyLeft === 0) this.closeBox(out)
    }
    return out
  }

  private openBox(): void {
    const h = this.header
    const headerLength = this.headerBytes
    const at = this.offset
    if (!isFourCC(h, 4)) fail(Mp4Problem.BAD_BOX, `box type ${h.subarray(4, 8).toString('hex')} at ${at} is not four characters`)
    const type = h.toString('latin1', 4, 8)
    let size = h.readUInt32BE(0)
    if (size === 1) {
      const large = h.readBigUInt64BE(8)
      if (large > BigInt(this.maxBytes)) fail(Mp4Problem.TOO_LARGE, `box '${type}' at ${at} says ${large} bytes, over the ${this.maxBytes}-byte limit`)
      size = Number(large)
    }
    if (size === 0) fail(Mp4Problem.BAD_BOX, `box '${type}' at ${at} has size 0 (to the end of the file), which a stream cannot have`)
    if (size < headerLength) fail(Mp4Problem.BAD_BOX, `box '${type}' at ${at} has size ${size}, below its ${headerLength}-byte header`)
    if (size > this.maxBytes) fail(Mp4Problem.TOO_LARGE, `box '${type}' at ${at} says ${size} bytes, over the ${this.maxBytes}-byte limit`)

    this.keep = this.admit(type, at)
    if (this.keep) {
      if (this.held + size > this.maxBytes) {
        fail(Mp4Problem.TOO_LARGE, `box '${type}' at ${at} would make its ${this.track ? 'fragment' : 'init segment'} ${this.held + size} bytes, over the ${this.maxBytes}-byte limit`)
      }
      this.parts.push(Buffer.from(h.subarray(0, headerLength)))
      this.held += headerLength
    }
    this.inBox = true
    this.boxType = type
    this.boxStart = at
    this.bodyLeft = size - headerLength
    this.headerBytes = 0
    this.offset += headerLength
  }

  /** Whether a top-level box of `type` belongs to the unit being gathered (true), is skipped (false), or is out of place (throws). */
  private admit(type: string, at: number): boolean {
    const misplaced = (why: string): never => fail(Mp4Problem.UNEXPECTED_BOX, `box '${type}' at ${at}: ${why}`)
    if (!this.track) {
      if (type === 'ftyp') {
        if (this.initStarted) misplaced('a second ftyp before moov')
        this.initStarted = true
        return true
      }
      if (type === 'moov') {
        if (!this.initStarted) misplaced('moov without ftyp before it')
        return true
      }
      if (this.initStarted && SKIPPED.has(type)) return true
      return misplaced(this.initStarted ? 'expected moov to complete the init segment' : 'expected ftyp, the start of the init segment')
    }
    switch (type) {
      case 'prft':
        if (this.fragmentAt) misplaced(`a second prft inside a fragment (after ${this.fragmentAt})`)
        this.fragmentAt = 'prft'
        return true
      case 'moof':
        if (this.fragmentAt === 'moof') misplaced('a second moof before mdat')
        this.fragmentAt = 'moof'
        return true
      case 'mdat':
        if (this.fragmentAt !== 'moof') misplaced('mdat without moof before it')
        return true
      case 'ftyp':
      case 'moov':
        return misplaced('a second init segment in one stream')
      default:
        if (this.fragmentAt) misplaced(`inside a fragment (after ${this.fragmentAt})`)
        if (SKIPPED.has(type)) return false
        return misplaced('not a box of a fragmented MP4 stream')
    }
  }

  private closeBox(out: Mp4Unit[]): void {
    this.inBox = false
    const type = this.boxType
    if (type === 'moov') {
      const data = this.take()
      const info = parseInit(data)
      this.track = info
      out.push({ kind: 'init', data, info })
    } else if (type === 'mdat' && this.keep) {
      const data = this.take()
      this.fragmentAt = ''
      out.push({ kind: 'fragment', data, info: parseFragment(data, this.track!) })
    }
  }

  private take(): Buffer {
    const data = this.parts.length === 1 ? Buffer.from(this.parts[0]!) : Buffer.concat(this.parts, this.held)
    this.parts = []
    this.held = 0
    return data
  }
}
