/**
 * `tributary video list | describe | create | delete | fragments | clip | images | hls`: Kinesis
 * Video streams through the relay's Kinesis Video API (the REST-JSON paths AWS uses, signed for
 * `kinesisvideo`). Downloads (clip, images) show their progress on stderr: one line redrawn in
 * place when stderr is a terminal, else a single line when done.
 */
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ConfigError } from '../../shared/errors.js'
import type { Args } from '../../shared/args.js'
import type { KinesisClient } from '../kinesis/client.js'

export const VIDEO_USAGE = `  tributary video list | describe STREAM | delete STREAM
  tributary video create STREAM [--retention HOURS]   create a video stream (default 24 h; 0 keeps a short live buffer)
  tributary video fragments STREAM [--from TIME] [--to TIME] [--server-time] [--json]
                                                the stream's fragments in a time range (producer time unless
                                                --server-time), oldest first: number, time, duration, size
  tributary video clip STREAM --from TIME --to TIME -o FILE.mp4 [--server-time]
                                                an MP4 of the range (GetClip: at most 200 fragments / 100 MB)
  tributary video images STREAM --from TIME --to TIME -o DIR [--interval 1s] [--width W] [--height H]
                    [--format jpeg|png] [--quality 1-100] [--server-time]
                                                an image every interval (at least 200ms), one file per time
                                                point named by it; one of --width/--height keeps the aspect
  tributary video hls STREAM [--mode live|live-replay|on-demand] [--from TIME] [--to TIME] [--expires SECONDS]
                    [--server-time]             prints an HLS URL for a player (ffplay, VLC, a browser)
`

interface StreamInfo { StreamName: string; StreamARN: string; Status: string; CreationTime: number; DataRetentionInHours: number; MediaType?: string; Version?: string }
interface Fragment { FragmentNumber: string; FragmentSizeInBytes: number; ProducerTimestamp: number; ServerTimestamp: number; FragmentLengthInMilliseconds: number }

const iso = (seconds: number) => new Date(seconds * 1000).toISOString()
const streamLine = (s: StreamInfo) => `${s.StreamName}\t${s.Status}\t${s.DataRetentionInHours}h\t${iso(s.CreationTime)}\t${s.StreamARN}`

/** A time flag as epoch seconds: an ISO time, or `now`. */
function timeFlag(raw: string | true | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback
  const at = raw === 'now' ? new Date() : new Date(String(raw))
  if (raw === true || Number.isNaN(at.getTime())) throw new ConfigError(flag, `must be a time such as 2026-12-05T08:00:00Z or now, got ${JSON.stringify(raw === true ? '' : raw)}`)
  return at.getTime() / 1000
}

export async function runVideo(args: Args, api: KinesisClient): Promise<void> {
  // `-o FILE` reaches us as two positionals; the stream is whichever positional is left.
  const o = args.positionals.indexOf('-o')
  const [, verb, stream] = o < 0 ? args.positionals : args.positionals.filter((_, i) => i !== o && i !== o + 1)
  const verbs = ['list', 'describe', 'create', 'delete', 'fragments', 'clip', 'images', 'hls']
  if (!verb || !verbs.includes(verb)) throw new ConfigError('video', `unknown subcommand ${JSON.stringify(verb ?? '')}; use ${verbs.join(', ')}`)
  if (verb !== 'list' && !stream) throw new ConfigError('video', `name the stream: tributary video ${verb} STREAM`)
  switch (verb) {
    case 'list': {
      let NextToken: string | undefined
      do {
        const page = await api.rest<{ StreamInfoList: StreamInfo[]; NextToken?: string }>('/listStreams', NextToken ? { NextToken } : {})
        for (const s of page.StreamInfoList) console.log(streamLine(s))
        NextToken = page.NextToken
      } while (NextToken)
      return
    }
    case 'describe': {
      const { StreamInfo } = await api.rest<{ StreamInfo: StreamInfo }>('/describeStream', { StreamName: stream })
      console.log(JSON.stringify(StreamInfo, null, 2))
      return
    }
    case 'create': {
      const hours = args.flags.retention === undefined ? 24 : Number(args.flags.retention)
      if (!Number.isInteger(hours) || hours < 0) throw new ConfigError('--retention', `must be whole hours (0 or more), got ${JSON.stringify(args.flags.retention)}`)
      const { StreamARN } = await api.rest<{ StreamARN: string }>('/createStream', { StreamName: stream, DataRetentionInHours: hours, MediaType: 'video/h264' })
      console.log(StreamARN)
      return
    }
    case 'delete': {
      const { StreamInfo } = await api.rest<{ StreamInfo: StreamInfo }>('/describeStream', { StreamName: stream })
      await api.rest('/deleteStream', { StreamARN: StreamInfo.StreamARN })
      console.log(`deleted video stream ${stream}`)
      return
    }
    case 'clip': return clip(args, api, stream!)
    case 'images': return images(args, api, stream!)
    case 'hls': return hls(args, api, stream!)
    default:
      return fragments(args, api, stream!)
  }
}

