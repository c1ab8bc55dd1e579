/**
 * PutMedia (`POST /putMedia`), so existing Kinesis Video producers (the producer SDK, GStreamer's
 * kvssink) can send to the relay: Matroska in a streamed (chunked) request body, named by the
 * `x-amzn-stream-name` (or `-arn`), `x-amzn-fragment-timecode-type` and
 * `x-amzn-producer-start-timestamp` headers, answered with a stream of JSON acknowledgements as AWS
 * answers: `{"EventType":"BUFFERING|RECEIVED|PERSISTED|ERROR","FragmentTimecode":…,
 * "FragmentNumber":"…","ErrorId":…}`, one a line.
 *
 * The Matroska is remuxed, not decoded: `ffmpeg -f matroska -i pipe:0 -c copy -f mp4` with the
 * fragmenting flags the cameras use, split with hardware/video's Mp4Splitter into the init segment
 * and key-frame fragments, and stored as the MQTT path stores them (device '', a new session per
 * request). Bounded: the request body flows through ffmpeg's pipes with back-pressure, at most one
 * unit being split and a few waiting to be stored, and at most `maxConcurrent` requests at once.
 *
 * ffmpeg's fragmented MP4 starts at time 0 whatever the Matroska's timecodes; the Matroska's start,
 * which ffmpeg prints as the input's `start:`, is added back, so FragmentTimecode is the producer's
 * own cluster timecode (absolute or relative, as it sent them).
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Mp4Splitter, type InitInfo, type Mp4Unit } from '../../hardware/index.js'
import { codec } from '../../hardware/index.js'
import { StorageError } from '../../shared/errors.js'
import { VideoAckError } from '../../shared/video.js'
import type { VideoStreamRecord } from './catalog.js'
import { invalidArgument, VideoApiError, VideoErrorType } from './errors.js'
import type { VideoMetrics } from './metrics.js'
import type { VideoStore } from './store.js'
import type { VideoStreams } from './streams.js'

type Request = IncomingMessage | Http2ServerRequest
type Response = ServerResponse | Http2ServerResponse

export type SpawnProcess = (command: string, args: string[]) => ChildProcess

/** AWS's PutMedia ack error ids (the producer SDK acts on them). */
export const PutMediaErrorId = {
  STREAM_READ_ERROR: 4000,
  MAX_FRAGMENT_SIZE_REACHED: 4001,
  INVALID_MKV_DATA: 4006,
  STREAM_NOT_ACTIVE: 4008,
  INTERNAL_ERROR: 5000,
  ARCHIVAL_ERROR: 5001,
} as const

export interface PutMediaAck {
  EventType: 'BUFFERING' | 'RECEIVED' | 'PERSISTED' | 'ERROR'
  FragmentTimecode?: number
  FragmentNumber?: string
  ErrorId?: number
}

export interface PutMediaRequest {
  stream: VideoStreamRecord
  timecodeType: 'ABSOLUTE' | 'RELATIVE'
  /** x-amzn-producer-start-timestamp, in ms. */
  producerStartMs: number
}

export interface PutMediaOptions {
  streams: VideoStreams
  store: VideoStore
  metrics: VideoMetrics
  log: (event: string, fields: Record<string, unknown>) => void
  /** The relay's clock (ms). */
  now: () => number
  /** PutMedia requests served at once; more get ClientLimitExceededException. */
  maxConcurrent: number
  ffmpegPath?: string
  spawn?: SpawnProcess
}

/** Units split but not yet stored, past which ffmpeg's output is paused. */
const MAX_WAITING_UNITS = 2
/** ffmpeg's last stderr bytes kept for an error message. */
const STDERR_TAIL = 2000

const defaultSpawn: SpawnProcess = (command, args) => nodeSpawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })

export class PutMedia {
  private readonly o: PutMediaOptions
  private active = 0

  constructor(options: PutMediaOptions) {
    this.o = options
  }

  /** What the headers say, or the error to answer before the body is read. */
  check(headers: Request['headers']): PutMediaRequest | VideoApiError {
    try {
      const one = (name: string) => {
        const v = headers[name]
        return Array.isArray(v) ? v[0] : v
      }
      const name = one('x-amzn-stream-name')
      const arn = one('x-amzn-stream-arn')
      const stream = this.o.streams.resolve(name, arn)
      const timecodeType = one('x-amzn-fragment-timecode-type')
      if (timecodeType !== 'ABSOLUTE' && timecodeType !== 'RELATIVE') throw invalidArgument(`x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE, not ${JSON.stringify(timecodeType ?? null)}.`)
      const start = one('x-amzn-producer-start-timestamp')
      const seconds = start === undefined ? NaN : Number(start)
      if (!Number.isFinite(seconds) || seconds < 0) throw invalidArgument(`x-amzn-producer-start-timestamp must be epoch seconds, not ${JSON.stringify(start ?? null)}.`)
      if (this.active >= this.o.maxConcurrent) throw new VideoApiError(VideoErrorType.ClientLimitExceededException, `The relay serves ${this.o.maxConcurrent} PutMedia connections at once; retry later.`)
      return { stream, timecodeType, producerStartMs: Math.round(seconds * 1000) }
    } catch (err) {
      if (err instanceof VideoApiError) return err
      throw err
    }
  }

  /** Streams the request's Matroska through ffmpeg into the store, answering with acks as it goes. */
  async serve(plan: PutMediaRequest, req: Request, res: Response): Promise<void> {
    this.active++
    try {
      await this.run(plan, req, res)
    } finally {
      this.active--
    }
  }

