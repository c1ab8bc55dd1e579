/**
 * The camera: a real synthetic ffmpeg gives a session and 2 s key-frame fragments that decode; a
 * killed ffmpeg is restarted as a new session; an ffmpeg that hangs, writes garbage, exits or whose
 * device is missing is detected with its reason and retried with backoff on the camera's clock.
 */
import t from 'tap'
import { spawn as nodeSpawn } from 'node:child_process'
import { open, rm, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import {
  Camera, CameraError, ffmpegArgs, manualClock, parseInit, systemClock, type CameraInput,
} from '../../hardware/index.js'
import { tempDir } from '../helpers/tmp.js'
import { alive, fakeFfmpeg, probe, record } from './video-fixtures.js'

const synthetic: CameraInput = {
  kind: 'synthetic', device: '', width: 320, height: 240, fps: 15, bitrateKbps: 300, fragmentMs: 2000, codec: 'encode', inputFormat: '',
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits (real time) until `test` holds. */
async function poll(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!test()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

t.test('a synthetic camera: a session, 2 s key-frame fragments that decode; killed, it comes back as a new session', async (t) => {
  const camera = new Camera({ input: synthetic, clock: systemClock, synced: () => true, restartInitialMs: 100 })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  t.equal(camera.stats().state, 'starting')
  await r.until((x) => x.fragments.length >= 3, 20_000, 'three fragments')

  t.equal(r.sessions.length, 1)
  const session = r.sessions[0]!
  t.equal(camera.stats().state, 'running')
  const init = parseInit(session.init)
  t.same({ codec: session.codec, width: session.width, height: session.height, timescale: session.timescale },
    { codec: init.codec, width: 320, height: 240, timescale: init.timescale }, 'the session says what its init segment says')
  t.match(session.codec, /^avc1\.42C0/, 'constrained baseline')
  let decode = 0n
  for (const [i, f] of r.fragments.slice(0, 3).entries()) {
    t.equal(f.session, session.id)
    t.equal(f.sequence, i + 1, 'numbered 1, 2, … in the session')
    t.equal(f.keyFrame, true, `fragment ${f.sequence} starts on a key frame`)
    t.equal(f.durationMs, 2000, 'about 2 s')
    t.equal(f.decodeTime, decode, 'decode times continue')
    decode += BigInt(2 * session.timescale)
    t.equal(f.clockSynced, true, 'the synced flag is taken from synced()')
  }
  // ffmpeg's prft is the time it wrote a fragment out; less the duration, it is the first frame's.
  const [p1, p2, p3] = r.fragments.map((f) => f.producerTimeMs - session.startedWallMs)
  t.ok(p1! >= -50 && p1! < 5000, `the first fragment's first frame ${p1} ms after ffmpeg started (its start-up), not ${p1! + 2000} (when it was written)`)
  t.ok(Math.abs(p2! - p1! - 2000) < 500 && Math.abs(p3! - p2! - 2000) < 500, `then 2 s apart, in real time as -re paces them (${p1}, ${p2}, ${p3})`)
  const decoded = await probe(Buffer.concat([session.init, ...r.fragments.slice(0, 3).map((f) => f.data)]))
  t.equal(decoded.errors, '', 'cat init frag… decodes with ffprobe -v error cleanly')
  t.equal(decoded.frames, 90, '6 s at 15 fps')
  const late = await probe(Buffer.concat([session.init, r.fragments[2]!.data]))
  t.same(late, { frames: 30, errors: '' }, 'the init with a later fragment alone decodes too')

  const pid = camera.pid!
  process.kill(pid, 'SIGKILL')
  await r.until((x) => x.restarts.length === 1, 10_000, 'the restart')
  const restart = r.restarts[0]!
  t.equal(restart.reason, 'exited')
  t.match(restart.message, /SIGKILL/, restart.message)
  t.equal(restart.session, session.id, 'it names the session that ended')
  t.equal(restart.delayMs, 100, 'the first delay')
  await r.until((x) => x.fragments.some((f) => f.session !== session.id), 15_000, 'a fragment of the new session')
  t.equal(r.sessions.length, 2)
  const second = r.sessions[1]!
  t.not(second.id, session.id, 'a new session id')
  t.not(camera.pid, pid, 'a new ffmpeg')
  const next = r.fragments.find((f) => f.session === second.id)!
  t.equal(next.sequence, 1, 'its fragments are numbered from 1 again')
  t.same(await probe(Buffer.concat([second.init, next.data])), { frames: 30, errors: '' }, 'and decode with its own init')
  const stats = camera.stats()
  t.same({ sessions: stats.sessions, exited: stats.restarts.exited, hung: stats.restarts.hung }, { sessions: 2, exited: 1, hung: 0 })
  t.ok(stats.bytes >= r.fragments.reduce((n, f) => n + f.data.length, 0), 'bytes counted')
  t.match(stats.lastError, /^exited: /)

  const last = camera.pid!
  await camera.stop()
  t.equal(camera.stats().state, 'stopped')
  t.notOk(alive(last), 'stop() ends ffmpeg')
  const counted = r.fragments.length
  await sleep(300)
  t.equal(r.fragments.length, counted, 'nothing after stop')
  t.equal(r.restarts.length, 1, 'a stop is no restart')
})

t.test('an ffmpeg that writes nothing is hung after stallMs of the camera clock, killed and restarted', async (t) => {
  const dir = tempDir(t)
  const fifo = join(dir, 'out')
  execFileSync('mkfifo', [fifo])
  const ffmpegPath = fakeFfmpeg(dir, 'ffmpeg', `exec cat ${fifo}`)
  const clock = manualClock()
  const camera = new Camera({ input: synthetic, clock, ffmpegPath, stallMs: 5000, restartInitialMs: 1000 })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  const pid = camera.pid!
  t.ok(pid > 0 && alive(pid))
  const writer = await open(fifo, 'w')
  t.teardown(() => writer.close().catch(() => {}))
  clock.advance(3000)
  await writer.write(Buffer.from([0, 0]))
  await poll(() => camera.stats().bytes === 2, 5000, 'two bytes')
  clock.advance(3000)
  await sleep(50)
  t.equal(r.restarts.length, 0, 'bytes 3 s ago: not hung yet')
  t.ok(alive(pid))
  clock.advance(1999)
  await sleep(50)
  t.equal(r.restarts.length, 0, '4.999 s since the last bytes: not hung yet')
  clock.advance(1)
  await r.until((x) => x.restarts.length === 1, 5000, 'the restart')
  t.same({ reason: r.restarts[0]!.reason, delay: r.restarts[0]!.delayMs, session: r.restarts[0]!.session }, { reason: 'hung', delay: 1000, session: null })
  t.match(r.restarts[0]!.message, /nothing for 5000 ms/)
  t.notOk(alive(pid), 'the hung ffmpeg was killed')
  t.equal(camera.stats().state, 'backoff')
  t.equal(camera.pid, undefined)
  clock.advance(999)
  t.equal(camera.pid, undefined, 'not before the delay')
  clock.advance(1)
  t.ok(camera.pid && camera.pid !== pid, 'a new ffmpeg after the delay')
  t.equal(camera.stats().restarts.hung, 1)
})

t.test('an ffmpeg that writes garbage is invalid, killed and restarted', async (t) => {
  const dir = tempDir(t)
  const ffmpegPath = fakeFfmpeg(dir, 'ffmpeg', 'echo "Input #0, lavfi, from testsrc2: this is no mp4"; exec sleep 600')
  const clock = manualClock()
  const camera = new Camera({ input: synthetic, clock, ffmpegPath })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  const pid = camera.pid!
  await r.until((x) => x.restarts.length === 1, 5000, 'the restart')
  t.equal(r.restarts[0]!.reason, 'invalid')
  t.match(r.restarts[0]!.message, /not fragmented MP4.*MP4|box/, r.restarts[0]!.message)
  await poll(() => !alive(pid), 2000, 'the kill')
  t.equal(camera.stats().restarts.invalid, 1)
  t.equal(r.sessions.length, 0)
})

t.test('an ffmpeg that exits is restarted with exponential backoff, its last stderr lines in the reason', async (t) => {
  const dir = tempDir(t)
  const ffmpegPath = fakeFfmpeg(dir, 'ffmpeg', 'echo "line one" >&2; echo "rtsp://cam: Connection refused" >&2; exit 1')
  const clock = manualClock()
  const camera = new Camera({ input: synthetic, clock, ffmpegPath, restartInitialMs: 1000, restartMaxMs: 3000 })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  const delays: number[] = []
  for (let i = 1; i <= 4; i++) {
    await r.until((x) => x.restarts.length === i, 5000, `restart ${i}`)
    const restart = r.restarts[i - 1]!
    t.equal(restart.reason, 'exited')
    t.match(restart.message, /exited with code 1: line one \| rtsp:\/\/cam: Connection refused/)
    delays.push(restart.delayMs)
    t.same(camera.stderr, ['line one', 'rtsp://cam: Connection refused'], 'the last run\'s stderr lines, until the next run')
    clock.advance(restart.delayMs)
  }
  t.same(delays, [1000, 2000, 3000, 3000], 'doubling up to the cap')
  await camera.stop()
  clock.advance(10_000)
  t.equal(r.restarts.length, 4, 'no attempt after stop')

  const missing = new Camera({ input: synthetic, clock, ffmpegPath: join(dir, 'no-such-ffmpeg') })
  const m = record(missing)
  missing.start()
  await m.until((x) => x.restarts.length === 1, 5000, 'the restart')
  t.equal(m.restarts[0]!.reason, 'exited')
  t.match(m.restarts[0]!.message, /cannot start .*no-such-ffmpeg.*ENOENT/)
  await missing.stop()
})

t.test('a missing V4L2 device is absent: no ffmpeg runs, retried with backoff until it appears', async (t) => {
  const dir = tempDir(t)
  const device = join(dir, 'video9')
  const script = fakeFfmpeg(dir, 'ffmpeg', 'echo "cannot open video device" >&2; exit 1')
  const calls: string[][] = []
  const clock = manualClock()
  const camera = new Camera({
    input: { ...synthetic, kind: 'v4l2', device, inputFormat: 'mjpeg' },
    clock,
    restartInitialMs: 500,
    spawn: (_command, args) => { calls.push(args); return nodeSpawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'] }) },
  })
  t.teardown(() => camera.stop())
  const r = record(camera)
  camera.start()
  t.equal(r.restarts.length, 1)
  clock.advance(500)
  clock.advance(1000)
  t.same(r.restarts.map((x) => [x.reason, x.delayMs]), [['absent', 500], ['absent', 1000], ['absent', 2000]])
  t.match(r.restarts[0]!.message, /video9 does not exist/)
  t.equal(calls.length, 0, 'no ffmpeg while the device is missing')
  t.same(camera.stats().restarts, { exited: 0, hung: 0, absent: 3, invalid: 0 })

  await writeFile(device, '')
  clock.advance(2000)
  t.equal(calls.length, 1, 'ffmpeg runs once the device is there')
  t.match(calls[0]!.join(' '), `-f v4l2 -input_format mjpeg -video_size 320x240 -framerate 15 -i ${device}`)
  await r.until((x) => x.restarts.length === 4, 5000, 'the exit')
  t.equal(r.restarts[3]!.reason, 'exited', 'the device is there: ffmpeg failed on its own')
  await rm(device)
  // The device vanishes while ffmpeg runs: its exit is reported as absent.
  const slow = fakeFfmpeg(dir, 'ffmpeg-slow', 'sleep 0.2; exit 1')
  calls.length = 0
  const camera2 = new Camera({
    input: { ...synthetic, kind: 'v4l2', device, inputFormat: '' },
    clock,
    spawn: (_command, args) => { calls.push(args); return nodeSpawn(slow, args, { stdio: ['ignore', 'pipe', 'pipe'] }) },
  })
  t.teardown(() => camera2.stop())
  const r2 = record(camera2)
  await writeFile(device, '')
  camera2.start()
  t.equal(calls.length, 1)
  await rm(device)
  await r2.until((x) => x.restarts.length === 1, 5000, 'the exit')
  t.equal(r2.restarts[0]!.reason, 'absent')
  t.match(r2.restarts[0]!.message, /went away/)
})

t.test('ffmpeg arguments per input, and inputs that cannot run', async (t) => {
  const args = (input: Partial<CameraInput>) => ffmpegArgs({ ...synthetic, ...input }).join(' ')
  const tail = '-movflags frag_keyframe+empty_moov+default_base_moof+skip_trailer -write_prft wallclock -f mp4 pipe:1'
  const x264 = '-c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -pix_fmt yuv420p -b:v 300k -maxrate 300k -bufsize 600k -g 30 -keyint_min 30 -force_key_frames expr:gte(t,n_forced*2) -bf 0 -sc_threshold 0'
  t.equal(args({}), `-hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=15 -map 0:v:0 -an ${x264} ${tail}`)
  t.equal(args({ kind: 'v4l2', device: '/dev/video0', inputFormat: 'mjpeg' }),
    `-hide_banner -nostdin -loglevel error -f v4l2 -input_format mjpeg -video_size 320x240 -framerate 15 -i /dev/video0 -map 0:v:0 -an ${x264} ${tail}`)
  t.equal(args({ kind: 'v4l2', device: '/dev/video0', inputFormat: 'h264', codec: 'copy', fragmentMs: 1500 }),
    `-hide_banner -nostdin -loglevel error -f v4l2 -input_format h264 -video_size 320x240 -framerate 15 -i /dev/video0 -map 0:v:0 -an -c:v copy -min_frag_duration 1350000 ${tail}`)
  t.equal(args({ kind: 'v4l2', device: '/dev/video0', inputFormat: 'yuyv422', codec: 'v4l2m2m' }),
    `-hide_banner -nostdin -loglevel error -f v4l2 -input_format yuyv422 -video_size 320x240 -framerate 15 -i /dev/video0 -map 0:v:0 -an -c:v h264_v4l2m2m -pix_fmt yuv420p -b:v 300k -maxrate 300k -bufsize 600k -g 30 -keyint_min 30 -force_key_frames expr:gte(t,n_forced*2) -bf 0 -min_frag_duration 1800000 ${tail}`)
  t.equal(args({ kind: 'rtsp', device: 'rtsp://127.0.0.1:8554/cam', codec: 'copy' }),
    `-hide_banner -nostdin -loglevel error -rtsp_transport tcp -i rtsp://127.0.0.1:8554/cam -map 0:v:0 -an -c:v copy -min_frag_duration 1800000 ${tail}`)
  t.match(args({ kind: 'rtsp', device: 'rtsp://127.0.0.1:8554/cam' }), '-i rtsp://127.0.0.1:8554/cam -map 0:v:0 -an -vf scale=320:240 -c:v libx264')

  const bad: Array<[Partial<CameraInput>, string]> = [
    [{ width: 321 }, 'width'],
    [{ height: 0 }, 'height'],
    [{ fps: 0 }, 'fps'],
    [{ fragmentMs: 100 }, 'fragmentMs'],
    [{ bitrateKbps: 1.5 }, 'bitrateKbps'],
    [{ codec: 'copy' }, 'codec'],
    [{ kind: 'rtsp', device: 'http://cam' }, 'device'],
    [{ kind: 'v4l2', device: 'video0' }, 'device'],
    [{ kind: 'v4l2', device: '/dev/video0', codec: 'copy', inputFormat: 'mjpeg' }, 'codec'],
    [{ inputFormat: 'mjpeg -i x' }, 'inputFormat'],
    [{ kind: 'usb' as CameraInput['kind'] }, 'kind'],
  ]
  for (const [input, field] of bad) {
    const err = t.throws(() => new Camera({ input: { ...synthetic, ...input }, clock: manualClock() })) as CameraError
    t.ok(err instanceof CameraError && err.code === 'CAMERA_INPUT_INVALID' && err.field === field, `${JSON.stringify(input)}: ${err.message}`)
  }
  const err = t.throws(() => new Camera({ input: synthetic, clock: manualClock(), stallMs: 0 })) as CameraError
  t.equal(err.code, 'CAMERA_OPTION_INVALID')
  t.equal(err.field, 'stallMs')
})
