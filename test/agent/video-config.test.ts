import t from 'tap'
import { validateAgentConfig } from '../../agent/config.js'
import { ConfigError } from '../../shared/errors.js'
import { MAX_CHUNK_PAYLOAD } from '../../shared/video.js'

const base = (source: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  device: 'd', relay: { url: 'mqtt://127.0.0.1:1883' }, sources: [{ type: 'camera', stream: 'front-door', ...source }], ...more,
})
const camera = (source: Record<string, unknown>, more: Record<string, unknown> = {}) => validateAgentConfig(base(source, more)).sources[0]

t.test('a camera with only a stream is a synthetic 640x480 camera at 15 fps with the documented defaults', async (t) => {
  t.same(camera({}), {
    type: 'camera', name: 'front-door', stream: 'front-door', kind: 'synthetic', device: '', width: 640, height: 480, fps: 15, bitrateKbps: 600,
    fragmentMs: 2000, codec: 'encode', inputFormat: '', stallMs: 10_000,
    maxBytes: 256 * 1024 * 1024, maxAgeSeconds: 0, onFull: 'drop-oldest', backfillBytesPerSecond: 1024 * 1024,
  })
})

t.test('each input names its camera its own way, and picks its own default codec', async (t) => {
  t.match(camera({ input: 'v4l2', device: '/dev/video0' }), { kind: 'v4l2', device: '/dev/video0', codec: 'encode', inputFormat: '' })
  t.match(camera({ input: 'v4l2', device: '/dev/v4l/by-id/usb-cam-video-index0', inputFormat: 'h264', codec: 'copy' }), { codec: 'copy', inputFormat: 'h264' })
  t.match(camera({ input: 'v4l2', device: '/dev/video2', inputFormat: 'mjpeg', codec: 'v4l2m2m' }), { codec: 'v4l2m2m', inputFormat: 'mjpeg' })
  t.match(camera({ input: 'rtsp', url: 'rtsp://user:pw@10.0.0.7:554/stream1' }), { kind: 'rtsp', device: 'rtsp://user:pw@10.0.0.7:554/stream1', codec: 'copy' }, 'rtsp copies by default')
  t.match(camera({ input: 'rtsp', url: 'rtsp://cam.lan/live', codec: 'encode' }), { codec: 'encode' }, 'or re-encodes when asked')
})

t.test('the stall timeout follows the fragment duration unless given; the buffer settings are taken as given', async (t) => {
  t.match(camera({ fragmentMs: 5000 }), { fragmentMs: 5000, stallMs: 15_000 })
  t.match(camera({ fragmentMs: 1000, stallMs: 2000 }), { stallMs: 2000 })
  t.match(camera({ name: 'cam.1', maxBytes: 8 * 1024 * 1024, maxAgeSeconds: 3600, onFull: 'pause-capture', backfillBytesPerSecond: 0 }),
    { name: 'cam.1', maxBytes: 8 * 1024 * 1024, maxAgeSeconds: 3600, onFull: 'pause-capture', backfillBytesPerSecond: 0 })
})

