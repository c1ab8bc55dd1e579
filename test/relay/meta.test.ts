import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { MemoryMetadataStore, MetadataTables } from '../../relay/meta/memory.js'
import { metadataContract } from '../contracts/metadata.js'
import { tempDir } from '../helpers/tmp.js'

// One suite, every store: the file-backed one and the in-memory one.
metadataContract(t, 'SQLite metadata', (t) => {
  const path = join(tempDir(t), 'meta.db')
  return async () => new SqliteMetadataStore(path)
})

metadataContract(t, 'in-memory metadata', () => {
  // A reopen is a new handle over the same tables, as a new connection over the same file.
  const tables = new MetadataTables()
  return async () => new MemoryMetadataStore(tables)
})

t.test('the SQLite store runs in WAL mode with synchronous=FULL and a versioned schema', async (t) => {
  const path = join(tempDir(t), 'meta.db')
  const store = new SqliteMetadataStore(path)
  // synchronous is a setting of the connection, not of the file: read it from the store's own.
  const own = (store as unknown as { db: Database.Database }).db
  t.equal(own.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL (2): a commit is on disk, WAL included, before it returns')
  await store.close()
  const db = new Database(path)
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.ok((db.pragma('user_version', { simple: true }) as number) >= 1)
  db.close()
})
