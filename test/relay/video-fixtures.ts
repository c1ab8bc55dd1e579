/**
 * Real video for the relay's video tests: ffmpeg's testsrc2 encoded to fragmented MP4 as FIELD-NOTES
 * describes (libx264 baseline, a key frame at each fragment), split into the init segment and its
 * fragments at the top-level boxes, and sent as a device does: chunk frames on the device's video
 * topic, answered on its video-acks topic.
 */
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media'
import { codec, Mp4Splitter } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { encodeFragmentChunks, type FragmentHeader, type VideoAck } from '../../shared/video.js'
import { testRelay, type TestClock } from '../helpers/relay.js'

const exec = promisify(execFile)
/** A tool run (ffprobe, ffmpeg), bounded: one that hangs fails the test instead of holding it. */
export const run = (file: string, args: string[]) => exec(file, args, { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 })

/**
 * A relay and both SDK clients (kinesis-video and -archived-media), signed with `key`. On a manual
 * clock the relay checks no signatures: SigV4 dates are the SDK's real time, which a clock moved by
 * hours would call expired (signatures are tested on the system clock).
 */
export async function videoRelay(t: Test, key: { accessKeyId: string; secretAccessKey: string }, clock?: TestClock) {
  const relay = await testRelay(t, clock ? { httpHost: '127.0.0.1' } : { accessKeys: [key], httpHost: '127.0.0.1' }, clock ? { clock } : {})
  const options = { endpoint: relay.endpoint, region: 'us-east-1', credentials: key, maxAttempts: 1 }
  const video = new KinesisVideoClient(options)
  const archive = new KinesisVideoArchivedMediaClient(options)
  t.teardown(() => { video.destroy(); archive.destroy() })
  return { relay, video, archive }
}

/** The error an SDK call failed with: its name (the type), HTTP status and message. */
export async function failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await p
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } }
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message }
  }
  throw new Error('the call succeeded')
}

export interface Clip {
  init: Buffer
  fragments: Buffer[]
}

const clips = new Map<string, Clip>()

/**
 * `seconds` of 320x240 testsrc2 at 10 fps in fragments of `fragmentSeconds` (one per key frame);
 * made once per process for each shape.
 */
export function clip(seconds = 6, fragmentSeconds = 1, size = '320x240'): Clip {
  const key = `${seconds}/${fragmentSeconds}/${size}`
  const cached = clips.get(key)
  if (cached) return cached
  const gop = String(10 * fragmentSeconds)
  const out = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=10`, '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-g', gop, '-keyint_min', gop, '-sc_threshold', '0',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-write_prft', 'wallclock', '-f', 'mp4', 'pipe:1',
  ], { maxBuffer: 64 * 1024 * 1024 })
  if (out.status !== 0) throw new Error(`ffmpeg failed: ${out.stderr.toString()}`)
  const split = splitFmp4(out.stdout)
  clips.set(key, split)
  return split
}

/** The init segment and fragments of a whole fragmented MP4, split as the agent's camera splits ffmpeg's output. */
export function splitFmp4(buf: Buffer): Clip {
  let init: Buffer | null = null
  const fragments: Buffer[] = []
  for (const unit of new Mp4Splitter().push(buf)) {
    if (unit.kind === 'init') init = Buffer.from(unit.data)
    else fragments.push(Buffer.from(unit.data))
  }
  if (!init) throw new Error('no init segment')
  return { init, fragments }
}

/** The chunks of a fragment as a device sends them (sequence 0: the init segment). */
export function chunksOf(session: bigint, sequence: number, data: Buffer, over: Partial<FragmentHeader> = {}): Buffer[] {
  const header: FragmentHeader = {
    session, sequence, init: sequence === 0, keyFrame: sequence !== 0, clockSynced: true,
    fragmentBytes: data.length, crc32c: codec.crc32c(data), producerTimeMs: 1_800_000_000_000 + sequence * 1000, durationMs: sequence === 0 ? 0 : 1000, ...over,
  }
  return encodeFragmentChunks(header, data)
}

export interface VideoDevice {
  id: string
  client: MqttClient
  acks: VideoAck[]
  /** Resolves with the next ack on the device's video-acks topic (timing out after `ms`). */
  next(ms?: number): Promise<VideoAck>
  /** Resolves with the next ack of `status` for (session, sequence), skipping others (kept in `acks`). */
  until(sequence: number, status: VideoAck['status'], session?: bigint, ms?: number): Promise<VideoAck>
  publish(stream: string, chunk: Buffer): Promise<void>
  /** Publishes every chunk in order (each QoS 1). */
  send(stream: string, chunks: Buffer[]): Promise<void>
}

/** A device connected over real MQTT (mqtt.js), subscribed to its own video-acks. */
export async function videoDevice(t: Test, port: number, id: string, options: mqtt.IClientOptions = {}): Promise<VideoDevice> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0, queueQoSZero: false, ...options })
  t.teardown(() => client.endAsync(true))
  const acks: VideoAck[] = []
  const seen: VideoAck[] = []
  const waiters: (() => void)[] = []
  client.on('message', (_topic, payload) => {
    const ack = JSON.parse(payload.toString()) as VideoAck
    acks.push(ack)
    seen.push(ack)
    for (const w of waiters.splice(0)) w()
  })
  await client.subscribeAsync(topics.videoAcks(id), { qos: 1 })
  const waitFor = (pick: () => VideoAck | undefined, what: string, ms: number) => new Promise<VideoAck>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id}: no ${what} within ${ms} ms; acks so far: ${JSON.stringify(acks)}`)), ms)
    const check = () => {
      const found = pick()
      if (found) { clearTimeout(timer); resolve(found) } else waiters.push(check)
    }
    check()
  })
  return {
    id, client, acks,
    next: (ms = 5000) => waitFor(() => seen.shift(), 'ack', ms),
    until: (sequence, status, session, ms = 10_000) => waitFor(() => {
      const i = seen.findIndex((a) => a.sequence === sequence && a.status === status && (session === undefined || a.session === session.toString()))
      return i === -1 ? undefined : seen.splice(i, 1)[0]
    }, `${status} for ${sequence}`, ms),
    publish: async (stream, chunk) => { await client.publishAsync(topics.video(id, stream), chunk, { qos: 1 }) },
    send: async (stream, chunks) => { for (const c of chunks) await client.publishAsync(topics.video(id, stream), c, { qos: 1 }) },
  }
}
