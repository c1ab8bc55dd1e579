/**
 * The embedded shard-log store: one directory of segment files per shard under
 * `<root>/<stream>/<shard>/`. With a journal (relay/log/journal.ts, the relay's default) a group
 * commit of more than a few segments costs one append and one fdatasync of the journal however many
 * shards it touched, each segment's bytes kept behind in memory and written and synced at each
 * checkpoint (so the memory is bounded by the journal's size; a checkpoint of many segments writes
 * them in one job on the thread pool and syncs them with one syncfs, through the native addon); a
 * commit of a few segments, and every commit without a journal, writes and fdatasyncs each touched
 * segment.
 * Segment files are opened through a bounded cache. The shard log is in `fileshard.ts`, what all
 * stores share in `store.ts`.
 */
import { promises as fsp } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { FileShardLog, ROLL, type StagedWrite } from './fileshard.js'
import { Journal, redoWrites, settleAll, type Replayed } from './journal.js'
import { errnoError, loadFileIo, type FileIo } from './fileio.js'
import { fsyncDir, HandleCache, type BatchPart, type Segment } from './segment.js'
import { ShardLogStore, type LogStoreOptions } from './store.js'

export interface FileLogOptions extends LogStoreOptions {
  root: string
  /** The write-ahead journal's files (a prefix); none: every commit fdatasyncs each segment it wrote. */
  journalPath?: string
  /**
   * False: commits fdatasync each segment they wrote, and the journal at `journalPath` is only
   * replayed at open (what a run with the journal left) and then emptied, so it can be switched off
   * between runs whatever way the last one ended. Default true.
   */
  journal?: boolean
  /** Commits move to the journal's other file, and the full one is checkpointed, once it holds this many bytes (default 16 MiB; memory kept behind stays under twice this). */
  journalBytes?: number
  /** Segment files kept open at most (least recently used closed first; default 256), so thousands of shards fit a file limit of 1024. */
  maxOpenFiles?: number
  /** Told what the journal's replay did at open, when there was one to replay. */
  onReplay?: (replayed: Replayed) => void
  /**
   * A commit touching at most this many segments skips the journal: each segment is written and
   * fdatasynced itself, in parallel (default 4, the size of libuv's thread pool). 0: every commit
   * goes through the journal.
   */
  directMaxSegments?: number
  /**
   * Batched writes and syncfs(2) for checkpoints of many segments (default: the native addon's, when
   * it is loaded); null: every segment is written and fdatasynced itself.
   */
  fileIo?: FileIo | null
}

/**
 * Commits of this many segments or fewer are written and fdatasynced in the segments themselves.
 * Through the journal every byte is written twice (journal, then segment); measured at 4 shards
 * (bench/mqtt-ingest.ts, alternating runs): 0.19–0.21 of bare aedes with every commit journaled,
 * 0.27–0.28 with none. When a commit touches thousands of segments, one journal fdatasync wins.
 */
const DIRECT_MAX_SEGMENTS = 4

/** A segment writes out (unsynced) what it keeps behind once it holds this much, so checkpoints stay small. */
const WRITE_OUT_BYTES = 256 * 1024

/**
 * A checkpoint of at least this many segments on the store's file system writes them all out and
 * then makes them durable with one syncfs, not one fdatasync each. Measured here (10,000 files of
 * 1.7 KB): 0.55–0.76 s of fdatasync on four threads, 0.045 s for one syncfs; a syncfs also writes
 * out whatever else on the file system is dirty, so a handful of segments is synced file by file.
 */
const SYNCFS_MIN_SEGMENTS = 64

/**
 * File systems (statfs f_type) whose syncfs(2) does not promise the data is on stable storage: FUSE
 * (the kernel has no writeback to do and does not ask the daemon), NFS, SMB. Their segments are
 * fdatasynced each, which every one of them forwards.
 */
const SYNCFS_UNRELIABLE = new Set([0x65735546 /* FUSE */, 0x6969 /* NFS */, 0xff534d42 /* CIFS */, 0xfe534d42 /* SMB2 */, 0x517b /* SMB */])

/**
 * Writes out (unsynced) what each segment kept behind: those open and not draining in one job of the
 * thread pool (their chunks copied into one buffer), the rest each on its own.
 */