async function fragments(args: Args, api: KinesisClient, stream: string): Promise<void> {
  const type = args.flags['server-time'] ? 'SERVER_TIMESTAMP' : 'PRODUCER_TIMESTAMP'
  const to = timeFlag(args.flags.to as string | true | undefined, '--to', Date.now() / 1000)
  const from = timeFlag(args.flags.from as string | true | undefined, '--from', 0)
  if (from > to) throw new ConfigError('--from', 'must not be after --to')
  const all: Fragment[] = []
  let NextToken: string | undefined
  do {
    const page = await api.rest<{ Fragments: Fragment[]; NextToken?: string }>('/listFragments', {
      StreamName: stream,
      MaxResults: 1000,
      ...(NextToken ? { NextToken } : { FragmentSelector: { FragmentSelectorType: type, TimestampRange: { StartTimestamp: from, EndTimestamp: to } } }),
    })
    all.push(...page.Fragments)
    NextToken = page.NextToken
  } while (NextToken)
  // AWS does not promise an order: oldest first by the time asked about, then by number.
  const timeOf = (f: Fragment) => (type === 'SERVER_TIMESTAMP' ? f.ServerTimestamp : f.ProducerTimestamp)
  all.sort((a, b) => timeOf(a) - timeOf(b) || (a.FragmentNumber < b.FragmentNumber ? -1 : 1))
  if (args.flags.json) {
    for (const f of all) console.log(JSON.stringify(f))
    return
  }
  let ms = 0
  let bytes = 0
  for (const f of all) {
    console.log(`${f.FragmentNumber}\t${iso(timeOf(f))}\t${(f.FragmentLengthInMilliseconds / 1000).toFixed(3)}s\t${f.FragmentSizeInBytes}`)
    ms += f.FragmentLengthInMilliseconds
    bytes += f.FragmentSizeInBytes
  }
  console.error(`${all.length} fragments, ${(ms / 1000).toFixed(1)} s, ${bytes} bytes`)
}

// ---- downloads ----

/** A progress line on a stream: redrawn in place (at most every 100 ms) on a terminal, else written once at the end. */
export class Progress {
  private drawn = -Infinity
  readonly startMs: number

  constructor(private readonly out: { write(text: string): unknown }, private readonly tty: boolean, private readonly now: () => number = Date.now) {
    this.startMs = now()
  }

  show(line: string): void {
    if (!this.tty || this.now() - this.drawn < 100) return
    this.drawn = this.now()
    this.out.write(`\r\x1b[K${line}`)
  }

