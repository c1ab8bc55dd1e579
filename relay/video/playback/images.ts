/**
 * GetImages (`POST /getImages`): an image every SamplingInterval ms from StartTimestamp to (not
 * including) EndTimestamp — at least the one at StartTimestamp — each the key frame at or before its
 * time point in the fragment that holds it, decoded by ffmpeg (sharp cannot read H.264), then scaled
 * and encoded by sharp as JPEG (FormatConfig JPEGQuality 1-100, 80 by default) or PNG. A time point
 * no fragment covers answers `Error: 'NO_MEDIA'`, one whose media cannot be decoded `MEDIA_ERROR`.
 * AWS's rules: at most 300 s, SamplingInterval at least 200 ms, pages of at most 25 images
 * (MaxResults above that still gives 25) with a NextToken, WidthPixels 1-3840 and HeightPixels
 * 1-2160 (both: stretched to that size; one: the other follows the frame's aspect ratio).
 *
 * The key frames a page still needs are decoded together: one ffmpeg per capture session (its init
 * segment and the fragments end to end, non-key frames skipped undecoded), in batches of at most
 * 48 MB of raw frames; a batch that fails is decoded again one fragment at a time, so one bad
 * fragment costs only its own time points. Encoded images (per fragment, key frame, size, format
 * and quality; 64 MB) and decoded frames (raw RGB, per fragment and key frame; 128 MB) are kept in
 * caches bounded by bytes, least recently used going first, so thumbnails asked again, or the same
 * key frame at another size, cost no ffmpeg.
 */
import { spawn } from 'node:child_process'
import { createHmac, timingSafeEqual } from 'node:crypto'
import sharp from 'sharp'
import type { FragmentRecord } from '../catalog.js'
import { invalidArgument } from '../errors.js'
import type { VideoStore } from '../store.js'
import type { VideoStreams } from '../streams.js'
import { validate } from '../validate.js'
import type { MediaReader } from './inits.js'
import { checkRange, origin, SelectorType, StreamARN, StreamName, type Named } from './shapes.js'

export const MIN_SAMPLING_MS = 200
export const MAX_IMAGES_RANGE_MS = 300_000
export const IMAGES_PAGE = 25
export const DEFAULT_JPEG_QUALITY = 80
/** A time point's fragment started at most this long before it (fragments are far shorter). */
const LOOKBACK_MS = 60_000
/** ffmpeg decodes at once (each takes a core for ~0.05-0.1 s). */
const MAX_DECODES = 2
/** The cache's bounds: encoded images (what is answered) apart from decoded frames (~0.7 MB at 640x360, 6 MB at 1080p), so frames never push images out. */
export const DEFAULT_IMAGE_CACHE_BYTES = { images: 64 * 1024 * 1024, frames: 128 * 1024 * 1024 }

export interface ImageContext {
  streams: VideoStreams
  store: VideoStore
  reader: MediaReader
  cache: ImageCache
  /** 32 bytes: the NextToken's key. */
  tokenKey: Buffer
}

interface ImagesRequest extends Named {
  ImageSelectorType: 'PRODUCER_TIMESTAMP' | 'SERVER_TIMESTAMP'
  StartTimestamp: number
  EndTimestamp: number
  SamplingInterval: number
  Format: 'JPEG' | 'PNG'
  FormatConfig?: Record<string, string>
  WidthPixels?: number
  HeightPixels?: number
  MaxResults?: number
  NextToken?: string
}

export interface ImageAnswer {
  TimeStamp: number
  Error?: 'NO_MEDIA' | 'MEDIA_ERROR'
  ImageContent?: string
}