  private async run(plan: PutMediaRequest, req: Request, res: Response): Promise<void> {
    const { store, log } = this.o
    const session = randomBytes(8).readBigUInt64LE()
    const spawn = this.o.spawn ?? defaultSpawn
    const ffmpeg = spawn(this.o.ffmpegPath ?? 'ffmpeg', [
      '-hide_banner', '-nostats', '-loglevel', 'info', '-f', 'matroska', '-i', 'pipe:0',
      '-map', '0:v:0', '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1',
    ])
    res.writeHead(200, { 'content-type': 'application/json' })
    let open = true
    const ack = (a: PutMediaAck) => { if (open && !res.writableEnded) (res as ServerResponse).write(JSON.stringify(a) + '\n') }
    const gone = () => {
      open = false
      if (ffmpeg.exitCode === null) ffmpeg.kill('SIGKILL')
    }
    req.once('aborted', gone)
    res.once('close', () => { if (!res.writableFinished) gone() })

    // The request body into ffmpeg, paced by its pipe; a producer that hangs up ends the input.
    ffmpeg.stdin!.on('error', () => {})
    req.on('error', () => gone())
    req.pipe(ffmpeg.stdin!)

    let stderr = ''
    let startSeconds: number | null = null
    let resolveStart = (_: number) => {}
    const started = new Promise<number>((resolve) => { resolveStart = resolve })
    ffmpeg.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-STDERR_TAIL)
      if (startSeconds === null) {
        const m = /Input #0, matroska[\s\S]*?start: (-?\d+(?:\.\d+)?)/.exec(stderr)
        if (m) resolveStart(startSeconds = Number(m[1]))
      }
    })
    const exited = new Promise<number | null>((resolve) => ffmpeg.once('close', (code) => { resolveStart(startSeconds ?? 0); resolve(code) }))

    const splitter = new Mp4Splitter()
    let init: InitInfo | null = null
    let sequence = 0
    let failed = false
    let waiting = 0
    let chain: Promise<void> = Promise.resolve()
    const fail = (errorId: number, message: string, timecode?: number) => {
      if (failed) return
      failed = true
      this.o.metrics.errors.inc({ code: `PUTMEDIA_${errorId}` })
      log('putmedia_error', { stream: plan.stream.name, errorId, message })
      ack({ EventType: 'ERROR', ...(timecode === undefined ? {} : { FragmentTimecode: timecode }), ErrorId: errorId })
      gone()
    }
    const store1 = async (unit: Mp4Unit) => {
      if (failed) return
      if (unit.kind === 'init') {
        if (init) return fail(PutMediaErrorId.INVALID_MKV_DATA, 'a second init segment in one PutMedia stream')
        init = unit.info
      } else if (!init) {
        return fail(PutMediaErrorId.INVALID_MKV_DATA, 'a fragment before the init segment')
      }
      const seq = sequence++
      const timecode = unit.kind === 'fragment' ? Math.round((await started) * 1000 + Number(unit.info.decodeTime) * 1000 / init!.timescale) : undefined
      if (timecode !== undefined) {
        ack({ EventType: 'BUFFERING', FragmentTimecode: timecode })
        ack({ EventType: 'RECEIVED', FragmentTimecode: timecode })
      }
      const producerTimeMs = timecode === undefined ? plan.producerStartMs : plan.timecodeType === 'ABSOLUTE' ? timecode : plan.producerStartMs + timecode
      let outcome
      try {
        outcome = await store.put({ stream: plan.stream, device: '', session, sequence: seq, producerTimeMs, clockSynced: true, data: unit.data, crc32c: codec.crc32c(unit.data) })
      } catch (err) {
        if (err instanceof StorageError) return fail(PutMediaErrorId.ARCHIVAL_ERROR, err.message, timecode)
        throw err
      }
      if (!outcome.ok) {
        return fail(outcome.code === VideoAckError.STREAM_NOT_FOUND ? PutMediaErrorId.STREAM_NOT_ACTIVE : PutMediaErrorId.INVALID_MKV_DATA, outcome.message, timecode)
      }
      this.o.metrics.fragments.inc({ stream: plan.stream.name, source: 'putmedia' })
      this.o.metrics.bytes.inc({ stream: plan.stream.name, source: 'putmedia' }, unit.data.length)
      if (timecode !== undefined) ack({ EventType: 'PERSISTED', FragmentTimecode: timecode, FragmentNumber: outcome.fragmentNumber })
    }
    ffmpeg.stdout!.on('data', (d: Buffer) => {
      if (failed) return
      let units: Mp4Unit[]
      try {
        units = splitter.push(d)
      } catch (err) {
        return fail(PutMediaErrorId.INVALID_MKV_DATA, `ffmpeg's output: ${(err as Error).message}`)
      }
      for (const unit of units) {
        // One store at a time, in order; ffmpeg waits while a few are queued.
        waiting++
        if (waiting > MAX_WAITING_UNITS) ffmpeg.stdout!.pause()
        chain = chain.then(() => store1(unit)).catch((err: Error) => fail(PutMediaErrorId.INTERNAL_ERROR, err.message)).finally(() => {
          waiting--
          if (waiting <= MAX_WAITING_UNITS) ffmpeg.stdout!.resume()
        })
      }
    })
    const code = await exited
    await chain
    if (code !== 0 && open && !failed) fail(PutMediaErrorId.INVALID_MKV_DATA, `the Matroska stream could not be read: ${lastLines(stderr)}`)
    else if (!failed && sequence === 0 && open) fail(PutMediaErrorId.INVALID_MKV_DATA, 'the stream held no video')
    if (!res.writableEnded) res.end()
  }
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ')
}
