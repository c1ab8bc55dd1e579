/**
 * The errors hardware/video raises on purpose, each with a stable string `code`: what ffmpeg wrote
 * could not be read as fragmented MP4 (Mp4Error), or a camera was configured in a way that cannot run
 * (CameraError).
 */

export const Mp4Problem = {
  /** A box header that cannot be one: a size below its header, a size of 0 (to end of file) in a stream, a type that is not four printable characters. */
  BAD_BOX: 'MP4_BAD_BOX',
  /** A box, init segment or fragment larger than the limit (the limit is checked on the header, before anything is held). */
  TOO_LARGE: 'MP4_TOO_LARGE',
  /** A box where it does not belong: a fragment before the init segment, a second init segment, mdat without moof, an unknown top-level box. */
  UNEXPECTED_BOX: 'MP4_UNEXPECTED_BOX',
  /** The bytes end inside a box, or a box's contents are shorter than its fields. */
  TRUNCATED: 'MP4_TRUNCATED',
  /** The init segment lacks what a video track needs (no moov, no video track, no timescale, no avcC). */
  BAD_INIT: 'MP4_BAD_INIT',
  /** A fragment lacks what it needs (no tfdt, no samples, sample durations unknown, samples outside its mdat). */
  BAD_FRAGMENT: 'MP4_BAD_FRAGMENT',
  /** The video track is not H.264 (avc1/avc3). */
  UNSUPPORTED_CODEC: 'MP4_UNSUPPORTED_CODEC',
} as const
export type Mp4Problem = (typeof Mp4Problem)[keyof typeof Mp4Problem]

export class Mp4Error extends Error {
  readonly code: Mp4Problem
  constructor(code: Mp4Problem, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'Mp4Error'
  }
}

export const CameraProblem = {
  /** A CameraInput field that cannot run (named in the message). */
  INPUT_INVALID: 'CAMERA_INPUT_INVALID',
  /** A Camera option (timeouts, limits) out of range. */
  OPTION_INVALID: 'CAMERA_OPTION_INVALID',
} as const
export type CameraProblem = (typeof CameraProblem)[keyof typeof CameraProblem]

export class CameraError extends Error {
  readonly code: CameraProblem
  /** The field at fault, e.g. `width` or `stallMs`. */
  readonly field: string
  constructor(code: CameraProblem, field: string, message: string) {
    super(`${field}: ${message}`)
    this.code = code
    this.field = field
    this.name = 'CameraError'
  }
}
