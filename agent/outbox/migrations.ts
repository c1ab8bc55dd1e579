/**
 * The outbox's schema, as numbered migrations: `PRAGMA user_version` is how many have run. A
 * migration is only ever appended, never edited, so every outbox on a device can be brought forward.
 */
import type Database from 'better-sqlite3'

export const MIGRATIONS: readonly string[] = [
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

/** Runs the migrations this file has not seen yet, each in its own transaction with its version. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
