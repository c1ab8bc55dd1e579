/**
 * What a camera gives the agent (the contract between hardware/video and agent/). One long-lived
 * ffmpeg per camera writes fragmented MP4; each run of it is a **session** with its own init segment,
 * followed by media fragments of about the configured duration, each starting on a key frame.
 */

/** A camera as configured: where the video comes from and how it is encoded. */
export interface CameraInput {
  /** `synthetic`: ffmpeg's lavfi testsrc2; `v4l2`: a USB camera device; `rtsp`: a network camera URL. */
  kind: 'synthetic' | 'v4l2' | 'rtsp'
  /** `/dev/video0` for v4l2, `rtsp://…` for rtsp, ignored for synthetic. */
  device: string
  width: number
  height: number
  fps: number
  /** Target bitrate in kbit/s when encoding (ignored when copying). */
  bitrateKbps: number
  /** Fragment duration in ms (a key frame starts each fragment). */
  fragmentMs: number
  /**
   * `encode` (libx264), `copy` (the input is already H.264: RTSP, H.264 USB cameras), or
   * `v4l2m2m` (the hardware encoder, where the board has one).
   */
  codec: 'encode' | 'copy' | 'v4l2m2m'
  /** For v4l2 inputs: the pixel format to ask the camera for (`mjpeg`, `yuyv422`, `h264`), or '' to let ffmpeg choose. */
  inputFormat: string
}

/** The start of a capture session: the init segment (ftyp + moov) and what it says. */
export interface CameraSession {
  /** Random u64, new per ffmpeg run. */
  id: bigint
  init: Buffer
  /** RFC 6381 codec string, e.g. `avc1.42C01E`. */
  codec: string
  width: number
  height: number
  /** The video track's timescale (ticks per second). */
  timescale: number
  /** Wall clock (ms) when the session started. */
  startedWallMs: number
}

/** One media fragment: bytes from the fragment's first box (prft or moof) to the end of its mdat. */
export interface CapturedFragment {
  session: bigint
  /** 1, 2, … within the session. */
  sequence: number
  data: Buffer
  /** Wall clock (ms) at the fragment's first frame: from prft when ffmpeg wrote one, else estimated. */
  producerTimeMs: number
  /** Whether the device clock was synchronised when the time was taken. */
  clockSynced: boolean
  /** Media duration of the fragment, from its sample durations and the track timescale. */
  durationMs: number
  /** Whether its first sample is a sync sample (key frame). */
  keyFrame: boolean
  /** tfdt's baseMediaDecodeTime, in timescale ticks. */
  decodeTime: bigint
}

export type CameraState = 'starting' | 'running' | 'backoff' | 'stopped'

export interface CameraStats {
  state: CameraState
  sessions: number
  fragments: number
  bytes: number
  /** ffmpeg restarts by reason: `exited`, `hung` (no bytes for the stall timeout), `absent` (device missing), `invalid` (unparseable output). */
  restarts: Record<string, number>
  /** The last thing that went wrong, for status. */
  lastError: string | null
}
