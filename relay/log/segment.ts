/**
 * One segment file of a shard log, named by its zero-padded base offset (`00000000000000000000.log`),
 * with a sparse index of (offset, position, arrival time) every INDEX_INTERVAL bytes. The log file is
 * the truth; the `.idx` file beside a sealed segment is a cache that is rebuilt when missing or wrong.
 * Behind the store's write-ahead journal a segment keeps its newest bytes in memory (`writeBehind`),
 * served to reads from there, until a checkpoint writes them; its file is opened through the store's
 * bounded `HandleCache` and may be closed between uses.
 *
 * Index file entry (INDEX_ENTRY_SIZE = 24 bytes, little-endian)
 *
 * | offset | size | field    |
 * | -----: | ---: | -------- |
 * |      0 |    8 | offset   | f64 (an integer below 2^53)
 * |      8 |    8 | position | f64 (byte position in the segment)
 * |     16 |    8 | arrival  | f64 (ms)
 */
import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'

export const INDEX_INTERVAL = 4096
export const INDEX_ENTRY_SIZE = 24

export const segmentName = (base: number, ext: 'log' | 'idx') => `${String(base).padStart(20, '0')}.${ext}`
export const isSegmentLog = (name: string) => /^\d{20}\.log$/.test(name)

/** What a segment kept behind, taken for a write of many segments in one job. */
export interface BatchPart {
  segment: Segment
  fd: number
  /** Where the chunks go in the file, one after another. */
  position: number
  chunks: readonly Buffer[]
  bytes: number
}

/** Makes a directory's entries (a new file, a removed one) survive power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, fsc.O_RDONLY)
  try { await handle.sync() } finally { await handle.close() }
}

/** Writes all of `data` at `position` (a write may take only part of it). */
export async function writeFully(handle: fsp.FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written)
    written += bytesWritten
  }
}

/** Writes the pieces one after another from `position`, in as few writev calls as the kernel allows (it may take part of them). */
export async function writevFully(handle: fsp.FileHandle, pieces: readonly Buffer[], position: number): Promise<void> {
  let rest = pieces.filter((p) => p.length > 0)
  while (rest.length > 0) {
    // Linux takes at most IOV_MAX (1,024) pieces a call.
    const { bytesWritten } = await handle.writev(rest.slice(0, IOV_MAX), position)
    position += bytesWritten
    let n = bytesWritten
    let i = 0
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length
    rest = rest.slice(i)
    if (n > 0) rest[0] = rest[0]!.subarray(n)
  }
}
/** The most pieces Linux takes in one writev. */
export const IOV_MAX = 1024

/** Up to `length` bytes at `position`; fewer only where the file ends. */
export async function readAt(handle: fsp.FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got === length ? buf : buf.subarray(0, got)
}

/** Bytes of segment heads a store keeps from recovery for later reads: 256 heads of 16 KiB, as a cache of 256 files kept before it followed the file limit. */
export const HEAD_BUDGET = 4 * 1024 * 1024

/**
 * The segment files a store keeps open: at most `max` (least recently used closed first, never one in
 * use), so thousands of shards fit a process's file limit (systemd's default soft limit is 1024).
 * A segment reopens its file when it next needs it. It also holds the store's budget for the heads
 * segments keep from recovery.
 */
export class HandleCache {
  readonly max: number
  /** Segments holding an open file, least recently used first (a Set keeps insertion order). */
  private readonly open = new Set<Segment>()
  /** Bytes of segment heads kept from recovery (Segment.keepOpened), at most `HEAD_BUDGET`. */
  private heads = 0

  constructor(max: number) {
    this.max = Math.max(1, max)
  }

  /** How many segment files are open now. */
  get size(): number {
    return this.open.size
  }

  /** Takes `bytes` of the heads' budget; false when it would go past it. */
  keepHead(bytes: number): boolean {
    if (this.heads + bytes > HEAD_BUDGET) return false
    this.heads += bytes
    return true
  }

  /** Gives `bytes` of a kept head back. */
  dropHead(bytes: number): void {
    this.heads -= bytes
  }

  touched(segment: Segment): void {
    this.open.delete(segment)
    this.open.add(segment)
  }

  forget(segment: Segment): void {
    this.open.delete(segment)
  }

