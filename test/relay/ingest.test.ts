/**
 * Ingest of device batches on its own (real shard logs and metadata, no broker): what a batch that
 * fails half-way leaves behind, and how its resend is completed without duplicates.
 */
import t from 'tap'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { ErrorCode, StorageError } from '../../shared/errors.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { Streams } from '../../relay/streams.js'
import { Ingest } from '../../relay/ingest.js'
import { tempDir } from '../helpers/tmp.js'

t.test('a batch whose append fails on one shard is completed, not duplicated, when the device resends it', async (t) => {
  const dir = tempDir(t)
  const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
  const logs = new FileLogStore({ root: join(dir, 'streams') })
  t.teardown(async () => { await logs.close(); await meta.close() })
  const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24 })
  await streams.init()
  const state = await streams.create('half', 4)
  const ingest = new Ingest({ streams, logs, autoCreateStreams: false, autoCreateShardCount: 1, maxBatchRecords: 10_000, maxDataBytes: 0 })
  const frame = codec.encodeBatch({
    epoch: 5n, sequence: 1,
    records: Array.from({ length: 200 }, (_, i) => ({ partitionKey: `key-${i}`, data: Buffer.from(`r${i}`), producerTimeMs: i, clockSynced: true })),
  })
  // The third shard refuses once, as a failing disk or a missing encryption key would.
  const victim = state.open[2]!.log
  const appendBatch = victim.appendBatch.bind(victim)
  let failures = 0
  victim.appendBatch = (slice) => {
    if (failures++ === 0) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the disk said no')
    return appendBatch(slice)
  }
  await t.rejects(ingest.ingestBatch('dev-1', 'half', frame), { code: 'STORAGE_FAILED' }, 'no PUBACK for the first attempt')
  await logs.commit()
  const before = state.open.reduce((n, s) => n + s.log.endOffset(), 0)
  t.ok(before > 0 && before < 200, `the shards before the failure took their records (${before})`)
  const resend = await ingest.ingestBatch('dev-1', 'half', frame)
  t.equal(resend.duplicates, before, 'the resend finds those already stored')
  t.equal(resend.stored, 200 - before, 'and stores only the rest')
  const keys: string[] = []
  for (const shard of state.open) keys.push(...(await shard.log.read(0, 1000, 1 << 20)).records.map((r) => r.partitionKey))
  t.equal(keys.length, 200)
  t.equal(new Set(keys).size, 200, 'every record once')
})
