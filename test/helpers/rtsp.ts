/**
 * A fake RTSP camera for tests: test/helpers/rtsp-server.py (GStreamer's RTSP server serving
 * videotestsrc ! x264enc ! rtph264pay) on 127.0.0.1 at a free port, stopped when the test ends.
 * Needs Debian's python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}
 * (installed by .ci/run) and /usr/bin/python3, the interpreter those packages serve.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const SCRIPT = fileURLToPath(new URL('./rtsp-server.py', import.meta.url))
const PYTHON = '/usr/bin/python3'

export interface RtspCameraOptions {
  width?: number
  height?: number
  fps?: number
  /** Frames between key frames (the camera's GOP). */
  gop?: number
  bitrateKbps?: number
  path?: string
}

export interface RtspCamera {
  /** rtsp://127.0.0.1:PORT/PATH */
  url: string
  pid: number
  stop(): Promise<void>
}

/** Starts the server and resolves with its URL once it serves; it stops at the test's teardown. */
export async function startRtspCamera(t: Test, options: RtspCameraOptions = {}): Promise<RtspCamera> {
  const args = [
    SCRIPT,
    '--width', String(options.width ?? 320), '--height', String(options.height ?? 240), '--fps', String(options.fps ?? 15),
    '--gop', String(options.gop ?? 15), '--bitrate', String(options.bitrateKbps ?? 400), '--path', options.path ?? '/cam',
  ]
  // stdin stays open: the server exits when it closes, so it cannot outlive this process.
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(kill)
  }
  t.teardown(stop)
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`the RTSP test server did not start in 20 s: ${stderr}`)), 20_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /READY (rtsp:\/\/\S+)/.exec(out)
      if (m) { clearTimeout(timer); resolve(m[1]!) }
    })
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the RTSP test server exited (${code}) before serving: ${stderr}`)) })
  })
  return { url, pid: child.pid!, stop }
}