  /** Closes the least recently used files that are not in use until at most `max` are open. */
  trim(): void {
    if (this.open.size <= this.max) return
    for (const segment of this.open) {
      if (this.open.size <= this.max) break
      if (segment.idle()) {
        this.open.delete(segment)
        void segment.release()
      }
    }
  }
}

/** A cache for a segment opened on its own (tests, tools): never closes a file early. */
const UNBOUNDED = new HandleCache(Number.MAX_SAFE_INTEGER)

export class Segment {
  readonly base: number
  readonly dir: string
  private readonly cache: HandleCache
  /** The open file, when it is open; `use` opens it. */
  private handle: fsp.FileHandle | null
  private opening: Promise<fsp.FileHandle> | null = null
  /** Operations using the file now: it is not closed under them. */
  private pins = 0
  /** Bytes of good records in the file. */
  size = 0
  /** Offset one past the last record in the segment. */
  end: number
  firstArrival = 0
  lastArrival = 0
  sealed = false
  /** The file is closed (removed, or its log closed): nothing more is written or synced through it. */
  closed = false
  /** Bytes the file holds (written by this process or found at open); the tail kept behind follows them. */
  written = 0
  private tail: Buffer[] = []
  /** Where each chunk of the tail starts in the file. */
  private tailStarts: number[] = []
  private tailBytes = 0
  private draining: Promise<void> | null = null
  /** Drains asked for and not yet ended, a batch's write (`takeForBatch`) included. */
  private drainsPending = 0
  /** The first fdatasync of this file that failed: every later sync fails with it. */
  private syncFailed: Error | null = null
  /** A write to the file failed (a full disk): it may hold bytes past `written` until `rewind`. */
  private writeFailed = false
  // sparse index
  offsets: number[] = []
  positions: number[] = []
  times: number[] = []
  /** Damaged byte ranges found by recovery or reads: position → position of the next good record. */
  holes = new Map<number, number>()
  /**
   * The file's first bytes as recovery read them at open, served to reads while the file stays open
   * in the cache (a restart's next read of a small shard, for its producer table, wants them again).
   */
  private opened: Buffer | null = null

  constructor(dir: string, base: number, handle: fsp.FileHandle, cache: HandleCache = UNBOUNDED) {
    this.dir = dir
    this.base = base
    this.end = base
    this.handle = handle
    this.cache = cache
    cache.touched(this)
    cache.trim()
  }

  /** A new, empty segment file whose name is durable before anything is written to it. */
  static async create(dir: string, base: number, cache?: HandleCache): Promise<Segment> {
    const handle = await fsp.open(join(dir, segmentName(base, 'log')), 'wx+', 0o600)
    await fsyncDir(dir)
    return new Segment(dir, base, handle, cache)
  }

  /** An existing segment file, opened for recovery. */
  static async open(dir: string, name: string, cache?: HandleCache): Promise<Segment> {
    return new Segment(dir, Number(name.slice(0, 20)), await fsp.open(join(dir, name), 'r+'), cache)
  }

  /** Runs `work` on the segment's open file, opening it first if the cache closed it; it stays open meanwhile. */
  async use<T>(work: (handle: fsp.FileHandle) => Promise<T>): Promise<T> {
    // A closing segment lets work already under way finish on its open file, but is never reopened.
    if (this.closed && !this.handle) throw new Error(`segment ${this.logPath} is closed`)
    this.pins++
    try {
      let handle = this.handle
      if (!handle) {
        this.opening ??= fsp.open(this.logPath, 'r+').finally(() => { this.opening = null })
        handle = this.handle = await this.opening
      }
      this.cache.touched(this)
      return await work(handle)
    } finally {
      this.pins--
      this.cache.trim()
    }
  }

  /** Whether the file is open and nothing is using it: the cache may close it. */
  idle(): boolean {
    return this.pins === 0 && this.handle !== null && this.opening === null
  }

  /**
   * Keeps the file's first bytes, read at open, up to `size` (the good bytes: nothing before them is
   * written again), while the store's budget for them allows: a cache of thousands of open files
   * must not keep thousands of heads.
   */
  keepOpened(head: Buffer, size: number): void {
    const kept = head.length > size ? head.subarray(0, size) : head
    if (!this.cache.keepHead(kept.length)) return
    this.opened = kept
  }

