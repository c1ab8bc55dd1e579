/**
 * What the video store needs to know of the media it keeps: an init segment's codec, picture size and
 * track, and a media fragment's duration and whether it starts on a key frame. A fragment that cannot
 * be read is refused (INVALID_MEDIA): nothing unreadable is stored.
 *
 * MediaParser is the seam; `mp4Parser` reads fragmented MP4 with hardware/video's parser (the same
 * reader the agent's camera splits ffmpeg's output with), its Mp4Errors becoming MediaErrors.
 */
import { Mp4Error, parseFragment, parseInit, type InitInfo } from '../../hardware/index.js'

export type { InitInfo }

export interface FragmentInfo {
  /** Whole milliseconds (the index keeps integers). */
  durationMs: number
  keyFrame: boolean
  /** tfdt's baseMediaDecodeTime, in timescale ticks. */
  decodeTime: bigint
  samples: number
}

export class MediaError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'MediaError'
  }
}

export interface MediaParser {
  /** Throws a MediaError when `buf` is not an init segment with one H.264 video track. */
  parseInit(buf: Buffer): InitInfo
  /** Throws a MediaError when `buf` is not one fragment ([prft] moof mdat) of that track. */
  parseFragment(buf: Buffer, init: InitInfo): FragmentInfo
}

function reading<T>(read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (err instanceof Mp4Error) throw new MediaError(err.code, err.message, { cause: err })
    throw err
  }
}

export const mp4Parser: MediaParser = {
  parseInit: (buf) => reading(() => parseInit(buf)),
  parseFragment: (buf, init) => reading(() => {
    const info = parseFragment(buf, init)
    return { durationMs: Math.round(info.durationMs), keyFrame: info.keyFrame, decodeTime: info.decodeTime, samples: info.sampleCount }
  }),
}
