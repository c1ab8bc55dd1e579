/**
 * The video chunk frame: one per MQTT payload on `tributary/v1/{device}/video/{stream}`, and the
 * acknowledgements the relay publishes on `tributary/v1/{device}/video-acks` (DESIGN.md, "The wire
 * between agent and relay"). A capture **session** is one run of a camera's ffmpeg: its own init
 * segment (ftyp + moov) and then media fragments (moof + mdat, ~2 s, each starting on a key frame).
 * The init segment travels as fragment sequence 0 of its session with the INIT flag; media fragments
 * are numbered 1, 2, … within the session. A fragment larger than one chunk is split into chunks of at
 * most MAX_CHUNK_PAYLOAD bytes (header included), sent in order.
 *
 * All integers little-endian. The checksum is CRC-32C (Castagnoli) of the whole fragment's bytes
 * (not of the chunk), so the relay checks it once the fragment is assembled; the header's own fields
 * are checked for consistency between chunks.
 *
 * Chunk header (CHUNK_HEADER_SIZE = 64 bytes), then chunkLength bytes of the fragment
 *
 * | offset | size | field            | notes                                                        |
 * | -----: | ---: | ---------------- | ------------------------------------------------------------ |
 * |      0 |    2 | magic            | 0x54 0x56 ("TV")                                             |
 * |      2 |    1 | version          | VIDEO_FRAME_VERSION (1)                                      |
 * |      3 |    1 | flags            | bit 0: clock synchronised; bit 1: starts on a key frame; bit 2: init segment |
 * |      4 |    2 | headerLength     | CHUNK_HEADER_SIZE (a later version may grow it)              |
 * |      6 |    2 | reserved         | 0                                                            |
 * |      8 |    8 | session          | u64, chosen at random by the agent per capture session       |
 * |     16 |    8 | fragmentSequence | u64 (≤ 2^53-1): 0 for the init segment, then 1, 2, …         |
 * |     24 |    4 | chunkIndex       | u32, 0-based                                                 |
 * |     28 |    4 | chunkCount       | u32, 1..MAX_CHUNKS                                           |
 * |     32 |    4 | fragmentBytes    | u32, the whole fragment's size, 1..MAX_FRAGMENT_BYTES         |
 * |     36 |    4 | fragmentCrc32c   | CRC-32C of the whole fragment                                |
 * |     40 |    8 | producerTimeMs   | f64, device wall clock at the fragment's first frame (ms)    |
 * |     48 |    4 | durationMs       | u32, the fragment's media duration (0 for the init segment)  |
 * |     52 |    4 | reserved         | 0                                                            |
 * |     56 |    4 | chunkOffset      | u32, where this chunk's bytes start in the fragment          |
 * |     60 |    4 | chunkLength      | u32, bytes after the header (the payload's remaining length) |
 */

export const VIDEO_MAGIC_0 = 0x54
export const VIDEO_MAGIC_1 = 0x56
export const VIDEO_FRAME_VERSION = 1
export const CHUNK_HEADER_SIZE = 64

export const V_OFF_MAGIC = 0
export const V_OFF_VERSION = 2
export const V_OFF_FLAGS = 3
export const V_OFF_HEADER_LENGTH = 4
export const V_OFF_SESSION = 8
export const V_OFF_SEQUENCE = 16
export const V_OFF_CHUNK_INDEX = 24
export const V_OFF_CHUNK_COUNT = 28
export const V_OFF_FRAGMENT_BYTES = 32
export const V_OFF_CRC = 36
export const V_OFF_PRODUCER_TIME = 40
export const V_OFF_DURATION = 48
export const V_OFF_CHUNK_OFFSET = 56
export const V_OFF_CHUNK_LENGTH = 60

export const VideoFlag = {
  clockSynced: 1,
  keyFrame: 2,
  init: 4,
} as const
const KNOWN_FLAGS = VideoFlag.clockSynced | VideoFlag.keyFrame | VideoFlag.init

