/**
 * The ffmpeg command line for a camera (FIELD-NOTES, Video): one long-lived ffmpeg writing fragmented
 * MP4 to stdout, H.264 constrained baseline without B-frames, a key frame starting every fragment, a
 * prft box with ffmpeg's wall clock before each fragment, no audio.
 */
import { CameraError, CameraProblem } from './errors.js'
import type { CameraInput } from './types.js'

const KINDS = new Set(['synthetic', 'v4l2', 'rtsp'])
const CODECS = new Set(['encode', 'copy', 'v4l2m2m'])

/** Checks a CameraInput at the edge; throws CameraError (CAMERA_INPUT_INVALID) naming the field. */
export function validateCameraInput(input: CameraInput): void {
  const bad = (field: string, message: string): never => { throw new CameraError(CameraProblem.INPUT_INVALID, field, message) }
  if (typeof input !== 'object' || input === null) bad('input', 'must be an object')
  if (!KINDS.has(input.kind)) bad('kind', `must be synthetic, v4l2 or rtsp, not ${JSON.stringify(input.kind)}`)
  if (!CODECS.has(input.codec)) bad('codec', `must be encode, copy or v4l2m2m, not ${JSON.stringify(input.codec)}`)
  const int = (field: 'width' | 'height' | 'bitrateKbps' | 'fragmentMs', min: number, max: number) => {
    const v = input[field]
    if (!Number.isInteger(v) || v < min || v > max) bad(field, `must be an integer in ${min}..${max}, not ${JSON.stringify(v)}`)
  }
  int('width', 16, 7680)
  int('height', 16, 4320)
  if (input.width % 2 || input.height % 2) bad(input.width % 2 ? 'width' : 'height', 'must be even (4:2:0 video)')
  if (typeof input.fps !== 'number' || !Number.isFinite(input.fps) || input.fps < 1 || input.fps > 120) bad('fps', `must be a number in 1..120, not ${JSON.stringify(input.fps)}`)
  int('bitrateKbps', 16, 100_000)
  int('fragmentMs', 250, 10_000)
  if (typeof input.inputFormat !== 'string' || !/^[a-z0-9_]{0,32}$/.test(input.inputFormat)) bad('inputFormat', `must be a pixel format name such as mjpeg, yuyv422 or h264, or '', not ${JSON.stringify(input.inputFormat)}`)
  if (typeof input.device !== 'string') bad('device', 'must be a string')
  switch (input.kind) {
    case 'synthetic':
      if (input.codec === 'copy') bad('codec', 'a synthetic source has nothing to copy: use encode')
      break
    case 'v4l2':
      if (!input.device.startsWith('/')) bad('device', `must be a device path such as /dev/video0, not ${JSON.stringify(input.device)}`)
      if (input.codec === 'copy' && input.inputFormat !== '' && input.inputFormat !== 'h264') bad('codec', `copy needs a camera that sends H.264 (inputFormat h264), not ${input.inputFormat}`)
      break
    case 'rtsp':
      if (!/^rtsps?:\/\/[^\s]+$/.test(input.device)) bad('device', `must be an rtsp:// or rtsps:// URL, not ${JSON.stringify(input.device)}`)
      break
  }
}

/** Key frames per fragment, at least one. */
function gop(input: CameraInput): number {
  return Math.max(1, Math.round((input.fps * input.fragmentMs) / 1000))
}

/** The seconds between forced key frames, as ffmpeg's expression reads them. */
function seconds(ms: number): string {
  return String(ms / 1000)
}

/**
 * ffmpeg's -min_frag_duration (µs) for fragments cut at the camera's own key frames: 90 % of
 * fragmentMs, so two 1 s GOPs whose timestamps come out a frame short of 2 s still make one
 * fragment, not three GOPs' worth.
 */
function minFragmentUs(input: CameraInput): string {
  return String(Math.round(input.fragmentMs * 900))
}

function inputArgs(input: CameraInput): string[] {
  switch (input.kind) {
    case 'synthetic':
      return ['-re', '-f', 'lavfi', '-i', `testsrc2=size=${input.width}x${input.height}:rate=${input.fps}`]
    case 'v4l2':
      return [
        '-f', 'v4l2', ...(input.inputFormat ? ['-input_format', input.inputFormat] : []),
        '-video_size', `${input.width}x${input.height}`, '-framerate', String(input.fps), '-i', input.device,
      ]
    case 'rtsp':
      return ['-rtsp_transport', 'tcp', '-i', input.device]
  }
}

function encoderArgs(input: CameraInput): string[] {
  const g = String(gop(input))
  const keyFrames = ['-g', g, '-keyint_min', g, '-force_key_frames', `expr:gte(t,n_forced*${seconds(input.fragmentMs)})`, '-bf', '0']
  const rate = [`-b:v`, `${input.bitrateKbps}k`, '-maxrate', `${input.bitrateKbps}k`, '-bufsize', `${input.bitrateKbps * 2}k`]
  switch (input.codec) {
    case 'copy':
      // The camera's GOPs decide where fragments can start; short ones are merged into ~fragmentMs.
      return ['-c:v', 'copy', '-min_frag_duration', minFragmentUs(input)]
    case 'v4l2m2m':
      return ['-c:v', 'h264_v4l2m2m', '-pix_fmt', 'yuv420p', ...rate, ...keyFrames, '-min_frag_duration', minFragmentUs(input)]
    case 'encode':
      return [
        ...(input.kind === 'rtsp' ? ['-vf', `scale=${input.width}:${input.height}`] : []),
        '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
        ...rate, ...keyFrames, '-sc_threshold', '0',
      ]
  }
}

/** The arguments (after the binary) of the ffmpeg that captures `input` to stdout. */
export function ffmpegArgs(input: CameraInput): string[] {
  validateCameraInput(input)
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    ...inputArgs(input),
    '-map', '0:v:0', '-an',
    ...encoderArgs(input),
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof+skip_trailer', '-write_prft', 'wallclock',
    '-f', 'mp4', 'pipe:1',
  ]
}
