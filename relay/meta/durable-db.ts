/**
 * meta.db's connections: the metadata store, the video catalog and the delivery catalog each open
 * their own, the same way — WAL, synchronous FULL (better-sqlite3 defaults to NORMAL under WAL, and
 * what these hold must survive power loss), a busy timeout for the others' commits — and a part
 * with tables of its own keeps its schema version in a one-row table of its own.
 */
import Database from 'better-sqlite3'

export function openDurable(path: string): Database.Database {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.pragma('busy_timeout = 5000')
  return db
}

/** Applies the migrations past the version kept in `table` (created when absent), each in its own transaction. */
export function migrateOwnTables(db: Database.Database, table: string, migrations: readonly string[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (version INTEGER NOT NULL)`)
  const row = db.prepare(`SELECT version FROM ${table}`).get() as { version: number } | undefined
  if (!row) db.prepare(`INSERT INTO ${table} (version) VALUES (0)`).run()
  for (let v = row?.version ?? 0; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!)
      db.prepare(`UPDATE ${table} SET version = ?`).run(v + 1)
    })()
  }
}