  /** Forgets the kept head, giving its bytes back to the budget. */
  private dropOpened(): void {
    if (this.opened) this.cache.dropHead(this.opened.length)
    this.opened = null
  }

  /** Closes the file for the cache; the next `use` reopens it. */
  async release(): Promise<void> {
    const handle = this.handle
    this.dropOpened()
    if (!handle || this.pins > 0) return
    this.handle = null
    await handle.close().catch(() => {})
  }

  /** Writes `data` at byte `position` (right after the segment's good bytes) and waits until it is on disk. */
  async write(data: Buffer, position: number): Promise<void> {
    await this.use(async (handle) => {
      try {
        await writeFully(handle, data, position)
      } catch (err) {
        this.writeFailed = true
        throw err
      }
      await this.datasync(handle)
    })
    this.written = position + data.length
  }

  /**
   * Keeps `data` (pieces, one after another), bound for byte `position`, in memory (behind a
   * write-ahead journal that made it durable): reads see it at once, the file gets it at the next
   * `sync` (or seal), in one writev.
   */
  writeBehind(data: readonly Buffer[], position: number): void {
    if (position !== this.written + this.tailBytes) throw new Error(`write-behind at ${position}, expected ${this.written + this.tailBytes}`)
    for (const piece of data) {
      this.tail.push(piece)
      this.tailStarts.push(this.written + this.tailBytes)
      this.tailBytes += piece.length
    }
  }

  /**
   * Writes what is kept behind to the file, and with `sync` makes the file durable; one drain at a
   * time while appends go on, and `close` waits for the one under way.
   */
  private drain(sync = false): Promise<void> {
    this.drainsPending++
    const run = (this.draining ?? Promise.resolve()).then(async () => {
      if (this.closed) return
      // After a failed fdatasync, Linux may have dropped the dirty pages and report success on the
      // next call: this file is never called synced again in this run (the journal keeps its entries).
      if (sync && this.syncFailed) throw this.syncFailed
      if (this.tailBytes === 0) {
        // A file the cache closed was synced by nothing: it may still hold unsynced writes, so it is opened to sync.
        if (sync) await this.use((handle) => this.datasync(handle))
        return
      }
      // What is behind now (a copy: appends that land while it is written are pushed to the tail, and stay for the next drain).
      const n = this.tail.length
      const chunks = this.tail.slice(0, n)
      const bytes = this.tailBytes
      await this.use((handle) => writevFully(handle, chunks, this.written)).catch((err: unknown) => {
        this.writeFailed = true
        throw err
      })
      // New arrays, never shortened in place: a read holding the old (written, tail) pair stays consistent.
      this.tail = this.tail.slice(n)
      this.tailStarts = this.tailStarts.slice(n)
      this.tailBytes -= bytes
      this.written += bytes
      if (sync) await this.use((handle) => this.datasync(handle))
    }).finally(() => { this.drainsPending-- })
    this.draining = run.catch(() => {})
    return run
  }

  private async datasync(handle: fsp.FileHandle): Promise<void> {
    try {
      await handle.datasync()
    } catch (err) {
      this.syncFailed = err as Error
      throw err
    }
  }

  /** Bytes kept behind, not yet written to the file. */
  get behind(): number {
    return this.tailBytes
  }

  /**
   * Writes what is kept behind to the file now, not synced: done a little at a time, this keeps a
   * checkpoint from handing the file system megabytes of dirty pages at once, which the next
   * fdatasync of the journal would then wait for. A failure here is met again by the checkpoint's `sync`.
   */
  writeOut(): void {
    this.drain(false).catch(() => {})
  }

  /** Makes what was kept behind durable in the file (a journal checkpoint); a closed segment has nothing left to keep. */
  async sync(): Promise<void> {
    await this.drain(true)
  }

  /**
   * Writes what is kept behind to the file, unsynced, for a sync of the whole file system that
   * follows (`syncfs`); throws if a sync of this file failed before, as `sync` does.
   */
  async writeForSync(): Promise<void> {
    if (this.syncFailed) throw this.syncFailed
    await this.drain(false)
  }