export async function getImages(body: unknown, ctx: ImageContext): Promise<{ Images: ImageAnswer[]; NextToken?: string }> {
  const r = validate<ImagesRequest>(body, {
    StreamName, StreamARN,
    ImageSelectorType: { ...SelectorType, required: true },
    StartTimestamp: { type: 'timestamp', required: true },
    EndTimestamp: { type: 'timestamp', required: true },
    SamplingInterval: { type: 'integer', required: true },
    Format: { type: 'string', required: true, enum: ['JPEG', 'PNG'] },
    FormatConfig: { type: 'map', key: { type: 'string', enum: ['JPEGQuality'] }, value: { type: 'string', pattern: '[a-zA-Z_0-9]+', min: 1, max: 256 }, min: 1, max: 1 },
    WidthPixels: { type: 'integer', min: 1, max: 3840 },
    HeightPixels: { type: 'integer', min: 1, max: 2160 },
    MaxResults: { type: 'integer', min: 1, max: 100 },
    NextToken: { type: 'string', pattern: '[a-zA-Z0-9+/]+={0,2}', min: 1, max: 4096 },
  })
  const from = r.StartTimestamp
  const to = r.EndTimestamp
  checkRange(from, to)
  if (to - from > MAX_IMAGES_RANGE_MS) throw invalidArgument(`EndTimestamp must be within ${MAX_IMAGES_RANGE_MS / 1000} seconds of StartTimestamp for GetImages.`)
  if (r.SamplingInterval < MIN_SAMPLING_MS) throw invalidArgument(`SamplingInterval must be at least ${MIN_SAMPLING_MS} ms; got ${r.SamplingInterval}.`)
  const quality = jpegQuality(r.FormatConfig)
  const stream = ctx.streams.resolve(r.StreamName, r.StreamARN)
  const by = origin(r.ImageSelectorType)

  // The time points of this page: from the token's position, or from the start.
  let index = 0
  if (r.NextToken) {
    const held = openToken(ctx.tokenKey, r.NextToken)
    if (held.stream !== stream.id || held.from !== from || held.to !== to || held.every !== r.SamplingInterval) throw invalidArgument('The NextToken was issued for another stream or time range.')
    index = held.index
  }
  const total = Math.max(1, Math.ceil((to - from) / r.SamplingInterval))
  const size = Math.min(r.MaxResults ?? IMAGES_PAGE, IMAGES_PAGE)
  const points: number[] = []
  for (let i = index; i < total && points.length < size; i++) points.push(from + i * r.SamplingInterval)
  if (points.length === 0) return { Images: [] }

  const rows = ctx.store.list({ streamId: stream.id, by, from: points[0]! - LOOKBACK_MS, to: points[points.length - 1]!, limit: 10_000 }).filter((f) => f.sequence > 0)
  const timeOf = (f: FragmentRecord) => (by === 'producer' ? f.producerMs : f.serverMs)
  const spec: ImageSpec = { format: r.Format, quality, width: r.WidthPixels, height: r.HeightPixels }
  // The fragment holding each time point: the latest to start at or before it, if it lasts past it.
  const holders = points.map((at) => {
    let holder: FragmentRecord | undefined
    for (const f of rows) if (timeOf(f) <= at && at < timeOf(f) + Math.max(f.durationMs, 1) && (!holder || timeOf(f) >= timeOf(holder))) holder = f
    return holder ? { row: holder, offsetMs: at - timeOf(holder) } : null
  })
  const made = await ctx.cache.images(holders.filter((h) => h !== null), spec, ctx.reader, ctx.store)
  let k = 0
  const images = points.map((at, i): ImageAnswer => {
    const TimeStamp = at / 1000
    if (!holders[i]) return { TimeStamp, Error: 'NO_MEDIA' }
    const image = made[k++]
    return image ? { TimeStamp, ImageContent: image.toString('base64') } : { TimeStamp, Error: 'MEDIA_ERROR' }
  })
  const next = index + points.length
  return { Images: images, ...(next < total ? { NextToken: sealToken(ctx.tokenKey, { stream: stream.id, from, to, every: r.SamplingInterval, index: next }) } : {}) }
}

function jpegQuality(config: Record<string, string> | undefined): number {
  const value = config?.JPEGQuality
  if (value === undefined) return DEFAULT_JPEG_QUALITY
  const q = /^\d{1,3}$/.test(value) ? Number(value) : NaN
  if (!(q >= 1 && q <= 100)) throw invalidArgument(`FormatConfig JPEGQuality must be an integer from 1 to 100; got '${value}'.`)
  return q
}

// ---- NextToken: base64 (the model's pattern allows + / =) of a 16-byte HMAC tag and the position ----

interface Position { stream: string; from: number; to: number; every: number; index: number }

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update('images').update(body).digest().subarray(0, 16)
}

function sealToken(key: Buffer, p: Position): string {
  const body = Buffer.from(JSON.stringify(p))
  return Buffer.concat([mac(key, body), body]).toString('base64')
}

