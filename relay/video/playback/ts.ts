/**
 * MPEG-TS segments for HLS sessions with ContainerFormat MPEG_TS: a stored fragment with its init
 * segment remuxed by ffmpeg without decoding (`-c copy`; the H.264 goes from avcC to Annex B with
 * SPS/PPS before each key frame, ffmpeg's h264_mp4toannexb). `-copyts` with no mux delay keeps the
 * fragments' own decode times (tfdt), so consecutive segments of a capture session continue one
 * another's timestamps as the fMP4 segments do.
 */
import { spawn } from 'node:child_process'

/** Remuxes init + fragment into one MPEG-TS segment; rejects with ffmpeg's last words when it fails. */
export function toTransportStream(init: Buffer, fragment: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'mp4', '-i', 'pipe:0', '-map', '0:v:0', '-c', 'copy',
      '-copyts', '-muxdelay', '0', '-muxpreload', '0', '-f', 'mpegts', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    ff.stdout.on('data', (d: Buffer) => out.push(d))
    ff.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000) })
    ff.on('error', reject)
    ff.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited with ${code}: ${err.trim()}`))))
    // ffmpeg may exit before reading all its input (it fails early): that is its exit code's to say.
    ff.stdin.on('error', () => {})
    ff.stdin.end(Buffer.concat([init, fragment]))
  })
}
