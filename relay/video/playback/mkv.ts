/**
 * Matroska as GetMedia and GetMediaForFragmentList answer it: each fragment a document of its own —
 * EBML header, then a Segment holding Info, Tracks, the fragment's Tags, one Cluster (more only when
 * a sample lies over 32 s from the cluster's start) and, for GetMedia, Tags after the cluster — so a
 * Kinesis Video parser (amazon-kinesis-video-streams-parser-library's FragmentMetadataVisitor) reads
 * AWS_KINESISVIDEO_FRAGMENT_NUMBER, _SERVER_TIMESTAMP and _PRODUCER_TIMESTAMP before the cluster and
 * AWS_KINESISVIDEO_MILLIS_BEHIND_NOW and _CONTINUATION_TOKEN after it.
 *
 * The H.264 samples are copied byte for byte from the stored fMP4 (no decoding: what `ffmpeg -c
 * copy` does); ffmpeg's own Matroska muxer cannot be used because it cuts clusters by size and time,
 * not at our fragments, and writes no tags inside a segment after its first cluster.
 *
 * EBML (RFC 8794): an element is its ID (marker bits included, 1–4 bytes), its data size as a
 * variable-length integer, then its data; IDs and names from RFC 9559 (Matroska).
 */
import type { FragmentSamples, InitTrack } from './samples.js'

export const MKV_ID = {
  EBML: 0x1a45dfa3, EBMLVersion: 0x4286, EBMLReadVersion: 0x42f7, EBMLMaxIDLength: 0x42f2, EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282, DocTypeVersion: 0x4287, DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966, TimestampScale: 0x2ad7b1, MuxingApp: 0x4d80, WritingApp: 0x5741,
  Tracks: 0x1654ae6b, TrackEntry: 0xae, TrackNumber: 0xd7, TrackUID: 0x73c5, TrackType: 0x83, FlagLacing: 0x9c,
  CodecID: 0x86, CodecPrivate: 0x63a2, Video: 0xe0, PixelWidth: 0xb0, PixelHeight: 0xba,
  Tags: 0x1254c367, Tag: 0x7373, Targets: 0x63c0, SimpleTag: 0x67c8, TagName: 0x45a3, TagString: 0x4487,
  Cluster: 0x1f43b675, Timestamp: 0xe7, SimpleBlock: 0xa3,
} as const

const WRITER = 'tributary'
/** A SimpleBlock's time is a signed 16-bit offset (ms) from its cluster's. */
const MAX_BLOCK_OFFSET_MS = 32_767

function idBytes(id: number): Buffer {
  const n = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1
  const out = Buffer.alloc(n)
  out.writeUIntBE(id, 0, n)
  return out
}

/** A data size as an EBML variable-length integer, in as few bytes as hold it (all-ones is reserved). */
export function vint(n: number): Buffer {
  for (let len = 1; len <= 8; len++) {
    if (n < 2 ** (7 * len) - 1) {
      const out = Buffer.alloc(len)
      let v = BigInt(n) | (1n << BigInt(7 * len))
      for (let i = len - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n }
      return out
    }
  }
  throw new RangeError(`EBML size ${n} is too large`)
}

export function element(id: number, ...body: Buffer[]): Buffer {
  const size = body.reduce((s, b) => s + b.length, 0)
  return Buffer.concat([idBytes(id), vint(size), ...body])
}

function uint(id: number, value: number): Buffer {
  let bytes = 1
  while (bytes < 8 && value >= 2 ** (8 * bytes)) bytes++
  const b = Buffer.alloc(bytes)
  let v = BigInt(value)
  for (let i = bytes - 1; i >= 0; i--) { b[i] = Number(v & 0xffn); v >>= 8n }
  return element(id, b)
}

const text = (id: number, value: string) => element(id, Buffer.from(value, 'utf8'))

function ebmlHeader(): Buffer {
  return element(MKV_ID.EBML,
    uint(MKV_ID.EBMLVersion, 1), uint(MKV_ID.EBMLReadVersion, 1), uint(MKV_ID.EBMLMaxIDLength, 4), uint(MKV_ID.EBMLMaxSizeLength, 8),
    text(MKV_ID.DocType, 'matroska'), uint(MKV_ID.DocTypeVersion, 4), uint(MKV_ID.DocTypeReadVersion, 2))
}

