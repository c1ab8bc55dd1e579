/**
 * --journal-bytes reaches the shard-log store: the journal's files move on (and the full one is
 * checkpointed and emptied) at the size given, so neither ever grows much past it.
 */
import t from 'tap'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis'
import { spawnRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

t.test('a relay with --journal-bytes 1 MiB keeps each journal file near 1 MiB while 6 MB of records go through it', async (t) => {
  const dataDir = tempDir(t)
  const relay = await spawnRelay(['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--journal-bytes', String(1024 * 1024)])
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  // 16 shards: a request of random keys touches more than 4 segments, so its commit goes through the journal.
  await client.send(new CreateStreamCommand({ StreamName: 'j', ShardCount: 16 }))
  while ((await client.send(new DescribeStreamSummaryCommand({ StreamName: 'j' }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 50))
  const journal = (i: number) => { try { return statSync(join(dataDir, `streams.journal-${i}`)).size } catch { return 0 } }
  let largest = 0
  for (let call = 0; call < 60; call++) {
    const out = await client.send(new PutRecordsCommand({ StreamName: 'j', Records: Array.from({ length: 100 }, (_, i) => ({ PartitionKey: `k${call}-${i}`, Data: Buffer.alloc(1000, i) })) }))
    t.equal(out.FailedRecordCount, 0)
    largest = Math.max(largest, journal(0), journal(1))
  }
  // A file moves on once it holds 1 MiB, so it ends at most one commit (here ~110 KB) past it.
  t.ok(largest > 512 * 1024, `the journal was used (largest file ${largest} bytes)`)
  t.ok(largest < 1024 * 1024 + 256 * 1024, `no file grew past 1 MiB and one commit (largest ${largest} bytes)`)
})
