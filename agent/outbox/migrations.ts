/**
 * The outbox's schema, as numbered migrations: `PRAGMA user_version` is how many have run. A
 * migration is only ever appended, never edited, so every outbox on a device can be brought forward.
 * Most are SQL run in one transaction with the version bump; one that moves records runs in steps of
 * its own, each a transaction that leaves the file consistent, and bumps the version in its last.
 */
import type Database from 'better-sqlite3'
import { packChunk } from './records.js'

type Migration = string | ((db: Database.Database) => void)

/**
 * Old records moved into chunks per transaction, at most this many and about this many bytes of
 * data (records reach 1 MB): a large backlog is moved without a WAL, or a heap, of its size.
 */
const MOVE_STEP = 20_000
const MOVE_STEP_BYTES = 16 * 1024 * 1024

/** The records the first schema kept one row each. */
interface OldRecord {
  id: number
  stream: string
  partition_key: string
  explicit_hash_key: string | null
  data: Buffer
  captured_ms: number
  clock_synced: number
  mono_ms: number
  size: number
}

export const MIGRATIONS: readonly Migration[] = [
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
  // Records in chunks (agent/outbox/records.ts). The records of the first schema move over under
  // their ids, each run of consecutive ids of one stream stored in one commit becoming a chunk.
  (db) => {
    db.exec(`CREATE TABLE IF NOT EXISTS chunks (
      id INTEGER PRIMARY KEY, stream TEXT NOT NULL, count INTEGER NOT NULL, bytes INTEGER NOT NULL,
      mono_ms REAL NOT NULL, wall_ms REAL NOT NULL, sizes BLOB NOT NULL, body BLOB NOT NULL, crc INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS chunks_by_stream ON chunks (stream, id);`)
    moveRecords(db)
  },
]

/** Moves the first schema's records into chunks, MOVE_STEP at a time, then drops their table. */
function moveRecords(db: Database.Database): void {
  const hasRecords = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'records'").get()
  if (!hasRecords) return
  const sizes = db.prepare('SELECT id, size FROM records ORDER BY id LIMIT ?')
  const take = db.prepare('SELECT * FROM records WHERE id <= ? ORDER BY id')
  const insert = db.prepare('INSERT INTO chunks (id, stream, count, bytes, mono_ms, wall_ms, sizes, body, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const remove = db.prepare('DELETE FROM records WHERE id <= ?')
  for (;;) {
    const heads = sizes.all(MOVE_STEP) as { id: number; size: number }[]
    if (!heads.length) break
    let upTo = 0
    let bytes = 0
    for (const h of heads) {
      if (upTo > 0 && bytes + h.size > MOVE_STEP_BYTES) break
      upTo = h.id
      bytes += h.size
    }
    const rows = take.all(upTo) as OldRecord[]
    db.transaction(() => {
      let start = 0
      while (start < rows.length) {
        const first = rows[start]!
        let end = start + 1
        while (end < rows.length && end - start < 500 && rows[end]!.id === rows[end - 1]!.id + 1 && rows[end]!.stream === first.stream && rows[end]!.mono_ms === first.mono_ms) end++
        const run = rows.slice(start, end)
        const records = run.map((r) => ({ stream: r.stream, partitionKey: r.partition_key, data: r.data, capturedMs: r.captured_ms, clockSynced: r.clock_synced === 1, ...(r.explicit_hash_key ? { explicitHashKey: r.explicit_hash_key } : {}) }))
        const sizes = run.map((r) => r.size)
        const wall = Math.floor(first.captured_ms)
        const packed = packChunk(records, sizes, wall)
        insert.run(first.id, first.stream, run.length, sizes.reduce((n, s) => n + s, 0), first.mono_ms, wall, packed.sizes, packed.body, packed.crc)
        start = end
      }
      remove.run(rows[rows.length - 1]!.id)
    })()
  }
  db.exec('DROP TABLE records')
}

/** Runs the migrations this file has not seen yet, each in its own transaction with its version (or steps of its own). */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  for (let v = version; v < MIGRATIONS.length; v++) {
    const m = MIGRATIONS[v]!
    if (typeof m === 'function') m(db)
    db.transaction(() => {
      if (typeof m === 'string') db.exec(m)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
