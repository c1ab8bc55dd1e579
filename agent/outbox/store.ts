/**
 * The outbox's database file: opened with its pragmas, checked (quick_check) and migrated; a damaged
 * file is moved aside and a fresh one started with an alarm, never a crash loop. Also the small
 * key/value table of the producer's identity and the outbox clock.
 */
import Database from 'better-sqlite3'
import { existsSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { Clock } from '../../hardware/index.js'
import { migrate } from './migrations.js'
import type { LogFn } from '../log.js'
import type { Alarm, OutboxOptions } from './types.js'

export interface StoreOptions extends Pick<OutboxOptions, 'path' | 'maxBytes' | 'synchronous'> {
  clock: Clock
  log: LogFn
}

/** The page size of new outbox files. */
export const PAGE_SIZE = 1024

export class Store {
  readonly db: Database.Database
  readonly path: string
  readonly alarms: Alarm[] = []
  private readonly o: StoreOptions
  private readonly getMeta: Database.Statement
  private readonly putMeta: Database.Statement

  constructor(options: StoreOptions) {
    this.o = options
    this.path = options.path
    this.db = this.openChecked()
    this.getMeta = this.db.prepare('SELECT value FROM meta WHERE key = ?')
    this.putMeta = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  }

  meta(key: string): string | undefined {
    return (this.getMeta.get(key) as { value: string } | undefined)?.value
  }

  setMeta(key: string, value: string): void {
    this.putMeta.run(key, value)
  }

  /** The producer epoch: created with the outbox (a new producer incarnation) and kept in it. */
  epoch(): bigint {
    let epoch = this.meta('epoch')
    if (!epoch) {
      // A fresh random epoch, kept below 2^63.
      epoch = (randomBytes(8).readBigUInt64LE() >> 1n).toString()
      this.setMeta('epoch', epoch)
    }
    return BigInt(epoch)
  }

  fileBytes(): number {
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number)
  }

  close(): void {
    try { this.db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* best effort */ }
    this.db.close()
  }

  private openChecked(): Database.Database {
    let db: Database.Database | null = null
    try {
      db = this.configure(new Database(this.path))
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new TributaryError(ErrorCode.LOG_CORRUPT, `quick_check: ${String(check)}`)
      migrate(db)
      return db
    } catch (err) {
      const code = (err as { code?: string }).code ?? ''
      // Only damage is quarantined. A locked file (another agent has it), a permission or an I/O
      // error is reported as it is: moving a healthy outbox aside would abandon its backlog.
      const damaged = code === 'LOG_CORRUPT' || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB'
      try { db?.close() } catch { /* already unusable */ }
      if (!damaged) {
        if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
          throw new TributaryError(ErrorCode.STORAGE_FAILED, `outbox ${this.path} is in use by another process (is another agent running?)`, { cause: err })
        }
        throw new TributaryError(ErrorCode.STORAGE_FAILED, `outbox ${this.path} cannot be opened: ${(err as Error).message}`, { cause: err })
      }
      this.quarantine((err as Error).message)
      const fresh = this.configure(new Database(this.path))
      migrate(fresh)
      return fresh
    }
  }

  /** Moves the damaged file (and its WAL) aside and raises the alarm. */
  private quarantine(why: string): void {
    const { clock, log } = this.o
    const stamp = new Date(clock.wallMs()).toISOString().replace(/[:.]/g, '-')
    const aside = `${this.path}.corrupt-${stamp}`
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(this.path + suffix)) renameSync(this.path + suffix, aside + suffix)
    }
    this.alarms.push({ code: 'OUTBOX_QUARANTINED', message: `outbox ${this.path} failed its check (${why}); moved to ${aside} and started fresh`, atMs: clock.wallMs() })
    log('outbox_quarantined', { path: this.path, movedTo: aside, error: why })
  }

  private configure(db: Database.Database): Database.Database {
    // One agent per outbox: the exclusive lock is taken at the first write and held until close.
    db.pragma('locking_mode = EXCLUSIVE')
    // A new file gets 1 KiB pages (SQLite's default is 4 KiB): each group commit rewrites ~5 pages
    // (the records' leaf, the index's, sqlite_sequence, meta, the header page) whatever it holds, so
    // smaller pages are less written to flash per commit. bench/wear.ts: three 10 Hz sensors 19.8× ->
    // 11.4× the record data, the put API 13.5× -> 7.3×, a backlog's drain ~13 % slower. A file
    // made before keeps its page size (changing it means rewriting the file).
    db.pragma(`page_size = ${PAGE_SIZE}`)
    db.pragma('journal_mode = WAL')
    // better-sqlite3's default page cache is 16 MB; on a small device 2 MB does (and keeps the
    // start-up quick_check from inflating the resident set).
    db.pragma('cache_size = -2048')
    // better-sqlite3 defaults to NORMAL under WAL; FULL makes "stored" survive power loss.
    db.pragma(`synchronous = ${this.o.synchronous}`)
    const pageSize = db.pragma('page_size', { simple: true }) as number
    db.pragma(`max_page_count = ${Math.max(64, Math.floor(this.o.maxBytes / pageSize))}`)
    // The WAL is outside max_page_count: keep it small with frequent checkpoints and a size limit.
    db.pragma('wal_autocheckpoint = 1000')
    db.pragma(`journal_size_limit = ${Math.min(64 * 1024 * 1024, Math.max(4 * 1024 * 1024, Math.floor(this.o.maxBytes / 8)))}`)
    return db
  }
}
