/**
 * The client side of the Kinesis API benches (`kinesis-api.ts`, `profile.ts`): the unmodified
 * @aws-sdk/client-kinesis creates a stream of 4 shards, runs PutRecords of 500 records of 100 bytes
 * with a fixed number of calls in flight for a while, then reads everything back with GetRecords
 * (pages of 10,000) from TRIM_HORIZON on every shard at once.
 */
import { KinesisClient, CreateStreamCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand, DescribeStreamCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'

const data = Buffer.alloc(100, 0x61)

export interface Phase {
  records: number
  seconds: number
  /** process.hrtime in µs at the phase's start and end (CLOCK_MONOTONIC, as a CPU profile's timestamps). */
  startUs: number
  endUs: number
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

/** HTTP/1.1 through the SDK's NodeHttpHandler with keep-alive; else the client's default (HTTP/2). */
export function kinesisClient(endpoint: string, http1: boolean): KinesisClient {
  return new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, ...(http1 ? { requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: 32 } as never }) } : {}) })
}

export async function createBenchStream(client: KinesisClient, ShardCount = 4): Promise<string> {
  const StreamName = `bench-${Math.random().toString(36).slice(2, 8)}`
  await client.send(new CreateStreamCommand({ StreamName, ShardCount }))
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeStreamCommand({ StreamName }))
    if (d.StreamDescription?.StreamStatus === 'ACTIVE') break
    await new Promise((r) => setTimeout(r, 50))
  }
  return StreamName
}

/** PutRecords of 500 distinct keys from `inFlight` callers for `seconds`; with several streams, each caller takes them in turn. */
export async function putFor(client: KinesisClient, streams: string | readonly string[], seconds: number, inFlight: number): Promise<Phase> {
  const names = typeof streams === 'string' ? [streams] : streams
  let records = 0
  const deadline = Date.now() + seconds * 1000
  const startUs = nowUs()
  await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
    for (let n = 0; Date.now() < deadline; n++) {
      await client.send(new PutRecordsCommand({ StreamName: names[(w + n) % names.length], Records: Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `k${w}-${n}-${i}`, Data: data })) }))
      records += 500
    }
  }))
  const endUs = nowUs()
  return { records, seconds: (endUs - startUs) / 1e6, startUs, endUs }
}

export async function getAll(client: KinesisClient, StreamName: string): Promise<Phase> {
  const d = await client.send(new DescribeStreamCommand({ StreamName }))
  let records = 0
  const startUs = nowUs()
  await Promise.all((d.StreamDescription?.Shards ?? []).map(async (shard) => {
    let it = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
    for (;;) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10000 }))
      records += page.Records?.length ?? 0
      if (!page.Records?.length || page.MillisBehindLatest === 0 && (page.Records?.length ?? 0) < 10000) break
      it = page.NextShardIterator
    }
  }))
  const endUs = nowUs()
  return { records, seconds: (endUs - startUs) / 1e6, startUs, endUs }
}
