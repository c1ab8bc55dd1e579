/**
 * Fragment files under `<dataDir>/video`:
 *
 *   video/<streamId>/<device>/<session: 16 hex digits>/init.mp4
 *   video/<streamId>/<device>/<session>/<sequence: 16 digits>.m4s
 *
 * A path follows from the fragment's producer identity alone, so a resend after a crash writes the
 * same path again (an unfinished file is overwritten, never kept beside a finished one). Writes are
 * fsynced, and so is the directory when the write created the file (and each directory it made),
 * before the caller commits the catalog row. PutMedia's fragments have no device: theirs is `_putmedia`
 * (a device id cannot start with `_`).
 */
import { mkdir, open, readdir, readFile, rm, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'

export const PUTMEDIA_DIR = '_putmedia'

export class FragmentFiles {
  readonly root: string
  /** Directories known to exist and to be durable in their parent. */
  private readonly made = new Set<string>()

  constructor(root: string) {
    this.root = root
  }

  /** The file of one fragment, relative to the root. */
  pathOf(streamId: string, device: string, session: bigint, sequence: number): string {
    const name = sequence === 0 ? 'init.mp4' : `${String(sequence).padStart(16, '0')}.m4s`
    return join(streamId, device === '' ? PUTMEDIA_DIR : device, session.toString(16).padStart(16, '0'), name)
  }

  /** Writes `data` to `rel` and makes it durable: the file, and its directory entry when new. */
  async write(rel: string, data: Uint8Array): Promise<void> {
    const path = join(this.root, rel)
    await this.makeDir(dirname(path))
    let created = true
    let handle = await open(path, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
      created = false
      return null
    })
    // An unfinished write from before a crash (no catalog row names it): replaced whole.
    handle ??= await open(path, 'w', 0o600)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    if (created) await syncDir(dirname(path))
  }

  read(rel: string): Promise<Buffer> {
    return readFile(join(this.root, rel))
  }

  /** Removes files (a missing one is no error), then their session directories when empty. */
  async remove(rels: readonly string[]): Promise<void> {
    const dirs = new Set<string>()
    for (const rel of rels) {
      await unlink(join(this.root, rel)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
      dirs.add(dirname(join(this.root, rel)))
    }
    for (const dir of dirs) {
      await rmdir(dir).then(() => this.made.delete(dir), (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'ENOENT' && err.code !== 'EEXIST') throw err
      })
    }
  }

  /** Removes a stream's directory and all in it. */
  async removeStream(streamId: string): Promise<void> {
    const dir = join(this.root, streamId)
    for (const made of this.made) if (made === dir || made.startsWith(dir + sep)) this.made.delete(made)
    await rm(dir, { recursive: true, force: true })
  }

  /**
   * Deletes what no catalog row names: directories of streams that are gone, and files that are not
   * in `keep` (unfinished writes). Returns how many files went.
   */
  async sweep(streamIds: ReadonlySet<string>, keep: ReadonlySet<string>): Promise<number> {
    let removed = 0
    let entries
    try {
      entries = await readdir(this.root, { withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
      throw err
    }
    for (const entry of entries) {
      const path = join(this.root, entry.name)
      if (!entry.isDirectory() || !streamIds.has(entry.name)) {
        removed += entry.isDirectory() ? (await readdir(path, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length : 1
        await rm(path, { recursive: true, force: true })
        continue
      }
      for (const file of await readdir(path, { withFileTypes: true, recursive: true })) {
        if (!file.isFile()) continue
        const full = join(file.parentPath, file.name)
        if (keep.has(relative(this.root, full))) continue
        await unlink(full)
        removed++
      }
    }
    return removed
  }

  /** mkdir -p, fsyncing the parent of each directory it creates, so a new file's path survives a power loss. */
  private async makeDir(dir: string): Promise<void> {
    if (this.made.has(dir)) return
    const missing: string[] = []
    for (let d = dir; !this.made.has(d) && !(await isDir(d)); d = dirname(d)) missing.push(d)
    for (const d of missing.reverse()) {
      await mkdir(d, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err })
      await syncDir(dirname(d))
    }
    for (let d = dir; d.startsWith(this.root) && !this.made.has(d); d = dirname(d)) this.made.add(d)
  }
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false)
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
