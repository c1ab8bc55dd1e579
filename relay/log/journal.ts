/**
 * The file store's write-ahead journal: one append and one fdatasync per group commit,
 * whatever the number of shards the commit touched. Each shard's bytes are kept behind in memory by
 * its segment (relay/log/segment.ts) and reach the segment file only at a checkpoint.
 *
 * The journal is two files used in turn (`<path>-0`, `<path>-1`), each starting with a header that
 * holds its generation. When the one being appended to reaches its size (16 MiB by default), commits
 * go on in the other while a checkpoint, in the background, writes and syncs every segment touched
 * while the full one was in use and then empties it; a commit waits only if that checkpoint is still
 * running when the second file fills in turn. So the journal on disk, and the bytes kept behind in
 * memory, stay under twice its size plus one commit.
 *
 * Recovery is a physical redo: every whole entry of both files, the older generation first, is
 * written again at the segment file and position it names (an idempotent overwrite, so writes the
 * kernel lost, tore or wrote out of order come back exactly) before anything reads that file. The
 * journal is read at open and its entries kept by file; each shard's open takes the entries of the
 * segment files it opens (`takeRedo`) and writes them through the handle it reads them with, so a
 * restart with thousands of shards opens each file once. What no open took is written by `redoRest`.
 * The rewritten files are synced later, off the restart's path, and the journal keeps the entries
 * until then (`release`): a crash meanwhile replays them again. The first entry that does not verify
 * ends the replay: commits are sequential and each is acknowledged only after its own fdatasync, so
 * nothing after a torn entry was acknowledged.
 *
 * File header: magic `TJH1` (u32), 0 (u32), generation (f64), 16 bytes. Entry layout (little-endian):
 *
 * | offset | size | field                                                        |
 * | -----: | ---: | ------------------------------------------------------------ |
 * |      0 |    4 | magic `TJN1`                                                 |
 * |      4 |    4 | payload length (from offset 12)                              |
 * |      8 |    4 | CRC-32C of the payload                                       |
 * |     12 |    2 | path length P (UTF-8 bytes)                                  |
 * |     14 |    P | the segment file's path under the store's root               |
 * |   14+P |    8 | the byte position in the segment file (f64, an integer)      |
 * |   22+P |    … | the bytes written there                                      |
 */
import { constants as fsc, promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Codec } from '../../hardware/index.js'
import { fsyncDir, IOV_MAX, writeFully, writevFully } from './segment.js'

const MAGIC = 0x314e4a54 // 'TJN1' read as a little-endian u32
const FILE_MAGIC = 0x31484a54 // 'TJH1'
const FILE_HEADER = 16
const HEADER = 12

/** One write of a commit: `data` at `position` of the segment file at `path` (UTF-8, relative to the store's root). */
export interface JournalWrite {
  path: Buffer
  position: number
  /** The bytes, in pieces written one after another (an entry holds them all). */
  data: readonly Buffer[]
  bytes: number
}

/** What the journal held to redo at open, for the store's log. */
export interface Replayed {
  /** Whole entries, and the bytes they write. */
  entries: number
  bytes: number
  /** The segment files they name. */
  files: number
  /** Bytes past the last whole entry: a commit that was never acknowledged. */
  tornBytes: number
}

/** One entry to write again: `data` at `position` of its segment file. */
export interface RedoWrite {
  position: number
  data: Buffer
}

interface JournalFile {
  path: string
  handle: fsp.FileHandle
  size: number
}

export class Journal {
  private files: [JournalFile, JournalFile] | null = null
  /** The file commits are appended to (0 or 1). */
  private current = 0
  private generation = 0
  /** The background checkpoint of the other file, while it runs. */
  private checkpointing: Promise<void> | null = null
  /** Entries found at open and not yet written again, by segment path under the root, each file's in journal order. */
  private redo = new Map<string, RedoWrite[]>()
  /** What was found at open is still needed (not all written again and synced): no file may be emptied yet. */
  private holding = false
  private readonly path: string
  private readonly root: string
  private readonly codec: Codec
  private readonly maxBytes: number

  /** `path`: the journal files' prefix; `root`: the store's root, to which entries' paths are relative; `maxBytes`: a file's size when commits move to the other. */
  constructor(path: string, root: string, codec: Codec, maxBytes: number) {
    this.path = path
    this.root = root
    this.codec = codec
    this.maxBytes = maxBytes
  }