/** A whole MQTT payload, header included: 96 KiB (fits AWS IoT Core's 128 KB too). */
export const MAX_CHUNK_PAYLOAD = 96 * 1024
export const MAX_CHUNK_DATA = MAX_CHUNK_PAYLOAD - CHUNK_HEADER_SIZE
/** Largest fragment (or init segment) a device may send: 2 s of 1080p at 30 Mbit/s fits with room. */
export const MAX_FRAGMENT_BYTES = 16 * 1024 * 1024
export const MAX_CHUNKS = Math.ceil(MAX_FRAGMENT_BYTES / MAX_CHUNK_DATA)

/** What a chunk header says about its fragment (the same in every chunk of the fragment). */
export interface FragmentHeader {
  session: bigint
  /** 0: the session's init segment; 1, 2, …: its media fragments in capture order. */
  sequence: number
  init: boolean
  keyFrame: boolean
  clockSynced: boolean
  fragmentBytes: number
  crc32c: number
  producerTimeMs: number
  durationMs: number
}

export interface VideoChunk extends FragmentHeader {
  chunkIndex: number
  chunkCount: number
  chunkOffset: number
  /** A view into the payload: copy it to keep it past the payload's life. */
  data: Uint8Array
}

/** Why a chunk payload cannot be read; the relay answers ERROR with this code (the payload names no fragment it can trust). */
export const VideoFrameProblem = {
  TRUNCATED: 'VIDEO_FRAME_TRUNCATED',
  BAD_MAGIC: 'VIDEO_FRAME_BAD_MAGIC',
  BAD_VERSION: 'VIDEO_FRAME_BAD_VERSION',
  BAD_FIELD: 'VIDEO_FRAME_BAD_FIELD',
} as const
export type VideoFrameProblem = (typeof VideoFrameProblem)[keyof typeof VideoFrameProblem]

export class VideoFrameError extends Error {
  readonly code: VideoFrameProblem
  constructor(code: VideoFrameProblem, message: string) {
    super(message)
    this.code = code
    this.name = 'VideoFrameError'
  }
}

/** How many chunks a fragment of `bytes` bytes travels in. */
export function chunkCountOf(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / MAX_CHUNK_DATA))
}

/**
 * The chunk payloads of one fragment, in order. `crc32c` is the fragment's CRC-32C (the caller's
 * codec computes it: shared/ has no checksum of its own). Each payload is a new buffer.
 */
export function encodeFragmentChunks(header: FragmentHeader, fragment: Uint8Array): Buffer[] {
  if (fragment.length !== header.fragmentBytes) throw new RangeError(`fragmentBytes ${header.fragmentBytes} is not the fragment's size ${fragment.length}`)
  if (fragment.length < 1 || fragment.length > MAX_FRAGMENT_BYTES) throw new RangeError(`a fragment must hold 1..${MAX_FRAGMENT_BYTES} bytes, not ${fragment.length}`)
  if (!Number.isSafeInteger(header.sequence) || header.sequence < 0) throw new RangeError(`bad fragment sequence ${header.sequence}`)
  if (header.init !== (header.sequence === 0)) throw new RangeError('the init segment, and only it, is sequence 0')
  const count = chunkCountOf(fragment.length)
  const flags = (header.clockSynced ? VideoFlag.clockSynced : 0) | (header.keyFrame ? VideoFlag.keyFrame : 0) | (header.init ? VideoFlag.init : 0)
  const out: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const offset = i * MAX_CHUNK_DATA
    const length = Math.min(MAX_CHUNK_DATA, fragment.length - offset)
    const b = Buffer.allocUnsafe(CHUNK_HEADER_SIZE + length)
    b[V_OFF_MAGIC] = VIDEO_MAGIC_0
    b[V_OFF_MAGIC + 1] = VIDEO_MAGIC_1
    b[V_OFF_VERSION] = VIDEO_FRAME_VERSION
    b[V_OFF_FLAGS] = flags
    b.writeUInt16LE(CHUNK_HEADER_SIZE, V_OFF_HEADER_LENGTH)
    b.writeUInt16LE(0, 6)
    b.writeBigUInt64LE(BigInt.asUintN(64, header.session), V_OFF_SESSION)
    b.writeBigUInt64LE(BigInt(header.sequence), V_OFF_SEQUENCE)
    b.writeUInt32LE(i, V_OFF_CHUNK_INDEX)
    b.writeUInt32LE(count, V_OFF_CHUNK_COUNT)
    b.writeUInt32LE(fragment.length, V_OFF_FRAGMENT_BYTES)
    b.writeUInt32LE(header.crc32c >>> 0, V_OFF_CRC)
    b.writeDoubleLE(header.producerTimeMs, V_OFF_PRODUCER_TIME)
    b.writeUInt32LE(header.durationMs >>> 0, V_OFF_DURATION)
    b.writeUInt32LE(0, 52)
    b.writeUInt32LE(offset, V_OFF_CHUNK_OFFSET)
    b.writeUInt32LE(length, V_OFF_CHUNK_LENGTH)
    b.set(fragment.subarray(offset, offset + length), CHUNK_HEADER_SIZE)
    out.push(b)
  }
  return out
}