function openToken(key: Buffer, token: string): Position {
  const raw = Buffer.from(token, 'base64')
  const body = raw.subarray(16)
  if (raw.length <= 16 || !timingSafeEqual(raw.subarray(0, 16), mac(key, body))) throw invalidArgument('Invalid NextToken.')
  return JSON.parse(body.toString()) as Position
}

// ---- decoding, scaling, encoding and the cache ----

export interface ImageSpec {
  format: 'JPEG' | 'PNG'
  quality: number
  width?: number
  height?: number
}

interface Frame { width: number; height: number; rgb: Buffer }

export interface ImageCacheStats {
  frameHits: number
  frameMisses: number
  imageHits: number
  imageMisses: number
  /** ffmpeg processes run (each decodes the key frames of one or more fragments). */
  decodes: number
  imageBytes: number
  frameBytes: number
}

/** What a cache lookup found, for the relay's metrics. */
export type CacheEvent = (kind: 'frame' | 'image' | 'ffmpeg', outcome: 'hit' | 'miss' | 'ok' | 'failed') => void

/** A key frame to decode: the `key`-th of its fragment, whose key frames number `keys`. */
interface KeyFrame { name: string; row: FragmentRecord; initRow: FragmentRecord; data: Buffer; key: number; keys: number; width: number; height: number }

/** Raw frames one ffmpeg process may hand back at once. */
const BATCH_BYTES = 48 * 1024 * 1024

export class ImageCache {
  private readonly imageEntries: ByteLru
  private readonly frameEntries: ByteLru
  private readonly pending = new Map<string, Promise<Buffer | Frame>>()
  private readonly decodes = new Gate(MAX_DECODES)
  readonly stats: ImageCacheStats = { frameHits: 0, frameMisses: 0, imageHits: 0, imageMisses: 0, decodes: 0, imageBytes: 0, frameBytes: 0 }

  constructor(bounds: { images: number; frames: number } = DEFAULT_IMAGE_CACHE_BYTES, private readonly event: CacheEvent = () => {}) {
    this.imageEntries = new ByteLru(bounds.images)
    this.frameEntries = new ByteLru(bounds.frames)
  }

  /**
   * For each (fragment, offset) the image of the key frame at or before the offset, as `spec`
   * asks, or null when its media cannot be decoded. Images and frames found in the cache (or being
   * made for another request) are taken; the key frames still missing are decoded together, one
   * ffmpeg process per capture session and batch, so a page of thumbnails costs a process or two
   * rather than one each.
   */
  async images(points: { row: FragmentRecord; offsetMs: number }[], spec: ImageSpec, reader: MediaReader, store: VideoStore): Promise<(Buffer | null)[]> {
    const shape = `${spec.width ?? ''}x${spec.height ?? ''}\u0000${spec.format}\u0000${spec.format === 'JPEG' ? spec.quality : ''}`
    const made = new Map<string, Promise<Buffer | Frame>>()
    const seen = new Set<string>()
    const toDecode = new Map<string, KeyFrame>()
    const frames = new Map<string, Promise<Frame>>()
    const answers = await Promise.all(points.map(async (p) => {
      try {
        const m = await reader.media(p.row)
        const initRow = reader.initRow(p.row)
        if (!initRow) return null
        const keys = keyFrames(m.samples.runs, m.init.info.timescale)
        const key = keyFrameAt(keys, p.offsetMs)
        return { p, m, initRow, key, keys: keys.length, frame: `frame\u0000${p.row.id}\u0000${key}`, image: `image\u0000${p.row.id}\u0000${key}\u0000${shape}` }
      } catch {
        return null
      }
    }))
    // What is cached or under way, and what must be made.
    const missingImages: NonNullable<(typeof answers)[number]>[] = []
    for (const a of answers) {
      if (!a) continue
      // The same image twice in one request (time points closer than key frames): made once.
      if (seen.has(a.image)) { this.count('image', 'hit'); continue }
      seen.add(a.image)
      const held = this.lookup(a.image, 'image')
      if (held) { made.set(a.image, held); continue }
      missingImages.push(a)
      if (frames.has(a.frame)) continue
      const frame = this.lookup(a.frame, 'frame')
      if (frame) { frames.set(a.frame, frame as Promise<Frame>); continue }
      toDecode.set(a.frame, { name: a.frame, row: a.p.row, initRow: a.initRow, data: a.m.data, key: a.key, keys: a.keys, width: a.m.init.info.width || a.p.row.width, height: a.m.init.info.height || a.p.row.height })
    }
    for (const [name, frame] of this.decode([...toDecode.values()], store)) frames.set(name, frame)
    for (const a of missingImages) {
      const image = frames.get(a.frame)!.then((f) => encode(f, spec))
      made.set(a.image, this.make(a.image, image))
    }
    return Promise.all(answers.map(async (a) => {
      if (!a) return null
      try {
        return await made.get(a.image)! as Buffer
      } catch {
        return null
      }
    }))
  }

