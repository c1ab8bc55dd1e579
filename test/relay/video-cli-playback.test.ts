/**
 * `tributary video clip | images | hls` as a user runs them (a child process) against an in-process
 * relay that a device sent 20 one-second fragments to: the clip's file plays for its range by
 * ffprobe, the images are files named by their time points that sharp decodes at the asked size, the
 * HLS URL plays in ffprobe; mistakes are named. The progress line's drawing is checked on its own
 * with a manual clock.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import sharp from 'sharp'
import { Progress, transferLine } from '../../relay/cli/video.js'
import { testRelay } from '../helpers/relay.js'
import { cli } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'
import { chunksOf, clip, videoDevice } from './video-fixtures.js'

const exec = promisify(execFile)
const T0 = 1_900_000_000_000
const iso = (ms: number) => new Date(ms).toISOString()

async function yard(t: Test) {
  const relay = await testRelay(t, { httpHost: '127.0.0.1' })
  const e = ['--endpoint', relay.endpoint]
  t.equal((await cli(['video', 'create', 'yard', ...e])).code, 0)
  const d = await videoDevice(t, relay.mqttPort, 'cam-cli')
  const c = clip(20, 1)
  await d.send('yard', chunksOf(1n, 0, c.init))
  await d.until(0, 'PERSISTED', 1n)
  for (let seq = 1; seq <= 20; seq++) {
    await d.send('yard', chunksOf(1n, seq, c.fragments[seq - 1]!, { producerTimeMs: T0 + (seq - 1) * 1000 }))
    await d.until(seq, 'PERSISTED', 1n)
  }
  return { relay, e }
}

t.test('clip writes an MP4 of the range (ffprobe: 10 s ± 1 fragment) with a progress line; images are files named by time point at the asked size; hls prints a URL ffprobe plays', async (t) => {
  const { e } = await yard(t)
  const dir = tempDir(t)

  const file = join(dir, 'out.mp4')
  const made = await cli(['video', 'clip', 'yard', '--from', iso(T0 + 5000), '--to', iso(T0 + 14_999), '-o', file, ...e])
  t.equal(made.code, 0, made.stderr)
  t.match(made.stderr, /^.*out\.mp4: [\d.]+ (B|KB|MB) at [\d.]+ (B|KB|MB)\/s\n$/, 'not a terminal: one final line with bytes and rate')
  t.notOk(existsSync(`${file}.part`), 'no partial file left')
  const probe = JSON.parse((await exec('ffprobe', ['-v', 'error', '-show_entries', 'format=duration,size', '-of', 'json', file])).stdout) as { format: { duration: string; size: string } }
  t.ok(Math.abs(Number(probe.format.duration) - 10) <= 1, `ffprobe: ${probe.format.duration} s`)
  t.match(made.stderr, new RegExp(`${(Number(probe.format.size) / 1000).toFixed(1)} KB`), 'the line counts the file\'s bytes')

  const shots = join(dir, 'shots')
  const got = await cli(['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--interval', '1s', '--width', '160', '-o', shots, ...e])
  t.equal(got.code, 0, got.stderr)
  t.same(readdirSync(shots).sort(), [0, 1, 2, 3, 4].map((k) => `${iso(T0 + k * 1000).replace(/:/g, '-')}.jpg`), 'one file per time point, named by it')
  for (const name of readdirSync(shots)) t.match(await sharp(readFileSync(join(shots, name))).metadata(), { format: 'jpeg', width: 160, height: 120 }, name)
  t.match(got.stderr, /shots: 5 images, [\d.]+ KB in [\d.]+ s\n$/)

  const pngs = join(dir, 'pngs')
  const png = await cli(['video', 'images', 'yard', '--from', iso(T0 + 2000), '--to', iso(T0 + 4000), '--interval', '500ms', '--height', '60', '--format', 'png', '-o', pngs, ...e])
  t.equal(png.code, 0, png.stderr)
  t.equal(readdirSync(pngs).length, 4)
  for (const name of readdirSync(pngs)) t.match(await sharp(readFileSync(join(pngs, name))).metadata(), { format: 'png', width: 80, height: 60 }, name)

  // Longer than GetImages' 300 s: asked in windows, the time points running on; the 20 s of media gives one image.
  const long = join(dir, 'long')
  const wide = await cli(['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 301_000), '--interval', '100s', '-o', long, ...e])
  t.equal(wide.code, 0, wide.stderr)
  t.same(readdirSync(long), [`${iso(T0).replace(/:/g, '-')}.jpg`])
  t.match(wide.stderr, /1 images, .* 3 time points without media/)

  const onDemand = await cli(['video', 'hls', 'yard', '--mode', 'on-demand', '--from', iso(T0), '--to', iso(T0 + 20_000), ...e])
  t.equal(onDemand.code, 0, onDemand.stderr)
  const url = onDemand.stdout.trim()
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/hls\/v1\/getHLSMasterPlaylist\.m3u8\?SessionToken=/)
  const played = (await exec('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', url], { timeout: 30_000 })).stdout
  t.ok(Math.abs(Number(played) - 20) <= 1, `ffprobe plays the URL: ${played.trim()} s`)
  const live = await cli(['video', 'hls', 'yard', ...e])
  t.equal(live.code, 0, live.stderr)
  t.match(await (await fetch(live.stdout.trim())).text(), /^#EXTM3U/, 'live (the default) answers a master playlist')
})

t.test('mistakes are named and write nothing', async (t) => {
  const { e } = await yard(t)
  const dir = tempDir(t)
  const file = join(dir, 'x.mp4')
  const cases: [string[], RegExp][] = [
    [['video', 'clip', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), ...e], /-o: name the file: tributary video clip STREAM/],
    [['video', 'clip', 'yard', '--to', iso(T0 + 5000), '-o', file, ...e], /--from: is required for video clip/],
    [['video', 'clip', 'yard', '--from', iso(T0 + 5000), '--to', iso(T0), '-o', file, ...e], /--to: must be after --from/],
    [['video', 'clip', 'nowhere', '--from', iso(T0), '--to', iso(T0 + 5000), '-o', file, ...e], /^error: ResourceNotFoundException: /],
    [['video', 'clip', 'yard', '--from', iso(T0 - 60_000), '--to', iso(T0 - 50_000), '-o', file, ...e], /^error: ResourceNotFoundException: No fragments found/],
    [['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--interval', 'often', '-o', dir, ...e], /--interval: must be a duration such as 500ms/],
    [['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--interval', '100ms', '-o', dir, ...e], /^error: InvalidArgumentException: SamplingInterval must be at least 200 ms/],
    [['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--format', 'gif', '-o', dir, ...e], /--format: must be jpeg or png, got "gif"/],
    [['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--width', '0', '-o', dir, ...e], /--width: must be a whole number of pixels/],
    [['video', 'images', 'yard', '--from', iso(T0), '--to', iso(T0 + 5000), '--quality', '101', '-o', dir, ...e], /--quality: must be a whole number from 1 to 100/],
    [['video', 'hls', 'yard', '--mode', 'vod', ...e], /--mode: must be live, live-replay or on-demand, got "vod"/],
    [['video', 'hls', 'yard', '--mode', 'on-demand', '--from', iso(T0), ...e], /--to: is required for video hls --mode on-demand/],
    [['video', 'hls', 'yard', '--from', iso(T0), ...e], /--mode: live plays from now/],
  ]
  // Three at a time: each is a process of its own.
  const runs = [...cases]
  const results: { message: RegExp; args: string[]; run: Awaited<ReturnType<typeof cli>> }[] = []
  await Promise.all([0, 1, 2].map(async () => {
    for (let next = runs.shift(); next; next = runs.shift()) results.push({ args: next[0], message: next[1], run: await cli(next[0]) })
  }))
  t.equal(results.length, cases.length)
  for (const { args, message, run } of results) {
    t.equal(run.code, 1, args.slice(0, 3).join(' '))
    t.match(run.stderr, message)
    t.equal(run.stdout, '')
  }
  t.same(readdirSync(dir), [], 'no file written by any of them')
})

t.test('the progress line is redrawn in place at most every 100 ms on a terminal, and written once otherwise', async (t) => {
  let now = 0
  const clock = () => now
  const onTty: string[] = []
  const tty = new Progress({ write: (s: string) => onTty.push(s) }, true, clock)
  now = 50
  tty.show('a')
  now = 120
  tty.show('b')
  now = 140
  tty.show('c')
  now = 260
  tty.show('d')
  tty.end('done')
  t.same(onTty, ['\r\x1b[Ka', '\r\x1b[Kd', '\r\x1b[Kdone\n'], 'first draw at once, then no more than one per 100 ms, the end on its own line')

  const plain: string[] = []
  const pipe = new Progress({ write: (s: string) => plain.push(s) }, false, clock)
  pipe.show('a')
  pipe.end('done')
  t.same(plain, ['done\n'])
  t.equal(transferLine(5_000_000, 10_000_000, 2), '5.0 MB of 10.0 MB (50%) at 2.5 MB/s')
})
