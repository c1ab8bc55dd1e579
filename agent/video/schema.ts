/**
 * The video buffer's index: its own small SQLite file beside the fragment files (not the outbox's),
 * as numbered migrations counted by `PRAGMA user_version`, only ever appended.
 *
 * Its own file because a camera must never starve sensor data (nor the reverse): the outbox's hard
 * cap (max_page_count, SQLITE_FULL and its drop-oldest), its quarantine and its lock stay the
 * records' alone, and measured on this machine a fragment's index commit costs the same either way
 * (median 0.2-0.4 ms at synchronous=FULL, alone or beside the outbox's commits).
 */
import type Database from 'better-sqlite3'

export const VIDEO_MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE fragments (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     camera TEXT NOT NULL,
     stream TEXT NOT NULL,
     session TEXT NOT NULL,
     sequence INTEGER NOT NULL,
     init INTEGER NOT NULL,
     producer_ms REAL NOT NULL,
     clock_synced INTEGER NOT NULL,
     duration_ms INTEGER NOT NULL,
     key_frame INTEGER NOT NULL,
     crc32c INTEGER NOT NULL,
     size INTEGER NOT NULL,
     stored_mono_ms REAL NOT NULL,
     file TEXT NOT NULL,
     UNIQUE (camera, session, sequence));
   CREATE TABLE drops (camera TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (camera, reason));`,
]

export function migrateVideo(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  for (let v = version; v < VIDEO_MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(VIDEO_MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
