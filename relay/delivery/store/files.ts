/**
 * Objects as files under a directory: `<directory>/<key>`. A put is atomic and durable — written to a
 * temporary file beside the target, fsynced, renamed over it, and the directory fsynced — so a reader
 * (or a crash) sees the old object or the new one, never a torn one. Keys come from record data, so
 * they are checked (key.ts) before any path is built from them.
 */
import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { ObjectStore } from '../types.js'
import { DeliveryError } from '../types.js'
import { checkKey, checkPrefix, compareKeys, TEMP_MARKER } from './key.js'

/** errno codes worth retrying: the disk or the system may recover without anyone changing the config. */
const TRANSIENT = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ENOMEM', 'EINTR', 'ESTALE', 'ETIMEDOUT'])

export class FileObjectStore implements ObjectStore {
  readonly description: string
  readonly directory: string

  constructor(directory: string) {
    if (directory === '' || directory.includes('\0')) throw new TypeError(`FileObjectStore: invalid directory ${JSON.stringify(directory)}`)
    this.directory = resolve(directory)
    this.description = `files in ${this.directory}`
  }

  async put(key: string, body: Buffer, _info: { contentType: string; contentEncoding?: string }): Promise<void> {
    checkKey(key, 'Files')
    const path = join(this.directory, key)
    const dir = dirname(path)
    const temp = join(dir, `${TEMP_MARKER}${randomBytes(8).toString('hex')}`)
    try {
      const created = await mkdir(dir, { recursive: true })
      const file = await open(temp, 'wx')
      try {
        await file.writeFile(body)
        await file.sync()
      } finally {
        await file.close()
      }
      await rename(temp, path)
      await syncDirectory(dir)
      // New directories are durable only once their own parents are synced too.
      if (created !== undefined) {
        for (let d = dir; d !== dirname(created); d = dirname(d)) await syncDirectory(dirname(d))
      }
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw fileError('Files.WriteFailed', `writing ${key} to ${this.directory}`, err)
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    checkKey(key, 'Files')
    try {
      return await readFile(join(this.directory, key))
    } catch (err) {
      const code = errnoOf(err)
      // Absent, or a "directory" made by longer keys: no object at this key.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined
      throw fileError('Files.ReadFailed', `reading ${key} from ${this.directory}`, err)
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(prefix, 'Files')
    // Walk only the deepest directory the prefix names in full.
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1)
    const keys: string[] = []
    try {
      await this.#walk(base, prefix, keys)
    } catch (err) {
      throw fileError('Files.ListFailed', `listing ${JSON.stringify(prefix)} in ${this.directory}`, err)
    }
    return keys.sort(compareKeys)
  }

  async #walk(relative: string, prefix: string, keys: string[]): Promise<void> {
    let entries: Dirent[]
    try {
      entries = await readdir(join(this.directory, relative), { withFileTypes: true })
    } catch (err) {
      const code = errnoOf(err)
      if (code === 'ENOENT' || code === 'ENOTDIR') return
      throw err
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_MARKER)) continue
      const key = relative + entry.name
      if (entry.isDirectory()) {
        // Only descend where keys under this directory can still match the prefix.
        const dirKey = `${key}/`
        if (dirKey.startsWith(prefix) || prefix.startsWith(dirKey)) await this.#walk(dirKey, prefix, keys)
      } else if (entry.isFile() && key.startsWith(prefix)) {
        keys.push(key)
      }
    }
  }

  async close(): Promise<void> {}
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

function fileError(code: string, doing: string, cause: unknown): DeliveryError {
  const errno = errnoOf(cause)
  const retryable = errno === undefined || TRANSIENT.has(errno)
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new DeliveryError(code, `${doing}: ${reason}`, { retryable, cause })
}