async function writeBatch(io: FileIo, segments: readonly Segment[]): Promise<void> {
  let finish!: () => void
  const done = new Promise<void>((resolve) => { finish = resolve })
  const parts: BatchPart[] = []
  const rest: Segment[] = []
  let failure: Error | null = null
  try {
    for (const segment of segments) {
      const part = segment.takeForBatch(done)
      if (part) parts.push(part)
      else rest.push(segment)
    }
  } catch (err) {
    failure = err as Error
  }
  const others = failure ? Promise.resolve() : inTurn(rest, (s) => s.writeForSync())
  let errs: Int32Array | null = null
  try {
    if (!failure && parts.length) {
      let total = 0
      for (const part of parts) total += part.bytes
      const buf = Buffer.allocUnsafe(total)
      const table = new Float64Array(parts.length * 4)
      let at = 0
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!
        table[i * 4] = part.fd
        table[i * 4 + 1] = part.position
        table[i * 4 + 2] = at
        table[i * 4 + 3] = part.bytes
        for (const chunk of part.chunks) at += chunk.copy(buf, at)
      }
      errs = await io.writeAt(buf, table)
    }
  } catch (err) {
    failure ??= err as Error
  } finally {
    // Every part is handed back once: written, or kept behind with the failure.
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!
      const errno = errs ? errs[i]! : 0
      const err = errno ? errnoError(errno, 'write', `writing ${part.segment.logPath} failed`) : errs ? undefined : failure ?? new Error('the batch was not written')
      if (err) failure ??= err
      part.segment.batchDone(part, err)
    }
    finish()
  }
  await settleAll([others, failure ? Promise.reject(failure) : Promise.resolve()])
}

/** Runs `work` on each item, a few at a time (a checkpoint may touch thousands of shards). */
async function inTurn<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await settleAll(Array.from({ length: Math.min(16, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!)
  }))
}

export class FileLogStore extends ShardLogStore<FileShardLog> {
  /** Each open is the shard's own files: a few at once keep the disk and the thread pool busy. */
  readonly openConcurrency = 16
  private readonly root: string
  private readonly journal: Journal | null
  /** The journal of an earlier run, replayed at open while this one runs without it. */
  private readonly replayOnly: Journal | null
  /** The journal read (and, without it, replayed whole), before the first log opens. */
  private ready: Promise<void> | null = null
  /** The redo's rewrites made durable and the journal released (started by the first commit or checkpoint). */
  private redone: Promise<void> | null = null
  /** Opens writing the journal's entries into their segment files now: the redo's end waits for them. */
  private readonly redoing = new Set<Promise<void>>()
  /** Segments the redo wrote at their shard's open, not yet synced. */
  private readonly rewritten = new Set<Segment>()
  /** `redoRest` writing what no open took: an open that finds nothing left to take waits for it before reading. */
  private restWritten: Promise<unknown> = Promise.resolve()
  private readonly onReplay?: (replayed: Replayed) => void
  private readonly directMax: number
  /** Segments written since the last checkpoint: synced before the journal is emptied. */
  private readonly unsynced = new Set<Segment>()
  /** Segments a background checkpoint of the journal's other file syncs (and any an earlier one failed to), until it has: a resume syncs them. */
  private checkpointing: readonly Segment[] = []
  private readonly journalPaths = new WeakMap<Segment, Buffer>()
  /** The store's open segment files, bounded. */
  readonly handles: HandleCache
  /** Commits and checkpoints one at a time (a checkpoint must not empty the journal under a commit). */
  private turn: Promise<unknown> = Promise.resolve()
  private readonly io: FileIo | null
  /**
   * The store's root, open from the start: syncfs reports a writeback error of any file of the file
   * system that happened after the descriptor it is called on was opened.
   */
  private rootHandle: fsp.FileHandle | null = null
  private rootDevice = -1
  /** The file system (st_dev) of each shard directory a checkpoint met: one mounted elsewhere is synced file by file. */
  private readonly devices = new Map<string, number>()

  constructor(options: FileLogOptions) {
    super(options)
    this.root = options.root
    this.onReplay = options.onReplay
    this.directMax = options.directMaxSegments ?? DIRECT_MAX_SEGMENTS
    this.io = options.fileIo === undefined ? loadFileIo() : options.fileIo
    this.handles = new HandleCache(options.maxOpenFiles ?? 256)
    const journal = options.journalPath ? new Journal(options.journalPath, options.root, this.codec, options.journalBytes ?? 16 * 1024 * 1024) : null
    this.journal = options.journal === false ? null : journal
    this.replayOnly = options.journal === false ? journal : null
  }

