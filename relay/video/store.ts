/**
 * The video store: fragments kept as files and indexed in the catalog, whatever brought them (MQTT
 * chunks from a device, PutMedia). `put` stores one fragment exactly once per producer identity
 * (stream, device, session, sequence): its media is checked first (an init segment must be one; a
 * media fragment needs its session's init segment and must start on a key frame), then its file is
 * written and fsynced, then its row commits with the rows of other puts that arrived meanwhile (one
 * SQLite commit for them all), and only then does `put` resolve with the fragment number. A resend —
 * concurrent, or after a crash of either side — gets the same number and writes nothing.
 */
import { ErrorCode, StorageError } from '../../shared/errors.js'
import { VideoAckError } from '../../shared/video.js'
import { fragmentNumberOf, type FragmentQuery, type FragmentRecord, type Inserted, type NewFragment, type VideoCatalog, type VideoStreamRecord } from './catalog.js'
import type { FragmentFiles } from './files.js'
import { MediaError, type InitInfo, type MediaParser } from './media.js'
import type { VideoStreams } from './streams.js'

export interface FragmentInput {
  stream: VideoStreamRecord
  /** '' for PutMedia. */
  device: string
  session: bigint
  sequence: number
  producerTimeMs: number
  clockSynced: boolean
  data: Buffer
  crc32c: number
}

export type PutOutcome =
  | { ok: true; fragmentNumber: string; duplicate: boolean; row: FragmentRecord }
  | { ok: false; code: typeof VideoAckError.UNKNOWN_SESSION | typeof VideoAckError.INVALID_MEDIA | typeof VideoAckError.STREAM_NOT_FOUND; message: string }

export interface VideoStoreOptions {
  catalog: VideoCatalog
  files: FragmentFiles
  streams: VideoStreams
  parser: MediaParser
  /** The relay's clock (ms): server timestamps and retention. */
  now: () => number
  /** Bytes the data directory's cap counts besides video (the shard logs); the cap itself (0: none). */
  otherBytes: () => number
  maxDataBytes: number
}

/** Parsed init segments kept for their sessions' fragments; older ones are read back from their file. */
const INIT_CACHE = 1024
/** Rows deleted per retention step. */
const RETENTION_BATCH = 1000

export class VideoStore {
  private readonly o: VideoStoreOptions
  private readonly inflight = new Map<string, Promise<PutOutcome>>()
  private readonly inits = new Map<string, InitInfo>()
  private queued: { row: NewFragment; resolve: (r: Inserted) => void; reject: (e: Error) => void }[] = []
  /** Bytes being written now, counted against the cap before their rows exist. */
  private writing = 0

  constructor(options: VideoStoreOptions) {
    this.o = options
  }

  get catalog(): VideoCatalog {
    return this.o.catalog
  }

  /** Removes what no row names (unfinished writes, deleted streams' files); how many files went. */
  async open(): Promise<number> {
    return this.o.files.sweep(this.o.streams.ids(), new Set(this.o.catalog.files()))
  }

  totalBytes(): number {
    return this.o.catalog.totalBytes() + this.writing
  }

  /** Throws a StorageError when the data directory is at its cap (shard logs and video together). */
  checkCapacity(extra = 0): void {
    const cap = this.o.maxDataBytes
    if (cap > 0 && this.o.otherBytes() + this.totalBytes() + extra > cap) {
      throw new StorageError(ErrorCode.STORAGE_FULL, `the relay's data directory is at its cap of ${cap} bytes`)
    }
  }

  async put(input: FragmentInput): Promise<PutOutcome> {
    const key = `${input.stream.id}\u0000${input.device}\u0000${input.session}\u0000${input.sequence}`
    const running = this.inflight.get(key)
    if (running) {
      const outcome = await running
      return outcome.ok ? { ...outcome, duplicate: true } : outcome
    }
    const work = this.store(input).finally(() => this.inflight.delete(key))
    this.inflight.set(key, work)
    return work
  }