  /** A cached entry (made most recent) or one being made, counted; undefined when neither. */
  private lookup(name: string, kind: 'frame' | 'image'): Promise<Buffer | Frame> | undefined {
    const held = (kind === 'image' ? this.imageEntries : this.frameEntries).get(name)
    if (held) {
      this.count(kind, 'hit')
      return Promise.resolve(held)
    }
    const waiting = this.pending.get(name)
    if (waiting) {
      this.count(kind, 'hit')
      return waiting
    }
    this.count(kind, 'miss')
    return undefined
  }

  /** Registers `value` as being made under `name`, and keeps it once made. */
  private make<T extends Buffer | Frame>(name: string, value: Promise<T>): Promise<T> {
    this.pending.set(name, value)
    value.then((v) => this.keep(name, v), () => {}).finally(() => this.pending.delete(name))
    return value
  }

  /** Decodes key frames: grouped by capture session (one init segment), in batches of at most BATCH_BYTES of raw frames. */
  private decode(wanted: KeyFrame[], store: VideoStore): Map<string, Promise<Frame>> {
    const out = new Map<string, Promise<Frame>>()
    const sessions = new Map<number, KeyFrame[]>()
    for (const k of wanted) sessions.set(k.initRow.id, [...(sessions.get(k.initRow.id) ?? []), k])
    for (const group of sessions.values()) {
      group.sort((a, b) => a.row.sequence - b.row.sequence || a.key - b.key)
      const perFrame = group[0]!.width * group[0]!.height * 3
      let batch: KeyFrame[] = []
      let frames = 0
      const flush = () => {
        if (batch.length === 0) return
        const taken = batch
        const all = this.decodes.run(async () => {
          const init = await store.read(taken[0]!.initRow)
          this.stats.decodes++
          try {
            const frames = await decodeKeyFrames(init, taken)
            this.event('ffmpeg', 'ok')
            return frames
          } catch (err) {
            this.event('ffmpeg', 'failed')
            // One bad fragment should not cost the others their images: each on its own.
            const ids = [...new Set(taken.map((k) => k.row.id))]
            if (ids.length === 1) throw err
            const found = new Map<string, Frame>()
            for (const id of ids) {
              this.stats.decodes++
              try {
                for (const [name, frame] of await decodeKeyFrames(init, taken.filter((k) => k.row.id === id))) found.set(name, frame)
                this.event('ffmpeg', 'ok')
              } catch {
                // That fragment's time points answer MEDIA_ERROR.
                this.event('ffmpeg', 'failed')
              }
            }
            return found
          }
        })
        for (const k of taken) out.set(k.name, this.make(k.name, all.then((m) => m.get(k.name) ?? Promise.reject(new Error(`fragment ${k.row.id}: key frame ${k.key} not decoded`)))))
        batch = []
        frames = 0
      }
      for (const k of group) {
        // A fragment's key frames all come out of ffmpeg: count each fragment once.
        const added = batch.some((b) => b.row.id === k.row.id) ? 0 : k.keys
        if (batch.length > 0 && (frames + added) * perFrame > BATCH_BYTES) flush()
        if (!batch.some((b) => b.row.id === k.row.id)) frames += k.keys
        batch.push(k)
      }
      flush()
    }
    return out
  }

  private count(kind: 'frame' | 'image', outcome: 'hit' | 'miss'): void {
    const field = `${kind}${outcome === 'hit' ? 'Hits' : 'Misses'}` as 'frameHits'
    this.stats[field]++
    this.event(kind, outcome)
  }

  private keep(name: string, value: Buffer | Frame): void {
    if (Buffer.isBuffer(value)) this.stats.imageBytes = this.imageEntries.set(name, value)
    else this.stats.frameBytes = this.frameEntries.set(name, value)
  }
}

/** Entries by name within a byte bound, the least recently used going first. */
export class ByteLru {
  private readonly map = new Map<string, Buffer | Frame>()
  private bytes = 0
  constructor(private readonly max: number) {}

