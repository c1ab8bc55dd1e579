/**
 * The durable outbox: every record the device captures is committed here before any producer is told
 * "stored", and leaves only when the relay has acknowledged it (or it is dropped by policy and
 * counted, or dead-lettered with its reason).
 *
 * SQLite in WAL mode, one writer with group commit (every commitIntervalMs or commitRows rows),
 * synchronous=FULL by default, a hard cap on the file (max_page_count) with the WAL bounded, and
 * per-stream policy. Batches are formed from the outbox and their identity (epoch, sequence, stream,
 * first and last record id) is committed before they are sent, so a resend after any crash is the
 * same batch.
 *
 * Ages are measured on the outbox's own monotonic clock (agent running time, persisted across
 * restarts), so a wall-clock jump changes neither ordering nor the age limit.
 */
import Database from 'better-sqlite3'
import { existsSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { HEADER_SIZE, RECORD_HEADER_SIZE, HASH_KEY_SIZE } from '../shared/frame.js'
import { Limits } from '../shared/limits.js'
import type { StreamPolicy } from './config.js'
import { systemClock, type Clock } from './clock.js'

export class OutboxFullError extends TributaryError {
  readonly stream: string
  constructor(stream: string, message: string) {
    super(ErrorCode.STORAGE_FULL, message)
    this.stream = stream
  }
}

export interface OutboxInput {
  stream: string
  partitionKey: string
  data: Buffer
  /** Decimal 128-bit hash key, when the producer picks the shard. */
  explicitHashKey?: string
  /** Device wall clock at capture. */
  capturedMs?: number
  clockSynced?: boolean
}

export interface FormedBatch {
  seq: number
  stream: string
  firstId: number
  lastId: number
  count: number
  bytes: number
}

export interface BatchRow {
  id: number
  partitionKey: string
  explicitHashKey: string | null
  data: Buffer
  capturedMs: number
  clockSynced: boolean
}

export interface OutboxOptions {
  path: string
  maxBytes: number
  synchronous: 'FULL' | 'NORMAL'
  commitIntervalMs: number
  commitRows: number
  policies: Record<string, StreamPolicy>
  clock?: Clock
  log?: (event: string, fields?: Record<string, unknown>) => void
}

export type DropReason = 'stream-cap' | 'outbox-full' | 'expired'

const MIGRATIONS = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE records (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stream TEXT NOT NULL,
     partition_key TEXT NOT NULL,
     explicit_hash_key TEXT,
     data BLOB NOT NULL,
     captured_ms REAL NOT NULL,
     clock_synced INTEGER NOT NULL,
     mono_ms REAL NOT NULL,
     size INTEGER NOT NULL);
   CREATE INDEX records_by_stream ON records (stream, id);
   CREATE TABLE batches (
     seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
     count INTEGER NOT NULL, bytes INTEGER NOT NULL);
   CREATE TABLE dead_letters (
     id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, partition_key TEXT, data BLOB,
     captured_ms REAL, code TEXT NOT NULL, message TEXT NOT NULL, batch_seq INTEGER, batch_index INTEGER, dead_ms REAL NOT NULL);
   CREATE TABLE drops (stream TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (stream, reason));`,
  `ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
   CREATE UNIQUE INDEX dead_letters_by_batch ON dead_letters (batch_seq, batch_index);
   CREATE TABLE dead_counts (stream TEXT NOT NULL, code TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (stream, code));`,
]

const DEFAULT_POLICY: Omit<StreamPolicy, 'name'> = { priority: 0, maxBytes: 0, maxAgeSeconds: 0, onFull: 'drop-oldest' }

/** Bytes a record adds to a batch frame. */
export function frameBytes(partitionKey: string, data: Buffer, explicitHashKey?: string | null): number {
  return RECORD_HEADER_SIZE + (explicitHashKey ? HASH_KEY_SIZE : 0) + Buffer.byteLength(partitionKey) + data.length
}

interface Pending {
  rows: OutboxInput[]
  resolve: (ids: number[]) => void
  reject: (err: Error) => void
}

interface StreamState {
  bytes: number
  count: number
  /** Highest record id already placed in a formed batch. */
  formedUpTo: number
}

export interface Alarm {
  code: string
  message: string
  atMs: number
}

export class Outbox extends EventEmitter {
  readonly path: string
  readonly epoch: bigint
  readonly alarms: Alarm[] = []
  private readonly db: Database.Database
  private readonly o: OutboxOptions
  private readonly clock: Clock
  private readonly log: NonNullable<OutboxOptions['log']>
  private readonly streams = new Map<string, StreamState>()
  private readonly formed = new Map<number, FormedBatch>()
  private pending: Pending[] = []
  private pendingRows = 0
  private acks: number[] = []
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private monoBase: number
  private monoStart: number
  private nextSeq: number
  private readonly stmts: ReturnType<Outbox['prepare']>

  constructor(options: OutboxOptions) {
    super()
    this.o = options
    this.path = options.path
    this.clock = options.clock ?? systemClock
    this.log = options.log ?? (() => {})
    this.db = this.openChecked()
    this.stmts = this.prepare()
    const meta = (key: string) => (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
    let epoch = meta('epoch')
    if (!epoch) {
      // A new outbox is a new producer incarnation: a fresh random epoch (kept below 2^63).
      epoch = (randomBytes(8).readBigUInt64LE() >> 1n).toString()
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('epoch', epoch)
    }
    this.epoch = BigInt(epoch)
    this.nextSeq = Number(meta('next_seq') ?? '0')
    this.monoBase = Number(meta('mono_ms') ?? '0')
    this.monoStart = this.clock.monoMs()
    for (const r of this.db.prepare('SELECT stream, COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes FROM records GROUP BY stream').all() as { stream: string; count: number; bytes: number }[]) {
      this.streams.set(r.stream, { count: r.count, bytes: r.bytes, formedUpTo: 0 })
    }
    this.deadBytes = (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS bytes FROM dead_letters').get() as { bytes: number }).bytes
    for (const b of this.db.prepare('SELECT seq, stream, first_id AS firstId, last_id AS lastId, count, bytes FROM batches ORDER BY seq').all() as FormedBatch[]) {
      this.formed.set(b.seq, b)
      const s = this.stream(b.stream)
      s.formedUpTo = Math.max(s.formedUpTo, b.lastId)
    }
  }

  // ---- opening, checking, quarantine ----

  private openChecked(): Database.Database {
    let db: Database.Database | null = null
    try {
      db = this.configure(new Database(this.path))
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new TributaryError(ErrorCode.LOG_CORRUPT, `quick_check: ${String(check)}`)
      this.migrate(db)
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
      // A damaged outbox is moved aside and a fresh one started: never a crash loop.
      const stamp = new Date(this.clock.wallMs()).toISOString().replace(/[:.]/g, '-')
      const aside = `${this.path}.corrupt-${stamp}`
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(this.path + suffix)) renameSync(this.path + suffix, aside + suffix)
      }
      const alarm = { code: 'OUTBOX_QUARANTINED', message: `outbox ${this.path} failed its check (${(err as Error).message}); moved to ${aside} and started fresh`, atMs: this.clock.wallMs() }
      this.alarms.push(alarm)
      this.log('outbox_quarantined', { path: this.path, movedTo: aside, error: (err as Error).message })
      const fresh = this.configure(new Database(this.path))
      this.migrate(fresh)
      return fresh
    }
  }

  private configure(db: Database.Database): Database.Database {
    // One agent per outbox: the exclusive lock is taken at the first write and held until close.
    db.pragma('locking_mode = EXCLUSIVE')
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

  private migrate(db: Database.Database): void {
    const version = db.pragma('user_version', { simple: true }) as number
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!)
        db.pragma(`user_version = ${v + 1}`)
      })()
    }
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare('INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      drop: db.prepare('INSERT INTO drops (stream, reason, count) VALUES (?, ?, ?) ON CONFLICT(stream, reason) DO UPDATE SET count = count + excluded.count'),
      oldestFree: db.prepare('SELECT id, size FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?'),
      deleteRange: db.prepare('DELETE FROM records WHERE stream = ? AND id >= ? AND id <= ?'),
      deleteBatch: db.prepare('DELETE FROM batches WHERE seq = ?'),
      insertBatch: db.prepare('INSERT INTO batches (seq, stream, first_id, last_id, count, bytes) VALUES (?, ?, ?, ?, ?, ?)'),
      // Sizes only: a batch is planned without reading its data.
      candidates: db.prepare('SELECT id, size, explicit_hash_key IS NOT NULL AS hashed FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?'),
      batchRows: db.prepare('SELECT id, partition_key AS partitionKey, explicit_hash_key AS explicitHashKey, data, captured_ms AS capturedMs, clock_synced AS clockSynced FROM records WHERE stream = ? AND id >= ? AND id <= ? ORDER BY id'),
      deadLetter: db.prepare('INSERT OR IGNORE INTO dead_letters (stream, partition_key, data, captured_ms, code, message, batch_seq, batch_index, dead_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      deadCount: db.prepare('INSERT INTO dead_counts (stream, code, count) VALUES (?, ?, 1) ON CONFLICT(stream, code) DO UPDATE SET count = count + 1'),
      oldestDead: db.prepare('SELECT id, size FROM dead_letters ORDER BY id LIMIT 100'),
      deleteOne: db.prepare('DELETE FROM records WHERE id = ?'),
      // mono_ms rises with id: the oldest rows come first and the walk stops at the first young one.
      oldest: db.prepare('SELECT id, size, mono_ms AS mono FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT 1000'),
    }
  }

  // ---- clocks and policies ----

  /** The outbox's monotonic clock: agent running time in ms, carried across restarts. */
  monoNow(): number {
    return this.monoBase + (this.clock.monoMs() - this.monoStart)
  }

  policy(stream: string): StreamPolicy {
    return this.o.policies[stream] ?? { name: stream, ...DEFAULT_POLICY }
  }

  private stream(name: string): StreamState {
    let s = this.streams.get(name)
    if (!s) {
      s = { bytes: 0, count: 0, formedUpTo: 0 }
      this.streams.set(name, s)
    }
    return s
  }

  // ---- writing ----

  /** Stores records; resolves with their ids once the group commit holding them is on disk. */
  enqueue(rows: OutboxInput[]): Promise<number[]> {
    if (this.closed) return Promise.reject(new TributaryError(ErrorCode.STORAGE_FAILED, 'the outbox is closed'))
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, resolve, reject })
      this.pendingRows += rows.length
      if (this.pendingRows >= this.o.commitRows) this.schedule(0)
      else this.schedule(this.o.commitIntervalMs)
    })
  }

  private schedule(ms: number): void {
    if (this.timer && ms > 0) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.timer = null; this.commit() }, ms)
  }

  /** Frees `needed` bytes of `stream` (or of any drop-oldest stream when null) by deleting the oldest records not in a formed batch. */
  private dropOldest(stream: string | null, needed: number, reason: DropReason): number {
    let freed = 0
    const names = stream ? [stream] : [...this.streams.keys()].filter((n) => this.policy(n).onFull === 'drop-oldest')
      .sort((a, b) => this.policy(a).priority - this.policy(b).priority)
    for (const name of names) {
      const s = this.stream(name)
      while (freed < needed) {
        const victims = this.stmts.oldestFree.all(name, s.formedUpTo, 1000) as { id: number; size: number }[]
        if (!victims.length) break
        let n = 0
        let bytes = 0
        for (const v of victims) {
          n++
          bytes += v.size
          if (freed + bytes >= needed) break
        }
        this.stmts.deleteRange.run(name, victims[0]!.id, victims[n - 1]!.id)
        this.stmts.drop.run(name, reason, n)
        s.count -= n
        s.bytes -= bytes
        freed += bytes
        this.emit('dropped', name, reason, n)
      }
      if (freed >= needed) break
    }
    return freed
  }

  /** One group commit: the acknowledged batches' deletions, then every pending record, then the clock. */
  commit(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    const groups = this.pending
    const acks = this.acks
    if (!groups.length && !acks.length) return
    this.pending = []
    this.pendingRows = 0
    this.acks = []
    const results = new Map<Pending, number[] | Error>()
    // The acknowledged batches' deletions ride in the same transaction as the new records (one fsync
    // per commit on the event loop, not two), unless a full file makes them go first on their own.
    let removed: ({ stream: string; n: number; bytes: number } | null)[] | null = null
    const removeAcked = () => { removed = acks.map((seq) => this.removeBatchRows(seq)) }
    // In memory only once the deletion is committed.
    const forgetRemoved = () => {
      removed?.forEach((r, i) => {
        if (!r) return
        const s = this.stream(r.stream)
        s.count -= r.n
        s.bytes -= r.bytes
        this.formed.delete(acks[i]!)
      })
    }
    let removedCommitted = acks.length === 0
    try {
      const apply = () => {
        if (!removedCommitted) removeAcked()
        for (const g of groups) if (!results.has(g)) results.set(g, this.insertGroup(g.rows))
        this.stmts.setMeta.run('mono_ms', String(this.monoNow()))
      }
      for (let attempt = 0; ; attempt++) {
        const saved = new Map([...this.streams].map(([k, v]) => [k, { ...v }]))
        const decided = new Map(results)
        try {
          this.db.transaction(apply)()
          if (!removedCommitted) { removedCommitted = true; forgetRemoved() }
          break
        } catch (err) {
          // The transaction rolled back: so do the counters, the deletions and the results it produced.
          this.streams.clear()
          for (const [k, v] of saved) this.streams.set(k, v)
          results.clear()
          for (const [k, v] of decided) results.set(k, v)
          if (!removedCommitted) removed = null
          if ((err as { code?: string }).code !== 'SQLITE_FULL' || attempt >= 3) throw err
          // Space first from what the relay already holds.
          if (!removedCommitted) {
            this.db.transaction(removeAcked)()
            removedCommitted = true
            forgetRemoved()
          }
          // The whole file is at its cap. Records of reject-new streams are refused; for the others,
          // the oldest records of drop-oldest streams make room.
          const full = (g: Pending) => new OutboxFullError(g.rows[0]?.stream ?? '', `the outbox is at its cap of ${this.o.maxBytes} bytes`)
          for (const g of groups) if (!results.has(g) && this.policy(g.rows[0]?.stream ?? '').onFull === 'reject-new') results.set(g, full(g))
          const needed = groups.filter((g) => !results.has(g)).reduce((n, g) => n + g.rows.reduce((m, r) => m + frameBytes(r.partitionKey, r.data, r.explicitHashKey), 0), 0) * 2
          let freed = 0
          if (needed > 0) {
            const before = new Map([...this.streams].map(([k, v]) => [k, { ...v }]))
            try {
              this.db.transaction(() => { freed = this.dropOldest(null, needed, 'outbox-full') })()
            } catch (dropErr) {
              this.streams.clear()
              for (const [k, v] of before) this.streams.set(k, v)
              throw dropErr
            }
          }
          if (freed === 0) for (const g of groups) if (!results.has(g)) results.set(g, full(g))
        }
      }
    } catch (err) {
      this.log('outbox_commit_failed', { error: (err as Error).message })
      const error = (err as { code?: string }).code === 'SQLITE_FULL'
        ? new OutboxFullError(groups[0]?.rows[0]?.stream ?? '', `the outbox is at its cap of ${this.o.maxBytes} bytes and nothing more can be dropped`)
        : new TributaryError(ErrorCode.STORAGE_FAILED, `outbox commit failed: ${(err as Error).message}`, { cause: err })
      for (const g of groups) g.reject(error)
      return
    }
    let stored = 0
    for (const g of groups) {
      const r = results.get(g)!
      if (r instanceof Error) g.reject(r)
      else { stored += r.length; g.resolve(r) }
    }
    if (stored) this.emit('stored', stored)
    if (acks.length) this.emit('acked', acks.length)
  }

  /** Inside the commit transaction: applies the stream policy to one producer's records and inserts them. */
  private insertGroup(rows: OutboxInput[]): number[] | Error {
    const now = this.clock.wallMs()
    const mono = this.monoNow()
    // Per-stream cap first: the group is accepted or refused as a whole.
    const byStream = new Map<string, number>()
    for (const r of rows) byStream.set(r.stream, (byStream.get(r.stream) ?? 0) + frameBytes(r.partitionKey, r.data, r.explicitHashKey))
    for (const [name, bytes] of byStream) {
      const policy = this.policy(name)
      const s = this.stream(name)
      if (policy.maxBytes > 0 && s.bytes + bytes > policy.maxBytes) {
        if (policy.onFull === 'reject-new' || bytes > policy.maxBytes) {
          return new OutboxFullError(name, `stream ${name} holds ${s.bytes} bytes in the outbox; ${bytes} more would pass its cap of ${policy.maxBytes}`)
        }
        // Records already in formed batches cannot be dropped: refuse before dropping anything in vain.
        let formedBytes = 0
        for (const b of this.formed.values()) if (b.stream === name) formedBytes += b.bytes - HEADER_SIZE
        const needed = s.bytes + bytes - policy.maxBytes
        if (s.bytes - formedBytes < needed) return new OutboxFullError(name, `stream ${name} cannot make room under its cap of ${policy.maxBytes} bytes: the rest is on its way to the relay`)
        this.dropOldest(name, needed, 'stream-cap')
      }
    }
    const ids: number[] = []
    for (const r of rows) {
      const size = frameBytes(r.partitionKey, r.data, r.explicitHashKey)
      const info = this.stmts.insert.run(r.stream, r.partitionKey, r.explicitHashKey ?? null, r.data, r.capturedMs ?? now, r.clockSynced === false ? 0 : 1, mono, size)
      ids.push(Number(info.lastInsertRowid))
      const s = this.stream(r.stream)
      s.count++
      s.bytes += size
    }
    return ids
  }

  // ---- batches ----

  /** Batches formed but not yet acknowledged, in sequence order: the uplink resends these first. */
  formedBatches(): FormedBatch[] {
    const acking = new Set(this.acks)
    return [...this.formed.values()].filter((b) => !acking.has(b.seq)).sort((a, b) => a.seq - b.seq)
  }

  /** Streams with records not yet in a batch, highest priority first. */
  private readyStreams(): string[] {
    const ready: string[] = []
    for (const [name, s] of this.streams) if (s.count > 0) ready.push(name)
    return ready.sort((a, b) => this.policy(b).priority - this.policy(a).priority)
  }

  /**
   * Forms the next batch: the oldest records of the highest-priority stream that has any, in capture
   * order, within the record and byte limits. Its identity is committed before it is returned. A
   * record that cannot fit in any batch is dead-lettered at once.
   */
  formBatch(maxRecords: number, maxBytes: number): FormedBatch | null {
    for (const name of this.readyStreams()) {
      const s = this.stream(name)
      const rows = this.stmts.candidates.all(name, s.formedUpTo, maxRecords) as { id: number; size: number; hashed: number }[]
      if (!rows.length) continue
      let bytes = HEADER_SIZE
      let count = 0
      const tooLarge: typeof rows = []
      for (const row of rows) {
        // Data plus key, as Kinesis counts a record: the frame size less the record header.
        const recordBytes = row.size - RECORD_HEADER_SIZE - (row.hashed ? HASH_KEY_SIZE : 0)
        if (HEADER_SIZE + row.size > maxBytes || recordBytes > Limits.maxRecordBytes) {
          if (count === 0) { tooLarge.push(row); continue }
          break
        }
        if (bytes + row.size > maxBytes) break
        bytes += row.size
        count++
      }
      const batchRows = rows.slice(tooLarge.length, tooLarge.length + count)
      const batch: FormedBatch | null = batchRows.length
        ? { seq: this.nextSeq, stream: name, firstId: batchRows[0]!.id, lastId: batchRows[batchRows.length - 1]!.id, count: batchRows.length, bytes }
        : null
      const removed = this.db.transaction(() => {
        let n = 0
        let freed = 0
        for (const row of tooLarge) {
          const recordBytes = row.size - RECORD_HEADER_SIZE - (row.hashed ? HASH_KEY_SIZE : 0)
          const why = recordBytes > Limits.maxRecordBytes
            ? `record is ${recordBytes} bytes, over Kinesis's limit of ${Limits.maxRecordBytes}`
            : `record takes ${row.size} bytes in a batch, over the batch limit of ${maxBytes}`
          this.copyToDeadLetters(name, row.id, ErrorCode.RECORD_TOO_LARGE, why, null, null)
          this.stmts.deleteOne.run(row.id)
          n++
          freed += row.size
        }
        if (batch) {
          this.stmts.insertBatch.run(batch.seq, name, batch.firstId, batch.lastId, batch.count, batch.bytes)
          this.stmts.setMeta.run('next_seq', String(this.nextSeq + 1))
        }
        return { n, freed }
      })()
      // In memory only once committed.
      s.count -= removed.n
      s.bytes -= removed.freed
      if (tooLarge.length) s.formedUpTo = Math.max(s.formedUpTo, tooLarge[tooLarge.length - 1]!.id)
      if (batch) {
        this.nextSeq++
        s.formedUpTo = batch.lastId
        this.formed.set(batch.seq, batch)
        return batch
      }
      if (tooLarge.length) return this.formBatch(maxRecords, maxBytes)
    }
    return null
  }

  rows(batch: FormedBatch): BatchRow[] {
    return (this.stmts.batchRows.all(batch.stream, batch.firstId, batch.lastId) as (Omit<BatchRow, 'clockSynced'> & { clockSynced: number })[])
      .map((r) => ({ ...r, clockSynced: r.clockSynced === 1 }))
  }

  /** The relay acknowledged the batch: its records leave with the next group commit. */
  ack(seq: number): void {
    if (!this.formed.has(seq) || this.acks.includes(seq)) return
    this.acks.push(seq)
    this.schedule(this.o.commitIntervalMs)
  }

  /** Inside a transaction: deletes a batch and its records; the caller updates memory after the commit. */
  private removeBatchRows(seq: number): { stream: string; n: number; bytes: number } | null {
    const b = this.formed.get(seq)
    if (!b) return null
    const rows = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM records WHERE stream = ? AND id >= ? AND id <= ?').get(b.stream, b.firstId, b.lastId) as { n: number; bytes: number }
    this.stmts.deleteRange.run(b.stream, b.firstId, b.lastId)
    this.stmts.deleteBatch.run(seq)
    return { stream: b.stream, n: rows.n, bytes: rows.bytes }
  }

  /**
   * Inside a transaction: copies one record into the dead-letter table (its data too, unless the
   * file is at its cap, then the verdict alone). The record itself stays until its batch is
   * acknowledged, so a resend of the batch is still the same batch.
   */
  private copyToDeadLetters(stream: string, id: number, code: string, message: string, seq: number | null, index: number | null): void {
    const row = this.db.prepare('SELECT partition_key AS partitionKey, data, captured_ms AS capturedMs, size FROM records WHERE id = ?').get(id) as { partitionKey: string; data: Buffer; capturedMs: number; size: number } | undefined
    const insert = (withData: boolean) => this.stmts.deadLetter.run(stream, row?.partitionKey ?? null, withData ? row?.data ?? null : null, row?.capturedMs ?? null, code, message, seq, index, this.clock.wallMs(), withData ? row?.size ?? 0 : 0)
    let info
    try {
      info = insert(true)
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_FULL') throw err
      info = insert(false)
    }
    if (info.changes === 0) return // already dead-lettered (a resent batch refused again)
    this.stmts.deadCount.run(stream, code)
    this.deadBytes += row ? row.size : 0
    this.trimDeadLetters()
    this.log('dead_letter', { stream, code, message, batch: seq, index })
    this.emit('deadLetter', stream, code)
  }

  /** Dead letters keep at most a tenth of the outbox; the oldest go first, counted as drops. */
  private deadBytes = 0
  private trimDeadLetters(): void {
    const cap = Math.floor(this.o.maxBytes / 10)
    while (this.deadBytes > cap) {
      const oldest = this.stmts.oldestDead.all() as { id: number; size: number }[]
      if (!oldest.length) break
      for (const d of oldest) {
        this.db.prepare('DELETE FROM dead_letters WHERE id = ?').run(d.id)
        this.deadBytes -= d.size
        if (d.size) this.stmts.drop.run('(dead letters)', 'dead-letter-cap', 1)
        if (this.deadBytes <= cap) break
      }
    }
  }

  /**
   * The relay refused records of a batch (or the whole batch, when `refusals` is null): they are
   * copied to the dead-letter table with the relay's code, and leave the outbox with the rest of
   * the batch when it is acknowledged; they never hold back the records behind them.
   */
  deadLetter(seq: number, refusals: { index: number; code: string; message: string }[] | null, batchCode?: { code: string; message: string }): void {
    const b = this.formed.get(seq)
    this.db.transaction(() => {
      if (!b) {
        // Acknowledged and deleted already: keep the verdict, without the data.
        for (const r of refusals ?? [{ index: -1, ...(batchCode ?? { code: 'REJECTED', message: 'rejected' }) }]) {
          if (this.stmts.deadLetter.run('', null, null, null, r.code, r.message, seq, r.index, this.clock.wallMs(), 0).changes) this.stmts.deadCount.run('', r.code)
        }
        return
      }
      const rows = this.db.prepare('SELECT id FROM records WHERE stream = ? AND id >= ? AND id <= ? ORDER BY id').all(b.stream, b.firstId, b.lastId) as { id: number }[]
      if (refusals === null) {
        rows.forEach((row, i) => this.copyToDeadLetters(b.stream, row.id, batchCode?.code ?? 'REJECTED', batchCode?.message ?? 'batch rejected', seq, i))
      } else {
        for (const r of refusals) {
          const row = rows[r.index]
          if (row) this.copyToDeadLetters(b.stream, row.id, r.code, r.message, seq, r.index)
        }
      }
    })()
  }

  /** Drops records past their stream's age limit (not those already in a formed batch), in bounded chunks. */
  expire(): number {
    let dropped = 0
    const cutoffFor = (name: string) => this.monoNow() - this.policy(name).maxAgeSeconds * 1000
    for (const [name, s] of this.streams) {
      if (this.policy(name).maxAgeSeconds <= 0 || s.count === 0) continue
      for (;;) {
        const cutoff = cutoffFor(name)
        const oldest = this.stmts.oldest.all(name, s.formedUpTo) as { id: number; size: number; mono: number }[]
        let n = 0
        let bytes = 0
        while (n < oldest.length && oldest[n]!.mono < cutoff) bytes += oldest[n++]!.size
        if (n === 0) break
        // One chunk per transaction keeps each commit, and the WAL, small.
        this.db.transaction(() => {
          this.stmts.deleteRange.run(name, oldest[0]!.id, oldest[n - 1]!.id)
          this.stmts.drop.run(name, 'expired', n)
        })()
        s.count -= n
        s.bytes -= bytes
        dropped += n
        this.emit('dropped', name, 'expired', n)
        if (n < oldest.length) break
      }
    }
    return dropped
  }

  // ---- status ----

  stats() {
    const now = this.monoNow()
    const streams: Record<string, { backlog: number; bytes: number; oldestAgeSeconds: number; priority: number }> = {}
    for (const [name, s] of this.streams) {
      const oldest = this.db.prepare('SELECT mono_ms FROM records WHERE stream = ? ORDER BY id LIMIT 1').get(name) as { mono_ms: number } | undefined
      streams[name] = { backlog: s.count, bytes: s.bytes, oldestAgeSeconds: oldest ? Math.max(0, (now - oldest.mono_ms) / 1000) : 0, priority: this.policy(name).priority }
    }
    const drops = this.db.prepare('SELECT stream, reason, count FROM drops').all() as { stream: string; reason: string; count: number }[]
    const dead = this.db.prepare('SELECT stream, code, count FROM dead_counts').all() as { stream: string; code: string; count: number }[]
    return {
      epoch: this.epoch.toString(),
      backlog: [...this.streams.values()].reduce((n, s) => n + s.count, 0),
      streams,
      drops,
      deadLetters: dead,
      inFlightBatches: this.formed.size,
      alarms: this.alarms,
      fileBytes: (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number),
    }
  }

  /** Dead letters, oldest first, `limit` at a time after id `after`; data only when asked. */
  deadLetters(limit = 100, after = 0, withData = true): { id: number; stream: string; partitionKey: string | null; data: Buffer | null; code: string; message: string; batchSeq: number | null; batchIndex: number | null }[] {
    return this.db.prepare(`SELECT id, stream, partition_key AS partitionKey, ${withData ? 'data' : 'NULL AS data'}, code, message, batch_seq AS batchSeq, batch_index AS batchIndex FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?`).all(after, limit) as never
  }

  backlog(): number {
    let n = 0
    for (const s of this.streams.values()) n += s.count
    return n
  }

  close(): void {
    if (this.closed) return
    this.commit()
    this.closed = true
    try { this.db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* best effort */ }
    this.db.close()
  }
}
