/**
 * The sample tables of stored fragmented MP4, which playback remuxes without decoding: an init
 * segment's sample entry (the `avc1` box, copied into a clip's `stsd`) and its avcC record (a
 * Matroska track's CodecPrivate), and a fragment's samples (size, duration, sync flag, composition
 * offset) with where their bytes lie in the fragment's file.
 *
 * The store has already read these bytes once (hardware/video's parseInit/parseFragment) to accept
 * them; these readers go one level further (the sample entry, and with parseFragment's `samples`
 * option every sample of every `trun`). They are total all the same: any bytes either read or throw a
 * MediaError, and a count from a damaged box costs nothing before it is checked against the bytes
 * that would hold it (ISO/IEC 14496-12 §8.8).
 */
import { Mp4Error, parseFragment, parseInit, type InitInfo } from '../../../hardware/index.js'
import { MediaError } from '../media.js'

export interface InitTrack {
  info: InitInfo
  /** The video track's sample entry (`avc1`/`avc3` box, header included), as stored. */
  sampleEntry: Buffer
  /** The avcC box's body: the AVCDecoderConfigurationRecord (Matroska's CodecPrivate for V_MPEG4/ISO/AVC). */
  avcC: Buffer
}

/**
 * Samples whose bytes lie end to end in the fragment's file: hardware/video's FragmentSampleRun, the
 * runs parseFragment returns with `{ samples: true }` (its last overload; hardware's index exports the
 * function, not that type).
 */
export type SampleRun = ReturnType<typeof parseFragment>['runs'][number]

export interface FragmentSamples {
  /** tfdt: the first sample's decode time, in the track's timescale. */
  decodeTime: number
  runs: SampleRun[]
  count: number
  /** Sum of the sample durations, in the track's timescale. */
  duration: number
}

interface Box { type: string; start: number; body: number; end: number }

const fail = (message: string): never => { throw new MediaError('BAD_MEDIA', message) }

function boxes(b: Buffer, from: number, to: number, where: string): Box[] {
  const out: Box[] = []
  let at = from
  while (at < to) {
    if (to - at < 8) fail(`${where}: ${to - at} bytes left, too few for a box header`)
    let size = b.readUInt32BE(at)
    const type = b.toString('latin1', at + 4, at + 8)
    let header = 8
    if (size === 1) {
      if (to - at < 16) fail(`${where}: '${type}' has no room for its 64-bit size`)
      const large = b.readBigUInt64BE(at + 8)
      if (large > BigInt(to - at)) fail(`${where}: '${type}' says ${large} bytes; ${to - at} are left`)
      size = Number(large)
      header = 16
    } else if (size === 0) {
      size = to - at
    }
    if (size < header || size > to - at) fail(`${where}: '${type}' at ${at} has size ${size} (${to - at} bytes left)`)
    out.push({ type, start: at, body: at + header, end: at + size })
    at += size
  }
  return out
}

const child = (b: Buffer, parent: Box, type: string): Box | undefined => boxes(b, parent.body, parent.end, parent.type).find((x) => x.type === type)
const need = (b: Buffer, parent: Box, type: string): Box => child(b, parent, type) ?? fail(`'${parent.type}' has no '${type}'`)
const room = (box: Box, at: number, bytes: number): void => { if (at + bytes > box.end) fail(`'${box.type}' is too short for its fields`) }

/** Reads an init segment's video track: what parseInit reads, plus its sample entry and avcC. */
export function readInitTrack(buf: Buffer): InitTrack {
  let info: InitInfo
  try {
    info = parseInit(buf)
  } catch (err) {
    throw new MediaError('BAD_MEDIA', (err as Error).message, { cause: err })
  }
  const moov = boxes(buf, 0, buf.length, 'init segment').find((x) => x.type === 'moov') ?? fail('the init segment has no moov')
  for (const trak of boxes(buf, moov.body, moov.end, 'moov').filter((x) => x.type === 'trak')) {
    const tkhd = need(buf, trak, 'tkhd')
    room(tkhd, tkhd.body, 24)
    const trackId = buf.readUInt32BE(tkhd.body + (buf[tkhd.body] === 1 ? 20 : 12))
    if (trackId !== info.trackId) continue
    const stbl = need(buf, need(buf, need(buf, trak, 'mdia'), 'minf'), 'stbl')
    const stsd = need(buf, stbl, 'stsd')
    room(stsd, stsd.body, 8)
    const entry = boxes(buf, stsd.body + 8, stsd.end, 'stsd')[0] ?? fail('stsd is empty')
    room(entry, entry.body, 78)
    const avcC = boxes(buf, entry.body + 78, entry.end, entry.type).find((x) => x.type === 'avcC') ?? fail(`'${entry.type}' has no avcC`)
    return { info, sampleEntry: Buffer.from(buf.subarray(entry.start, entry.end)), avcC: Buffer.from(buf.subarray(avcC.body, avcC.end)) }
  }
  return fail(`the init segment has no trak for track ${info.trackId}`)
}

/**
 * Reads every sample of a stored fragment's video track (`[prft] moof mdat`): hardware/video's
 * parseFragment with its sample table, its Mp4Error a MediaError here as parseInit's is above.
 */
export function readSamples(b: Buffer, track: InitInfo): FragmentSamples {
  try {
    const info = parseFragment(b, track, { samples: true })
    return { decodeTime: Number(info.decodeTime), runs: info.runs, count: info.sampleCount, duration: info.duration }
  } catch (err) {
    if (!(err instanceof Mp4Error)) throw err
    throw new MediaError('BAD_MEDIA', err.message, { cause: err })
  }
}