  /**
   * Takes what is kept behind for a write of many segments in one job (relay/log/filelog.ts): the
   * chunks, where they go and the open file's descriptor; the file stays open, and later drains wait
   * for `done`, until `batchDone`. Null when nothing is behind, a drain is under way or the file is
   * not open (the caller then uses `writeForSync`). Throws if a sync of this file failed before.
   */
  takeForBatch(done: Promise<void>): BatchPart | null {
    if (this.syncFailed) throw this.syncFailed
    const handle = this.handle
    if (this.closed || !handle || this.opening || this.drainsPending > 0 || this.tailBytes === 0) return null
    this.pins++
    this.drainsPending++
    this.draining = done
    return { segment: this, fd: handle.fd, position: this.written, chunks: this.tail.slice(), bytes: this.tailBytes }
  }

  /** The batch's write of `part` ended: without `err` its bytes are in the file (unsynced), with it they stay behind. */
  batchDone(part: BatchPart, err?: Error): void {
    this.pins--
    this.drainsPending--
    if (err) this.writeFailed = true
    else {
      const n = part.chunks.length
      // New arrays, as in `drain`: a read holding the old (written, tail) pair stays consistent.
      this.tail = this.tail.slice(n)
      this.tailStarts = this.tailStarts.slice(n)
      this.tailBytes -= part.bytes
      this.written += part.bytes
    }
    this.cache.trim()
  }

  /**
   * After a failed commit, before commits are taken again (a full disk that has room again): forgets
   * what was kept behind past `size` (the failed commit's bytes: never committed), and cuts the file
   * to where this process's writes ended, or to `size` if they went past it, so that no byte of a
   * failed write is left for a later read or a restart's recovery to take for a record. The cut is
   * synced. Throws, changing nothing, when a sync of this file failed: Linux may have dropped its
   * pages, and only a restart's journal replay restores them.
   */
  async rewind(): Promise<void> {
    if (this.syncFailed) throw this.syncFailed
    await this.draining
    if (this.closed) return
    let keep = 0
    while (keep < this.tail.length && this.tailStarts[keep]! < this.size) keep++
    if (keep > 0 && this.tailStarts[keep - 1]! + this.tail[keep - 1]!.length > this.size) throw new Error(`${this.logPath}: kept-behind bytes straddle the committed end`)
    if (keep < this.tail.length) {
      this.tail = this.tail.slice(0, keep)
      this.tailStarts = this.tailStarts.slice(0, keep)
      this.tailBytes = 0
      for (const chunk of this.tail) this.tailBytes += chunk.length
    }
    if (!this.writeFailed && this.written <= this.size) return
    const cut = Math.min(this.written, this.size)
    await this.use(async (handle) => {
      if ((await handle.stat()).size > cut) {
        await handle.truncate(cut)
        await this.datasync(handle)
      }
    })
    this.written = cut
    this.writeFailed = false
  }

  /** A sync of the whole file system after `writeForSync` failed: this file is never called synced again. */
  failSync(err: Error): void {
    this.syncFailed ??= err
  }

  /** Up to `length` bytes at `position`, from the file and what is kept behind; fewer only where the segment ends. */
  async readAt(position: number, length: number): Promise<Buffer> {
    const opened = this.opened
    if (opened && position + length <= opened.length) return opened.subarray(position, position + length)
    // Taken before awaiting: a drain that lands meanwhile moves bytes from the tail to the file, where they stay.
    const written = this.written
    const tail = this.tail
    const starts = this.tailStarts
    const count = tail.length
    const end = position + length
    if (end <= written || count === 0) return this.use((handle) => readAt(handle, position, length))
    const parts = position < written ? [await this.use((handle) => readAt(handle, position, written - position))] : []
    // The last chunk that starts at or before `position` (a tail may hold thousands of commits' chunks).
    let lo = 0
    let hi = count - 1
    let i = 0
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (starts[mid]! <= position) { i = mid; lo = mid + 1 } else hi = mid - 1
    }
    for (; i < count && starts[i]! < end; i++) {
      const chunk = tail[i]!
      const at = starts[i]!
      if (at + chunk.length > position) parts.push(chunk.subarray(Math.max(position - at, 0), Math.min(chunk.length, end - at)))
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }

  /** Closes the file once a drain under way has finished (it stays on disk; what was kept behind is in the journal). */
  async close(): Promise<void> {
    this.closed = true
    this.dropOpened()
    await this.draining
    this.cache.forget(this)
    while (this.pins > 0 || this.opening) await new Promise((r) => setImmediate(r))
    const handle = this.handle
    this.handle = null
    await handle?.close().catch(() => {})
  }

  /** No more records go here: the index is saved beside it, durably, for the next open. */
  async seal(): Promise<void> {
    await this.drain()
    await fsp.writeFile(this.indexPath, this.encodeIndex(), { mode: 0o600 })
    const idx = await fsp.open(this.indexPath, 'r')
    try { await idx.sync() } finally { await idx.close() }
    this.sealed = true
  }

  /** Closes the file and deletes it with its index. */
  async remove(): Promise<void> {
    await this.close()
    await fsp.rm(this.logPath, { force: true })
    await fsp.rm(this.indexPath, { force: true })
  }

  get logPath(): string {
    return join(this.dir, segmentName(this.base, 'log'))
  }
  get indexPath(): string {
    return join(this.dir, segmentName(this.base, 'idx'))
  }

  /** Notes one record that now lies at `position`, adding an index entry when due. */
  noteRecord(offset: number, position: number, arrival: number): void {
    const lastPos = this.positions.length ? this.positions[this.positions.length - 1]! : -INDEX_INTERVAL
    if (position - lastPos >= INDEX_INTERVAL) {
      this.offsets.push(offset)
      this.positions.push(position)
      this.times.push(arrival)
    }
    if (this.firstArrival === 0) this.firstArrival = arrival
    this.lastArrival = arrival
    this.end = offset + 1
  }

  /** The index entry at or before `offset`: where to start scanning for it. */
  seekOffset(offset: number): { offset: number; position: number } {
    let lo = 0
    let hi = this.offsets.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.offsets[mid]! <= offset) { found = mid; lo = mid + 1 } else hi = mid - 1
    }
    return found < 0 ? { offset: this.base, position: 0 } : { offset: this.offsets[found]!, position: this.positions[found]! }
  }

  /** The last index entry whose arrival time is before `ms`: where to start scanning for it. */
  seekTime(ms: number): { offset: number; position: number } {
    let lo = 0
    let hi = this.times.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.times[mid]! < ms) { found = mid; lo = mid + 1 } else hi = mid - 1
    }
    return found < 0 ? { offset: this.base, position: 0 } : { offset: this.offsets[found]!, position: this.positions[found]! }
  }

  encodeIndex(): Buffer {
    const buf = Buffer.alloc(this.offsets.length * INDEX_ENTRY_SIZE)
    for (let i = 0; i < this.offsets.length; i++) {
      buf.writeDoubleLE(this.offsets[i]!, i * INDEX_ENTRY_SIZE)
      buf.writeDoubleLE(this.positions[i]!, i * INDEX_ENTRY_SIZE + 8)
      buf.writeDoubleLE(this.times[i]!, i * INDEX_ENTRY_SIZE + 16)
    }
    return buf
  }

  /** Loads a saved index if it is consistent with the segment; returns false when it must be rebuilt. */
  loadIndex(buf: Buffer, fileSize: number): boolean {
    if (buf.length === 0 || buf.length % INDEX_ENTRY_SIZE !== 0) return false
    const n = buf.length / INDEX_ENTRY_SIZE
    let prevOffset = -1
    let prevPos = -1
    let prevTime = -Infinity
    for (let i = 0; i < n; i++) {
      const offset = buf.readDoubleLE(i * INDEX_ENTRY_SIZE)
      const position = buf.readDoubleLE(i * INDEX_ENTRY_SIZE + 8)
      const time = buf.readDoubleLE(i * INDEX_ENTRY_SIZE + 16)
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(position) || offset <= prevOffset || position <= prevPos ||
        position >= fileSize || offset < this.base || !(time >= prevTime)) return false
      this.offsets.push(offset)
      this.positions.push(position)
      this.times.push(time)
      prevOffset = offset
      prevPos = position
      prevTime = time
    }
    return this.offsets[0] === this.base && this.positions[0] === 0
  }
}