function tracks(init: InitTrack): Buffer {
  return element(MKV_ID.Tracks, element(MKV_ID.TrackEntry,
    uint(MKV_ID.TrackNumber, 1), uint(MKV_ID.TrackUID, 1), uint(MKV_ID.TrackType, 1), uint(MKV_ID.FlagLacing, 0),
    text(MKV_ID.CodecID, 'V_MPEG4/ISO/AVC'), element(MKV_ID.CodecPrivate, init.avcC),
    element(MKV_ID.Video, uint(MKV_ID.PixelWidth, init.info.width), uint(MKV_ID.PixelHeight, init.info.height))))
}

/** A Tags element of SimpleTags with no target (they apply to the whole segment: the fragment). */
export function tags(values: Record<string, string>): Buffer {
  const simple = Object.entries(values).map(([name, value]) => element(MKV_ID.SimpleTag, text(MKV_ID.TagName, name), text(MKV_ID.TagString, value)))
  return element(MKV_ID.Tags, element(MKV_ID.Tag, element(MKV_ID.Targets), ...simple))
}

/** Seconds with milliseconds, as AWS writes its timestamp tags ("1700000000.123"). */
export const tagTime = (ms: number) => (Math.round(ms) / 1000).toFixed(3)

export interface MkvFragment {
  init: InitTrack
  samples: FragmentSamples
  /** The fragment's bytes (its samples are read from them). */
  data: Buffer
  /** The first sample's presentation time in ms: the cluster's timestamp. */
  startMs: number
  /** Tags before the cluster (the fragment's number and times). */
  tags: Record<string, string>
  /** Tags after the cluster (GetMedia: millis behind now, continuation token). */
  after?: Record<string, string>
}

/** A Segment's size when it is not known: the stream goes on until the next EBML header (AWS's GetMedia form). */
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])

/**
 * One fragment as a Matroska document: EBML header and a Segment of unknown size, as AWS streams
 * them. (ffmpeg reads every cluster of such documents laid end to end; with known-size Segments it
 * stops after the first few.)
 */
export function mkvFragment(f: MkvFragment): Buffer {
  const { samples, init } = f
  const scale = 1000 / init.info.timescale
  const clusters: Buffer[] = []
  let blocks: Buffer[] = []
  let clusterMs = Math.max(0, Math.round(f.startMs))
  const flush = () => {
    if (blocks.length) clusters.push(element(MKV_ID.Cluster, uint(MKV_ID.Timestamp, clusterMs), ...blocks))
    blocks = []
  }
  let dts = samples.decodeTime
  const firstPts = samples.decodeTime + (samples.runs[0]?.offsets[0] ?? 0)
  for (const run of samples.runs) {
    let at = run.offset
    for (let i = 0; i < run.sizes.length; i++) {
      const size = run.sizes[i]!
      const ptsMs = Math.round(f.startMs + (dts + run.offsets[i]! - firstPts) * scale)
      let rel = ptsMs - clusterMs
      if (rel > MAX_BLOCK_OFFSET_MS || rel < -MAX_BLOCK_OFFSET_MS - 1) {
        flush()
        clusterMs = Math.max(0, ptsMs)
        rel = ptsMs - clusterMs
      }
      const head = Buffer.alloc(4)
      head[0] = 0x81 // track number 1 as a vint
      head.writeInt16BE(rel, 1)
      head[3] = run.sync[i] ? 0x80 : 0x00
      blocks.push(element(MKV_ID.SimpleBlock, head, f.data.subarray(at, at + size)))
      at += size
      dts += run.durations[i]!
    }
  }
  flush()
  const info = element(MKV_ID.Info, uint(MKV_ID.TimestampScale, 1_000_000), text(MKV_ID.MuxingApp, WRITER), text(MKV_ID.WritingApp, WRITER))
  return Buffer.concat([ebmlHeader(), idBytes(MKV_ID.Segment), UNKNOWN_SIZE, info, tracks(init), tags(f.tags), ...clusters, ...(f.after ? [tags(f.after)] : [])])
}