/**
 * Reads one chunk payload. Total: any byte string either yields a chunk whose fields are consistent
 * with each other (offset and length inside the fragment, index below count, count matching the
 * fragment's size) or throws a VideoFrameError; it never allocates.
 */
export function decodeVideoChunk(payload: Uint8Array): VideoChunk {
  const fail = (code: VideoFrameProblem, message: string): never => { throw new VideoFrameError(code, message) }
  if (payload.length < CHUNK_HEADER_SIZE) fail(VideoFrameProblem.TRUNCATED, `a video chunk has a ${CHUNK_HEADER_SIZE}-byte header; got ${payload.length} bytes`)
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (b[V_OFF_MAGIC] !== VIDEO_MAGIC_0 || b[V_OFF_MAGIC + 1] !== VIDEO_MAGIC_1) fail(VideoFrameProblem.BAD_MAGIC, 'not a video chunk (bad magic)')
  if (b[V_OFF_VERSION] !== VIDEO_FRAME_VERSION) fail(VideoFrameProblem.BAD_VERSION, `video chunk version ${b[V_OFF_VERSION]} is not supported (this relay reads ${VIDEO_FRAME_VERSION})`)
  const flags = b[V_OFF_FLAGS]!
  if ((flags & ~KNOWN_FLAGS) !== 0) fail(VideoFrameProblem.BAD_FIELD, `unknown flags 0x${flags.toString(16)}`)
  const headerLength = b.readUInt16LE(V_OFF_HEADER_LENGTH)
  if (headerLength !== CHUNK_HEADER_SIZE) fail(VideoFrameProblem.BAD_FIELD, `header length ${headerLength} is not ${CHUNK_HEADER_SIZE}`)
  const sequence = b.readBigUInt64LE(V_OFF_SEQUENCE)
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) fail(VideoFrameProblem.BAD_FIELD, `fragment sequence ${sequence} is past 2^53-1`)
  const init = (flags & VideoFlag.init) !== 0
  if (init !== (sequence === 0n)) fail(VideoFrameProblem.BAD_FIELD, init ? 'an init segment must be sequence 0' : 'sequence 0 is the init segment and must carry the init flag')
  const chunkIndex = b.readUInt32LE(V_OFF_CHUNK_INDEX)
  const chunkCount = b.readUInt32LE(V_OFF_CHUNK_COUNT)
  const fragmentBytes = b.readUInt32LE(V_OFF_FRAGMENT_BYTES)
  const chunkOffset = b.readUInt32LE(V_OFF_CHUNK_OFFSET)
  const chunkLength = b.readUInt32LE(V_OFF_CHUNK_LENGTH)
  if (fragmentBytes < 1 || fragmentBytes > MAX_FRAGMENT_BYTES) fail(VideoFrameProblem.BAD_FIELD, `fragment size ${fragmentBytes} is outside 1..${MAX_FRAGMENT_BYTES}`)
  if (chunkCount !== chunkCountOf(fragmentBytes)) fail(VideoFrameProblem.BAD_FIELD, `a ${fragmentBytes}-byte fragment travels in ${chunkCountOf(fragmentBytes)} chunks, not ${chunkCount}`)
  if (chunkIndex >= chunkCount) fail(VideoFrameProblem.BAD_FIELD, `chunk ${chunkIndex} of ${chunkCount}`)
  if (chunkLength !== payload.length - CHUNK_HEADER_SIZE) fail(VideoFrameProblem.TRUNCATED, `chunk length ${chunkLength} does not match the payload's ${payload.length - CHUNK_HEADER_SIZE} bytes`)
  const expectedOffset = chunkIndex * MAX_CHUNK_DATA
  const expectedLength = Math.min(MAX_CHUNK_DATA, fragmentBytes - expectedOffset)
  if (chunkOffset !== expectedOffset || chunkLength !== expectedLength) fail(VideoFrameProblem.BAD_FIELD, `chunk ${chunkIndex} must cover [${expectedOffset}, ${expectedOffset + expectedLength}), not [${chunkOffset}, ${chunkOffset + chunkLength})`)
  const producerTimeMs = b.readDoubleLE(V_OFF_PRODUCER_TIME)
  if (!Number.isFinite(producerTimeMs) || producerTimeMs < 0) fail(VideoFrameProblem.BAD_FIELD, `producer time ${producerTimeMs} is not a time`)
  return {
    session: b.readBigUInt64LE(V_OFF_SESSION),
    sequence: Number(sequence),
    init,
    keyFrame: (flags & VideoFlag.keyFrame) !== 0,
    clockSynced: (flags & VideoFlag.clockSynced) !== 0,
    fragmentBytes,
    crc32c: b.readUInt32LE(V_OFF_CRC),
    producerTimeMs,
    durationMs: b.readUInt32LE(V_OFF_DURATION),
    chunkIndex,
    chunkCount,
    chunkOffset,
    data: payload.subarray(CHUNK_HEADER_SIZE),
  }
}

