import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { metadataContract } from '../contracts/metadata.js'
import { tempDir } from '../helpers/tmp.js'

metadataContract(t, 'SQLite metadata', (t) => {
  const path = join(tempDir(t), 'meta.db')
  return async () => new SqliteMetadataStore(path)
})

t.test('the SQLite store runs in WAL mode with synchronous=FULL and a versioned schema', async (t) => {
  const path = join(tempDir(t), 'meta.db')
  const store = new SqliteMetadataStore(path)
  await store.close()
  const db = new Database(path)
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.ok((db.pragma('user_version', { simple: true }) as number) >= 1)
  db.close()
})