  get(name: string): Buffer | Frame | undefined {
    const v = this.map.get(name)
    if (v !== undefined) { this.map.delete(name); this.map.set(name, v) }
    return v
  }

  /** Keeps `value` (unless it alone is over the bound); answers the bytes held. */
  set(name: string, value: Buffer | Frame): number {
    const size = sizeOf(value)
    if (size > this.max) return this.bytes
    const old = this.map.get(name)
    if (old !== undefined) { this.map.delete(name); this.bytes -= sizeOf(old) }
    this.map.set(name, value)
    this.bytes += size
    for (const [oldest, v] of this.map) {
      if (this.bytes <= this.max) break
      this.map.delete(oldest)
      this.bytes -= sizeOf(v)
    }
    return this.bytes
  }
}

const sizeOf = (v: Buffer | Frame) => (Buffer.isBuffer(v) ? v.length : v.rgb.length)

/** The decode times (ms from the fragment's start) of a fragment's key frames, in order. */
function keyFrames(runs: { durations: number[]; sync: boolean[] }[], timescale: number): number[] {
  const out: number[] = []
  let t = 0
  for (const run of runs) {
    for (let i = 0; i < run.durations.length; i++) {
      if (run.sync[i]) out.push((t * 1000) / timescale)
      t += run.durations[i]!
    }
  }
  return out
}

/** The index of the last key frame at or before `offsetMs` (the first when none is). */
function keyFrameAt(keys: number[], offsetMs: number): number {
  let chosen = 0
  for (let i = 0; i < keys.length; i++) if (keys[i]! <= offsetMs) chosen = i
  return chosen
}

/**
 * The key frames of one capture session's fragments as raw RGB, by name: ffmpeg decodes only key
 * frames (`-skip_frame nokey`) of init + the fragments end to end (a valid fMP4), every one passed
 * through in order, so the n-th frame out is the n-th key frame in.
 */
function decodeKeyFrames(init: Buffer, wanted: KeyFrame[]): Promise<Map<string, Frame>> {
  const fragments: KeyFrame[] = []
  for (const k of wanted) if (!fragments.some((f) => f.row.id === k.row.id)) fragments.push(k)
  const { width, height } = wanted[0]!
  const size = width * height * 3
  const expected = fragments.reduce((s, f) => s + f.keys, 0)
  return new Promise((resolve, reject) => {
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-skip_frame', 'nokey', '-f', 'mp4', '-i', 'pipe:0', '-map', '0:v:0',
      // Frames renumbered: fragments end to end need not continue one another's times.
      '-vf', 'setpts=N', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    ff.stdout.on('data', (d: Buffer) => out.push(d))
    ff.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000) })
    ff.on('error', reject)
    ff.on('close', (code) => {
      const rgb = Buffer.concat(out)
      if (code !== 0) return reject(new Error(`ffmpeg exited with ${code}: ${err.trim()}`))
      if (rgb.length !== expected * size) return reject(new Error(`ffmpeg gave ${rgb.length} bytes for ${expected} ${width}x${height} key frames`))
      const frames = new Map<string, Frame>()
      let first = 0
      for (const f of fragments) {
        for (const k of wanted) if (k.row.id === f.row.id) frames.set(k.name, { width, height, rgb: Buffer.from(rgb.subarray((first + k.key) * size, (first + k.key + 1) * size)) })
        first += f.keys
      }
      resolve(frames)
    })
    ff.stdin.on('error', () => {})
    ff.stdin.end(Buffer.concat([init, ...fragments.map((f) => f.data)]))
  })
}

function encode(frame: Frame, spec: ImageSpec): Promise<Buffer> {
  let image = sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
  if (spec.width !== undefined || spec.height !== undefined) image = image.resize(spec.width ?? null, spec.height ?? null, { fit: spec.width !== undefined && spec.height !== undefined ? 'fill' : 'inside' })
  return (spec.format === 'PNG' ? image.png() : image.jpeg({ quality: spec.quality })).toBuffer()
}

/** At most `max` tasks at once; the rest wait their turn. */
class Gate {
  private running = 0
  private readonly queue: (() => void)[] = []
  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.queue.push(resolve))
    else this.running++
    try {
      return await task()
    } finally {
      const next = this.queue.shift()
      if (next) next()
      else this.running--
    }
  }
}
