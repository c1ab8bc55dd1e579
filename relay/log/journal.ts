/**
 * The file store's write-ahead journal: one file, one append and one fdatasync per group commit,
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
 * Recovery is a physical redo: at open, every whole entry of both files, the older generation first, is
 * written again at the segment file and position it names (an idempotent overwrite, so writes the kernel lost, tore or wrote out of order
 * come back exactly), the files are synced, and the journal emptied; the shard logs then open on
 * segments that hold everything acknowledged. The first entry that does not verify ends the replay:
 * commits are sequential and each is acknowledged only after its own fdatasync, so nothing after a
 * torn entry was acknowledged.
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
import { promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Codec } from '../../hardware/index.js'
import { fsyncDir } from './segment.js'

const MAGIC = 0x314e4a54 // 'TJN1' read as a little-endian u32
const FILE_MAGIC = 0x31484a54 // 'TJH1'
const FILE_HEADER = 16
const HEADER = 12

/** One write of a commit: `data` at `position` of the segment file at `path` (UTF-8, relative to the store's root). */
export interface JournalWrite {
  path: Buffer
  position: number
  data: Buffer
}

/** What a replay did, for the store's log. */
export interface Replayed {
  entries: number
  bytes: number
  /** Entries whose segment file no longer exists (its stream or segment was removed): skipped. */
  skipped: number
  /** Bytes past the last whole entry: a commit that was never acknowledged. */
  tornBytes: number
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

  /** Replays what a previous run left (see the header) and opens the journal empty. */
  async open(): Promise<Replayed> {
    await fsp.mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    const found: { buf: Buffer; generation: number }[] = []
    for (const i of [0, 1]) {
      const buf = await fsp.readFile(`${this.path}-${i}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
      if (buf && buf.length >= FILE_HEADER && buf.readUInt32LE(0) === FILE_MAGIC) found.push({ buf, generation: buf.readDoubleLE(8) })
    }
    found.sort((a, b) => a.generation - b.generation)
    const replayed = await this.replay(found.map((f) => f.buf))
    this.generation = found.length ? found[found.length - 1]!.generation : 0
    const files: JournalFile[] = []
    for (const i of [0, 1]) {
      const path = `${this.path}-${i}`
      // Replayed already: each file starts empty.
      const handle = await fsp.open(path, 'w+', 0o600)
      await handle.sync()
      files.push({ path, handle, size: 0 })
    }
    await fsyncDir(dirname(this.path))
    this.files = files as [JournalFile, JournalFile]
    this.current = 0
    await this.begin(this.files[0])
    return replayed
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

  /** Writes every whole entry again where it names, the files in the order given, then syncs what it wrote. */
  private async replay(bufs: readonly Buffer[]): Promise<Replayed> {
    const out: Replayed = { entries: 0, bytes: 0, skipped: 0, tornBytes: 0 }
    // Grouped by segment file, each group in journal order, so one file is open at a time.
    const byPath = new Map<string, { position: number; data: Buffer }[]>()
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
        writes.push({ position, data: buf.subarray(at + HEADER + 2 + pathLength + 8, end) })
        at = end
      }
      out.tornBytes += buf.length - at
    }
    for (const [path, writes] of byPath) {
      const file = await fsp.open(join(this.root, path), 'r+').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
      if (!file) {
        out.skipped += writes.length
        continue
      }
      try {
        for (const w of writes) await writeFully(file, w.data, w.position)
        await file.sync()
      } finally {
        await file.close()
      }
      out.entries += writes.length
      for (const w of writes) out.bytes += w.data.length
    }
    return out
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
      heads.writeUInt32LE(2 + w.path.length + 8 + w.data.length, at + 4)
      heads.writeUInt16LE(w.path.length, at + HEADER)
      w.path.copy(heads, at + HEADER + 2)
      heads.writeDoubleLE(w.position, at + HEADER + 2 + w.path.length)
      const crc = this.codec.crc32c(w.data, this.codec.crc32c(heads, 0, at + HEADER, at + size), 0, w.data.length)
      heads.writeUInt32LE(crc, at + 8)
      parts.push(heads.subarray(at, at + size), w.data)
      at += size
      bytes += size + w.data.length
    }
    let position = file.size
    let i = 0
    // writev may write part of what it was given: carry on from where it stopped.
    while (i < parts.length) {
      const { bytesWritten } = await file.handle.writev(parts.slice(i), position)
      position += bytesWritten
      let n = bytesWritten
      while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length
      if (n > 0) parts[i] = parts[i]!.subarray(n)
    }
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
    if (this.checkpointing) await this.checkpointing
    const file = this.files[this.current]!
    if (file.size <= FILE_HEADER) return
    await syncSegments()
    await this.begin(file)
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

async function writeFully(handle: fsp.FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written)
    written += bytesWritten
  }
}