  private async store(input: FragmentInput): Promise<PutOutcome> {
    const { stream, device, sequence } = input
    const session = input.session.toString()
    const held = this.o.catalog.fragment(stream.id, device, session, sequence)
    if (held) return { ok: true, fragmentNumber: fragmentNumberOf(held.id), duplicate: true, row: held }
    let init: InitInfo
    let durationMs = 0
    let keyFrame = false
    try {
      if (sequence === 0) {
        init = this.o.parser.parseInit(input.data)
      } else {
        const found = await this.initOf(stream, device, input.session)
        if (!found) return { ok: false, code: VideoAckError.UNKNOWN_SESSION, message: `session ${session} of ${device || 'PutMedia'} has no init segment on stream ${stream.name}: send it (sequence 0) first` }
        init = found
        const media = this.o.parser.parseFragment(input.data, init)
        if (!media.keyFrame) return { ok: false, code: VideoAckError.INVALID_MEDIA, message: `fragment ${sequence} does not start on a key frame` }
        durationMs = media.durationMs
        keyFrame = true
      }
    } catch (err) {
      if (!(err instanceof MediaError)) throw err
      return { ok: false, code: VideoAckError.INVALID_MEDIA, message: `${sequence === 0 ? 'init segment' : `fragment ${sequence}`}: ${err.message}` }
    }
    this.checkCapacity(input.data.length)
    const file = this.o.files.pathOf(stream.id, device, input.session, sequence)
    this.writing += input.data.length
    let inserted: Inserted
    try {
      try {
        await this.o.files.write(file, input.data)
      } catch (err) {
        throw new StorageError(ErrorCode.STORAGE_FAILED, `writing ${file}: ${(err as Error).message}`, { cause: err })
      }
      inserted = await this.commit({
        streamId: stream.id, device, session, sequence, producerMs: input.producerTimeMs, serverMs: this.o.now(), durationMs,
        bytes: input.data.length, codec: init.codec, width: init.width, height: init.height, timescale: init.timescale,
        keyFrame, clockSynced: input.clockSynced, crc32c: input.crc32c >>> 0, file,
      })
    } finally {
      this.writing -= input.data.length
    }
    if (!inserted.row) {
      // Deleted while the file was written: the stream's files are gone or going; so is this one.
      await this.o.files.remove([file]).catch(() => {})
      return { ok: false, code: VideoAckError.STREAM_NOT_FOUND, message: `stream ${stream.name} was deleted` }
    }
    if (sequence === 0) this.cacheInit(`${stream.id}\u0000${device}\u0000${session}`, init)
    return { ok: true, fragmentNumber: fragmentNumberOf(inserted.row.id), duplicate: !inserted.inserted, row: inserted.row }
  }

  /** The parsed init segment of a session: cached, or being stored now, or read back from its file. */
  private async initOf(stream: VideoStreamRecord, device: string, session: bigint): Promise<InitInfo | null> {
    const key = `${stream.id}\u0000${device}\u0000${session}`
    const cached = this.inits.get(key)
    if (cached) return cached
    const pending = this.inflight.get(`${key}\u00000`)
    if (pending) await pending.catch(() => {})
    const row = this.o.catalog.fragment(stream.id, device, session.toString(), 0)
    if (!row) return null
    const info = this.o.parser.parseInit(await this.o.files.read(row.file))
    this.cacheInit(key, info)
    return info
  }

  private cacheInit(key: string, info: InitInfo): void {
    this.inits.delete(key)
    this.inits.set(key, info)
    if (this.inits.size > INIT_CACHE) this.inits.delete(this.inits.keys().next().value!)
  }

  /** Queues a row for the next commit, which takes every row queued by then in one transaction. */
  private commit(row: NewFragment): Promise<Inserted> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush())
      this.queued.push({ row, resolve, reject })
    })
  }

  private flush(): void {
    const batch = this.queued
    this.queued = []
    let results: Inserted[]
    try {
      results = this.o.catalog.insertFragments(batch.map((b) => b.row))
    } catch (err) {
      const failure = new StorageError(ErrorCode.STORAGE_FAILED, `indexing video fragments: ${(err as Error).message}`, { cause: err })
      for (const b of batch) b.reject(failure)
      return
    }
    batch.forEach((b, i) => b.resolve(results[i]!))
  }

  list(query: FragmentQuery): FragmentRecord[] {
    return this.o.catalog.listFragments(query)
  }

  read(row: FragmentRecord): Promise<Buffer> {
    return this.o.files.read(row.file)
  }

  /** Deletes what is past each stream's retention on the relay's clock; returns bytes freed. */
  async enforceRetention(now = this.o.now()): Promise<number> {
    let freed = 0
    for (const stream of this.o.streams.list()) {
      const before = now - this.o.streams.retentionMs(stream)
      for (;;) {
        const doomed = this.o.catalog.expired(stream.id, before, RETENTION_BATCH)
        if (doomed.length === 0) break
        // Rows first: a crash before the files go leaves files no row names, which the next start sweeps.
        this.o.catalog.deleteFragments(doomed.map((r) => r.id))
        await this.o.files.remove(doomed.map((r) => r.file))
        for (const r of doomed) {
          freed += r.bytes
          if (r.sequence === 0) this.inits.delete(`${r.streamId}\u0000${r.device}\u0000${r.session}`)
        }
        if (doomed.length < RETENTION_BATCH) break
      }
    }
    return freed
  }
}