  /**
   * Reads what a previous run left (see the header) and opens the journal; nothing is written again
   * yet: the entries wait for `takeRedo` and `redoRest`, and both files are kept until `release`.
   * Commits carry on in the newer file, after its last whole entry.
   */
  async open(): Promise<Replayed> {
    await fsp.mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    const found: { index: number; buf: Buffer; generation: number }[] = []
    for (const index of [0, 1]) {
      const buf = await fsp.readFile(`${this.path}-${index}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
      if (buf && buf.length >= FILE_HEADER && buf.readUInt32LE(0) === FILE_MAGIC) found.push({ index, buf, generation: buf.readDoubleLE(8) })
    }
    found.sort((a, b) => a.generation - b.generation)
    const { replayed, ends } = this.read(found.map((f) => f.buf))
    const files: JournalFile[] = []
    for (const index of [0, 1]) {
      const path = `${this.path}-${index}`
      files.push({ path, handle: await fsp.open(path, fsc.O_RDWR | fsc.O_CREAT, 0o600), size: 0 })
    }
    await fsyncDir(dirname(this.path))
    this.files = files as [JournalFile, JournalFile]
    const newest = found[found.length - 1]
    if (!newest) {
      this.current = 0
      await files[1]!.handle.truncate(0)
      await this.begin(files[0]!)
      return replayed
    }
    this.generation = newest.generation
    this.current = newest.index
    const current = files[newest.index]!
    // A torn last entry goes: new commits follow the last whole one.
    current.size = ends[ends.length - 1]!
    await current.handle.truncate(current.size)
    await current.handle.datasync()
    this.holding = true
    return replayed
  }

  /** The entries found at open for the segment file at `path` (under the root), taken: the caller writes them again (`redoWrites`) before reading the file. */
  takeRedo(path: string): readonly RedoWrite[] | undefined {
    const writes = this.redo.get(path)
    if (writes) this.redo.delete(path)
    return writes
  }

  /**
   * Writes again, and syncs, every entry no open took, a few files at a time; an entry whose file no
   * longer exists (its stream or segment was removed) has nothing left to restore.
   */
  async redoRest(): Promise<void> {
    const groups = [...this.redo]
    this.redo = new Map()
    let next = 0
    await settleAll(Array.from({ length: Math.min(16, groups.length) }, async () => {
      while (next < groups.length) {
        const [path, writes] = groups[next++]!
        const file = await openIfThere(join(this.root, path))
        if (!file) continue
        try {
          await redoWrites(file, writes)
          await file.datasync()
        } finally {
          await file.close()
        }
      }
    }))
  }

  /**
   * Once everything found at open is durable in the segment files (`redoRest` done, and the files
   * the opens rewrote synced): the older file is emptied, and the journal may rotate and checkpoint.
   */
  async release(): Promise<void> {
    if (!this.files || !this.holding) return
    if (this.redo.size > 0) throw new Error('the journal is released before everything it replayed was written again')
    const other = this.files[1 - this.current]!
    await other.handle.truncate(0)
    await other.handle.datasync()
    other.size = 0
    this.holding = false
  }

  /** Starts a file afresh with the next generation. */
  private async begin(file: JournalFile): Promise<void> {
    const head = Buffer.alloc(FILE_HEADER)
    head.writeUInt32LE(FILE_MAGIC, 0)
    head.writeDoubleLE(++this.generation, 8)
    await file.handle.truncate(0)
    await writeFully(file.handle, head, 0)
    await file.handle.datasync()
    file.size = FILE_HEADER
  }

  /**
   * Keeps every whole entry of the files, in the order given, by the segment file it names (each
   * file's in journal order); says where each journal file's whole entries end.
   */
  private read(bufs: readonly Buffer[]): { replayed: Replayed; ends: number[] } {
    const out: Replayed = { entries: 0, bytes: 0, files: 0, tornBytes: 0 }
    const ends: number[] = []
    const byPath = this.redo
    for (const buf of bufs) {
      let at = FILE_HEADER
      while (at + HEADER <= buf.length) {
        if (buf.readUInt32LE(at) !== MAGIC) break
        const length = buf.readUInt32LE(at + 4)
        const end = at + HEADER + length
        if (length < 10 || end > buf.length) break
        if (this.codec.crc32c(buf, 0, at + HEADER, end) !== buf.readUInt32LE(at + 8)) break
        const pathLength = buf.readUInt16LE(at + HEADER)
        const path = buf.toString('utf8', at + HEADER + 2, at + HEADER + 2 + pathLength)
        const position = buf.readDoubleLE(at + HEADER + 2 + pathLength)
        let writes = byPath.get(path)
        if (!writes) byPath.set(path, writes = [])
        const data = buf.subarray(at + HEADER + 2 + pathLength + 8, end)
        writes.push({ position, data })
        out.entries++
        out.bytes += data.length
        at = end
      }
      ends.push(at)
      out.tornBytes += buf.length - at
    }
    out.files = byPath.size
    return { replayed: out, ends }
  }

  /** Appends one commit's writes and waits until they are on disk. */
  async append(writes: readonly JournalWrite[]): Promise<void> {
    if (!this.files) throw new Error('the journal is not open')
    const file = this.files[this.current]!
    const parts: Buffer[] = []
    let bytes = 0
    let headBytes = 0
    for (const w of writes) headBytes += HEADER + 2 + w.path.length + 8
    // Every entry's head in one buffer, each followed by its data as given (never copied).
    const heads = Buffer.allocUnsafe(headBytes)
    let at = 0
    for (const w of writes) {
      const size = HEADER + 2 + w.path.length + 8
      heads.writeUInt32LE(MAGIC, at)
      heads.writeUInt32LE(2 + w.path.length + 8 + w.bytes, at + 4)
      heads.writeUInt16LE(w.path.length, at + HEADER)
      w.path.copy(heads, at + HEADER + 2)
      heads.writeDoubleLE(w.position, at + HEADER + 2 + w.path.length)
      let crc = this.codec.crc32c(heads, 0, at + HEADER, at + size)
      for (const piece of w.data) crc = this.codec.crc32c(piece, crc, 0, piece.length)
      heads.writeUInt32LE(crc, at + 8)
      parts.push(heads.subarray(at, at + size), ...w.data)
      at += size
      bytes += size + w.bytes
    }
    // Past what one writev takes, one copy costs less than a round trip to the thread pool for each IOV_MAX pieces (a commit touching thousands of shards).
    if (parts.length > IOV_MAX) await writeFully(file.handle, Buffer.concat(parts, bytes), file.size)
    else await writevFully(file.handle, parts, file.size)
    await file.handle.datasync()
    file.size += bytes
  }

  /** Whether the file being appended to has reached its size: the store moves on (`rotate`) before the next append. */
  due(): boolean {
    return this.files !== null && this.files[this.current]!.size >= this.maxBytes
  }

  /**
   * Moves commits to the other file and checkpoints the full one in the background: `syncSegments`
   * makes every segment touched while it was in use durable on its own, then it is emptied. Waits
   * for the previous checkpoint first, and throws if that one failed.
   */
  async rotate(syncSegments: () => Promise<void>): Promise<void> {
    if (!this.files) return
    if (this.holding) throw new Error('the journal rotates before what it replayed was released')
    if (this.checkpointing) await this.checkpointing
    const full = this.files[this.current]!
    this.current = 1 - this.current
    await this.begin(this.files[this.current]!)
    const run = (async () => {
      await syncSegments()
      await full.handle.truncate(0)
      await full.handle.datasync()
      full.size = 0
    })()
    this.checkpointing = run
    // A failure stays in `checkpointing` for the next rotate or checkpoint to throw; cleared on success.
    run.then(() => { if (this.checkpointing === run) this.checkpointing = null }, () => {})
  }

  /** Checkpoints everything now (before logs close or data is removed): both files end empty. */
  async checkpoint(syncSegments: () => Promise<void>): Promise<void> {
    if (!this.files) return
    if (this.holding) throw new Error('the journal checkpoints before what it replayed was released')
    if (this.checkpointing) await this.checkpointing
    const file = this.files[this.current]!
    if (file.size <= FILE_HEADER) return
    await syncSegments()
    await this.begin(file)
  }

  /**
   * After a failed commit, once every segment written since the files were last emptied is durable
   * (the store's `resume`): both files are emptied and commits start afresh, past whatever a failed
   * append left; a failed background checkpoint is forgotten (its segments were among those synced).
   */
  async reset(): Promise<void> {
    if (!this.files) return
    await this.checkpointing?.catch(() => {})
    this.checkpointing = null
    const other = this.files[1 - this.current]!
    await other.handle.truncate(0)
    await other.handle.datasync()
    other.size = 0
    await this.begin(this.files[this.current]!)
  }

  /** Bytes in the file being appended to (its header included). */
  bytes(): number {
    return this.files ? this.files[this.current]!.size : 0
  }

  async close(): Promise<void> {
    await this.checkpointing?.catch(() => {})
    for (const file of this.files ?? []) await file.handle.close().catch(() => {})
    this.files = null
  }
}

/** Writes one file's entries again through `handle`, in journal order, each run of adjacent ones as one write (not synced). */
export async function redoWrites(handle: fsp.FileHandle, writes: readonly RedoWrite[]): Promise<void> {
  for (const run of adjacentRuns(writes)) await writeFully(handle, run.data, run.position)
}

/** Writes in order, each run of writes that follow one another joined into one (a later write over an earlier one stays later). */
function adjacentRuns(writes: readonly RedoWrite[]): RedoWrite[] {
  const runs: { position: number; parts: Buffer[]; end: number }[] = []
  for (const w of writes) {
    const last = runs[runs.length - 1]
    if (last && w.position === last.end) {
      last.parts.push(w.data)
      last.end += w.data.length
    } else {
      runs.push({ position: w.position, parts: [w.data], end: w.position + w.data.length })
    }
  }
  return runs.map((r) => ({ position: r.position, data: r.parts.length === 1 ? r.parts[0]! : Buffer.concat(r.parts) }))
}

/** Settles every promise, then throws the first failure: nothing may still be writing when the caller goes on. */
export async function settleAll<T>(work: Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(work)
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
  if (failure) throw failure.reason
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value)
}

/** The file at `path` opened read-write, or null when it no longer exists (its stream or segment was removed). */
function openIfThere(path: string): Promise<fsp.FileHandle | null> {
  return fsp.open(path, 'r+').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null
    throw err
  })
}
