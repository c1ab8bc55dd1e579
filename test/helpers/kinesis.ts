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

/**
 * CreateStream as a Kinesis client does it on a cluster that may be busy: a retryable refusal (503:
 * JetStream did not answer in time) is tried again, ResourceInUse after such a refusal means the
 * first try was recorded, and the stream is waited for until it is ACTIVE (up to 60 s).
 */
export async function createStreamAndWait(client: import('@aws-sdk/client-kinesis').KinesisClient, name: string, shardCount: number): Promise<void> {
  const { CreateStreamCommand, DescribeStreamSummaryCommand } = await import('@aws-sdk/client-kinesis')
  const deadline = Date.now() + 60_000
  let refused = false
  for (;;) {
    try {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }))
      break
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } }
      if (refused && e.name === 'ResourceInUseException') break
      if (e.$metadata?.httpStatusCode !== 503 || Date.now() > deadline) throw err
      refused = true
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  for (;;) {
    const status = await client.send(new DescribeStreamSummaryCommand({ StreamName: name })).then((d) => d.StreamDescriptionSummary?.StreamStatus, (err: Error) => `${err.name}: ${err.message}`)
    if (status === 'ACTIVE') return
    if (Date.now() > deadline) throw new Error(`stream ${name} is not ACTIVE within 60 s (${String(status)})`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