  private prepared(): Promise<void> {
    this.ready ??= (async () => {
      const journal = this.journal ?? this.replayOnly
      if (!journal) return
      if (this.io) {
        // Made here when missing (the shards' opens would have made it), each new level synced into its parent.
        const created = await fsp.mkdir(this.root, { recursive: true, mode: 0o700 })
        if (created) for (let dir = this.root; ; dir = dirname(dir)) {
          await fsyncDir(dir)
          if (dir.length < created.length) break
        }
        if (!SYNCFS_UNRELIABLE.has((await fsp.statfs(this.root)).type)) {
          this.rootHandle = await fsp.open(this.root, 'r')
          this.rootDevice = (await this.rootHandle.stat()).dev
        }
      }
      const replayed = await journal.open()
      if (replayed.entries || replayed.tornBytes) this.onReplay?.(replayed)
      if (journal === this.replayOnly) {
        // Off: everything is written again and synced now, the journal emptied, and it is not used again.
        await this.redoEnd(journal)
        await journal.checkpoint(async () => {})
        await journal.close()
      }
    })()
    return this.ready
  }

  /**
   * A segment file of a shard being opened, before anything reads it: the journal's entries for it
   * are written there now, through the same handle (a new one, found missing, gets none: a redo before
   * the open would have found no file to write).
   */
  private async redoAtOpen(journal: Journal, segment: Segment, found: boolean): Promise<void> {
    const writes = journal.takeRedo(this.journalPathOf(segment).toString('utf8'))
    if (!writes) {
      // Nothing left to take: the redo's end may have taken it instead, and be writing this file now.
      // If that write failed, so does this open: the file may lack acknowledged records.
      await this.restWritten
      return
    }
    if (!found) return
    const run = segment.use((handle) => redoWrites(handle, writes))
    this.redoing.add(run)
    try {
      await run
      this.rewritten.add(segment)
    } finally {
      this.redoing.delete(run)
    }
  }

