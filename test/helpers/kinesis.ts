import { KinesisClient } from '../../relay/kinesis/client.js'
import type { Credentials } from '../../relay/kinesis/sigv4.js'

export interface ReadRecord { shardId: string; key: string; data: string; seq: string }

/** Every record of a stream, shard by shard from TRIM_HORIZON, in shard order (signed when given credentials). */
export async function readStream(endpoint: string, stream: string, credentials?: Credentials): Promise<ReadRecord[]> {
  const kinesis = new KinesisClient({ endpoint, credentials })
  try {
    const { Shards } = await kinesis.call<{ Shards: { ShardId: string }[] }>('ListShards', { StreamName: stream })
    const out: ReadRecord[] = []
    for (const s of Shards) {
      let it = (await kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: stream, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator
      for (;;) {
        const page = await kinesis.call<{ Records: { PartitionKey: string; Data: string; SequenceNumber: string }[]; NextShardIterator: string }>('GetRecords', { ShardIterator: it })
        if (!page.Records.length) break
        for (const r of page.Records) out.push({ shardId: s.ShardId, key: r.PartitionKey, data: Buffer.from(r.Data, 'base64').toString(), seq: r.SequenceNumber })
        if (!page.NextShardIterator) break // the end of a closed shard
        it = page.NextShardIterator
      }
    }
    return out
  } finally {
    kinesis.close()
  }
}
