/**
 * An RTSP camera works like a USB one: GStreamer's RTSP server on loopback (test/helpers/rtsp.ts)
 * sends H.264 with 1 s GOPs; the camera copies it (no decoding) into fragments of about 2 s, each
 * starting on a key frame, that decode with ffprobe. When the camera goes away, ffmpeg's exit is a
 * restart with its reason.
 */
import t from 'tap'
import { Camera, parseFragment, parseInit, systemClock, type CameraInput } from '../../hardware/index.js'
import { startRtspCamera } from '../helpers/rtsp.js'
import { probe, record } from './video-fixtures.js'

t.test('an RTSP camera copied: key-frame fragments of ~2 s that decode; the camera vanishing is a restart', async (t) => {
  const server = await startRtspCamera(t, { width: 320, height: 240, fps: 15, gop: 15 })
  const input: CameraInput = {
    kind: 'rtsp', device: server.url, width: 320, height: 240, fps: 15, bitrateKbps: 400, fragmentMs: 2000, codec: 'copy', inputFormat: '',
  }
  const camera = new Camera({ input, clock: systemClock, restartInitialMs: 200, stallMs: 5000 })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  await r.until((x) => x.fragments.length >= 3, 30_000, 'three fragments')

  const session = r.sessions[0]!
  t.equal(r.sessions.length, 1)
  t.same({ width: session.width, height: session.height, timescale: session.timescale }, { width: 320, height: 240, timescale: 90000 }, 'RTP\'s 90 kHz clock')
  t.match(session.codec, /^avc1\.42C0[0-9A-F]{2}$/, `constrained baseline as the camera sends it (${session.codec})`)
  t.same(parseInit(session.init).codec, session.codec)
  for (const f of r.fragments.slice(0, 3)) {
    t.equal(f.keyFrame, true, `fragment ${f.sequence} starts on a key frame`)
    t.ok(f.durationMs >= 1800 && f.durationMs <= 2100, `1 s GOPs merged into ~2 s (${f.durationMs} ms)`)
  }
  const track = parseInit(session.init)
  const samples = r.fragments.slice(0, 3).map((f) => parseFragment(f.data, track).sampleCount)
  const bytes = Buffer.concat([session.init, ...r.fragments.slice(0, 3).map((f) => f.data)])
  const decoded = await probe(bytes)
  t.equal(decoded.errors, '', 'cat init frag… decodes with ffprobe -v error cleanly')
  t.equal(decoded.frames, samples[0]! + samples[1]! + samples[2]!, `every sample decodes (${decoded.frames} frames)`)
  const ms = r.fragments.slice(0, 3).reduce((n, f) => n + f.durationMs, 0)
  t.ok(Math.abs(decoded.frames - (ms * 15) / 1000) <= 2, `15 fps over the fragments' ${ms} ms`)
  t.same(await probe(Buffer.concat([session.init, r.fragments[1]!.data])), { frames: samples[1], errors: '' }, 'a later fragment alone decodes with the init')

  await server.stop()
  await r.until((x) => x.restarts.length >= 1, 15_000, 'the restart')
  const restart = r.restarts[0]!
  t.ok(['exited', 'hung'].includes(restart.reason), `the camera went away: ${restart.reason}: ${restart.message}`)
  t.equal(restart.session, session.id)
  await r.until((x) => x.restarts.length >= 2, 10_000, 'a retry')
  t.equal(r.restarts[1]!.reason, 'exited')
  t.match(r.restarts[1]!.message, /Connection refused|refused/i, 'nothing listens any more')
})
