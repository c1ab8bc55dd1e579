/**
 * Brings shard storage back by itself after a full disk. A commit that meets ENOSPC (or a quota)
 * fails the store: the records of that commit are refused, every acknowledged one stays intact, and
 * the API and MQTT answer "unavailable". This watch notices the failure (logged once, `error`), and
 * once the data directory's file system has room again, has the store put itself back as it was at
 * its last good commit (`LogStore.resume`, which cuts whatever the failed writes left) and take
 * writes again, without a restart. A failure that is not for want of space (EIO, a failed sync)
 * still needs a restart, whose journal replay is the only safe way back; the log says so.
 */
import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
import { every, type Clock } from '../hardware/index.js'
import { isSpaceError } from './log/commit.js'
import type { LogStore } from './log/types.js'
import type { LogFn } from './observe.js'

/** How often the watch looks (the relay's clock). */
export const STORAGE_WATCH_MS = 1000
/** Room the file system must have before writes are taken again (less would only fail again at once). */
export const RESUME_MIN_FREE_BYTES = 4 * 1024 * 1024

export interface StorageWatchOptions {
  logs: LogStore
  /** Where the shard logs are: its file system's free space is what is watched. */
  dir: string
  clock: Clock
  log: LogFn
  /** Bytes free to the relay's user on `dir`'s file system (default: statfs). */
  freeBytes?: (dir: string) => Promise<number>
  minFreeBytes?: number
}

/** Bytes an unprivileged writer may still use on `dir`'s file system (its parent's, before it exists). */
async function statfsFree(dir: string): Promise<number> {
  const s = await fsp.statfs(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return fsp.statfs(dirname(dir))
    throw err
  })
  return s.bavail * s.bsize
}

/** Starts the watch; the returned function stops it. */
export function watchStorage(o: StorageWatchOptions): () => void {
  const freeBytes = o.freeBytes ?? statfsFree
  const minFree = o.minFreeBytes ?? RESUME_MIN_FREE_BYTES
  let seen: Error | null = null
  let failedAt = 0
  let busy = false
  const check = async () => {
    const failed = o.logs.failed
    if (!failed) return
    const resumable = isSpaceError(failed) && o.logs.resume !== undefined
    if (failed !== seen) {
      seen = failed
      failedAt = o.clock.monoMs()
      o.log('storage_failed', { error: failed.message, code: (failed as NodeJS.ErrnoException).code ?? null, recovery: resumable ? `resumes once ${o.dir} has ${minFree} bytes free` : 'a restart' })
    }
    if (!resumable) return
    const free = await freeBytes(o.dir).catch(() => 0)
    if (free < minFree) return
    if (await o.logs.resume!()) {
      o.log('storage_resumed', { afterMs: Math.round(o.clock.monoMs() - failedAt), freeBytes: free })
      seen = null
    }
  }
  return every(o.clock, STORAGE_WATCH_MS, () => {
    if (busy) return
    busy = true
    check().catch((err: Error) => o.log('storage_resume_error', { error: err.message })).finally(() => { busy = false })
  })
}
