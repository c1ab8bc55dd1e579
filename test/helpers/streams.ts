/** Streams over real files (SQLite metadata, segment-file shard logs) in a directory removed after the test. */
import type { Test } from 'tap'
import { join } from 'node:path'
import { FileLogStore } from '../../relay/log/filelog.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { Streams } from '../../relay/streams.js'
import { tempDir } from './tmp.js'

export async function fileStreams(t: Test): Promise<{ dir: string; meta: SqliteMetadataStore; logs: FileLogStore; streams: Streams }> {
  const dir = tempDir(t)
  const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
  const logs = new FileLogStore({ root: join(dir, 'streams') })
  t.teardown(async () => { await logs.close(); await meta.close() })
  const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24 })
  await streams.init()
  return { dir, meta, logs, streams }
}