/** Kinesis Video's ack event types (PutMedia's acknowledgement stream uses the same words). */
export type VideoAckStatus = 'RECEIVED' | 'PERSISTED' | 'ERROR'

/**
 * Codes an ERROR ack carries. Where Kinesis Video's PutMedia acks have an error code for the same
 * case, it is named beside the entry (PutMedia's own acks answer with AWS's numbers).
 */
export const VideoAckError = {
  /** The chunk payload could not be read (a VideoFrameProblem says how); nothing was stored. */
  FRAME_INVALID: 'FRAME_INVALID',
  /** The assembled fragment's CRC-32C differs from the header's. */
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  /** A chunk disagrees with the earlier chunks of its fragment (size, count, checksum, times). */
  CHUNK_MISMATCH: 'CHUNK_MISMATCH',
  /** A chunk came out of order or one is missing; the fragment must be sent again from chunk 0. */
  CHUNK_OUT_OF_ORDER: 'CHUNK_OUT_OF_ORDER',
  /** A media fragment for a session whose init segment the relay does not have: send the init first. */
  UNKNOWN_SESSION: 'UNKNOWN_SESSION',
  /** The fragment is not fragmented MP4 the relay can index: no moof/mdat, no key frame, bad init (AWS 4006 INVALID_MKV_DATA). */
  INVALID_MEDIA: 'INVALID_MEDIA',
  /** Fragment over the size limit (AWS 4001 MAX_FRAGMENT_SIZE_REACHED). */
  FRAGMENT_TOO_LARGE: 'FRAGMENT_TOO_LARGE',
  /** Too many incomplete fragments from this device (bounded chunk state); retry later. */
  TOO_MANY_PENDING: 'TOO_MANY_PENDING',
  /** The stream does not exist and the relay does not create video streams on first use. */
  STREAM_NOT_FOUND: 'STREAM_NOT_FOUND',
  /** The relay cannot store now (disk cap, failing disk; AWS 5001 ARCHIVAL_ERROR): the device keeps the fragment and retries. */
  STORAGE_UNAVAILABLE: 'STORAGE_UNAVAILABLE',
} as const
export type VideoAckError = (typeof VideoAckError)[keyof typeof VideoAckError]

/** Published by the relay on `tributary/v1/{device}/video-acks`, per fragment. */
export interface VideoAck {
  type: 'video-ack'
  stream: string
  /** The session as a decimal string (a u64). */
  session: string
  sequence: number
  status: VideoAckStatus
  /** PERSISTED: the fragment number the relay gave it (the same on every resend). */
  fragmentNumber?: string
  /** ERROR: what went wrong. */
  code?: VideoAckError | VideoFrameProblem
  message?: string
}
