/**
 * Hardware in the loop: 20 s from a real USB camera, when one is named.
 *
 *   TRIBUTARY_HIL_CAMERA=/dev/video0        the V4L2 device (required to run)
 *   TRIBUTARY_HIL_CAMERA_FORMAT=mjpeg       what to ask the camera for: mjpeg, yuyv422, h264, or '' (default mjpeg)
 *   TRIBUTARY_HIL_CAMERA_SIZE=640x480       (default 640x480)
 *   TRIBUTARY_HIL_CAMERA_FPS=15             (default 15)
 *   TRIBUTARY_HIL_CAMERA_CODEC=encode       encode, copy (an H.264 camera) or v4l2m2m (default encode)
 */
import t from 'tap'
import { Camera, parseFragment, parseInit, systemClock, type CameraInput } from '../../hardware/index.js'
import { probe, record } from './video-fixtures.js'

const device = process.env.TRIBUTARY_HIL_CAMERA
const skip = device ? false : 'no real camera: set TRIBUTARY_HIL_CAMERA=/dev/videoN to run against one'
const CAPTURE_MS = 20_000

t.test('20 s from a real camera: key-frame fragments of ~2 s that decode', { skip, timeout: 90_000 }, async (t) => {
  const [width, height] = (process.env.TRIBUTARY_HIL_CAMERA_SIZE ?? '640x480').split('x').map(Number) as [number, number]
  const input: CameraInput = {
    kind: 'v4l2',
    device: device!,
    width,
    height,
    fps: Number(process.env.TRIBUTARY_HIL_CAMERA_FPS ?? 15),
    bitrateKbps: 1000,
    fragmentMs: 2000,
    codec: (process.env.TRIBUTARY_HIL_CAMERA_CODEC ?? 'encode') as CameraInput['codec'],
    inputFormat: process.env.TRIBUTARY_HIL_CAMERA_FORMAT ?? 'mjpeg',
  }
  const camera = new Camera({ input, clock: systemClock })
  t.teardown(() => camera.stop())
  const r = record(camera)
  t.comment(camera.command.join(' '))
  camera.start()
  const captured = () => r.fragments.reduce((n, f) => n + f.durationMs, 0)
  await r.until((x) => captured() >= CAPTURE_MS || x.restarts.length > 0, CAPTURE_MS + 30_000, `${CAPTURE_MS} ms of video`)

  t.same(r.restarts, [], 'ffmpeg ran without a restart')
  t.equal(r.sessions.length, 1, 'one session')
  const session = r.sessions[0]!
  t.comment(`session: ${session.codec} ${session.width}x${session.height}, timescale ${session.timescale}`)
  t.match(session.codec, /^avc[13]\.[0-9A-F]{6}$/)
  const track = parseInit(session.init)
  let samples = 0
  let last = -Infinity
  for (const f of r.fragments) {
    t.equal(f.keyFrame, true, `fragment ${f.sequence} starts on a key frame (${f.durationMs} ms, ${f.data.length} bytes)`)
    t.ok(f.durationMs >= 1000 && f.durationMs <= 4000, 'about 2 s')
    t.ok(f.producerTimeMs > last, 'producer times increase')
    last = f.producerTimeMs
    samples += parseFragment(f.data, track).sampleCount
  }
  t.ok(Math.abs(captured() - CAPTURE_MS) <= 4000, `${captured()} ms captured`)
  const decoded = await probe(Buffer.concat([session.init, ...r.fragments.map((f) => f.data)]))
  t.equal(decoded.errors, '', 'cat init frag… decodes with ffprobe -v error cleanly')
  t.equal(decoded.frames, samples, `every sample decodes (${decoded.frames} frames)`)
  const middle = r.fragments[Math.floor(r.fragments.length / 2)]!
  t.equal((await probe(Buffer.concat([session.init, middle.data]))).errors, '', 'a fragment from the middle decodes with the init alone')
  const stats = camera.stats()
  t.equal(stats.state, 'running')
  t.equal(stats.fragments, r.fragments.length)
})