t.test('every mistake is refused with its field named', async (t) => {
  const bad: [Record<string, unknown>, string, RegExp, Record<string, unknown>?][] = [
    [{ stream: undefined }, 'sources[0].stream', /is required/],
    [{ stream: 'has space' }, 'sources[0].stream', /must match/],
    [{ name: '..' }, 'sources[0].name', /not starting with a dot/],
    [{ name: 'a/b' }, 'sources[0].name', /letters, digits/],
    [{ input: 'usb' }, 'sources[0].input', /must be one of synthetic, v4l2, rtsp/],
    [{ input: 'v4l2' }, 'sources[0].device', /is required/],
    [{ input: 'v4l2', device: 'video0' }, 'sources[0].device', /V4L2 device path/],
    [{ input: 'v4l2', device: '/dev/video0', url: 'rtsp://x/y' }, 'sources[0].url', /is for input: rtsp/],
    [{ input: 'rtsp' }, 'sources[0].url', /is required/],
    [{ input: 'rtsp', url: 'http://cam/x' }, 'sources[0].url', /rtsp:\/\/host/],
    [{ input: 'rtsp', url: 'not a url' }, 'sources[0].url', /rtsp:\/\/host/],
    [{ input: 'rtsp', url: 'rtsp://cam/x', device: '/dev/video0' }, 'sources[0].device', /is for input: v4l2/],
    [{ device: '/dev/video0' }, 'sources[0].device', /not used by input: synthetic/],
    [{ url: 'rtsp://cam/x' }, 'sources[0].url', /not used by input: synthetic/],
    [{ width: 641 }, 'sources[0].width', /must be even/],
    [{ width: 8 }, 'sources[0].width', /between 16 and 7680/],
    [{ height: '480' }, 'sources[0].height', /must be an integer/],
    [{ height: 5000 }, 'sources[0].height', /between 16 and 4320/],
    [{ fps: 0 }, 'sources[0].fps', /between 1 and 120/],
    [{ fps: 12.5 }, 'sources[0].fps', /must be an integer/],
    [{ bitrateKbps: 1 }, 'sources[0].bitrateKbps', /between 16 and 100000/],
    [{ fragmentMs: 500 }, 'sources[0].fragmentMs', /between 1000 and 10000/],
    [{ fragmentMs: 20_000 }, 'sources[0].fragmentMs', /between 1000 and 10000/],
    [{ codec: 'h265' }, 'sources[0].codec', /must be one of encode, copy, v4l2m2m/],
    [{ codec: 'copy' }, 'sources[0].codec', /input: synthetic is raw video/],
    [{ input: 'v4l2', device: '/dev/video0', codec: 'copy' }, 'sources[0].codec', /inputFormat: h264/],
    [{ input: 'v4l2', device: '/dev/video0', inputFormat: 'h264' }, 'sources[0].inputFormat', /set codec: copy/],
    [{ input: 'v4l2', device: '/dev/video0', inputFormat: 'rgb24' }, 'sources[0].inputFormat', /must be one of mjpeg, yuyv422, h264/],
    [{ inputFormat: 'mjpeg' }, 'sources[0].inputFormat', /input: synthetic has none/],
    [{ stallMs: 3000 }, 'sources[0].stallMs', /between 4000 and 600000/],
    [{ maxBytes: 1024 }, 'sources[0].maxBytes', /between 4194304 and/],
    [{ maxBytes: 'lots' }, 'sources[0].maxBytes', /must be an integer/],
    [{ maxAgeSeconds: -1 }, 'sources[0].maxAgeSeconds', /between 0 and/],
    [{ onFull: 'reject-new' }, 'sources[0].onFull', /must be one of drop-oldest, pause-capture/],
    [{ backfillBytesPerSecond: 100 }, 'sources[0].backfillBytesPerSecond', /0 \(no cap\) or at least 1024/],
    [{ backfillBytesPerSecond: -5 }, 'sources[0].backfillBytesPerSecond', /between 0 and/],
    [{ colour: 'red' }, 'sources[0].colour', /is not a setting/],
    [{}, 'relay.maxPacketBytes', new RegExp(`at least ${MAX_CHUNK_PAYLOAD + 512} with a camera \\(sources\\[0\\]\\)`), { relay: { url: 'mqtt://127.0.0.1:1883', maxPacketBytes: 65536 }, uplink: { batchBytes: 60_000 } }],
  ]
  for (const [source, field, message, more] of bad) {
    let caught: unknown = null
    try { validateAgentConfig(base(source, more)) } catch (err) { caught = err }
    t.ok(caught instanceof ConfigError, `${field} ${message.source}: a ConfigError`)
    t.equal((caught as ConfigError | null)?.field, field, `${JSON.stringify(source)} is named ${field}`)
    t.match((caught as Error | null)?.message, message)
  }
})

t.test('two cameras never share a name, a video stream or a device', async (t) => {
  const two = (a: Record<string, unknown>, b: Record<string, unknown>) => () => validateAgentConfig({ device: 'd', relay: { url: 'mqtt://127.0.0.1:1883' }, sources: [{ type: 'camera', ...a }, { type: 'camera', ...b }] })
  t.throws(two({ stream: 'a', name: 'cam' }, { stream: 'b', name: 'cam' }), { field: 'sources[1]', message: /same camera name cam as sources\[0\]/ })
  t.throws(two({ stream: 'a' }, { stream: 'a', name: 'other' }), { field: 'sources[1]', message: /same video stream a as sources\[0\]/ })
  t.throws(two({ stream: 'a', input: 'v4l2', device: '/dev/video0' }, { stream: 'b', input: 'v4l2', device: '/dev/video0' }), { field: 'sources[1]', message: /same device \/dev\/video0/ })
  t.equal(validateAgentConfig({ device: 'd', relay: { url: 'mqtt://127.0.0.1:1883' }, sources: [{ type: 'camera', stream: 'a' }, { type: 'camera', stream: 'b' }] }).sources.length, 2, 'two synthetic cameras are fine')
})
