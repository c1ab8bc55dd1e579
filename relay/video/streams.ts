/**
 * Video streams: created by CreateStream or, when the relay allows it, by a device's first fragment;
 * held in memory by name for the ingest path and saved in the catalog. Retention is an age on the
 * relay's clock: DataRetentionInHours, or for 0 the live buffer only (the relay's
 * videoLiveBufferSeconds), since a relay that kept nothing would have nothing to play live.
 */
import { randomBytes } from 'node:crypto'
import { VideoNameTaken, type VideoCatalog, type VideoStreamRecord } from './catalog.js'
import { invalidArgument, streamNotFound, VideoApiError, VideoErrorType } from './errors.js'
import type { FragmentFiles } from './files.js'

/** AWS's limits: stream names, retention (10 years), tags per stream. */
export const VIDEO_STREAM_NAME = /^[a-zA-Z0-9_.-]{1,256}$/
export const MAX_RETENTION_HOURS = 87_600
export const MAX_TAGS = 50

export interface NewVideoStream {
  name: string
  retentionHours: number
  deviceName?: string | null
  mediaType?: string | null
  kmsKeyId?: string | null
  tags?: Record<string, string>
  createdBy?: string | null
}

export interface VideoStreamsOptions {
  catalog: VideoCatalog
  files: FragmentFiles
  region: string
  accountId: string
  now: () => number
  liveBufferMs: number
  /** Video streams the relay may hold; CreateStream past it gets AccountStreamLimitExceededException. */
  maxStreams: number
}

export class VideoStreams {
  private readonly o: VideoStreamsOptions
  private readonly byName = new Map<string, VideoStreamRecord>()
  private readonly byId = new Map<string, VideoStreamRecord>()

  constructor(options: VideoStreamsOptions) {
    this.o = options
    for (const s of options.catalog.streams()) this.remember(s)
  }

  private remember(s: VideoStreamRecord): void {
    this.byName.set(s.name, s)
    this.byId.set(s.id, s)
  }