  /**
   * Makes everything the journal held at open durable in the segment files, then releases it (once;
   * a failure is thrown to every later caller, and the journal keeps its entries for the next start).
   */
  private redoEnd(journal: Journal): Promise<void> {
    this.redone ??= (async () => {
      // Taken together: from here no open takes entries, and those that took some are waited for.
      const writing = [...this.redoing]
      const rest = journal.redoRest()
      // Opens waiting on it see its failure; the catch only keeps it from counting as unhandled.
      this.restWritten = rest
      rest.catch(() => {})
      await settleAll([rest, ...writing])
      const segments = [...this.rewritten]
      await this.syncSegments(segments)
      for (const segment of segments) this.rewritten.delete(segment)
      await journal.release()
    })()
    return this.redone
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work)
    this.turn = run.catch(() => {})
    return run
  }

  protected async openLog(stream: string, shard: string): Promise<FileShardLog> {
    await this.prepared()
    const log = new FileShardLog(this.host, this.codec, this.segmentBytes, stream, shard, join(this.root, stream, shard), this.handles)
    const journal = this.journal
    await log.open(journal ? (segment, found) => this.redoAtOpen(journal, segment, found) : undefined)
    return log
  }

  protected override flushLogs(logs: FileShardLog[]): Promise<void> {
    const journal = this.journal
    if (!journal) return super.flushLogs(logs)
    return this.exclusive(async () => {
      await this.prepared()
      // What the journal held at start is made durable in the background from the first commit on (off the restart's path).
      if (!this.redone) this.redoEnd(journal).catch(() => {})
      if (journal.due()) {
        // Its older file is reused now: what it held must be in the segments.
        await this.redoEnd(journal)
        // Commits move to the journal's other file; the segments touched until now are synced in the background.
        const touched = [...this.unsynced]
        this.unsynced.clear()
        // Remembered, with any a failed earlier checkpoint did not sync, until this one has synced them:
        // the rotation throws that earlier failure, and a resume must sync all of them.
        const pending = this.checkpointing = [...this.checkpointing, ...touched]
        await journal.rotate(async () => {
          await this.syncSegments(touched)
          if (this.checkpointing === pending) this.checkpointing = []
        })
      }
      const staged: StagedWrite[] = []
      const full: FileShardLog[] = []
      for (const log of logs) {
        const now = log.stageNow()
        if (now === ROLL) full.push(log)
        else if (now) staged.push(now)
      }
      if (full.length) for (const s of await settleAll(full.map((log) => log.stage()))) if (s) staged.push(s)
      if (staged.length === 0) return
      if (staged.length <= this.directMax) {
        // Durable in the segments themselves: each writes what it kept behind (earlier journaled
        // commits' bytes) and this commit's, then fdatasyncs, all in parallel. The journal's entries
        // for the bytes before stay valid: a replay writes the same bytes at the same places. If a
        // sync fails, the store fails and the journal is kept; this commit's records were never
        // acknowledged, but may be found after a restart if their write reached the disk (as a
        // Kinesis call that failed may have stored records; device batches resent are deduplicated).
        for (const s of staged) s.segment.writeBehind(s.data, s.position)
        await settleAll(staged.map((s) => s.segment.sync()))
        for (const s of staged) s.log.publish(s)
        return
      }
      const writes = staged.map((s) => ({ path: this.journalPathOf(s.segment), position: s.position, data: s.data, bytes: s.bytes }))
      // The journal's one append and fdatasync make the commit durable; the segments keep their bytes
      // behind in memory (readers see them there) until the checkpoint writes and syncs them.
      await journal.append(writes)
      for (const s of staged) {
        s.segment.writeBehind(s.data, s.position)
        this.unsynced.add(s.segment)
        s.log.publish(s)
        if (s.segment.behind >= WRITE_OUT_BYTES) s.segment.writeOut()
      }
    })
  }

  /**
   * Writes and makes durable what each segment kept behind: each fdatasynced itself, or, for many on
   * the store's own file system, all written out and then one syncfs. If that fails, every segment it
   * covered is never called synced again (Linux may have dropped any of their dirty pages).
   */
  private async syncSegments(segments: readonly Segment[]): Promise<void> {
    const root = this.rootHandle
    const io = this.io
    if (!root || !io || segments.length < SYNCFS_MIN_SEGMENTS) return inTurn(segments, (s) => s.sync())
    const unknown = [...new Set(segments.map((s) => s.dir))].filter((dir) => !this.devices.has(dir))
    await inTurn(unknown, async (dir) => {
      // A directory gone (its stream removed) leaves its segments closed: their own sync does nothing.
      const device = await fsp.stat(dir).then((st) => st.dev, () => undefined)
      if (device !== undefined) this.devices.set(dir, device)
    })
    const here: Segment[] = []
    const elsewhere: Segment[] = []
    for (const segment of segments) (this.devices.get(segment.dir) === this.rootDevice ? here : elsewhere).push(segment)
    await settleAll([writeBatch(io, here), inTurn(elsewhere, (s) => s.sync())])
    if (here.length === 0) return
    try {
      await io.syncfs(root.fd)
    } catch (err) {
      for (const segment of here) segment.failSync(err as Error)
      throw err
    }
  }

  /** A segment's path under the root as the journal names it, made once per segment. */
  private journalPathOf(segment: Segment): Buffer {
    let path = this.journalPaths.get(segment)
    if (!path) this.journalPaths.set(segment, path = Buffer.from(relative(this.root, segment.logPath), 'utf8'))
    return path
  }

  /**
   * Back to the last commit that succeeded, after a failure for want of space: each log rewinds
   * (FileShardLog.rewind); then every segment the journal's entries cover is made durable where it
   * belongs and the journal emptied, so nothing a failed append left in it can be replayed. Refused
   * (false) while the redo of what the journal held at start has not been made durable.
   */
  protected override async recover(logs: FileShardLog[]): Promise<boolean> {
    return this.exclusive(async () => {
      const journal = this.journal
      const settled = (p: Promise<void> | null) => p ? p.then(() => true, () => false) : Promise.resolve(true)
      // The journal's open or its redo failed: only a restart's replay redoes them.
      if (!(await settled(this.ready)) || !(await settled(this.redone))) return false
      for (const log of logs) await log.rewind()
      if (!journal || !this.redone) return true
      const segments = [...new Set([...this.unsynced, ...this.checkpointing])]
      await this.syncSegments(segments)
      await journal.reset()
      this.unsynced.clear()
      this.checkpointing = []
      return true
    })
  }

  private async checkpoint(journal: Journal): Promise<void> {
    await this.redoEnd(journal)
    await journal.checkpoint(async () => {
      const segments = [...this.unsynced]
      await this.syncSegments(segments)
      for (const segment of segments) this.unsynced.delete(segment)
    })
  }

  /**
   * Before logs close or data is removed: what the journal holds is made durable in the segments, so
   * no replay can bring it back. Not once the store has failed: the journal then keeps everything for
   * the next start's replay (a segment whose fdatasync failed cannot be trusted to hold its bytes).
   */
  protected override async settle(): Promise<void> {
    const journal = this.journal
    if (!journal || !this.ready || this.failed) return
    await this.exclusive(async () => {
      await this.prepared()
      await this.checkpoint(journal)
    })
  }

  protected async removeData(stream: string, shard?: string): Promise<void> {
    const dir = shard === undefined ? join(this.root, stream) : join(this.root, stream, shard)
    await fsp.rm(dir, { recursive: true, force: true })
    for (const known of this.devices.keys()) if (known === dir || known.startsWith(dir + sep)) this.devices.delete(known)
  }

  override async close(): Promise<void> {
    await super.close()
    await this.journal?.close()
    await this.rootHandle?.close().catch(() => {})
    this.rootHandle = null
  }
}