  end(line: string): void {
    this.out.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`)
  }

  /** Seconds since the start. */
  elapsed(): number {
    return Math.max(this.now() - this.startMs, 1) / 1000
  }
}

const UNITS = ['B', 'KB', 'MB', 'GB']
export function humanBytes(n: number): string {
  let u = 0
  while (n >= 1000 && u < UNITS.length - 1) { n /= 1000; u++ }
  return `${u === 0 ? n : n.toFixed(1)} ${UNITS[u]}`
}

/** `BYTES of TOTAL (P%) at RATE/s`. */
export function transferLine(bytes: number, total: number | undefined, seconds: number): string {
  const of = total ? ` of ${humanBytes(total)} (${Math.floor((bytes / total) * 100)}%)` : ''
  return `${humanBytes(bytes)}${of} at ${humanBytes(bytes / seconds)}/s`
}

const progressOnStderr = () => new Progress(process.stderr, process.stderr.isTTY === true)

/** `-o FILE` (a lone `-o` is a positional to the parser) or `--output FILE`. */
function output(args: Args, what: string, verb: string): string {
  const at = args.positionals.indexOf('-o')
  const value = at >= 0 ? args.positionals[at + 1] : args.flags.output
  if (value === undefined || value === true || value === '') throw new ConfigError('-o', `name the ${what}: tributary video ${verb} STREAM --from TIME --to TIME -o ${what === 'directory' ? 'DIR' : 'FILE.mp4'}`)
  return String(value)
}

function required(args: Args, flag: 'from' | 'to', verb: string): number {
  if (args.flags[flag] === undefined) throw new ConfigError(`--${flag}`, `is required for video ${verb} (a time such as 2026-12-05T08:00:00Z or now)`)
  return timeFlag(args.flags[flag] as string | true, `--${flag}`, 0)
}

function range(args: Args, verb: string): { from: number; to: number } {
  const from = required(args, 'from', verb)
  const to = required(args, 'to', verb)
  if (to <= from) throw new ConfigError('--to', 'must be after --from')
  return { from, to }
}

const selectorType = (args: Args) => (args.flags['server-time'] ? 'SERVER_TIMESTAMP' : 'PRODUCER_TIMESTAMP')

async function clip(args: Args, api: KinesisClient, stream: string): Promise<void> {
  const { from, to } = range(args, 'clip')
  const file = output(args, 'file', 'clip')
  const answer = await api.restStream('/getClip', {
    StreamName: stream, ClipFragmentSelector: { FragmentSelectorType: selectorType(args), TimestampRange: { StartTimestamp: from, EndTimestamp: to } },
  })
  const progress = progressOnStderr()
  let bytes = 0
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length
      progress.show(transferLine(bytes, answer.length, progress.elapsed()))
      done(null, chunk)
    },
  })
  // Written beside the target and renamed when whole, so a cut download never looks like a clip.
  const partial = `${file}.part`
  try {
    await pipeline(answer.body, count, createWriteStream(partial))
    if (answer.length !== undefined && bytes !== answer.length) throw new Error(`the relay sent ${bytes} of the ${answer.length} bytes it announced`)
    await rename(partial, file)
  } catch (err) {
    await rm(partial, { force: true })
    throw err
  }
  progress.end(`${file}: ${transferLine(bytes, undefined, progress.elapsed())}`)
}

/** `500ms`, `1s`, `2m` (a plain number is seconds) as milliseconds. */
function intervalMs(raw: string | true | undefined): number {
  if (raw === undefined) return 1000
  const m = raw === true ? null : /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw)
  if (!m) throw new ConfigError('--interval', `must be a duration such as 500ms, 1s or 2m, got ${JSON.stringify(raw === true ? '' : raw)}`)
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000))
}

function pixels(args: Args, flag: 'width' | 'height'): number | undefined {
  const raw = args.flags[flag]
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (raw === true || !Number.isInteger(n) || n < 1) throw new ConfigError(`--${flag}`, `must be a whole number of pixels, got ${JSON.stringify(raw === true ? '' : raw)}`)
  return n
}

/** The name of a time point's file: its UTC time, sortable, with no colons. */
const imageName = (ms: number, ext: string) => `${new Date(ms).toISOString().replace(/:/g, '-')}.${ext}`

/** GetImages' longest range. */
const IMAGES_WINDOW_MS = 300_000

async function images(args: Args, api: KinesisClient, stream: string): Promise<void> {
  const { from, to } = range(args, 'images')
  const dir = output(args, 'directory', 'images')
  const every = intervalMs(args.flags.interval)
  const format = String(args.flags.format ?? 'jpeg').toUpperCase()
  if (format !== 'JPEG' && format !== 'PNG') throw new ConfigError('--format', `must be jpeg or png, got ${JSON.stringify(args.flags.format)}`)
  const quality = args.flags.quality
  if (quality !== undefined && (quality === true || !/^\d+$/.test(quality) || Number(quality) < 1 || Number(quality) > 100)) throw new ConfigError('--quality', `must be a whole number from 1 to 100, got ${JSON.stringify(quality === true ? '' : quality)}`)
  const width = pixels(args, 'width')
  const height = pixels(args, 'height')
  await mkdir(dir, { recursive: true })
  const startMs = Math.round(from * 1000)
  const endMs = Math.round(to * 1000)
  const total = Math.max(1, Math.ceil((endMs - startMs) / every))
  const progress = progressOnStderr()
  let written = 0
  let missing = 0
  let bytes = 0
  // The relay answers at most 300 s at a time: whole intervals of it, so the time points run on.
  const window = Math.max(every, Math.floor(IMAGES_WINDOW_MS / every) * every)
  for (let at = startMs; at < endMs; at += window) {
    let NextToken: string | undefined
    do {
      const page = await api.rest<{ Images: { TimeStamp: number; Error?: string; ImageContent?: string }[]; NextToken?: string }>('/getImages', {
        StreamName: stream, ImageSelectorType: selectorType(args), StartTimestamp: at / 1000, EndTimestamp: Math.min(at + window, endMs) / 1000,
        SamplingInterval: every, Format: format, ...(quality !== undefined ? { FormatConfig: { JPEGQuality: quality } } : {}),
        ...(width !== undefined ? { WidthPixels: width } : {}), ...(height !== undefined ? { HeightPixels: height } : {}),
        MaxResults: 25, ...(NextToken ? { NextToken } : {}),
      })
      for (const image of page.Images) {
        if (!image.ImageContent) { missing++; continue }
        const data = Buffer.from(image.ImageContent, 'base64')
        await writeFile(join(dir, imageName(Math.round(image.TimeStamp * 1000), format === 'PNG' ? 'png' : 'jpg')), data)
        written++
        bytes += data.length
      }
      progress.show(`images ${written + missing}/${total}, ${humanBytes(bytes)} at ${(written / progress.elapsed()).toFixed(1)} images/s`)
      NextToken = page.NextToken
    } while (NextToken)
  }
  const none = missing ? `, ${missing} time points without media (NO_MEDIA or MEDIA_ERROR)` : ''
  progress.end(`${dir}: ${written} images, ${humanBytes(bytes)} in ${progress.elapsed().toFixed(1)} s${none}`)
}

async function hls(args: Args, api: KinesisClient, stream: string): Promise<void> {
  const modes: Record<string, string> = { 'live': 'LIVE', 'live-replay': 'LIVE_REPLAY', 'on-demand': 'ON_DEMAND' }
  const raw = args.flags.mode ?? 'live'
  const mode = modes[String(raw)]
  if (!mode) throw new ConfigError('--mode', `must be live, live-replay or on-demand, got ${JSON.stringify(raw === true ? '' : raw)}`)
  let selector: object | undefined
  if (mode === 'LIVE') {
    if (args.flags.from !== undefined || args.flags.to !== undefined) throw new ConfigError('--mode', 'live plays from now: --from and --to go with on-demand or live-replay')
  } else {
    const from = required(args, 'from', `hls --mode ${raw}`)
    const to = mode === 'ON_DEMAND' ? required(args, 'to', `hls --mode ${raw}`) : args.flags.to === undefined ? undefined : timeFlag(args.flags.to as string | true, '--to', 0)
    if (to !== undefined && to <= from) throw new ConfigError('--to', 'must be after --from')
    selector = { FragmentSelectorType: selectorType(args), TimestampRange: { StartTimestamp: from, ...(to !== undefined ? { EndTimestamp: to } : {}) } }
  }
  const expires = args.flags.expires
  if (expires !== undefined && (expires === true || !/^\d+$/.test(expires))) throw new ConfigError('--expires', `must be whole seconds (300 to 43200), got ${JSON.stringify(expires === true ? '' : expires)}`)
  const { HLSStreamingSessionURL } = await api.rest<{ HLSStreamingSessionURL: string }>('/getHLSStreamingSessionURL', {
    StreamName: stream, PlaybackMode: mode, ...(selector ? { HLSFragmentSelector: selector } : {}), ...(expires !== undefined ? { Expires: Number(expires) } : {}),
  })
  console.log(HLSStreamingSessionURL)
}