  list(): VideoStreamRecord[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  get(name: string): VideoStreamRecord | undefined {
    return this.byName.get(name)
  }

  getById(id: string): VideoStreamRecord | undefined {
    return this.byId.get(id)
  }

  ids(): Set<string> {
    return new Set(this.byId.keys())
  }

  arnOf(name: string, createdMs: number): string {
    return `arn:aws:kinesisvideo:${this.o.region}:${this.o.accountId}:stream/${name}/${createdMs}`
  }

  /** The stream a request names by StreamName or StreamARN (both: they must agree). */
  resolve(name: string | undefined, arn: string | undefined): VideoStreamRecord {
    if (name === undefined && arn === undefined) throw invalidArgument('Either StreamName or StreamARN must be specified.')
    const byArn = arn === undefined ? undefined : [...this.byId.values()].find((s) => s.arn === arn)
    if (arn !== undefined && !byArn) throw streamNotFound(arn)
    if (name !== undefined) {
      const byName = this.byName.get(name)
      if (!byName) throw streamNotFound(name)
      if (byArn && byArn !== byName) throw invalidArgument(`StreamName ${name} and StreamARN ${arn} name different streams.`)
      return byName
    }
    return byArn!
  }

  /** Synchronous (the catalog is), so the ingest path can create a stream on a device's first chunk. */
  create(input: NewVideoStream): VideoStreamRecord {
    if (this.byName.has(input.name)) throw new VideoApiError(VideoErrorType.ResourceInUseException, `The stream ${input.name} already exists.`)
    if (this.byName.size >= this.o.maxStreams) throw new VideoApiError(VideoErrorType.AccountStreamLimitExceededException, `The relay holds its limit of ${this.o.maxStreams} video streams.`)
    const tags = input.tags ?? {}
    if (Object.keys(tags).length > MAX_TAGS) throw new VideoApiError(VideoErrorType.TagsPerResourceExceededLimitException, `A stream has at most ${MAX_TAGS} tags.`)
    let createdMs = this.o.now()
    // A name deleted and created again within one millisecond still gets an ARN of its own.
    while ([...this.byId.values()].some((s) => s.arn === this.arnOf(input.name, createdMs))) createdMs++
    const stream: VideoStreamRecord = {
      id: `${input.name.slice(0, 200)}.${randomBytes(6).toString('hex')}`,
      name: input.name, arn: this.arnOf(input.name, createdMs), status: 'ACTIVE', version: newVersion(), createdMs,
      retentionHours: input.retentionHours, deviceName: input.deviceName ?? null, mediaType: input.mediaType ?? null,
      kmsKeyId: input.kmsKeyId ?? null, createdBy: input.createdBy ?? null,
    }
    try {
      this.o.catalog.insertStream(stream, tags)
    } catch (err) {
      if (err instanceof VideoNameTaken) throw new VideoApiError(VideoErrorType.ResourceInUseException, `The stream ${input.name} already exists.`)
      throw err
    }
    this.remember(stream)
    return stream
  }

  /** Streams `device` created by publishing to them (still existing). */
  createdBy(device: string): number {
    let n = 0
    for (const s of this.byId.values()) if (s.createdBy === device) n++
    return n
  }

  private checkVersion(stream: VideoStreamRecord, currentVersion: string | undefined): void {
    if (currentVersion !== undefined && currentVersion !== stream.version) {
      throw new VideoApiError(VideoErrorType.VersionMismatchException, `The stream version ${currentVersion} is not the current version ${stream.version}.`)
    }
  }

  updateRetention(stream: VideoStreamRecord, currentVersion: string, operation: 'INCREASE_DATA_RETENTION' | 'DECREASE_DATA_RETENTION', hours: number): void {
    this.checkVersion(stream, currentVersion)
    const next = operation === 'INCREASE_DATA_RETENTION' ? stream.retentionHours + hours : stream.retentionHours - hours
    if (next < 0) throw invalidArgument(`The retention of ${stream.name} is ${stream.retentionHours} hours; it cannot decrease by ${hours}.`)
    if (next > MAX_RETENTION_HOURS) throw invalidArgument(`The retention of ${stream.name} is ${stream.retentionHours} hours; it cannot increase by ${hours} past ${MAX_RETENTION_HOURS}.`)
    const version = newVersion()
    this.o.catalog.updateStream(stream.id, { retentionHours: next, version })
    stream.retentionHours = next
    stream.version = version
  }

  updateStream(stream: VideoStreamRecord, currentVersion: string, change: { deviceName?: string; mediaType?: string }): void {
    this.checkVersion(stream, currentVersion)
    const version = newVersion()
    this.o.catalog.updateStream(stream.id, { ...change, version })
    Object.assign(stream, change, { version })
  }

  /** Removes the stream and its rows, then its files (a crash between leaves files the next start sweeps). */
  async delete(stream: VideoStreamRecord, currentVersion?: string): Promise<void> {
    this.checkVersion(stream, currentVersion)
    this.o.catalog.deleteStream(stream.id)
    this.byName.delete(stream.name)
    this.byId.delete(stream.id)
    stream.status = 'DELETING'
    await this.o.files.removeStream(stream.id)
  }

  tags(stream: VideoStreamRecord): Record<string, string> {
    return this.o.catalog.tags(stream.id)
  }

  tag(stream: VideoStreamRecord, tags: Record<string, string>): void {
    const merged = { ...this.o.catalog.tags(stream.id), ...tags }
    if (Object.keys(merged).length > MAX_TAGS) throw new VideoApiError(VideoErrorType.TagsPerResourceExceededLimitException, `A stream has at most ${MAX_TAGS} tags; this would give ${stream.name} ${Object.keys(merged).length}.`)
    this.o.catalog.putTags(stream.id, tags)
  }

  untag(stream: VideoStreamRecord, keys: readonly string[]): void {
    this.o.catalog.removeTags(stream.id, keys)
  }

  /** How long a stream's fragments are kept, in ms. */
  retentionMs(stream: VideoStreamRecord): number {
    return stream.retentionHours > 0 ? stream.retentionHours * 3_600_000 : this.o.liveBufferMs
  }
}

/** AWS's Version: an opaque token of letters and digits, new at each change. */
function newVersion(): string {
  return randomBytes(15).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 20)
}
