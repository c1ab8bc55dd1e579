/**
 * The relay's data directory, made ready at start: private to the relay's user (directories 0700,
 * files 0600 — meta.db holds the iterator and paging-token keys and the device hashes, segments the
 * records), its secret files checked, and a start refused when the stream data is there but its
 * metadata is not (a lost or zero-length meta.db would otherwise start an empty relay beside orphaned
 * stream directories).
 */
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../shared/errors.js'
import { holdsMetadata } from './meta/sqlite.js'
import { checkSecretMode } from './secrets.js'

/** Secret files the relay keeps in its data directory; a loose mode on one is refused, not tightened (it may have leaked). */
const SECRET_FILES = ['admin.token', 'encryption.key', 'device-ca.pem'] as const

export interface DataDirLayout {
  metaPath: string
  streamsDir: string
}

/**
 * Makes `dataDir` ready for a relay: created 0700 if missing; secret files with a loose mode refused;
 * other directories and files under it tightened to 0700 and 0600 (`onTightened` told how many);
 * meta.db created empty with mode 0600 (SQLite gives its -wal and -shm files the same mode) unless
 * there is stream data, then the start is refused.
 */
export function prepareDataDir(dataDir: string, onTightened: (count: number) => void = () => {}): DataDirLayout {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  for (const name of SECRET_FILES) {
    const path = join(dataDir, name)
    if (existsSync(path)) checkSecretMode(path, name)
  }
  const tightened = tighten(dataDir, new Set<string>(SECRET_FILES))
  if (tightened > 0) onTightened(tightened)
  const metaPath = join(dataDir, 'meta.db')
  const streamsDir = join(dataDir, 'streams')
  if (!holdsMetadata(metaPath)) {
    const orphans = streamsWithData(streamsDir)
    if (orphans.length > 0) {
      const state = existsSync(metaPath) ? (statSync(metaPath).size === 0 ? 'empty (zero bytes)' : 'without a schema') : 'missing'
      throw new ConfigError('dataDir', `${metaPath} is ${state} but ${streamsDir} holds the data of ${orphans.length} stream${orphans.length === 1 ? '' : 's'} ` +
        `(${orphans.slice(0, 5).join(', ')}${orphans.length > 5 ? ', …' : ''}); starting would serve an empty relay and leave that data orphaned. ` +
        `shard hash ranges and lineage, stream settings, devices and checkpoints are kept only in meta.db, so the data cannot be re-attached automatically: ` +
        `restore meta.db (with its -wal file, if any) from a backup; or, to start with no streams, move the data aside first: ` +
        `mv ${streamsDir} ${streamsDir}.orphaned-${new Date().toISOString().replace(/[:.]/g, '-')}` +
        (existsSync(metaPath) ? ` && mv ${metaPath} ${metaPath}.broken` : ''))
    }
    if (!existsSync(metaPath)) closeSync(openSync(metaPath, 'a', 0o600))
  }
  return { metaPath, streamsDir }
}

/** Directories to 0700 and files to 0600 under `dir` (and `dir` itself), secret files left to the check; how many were changed. */
function tighten(dir: string, skip: ReadonlySet<string>): number {
  let changed = 0
  const visit = (path: string, isDir: boolean) => {
    const mode = lstatSync(path).mode & 0o777
    const want = isDir ? mode & 0o700 : mode & 0o600
    if (mode !== want) {
      chmodSync(path, want)
      changed++
    }
  }
  visit(dir, true)
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name)
    if (entry.parentPath === dir && skip.has(entry.name)) continue
    if (entry.isDirectory()) visit(path, true)
    else if (entry.isFile()) visit(path, false)
  }
  return changed
}

/** The stream directories (stream ids) under `streamsDir` that hold a non-empty segment file. */
function streamsWithData(streamsDir: string): string[] {
  if (!existsSync(streamsDir)) return []
  const out: string[] = []
  for (const stream of readdirSync(streamsDir, { withFileTypes: true })) {
    if (!stream.isDirectory()) continue
    const files = readdirSync(join(streamsDir, stream.name), { withFileTypes: true, recursive: true })
    if (files.some((f) => f.isFile() && f.name.endsWith('.log') && statSync(join(f.parentPath, f.name)).size > 0)) out.push(stream.name)
  }
  return out
}
