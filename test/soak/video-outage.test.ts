/**
 * Issue 12's promise end to end, in real time: a synthetic camera on a real agent process for a minute,
 * into a relay process that is killed with -9 for 30 s in the middle and started again. Afterwards the
 * fragments, listed through the AWS SDK and read back from the relay's store, cover the whole minute
 * with no gap and none twice, each decodes and starts on a key frame, and the backlog drained with the
 * live fragment first, then oldest first. The same minute then plays back (issue 13) as AWS's
 * archived-media APIs give it: the ON_DEMAND HLS playlist, a 10 s GetClip, and
 * GetMediaForFragmentList's Matroska, each read by ffprobe, and GetImages' JPEGs, read by sharp. (Soak tier: it runs for about 90 s.)
 */
import t from 'tap'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { GetClipCommand, GetHLSStreamingSessionURLCommand, GetImagesCommand, GetMediaForFragmentListCommand, KinesisVideoArchivedMediaClient, paginateListFragments, type Fragment } from '@aws-sdk/client-kinesis-video-archived-media'
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import sharp from 'sharp'
import { freePort, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { decodeCheck, playable, storedFragments } from '../helpers/video.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Runs a program to its end: its output, and its error output (ffprobe says nothing there when all decodes). */
const run = (file: string, args: string[], input?: Buffer) => new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
  const child = execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${file}: ${err.message} ${stderr}`)) : resolve({ stdout, stderr })))
  if (input) child.stdin!.end(input)
})
const STREAM = 'gate-cam'
const FRAGMENT_MS = 2000
const FPS = 10

interface CameraStatus { sessions: number; fragments: { persisted: number }; backlog: { fragments: number } }

t.test('a minute of camera video through a 30 s relay outage: complete, once each, decodable, live first', async (t) => {
  const dir = tempDir(t)
  const dataDir = join(dir, 'relay')
  const mqttPort = await freePort()
  const httpPort = await freePort()
  const relayArgs = ['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-host', '127.0.0.1', '--http-port', String(httpPort), '--allow-anonymous']
  let relay: ChildRelay = await spawnRelay(relayArgs)
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const sdk = { endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } }
  const kvs = new KinesisVideoClient(sdk)
  const archive = new KinesisVideoArchivedMediaClient(sdk)
  t.teardown(() => { kvs.destroy(); archive.destroy() })
  await kvs.send(new CreateStreamCommand({ StreamName: STREAM, DataRetentionInHours: 1, MediaType: 'video/h264' }))

  const config = writeAgentConfig(dir, {
    device: 'gate-1',
    relay: { url: `mqtt://127.0.0.1:${mqttPort}` },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    uplink: { backoffInitialMs: 100, backoffMaxMs: 1000 },
    status: { port: 0 },
    streams: {},
    sources: [{ type: 'camera', name: 'gate', stream: STREAM, input: 'synthetic', width: 320, height: 240, fps: FPS, bitrateKbps: 300, fragmentMs: FRAGMENT_MS }],
  })
  const agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })
  const camera = async () => ((await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { video: { cameras: Record<string, CameraStatus> } }).video.cameras.gate!
  const waitFor = async (what: string, check: () => Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await sleep(200)
    }
  }

  // The minute starts at the first fragment's first frame.
  await waitFor('the first fragment is persisted', async () => storedFragments(dataDir, STREAM).length > 0, 30_000)
  const start = storedFragments(dataDir, STREAM)[0]!.producerMs
  const end = start + 60_000

  // kill -9 the relay 15 s in; 30 s later, start it again on the same ports and data.
  await sleep(Math.max(0, start + 15_000 - Date.now()))
  relay.process.kill('SIGKILL')
  await relay.exited
  const killedAt = Date.now()
  await sleep(30_000)
  const during = await camera()
  t.ok(during.backlog.fragments >= 12, `the agent buffered the outage (${during.backlog.fragments} fragments waiting)`)
  const restartedAt = Date.now()
  relay = await spawnRelay(relayArgs)

  // The rest of the minute, then until the last fragment of it is in and the buffer is empty.
  await waitFor('the minute is captured and the backlog is drained', async () => {
    const c = await camera()
    return Date.now() > end + FRAGMENT_MS + 1000 && c.backlog.fragments <= 1 && storedFragments(dataDir, STREAM).some((f) => f.producerMs >= end)
  }, 60_000)

  // Through the AWS SDK: the fragments whose first frame falls in the minute.
  const listed: Fragment[] = []
  for await (const page of paginateListFragments({ client: archive, pageSize: 7 }, {
    StreamName: STREAM,
    FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(start - FRAGMENT_MS / 2), EndTimestamp: new Date(end - FRAGMENT_MS / 2) } },
  })) listed.push(...page.Fragments!)
  listed.sort((a, b) => a.ProducerTimestamp!.getTime() - b.ProducerTimestamp!.getTime())
  t.ok(listed.length >= 28 && listed.length <= 32, `${listed.length} fragments of ~2 s in the minute`)
  const total = listed.reduce((sum, f) => sum + f.FragmentLengthInMilliseconds!, 0)
  t.ok(Math.abs(total - 60_000) <= 2000, `their durations add up to ${total} ms`)
  t.equal(new Set(listed.map((f) => f.FragmentNumber)).size, listed.length, 'no fragment number twice')

  // From the store: one session, each (session, sequence) once, no gap between fragments' media.
  const stored = storedFragments(dataDir, STREAM)
  const inMinute = stored.filter((f) => listed.some((l) => l.FragmentNumber && BigInt(l.FragmentNumber) - 9n * 10n ** 46n === BigInt(f.id)))
  t.equal(inMinute.length, listed.length, 'each listed fragment is a stored one')
  t.equal(new Set(stored.map((f) => f.session)).size, 1, 'one capture session: the relay outage did not restart the camera')
  t.equal(new Set(stored.map((f) => `${f.session}/${f.sequence}`)).size, stored.length, 'no fragment stored twice')
  const bySequence = [...inMinute].sort((a, b) => a.sequence - b.sequence)
  const holes = bySequence.slice(1).filter((f, i) => f.sequence !== bySequence[i]!.sequence + 1)
  t.same(holes.map((f) => f.sequence), [], 'the sequences in the minute run without a hole')
  const gaps = bySequence.slice(1).map((f, i) => f.producerMs - (bySequence[i]!.producerMs + bySequence[i]!.durationMs)).filter((g) => Math.abs(g) > 500)
  t.same(gaps, [], 'each fragment starts where the one before it ends (within 0.5 s)')

  // Each decodes with no error and starts on a key frame.
  let frames = 0
  const bad: string[] = []
  for (const f of inMinute) {
    const check = await decodeCheck(playable(dataDir, f))
    frames += check.frames
    if (check.errors || !check.firstKey || !f.keyFrame) bad.push(`${f.sequence}: ${check.errors || 'does not start on a key frame'}`)
  }
  t.same(bad, [], 'every fragment decodes and starts on a key frame')
  t.ok(Math.abs(frames - 60 * FPS) <= 2 * FPS, `${frames} frames decoded in the minute`)

  // The drain after the restart: the live fragment first, then the backlog oldest first.
  const outage = stored.filter((f) => f.producerMs + f.durationMs > killedAt - FRAGMENT_MS && f.producerMs < restartedAt)
  const afterRestart = stored.filter((f) => f.serverMs >= restartedAt)
  const backlog = afterRestart.filter((f) => outage.includes(f))
  t.ok(backlog.length >= 12, `${backlog.length} fragments captured during the outage were sent after it`)
  // The agent reconnected just before the first of these was stored. Fragments completed after that
  // are live too and go ahead of the backlog, so the order is checked on those complete by then (with
  // half a second's margin for the agent's flush). Two fragments are in flight at once (the sender's
  // window), so neighbours may be stored in either order: each fragment is stored within one place of
  // where the send order puts it.
  const reconnectedMs = Math.min(...afterRestart.map((f) => f.serverMs))
  const waiting = backlog.filter((f) => f.producerMs + f.durationMs <= reconnectedMs - 500)
  const live = afterRestart.slice(0, 2).reduce((a, b) => (b.producerMs > a.producerMs ? b : a))
  t.ok(live.producerMs >= Math.max(...waiting.filter((f) => f !== live).map((f) => f.producerMs)), `one of the first two fragments stored after the restart is the live one (sequence ${live.sequence}; the backlog is ${waiting[0]?.sequence}…${waiting.at(-1)?.sequence})`)
  const rest = waiting.filter((f) => f !== live)
  const oldestFirst = [...rest].sort((a, b) => a.sequence - b.sequence)
  const misplaced = rest.filter((f, i) => Math.abs(oldestFirst.indexOf(f) - i) > 1).map((f) => f.sequence)
  t.same(misplaced, [], `then the backlog, oldest first (stored: ${rest.map((f) => f.sequence).join(' ')})`)
  t.equal((await camera()).sessions, 1)

  // Playback of the same minute (issue 13), through the archived-media SDK and read by ffprobe.
  const minute = { StartTimestamp: new Date(start - FRAGMENT_MS / 2), EndTimestamp: new Date(end - FRAGMENT_MS / 2) }
  const { HLSStreamingSessionURL: url } = await archive.send(new GetHLSStreamingSessionURLCommand({
    StreamName: STREAM, PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: minute },
  }))
  const hls = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=nb_read_frames', '-of', 'json', url!])
  const hlsInfo = JSON.parse(hls.stdout) as { format: { duration: string }; streams: { nb_read_frames: string }[] }
  t.ok(Math.abs(Number(hlsInfo.format.duration) - 60) <= 2, `the ON_DEMAND playlist plays ${hlsInfo.format.duration} s`)
  t.equal(hls.stderr, '', 'and decodes with no error')
  t.equal(Number(hlsInfo.streams[0]!.nb_read_frames), frames, `every frame of the minute (${frames})`)

  const clipRange = { StartTimestamp: new Date(start + 20_000 - FRAGMENT_MS / 2), EndTimestamp: new Date(start + 30_000 - FRAGMENT_MS / 2) }
  const clip = await archive.send(new GetClipCommand({ StreamName: STREAM, ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: clipRange } }))
  const clipBytes = Buffer.from(await clip.Payload!.transformToByteArray())
  const clipProbe = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration,format_name:stream=nb_read_frames', '-of', 'json', '-i', 'pipe:0'], clipBytes)
  const clipInfo = JSON.parse(clipProbe.stdout) as { format: { duration: string; format_name: string }; streams: { nb_read_frames: string }[] }
  t.equal(clip.ContentType, 'video/mp4')
  t.ok(Math.abs(Number(clipInfo.format.duration) - 10) <= 2, `GetClip of a 10 s window: an MP4 of ${clipInfo.format.duration} s`)
  t.equal(clipProbe.stderr, '', 'that decodes with no error')

  const images = await archive.send(new GetImagesCommand({
    StreamName: STREAM, ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: clipRange.StartTimestamp, EndTimestamp: clipRange.EndTimestamp,
    SamplingInterval: 2000, Format: 'JPEG', WidthPixels: 160, HeightPixels: 120,
  }))
  t.equal(images.Images!.length, 5, 'GetImages: one image every 2 s of the 10 s window')
  const shapes = await Promise.all(images.Images!.map(async (i) => i.ImageContent ? sharp(Buffer.from(i.ImageContent, 'base64')).metadata().then((m) => `${m.format} ${m.width}x${m.height}`) : `error ${i.Error}`))
  t.same(shapes, Array(5).fill('jpeg 160x120'), 'each a decodable JPEG of the size asked for')
  t.same(images.Images!.map((i) => i.TimeStamp!.getTime() - clipRange.StartTimestamp.getTime()), [0, 2000, 4000, 6000, 8000], 'at the interval asked for')

  const picked = listed.slice(3, 6).map((f) => f.FragmentNumber!)
  const mkv = await archive.send(new GetMediaForFragmentListCommand({ StreamName: STREAM, Fragments: picked }))
  const mkvBytes = Buffer.from(await mkv.Payload!.transformToByteArray())
  const text = mkvBytes.toString('latin1')
  t.same(picked.filter((n) => !text.includes(n)), [], 'GetMediaForFragmentList names each fragment in an AWS_KINESISVIDEO_FRAGMENT_NUMBER tag')
  t.ok(text.includes('AWS_KINESISVIDEO_FRAGMENT_NUMBER') && text.includes('AWS_KINESISVIDEO_PRODUCER_TIMESTAMP'), 'with the tags a Kinesis Video parser reads')
  const mkvProbe = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', '-i', 'pipe:0'], mkvBytes)
  t.ok(Number(mkvProbe.stdout.trim().split('\n')[0]) >= 3 * FRAGMENT_MS / 1000 * FPS - FPS, `ffprobe reads its Matroska: ${mkvProbe.stdout.trim()} frames of 3 fragments`)
})
