/**
 * The unmodified AWS SDK (@aws-sdk/client-kinesis) against the relay, with its default HTTP/2
 * handler (cleartext h2 on an http:// endpoint) and with its HTTP/1.1 handler.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamCommand, DescribeStreamSummaryCommand, ListStreamsCommand,
  ListShardsCommand, PutRecordsCommand, PutRecordCommand, GetShardIteratorCommand, GetRecordsCommand, DeleteStreamCommand,
  type Shard,
} from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { manualClock, testRelay } from '../helpers/relay.js'

const md5Hash = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))

for (const handler of ['http2', 'http1.1'] as const) {
  t.test(`with the SDK's ${handler} handler, 10,000 records come back exactly once, in the right shard, in order per key`, async (t) => {
    const relay = await testRelay(t)
    const client = new KinesisClient({
      endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      ...(handler === 'http1.1' ? { requestHandler: new NodeHttpHandler() } : {}),
    })
    t.teardown(() => client.destroy())
    const StreamName = `sdk-${handler.replace('.', '')}`
    await client.send(new CreateStreamCommand({ StreamName, ShardCount: 4 }))
    const description = await client.send(new DescribeStreamCommand({ StreamName }))
    t.equal(description.StreamDescription?.StreamStatus, 'ACTIVE')
    t.equal(description.StreamDescription?.Shards?.length, 4)
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamARN: description.StreamDescription!.StreamARN }))
    t.equal(summary.StreamDescriptionSummary?.OpenShardCount, 4, 'a stream can be named by its ARN')
    t.ok((await client.send(new ListStreamsCommand({}))).StreamNames?.includes(StreamName))

    // 10,000 records, random keys drawn from a small set so that per-key order is meaningful.
    const keys = Array.from({ length: 300 }, () => randomBytes(6).toString('hex'))
    const sent: { key: string; n: number }[] = []
    const calls: Promise<unknown>[] = []
    for (let batch = 0; batch < 20; batch++) {
      const records = Array.from({ length: 500 }, (_, i) => {
        const n = batch * 500 + i
        const key = keys[Math.floor(Math.random() * keys.length)]!
        sent.push({ key, n })
        return { PartitionKey: key, Data: Buffer.from(JSON.stringify({ n, key })) }
      })
      // Batches go one after another so that put order per key is well defined.
      const out = await client.send(new PutRecordsCommand({ StreamName, Records: records }))
      t.equal(out.FailedRecordCount, 0)
      calls.push(Promise.resolve(out))
    }
    const one = await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'a', Data: Buffer.from('{"n":10000,"key":"a"}') }))
    sent.push({ key: 'a', n: 10000 })
    t.match(one.SequenceNumber, /^\d{56}$/)

    const { Shards } = await client.send(new ListShardsCommand({ StreamName }))
    t.equal(Shards?.length, 4)
    const seen = new Map<number, string>()
    const lastPerKey = new Map<string, number>()
    for (const shard of Shards as Shard[]) {
      const start = BigInt(shard.HashKeyRange!.StartingHashKey!)
      const end = BigInt(shard.HashKeyRange!.EndingHashKey!)
      let iterator = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
      let lastSeq = -1n
      for (;;) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }))
        for (const r of page.Records ?? []) {
          const { n, key } = JSON.parse(Buffer.from(r.Data!).toString()) as { n: number; key: string }
          if (r.PartitionKey !== key) t.fail(`record ${n} came back with key ${r.PartitionKey}`)
          if (seen.has(n)) t.fail(`record ${n} served twice`)
          seen.set(n, shard.ShardId!)
          const h = md5Hash(key)
          if (h < start || h > end) t.fail(`record ${n} with key ${key} is in ${shard.ShardId}, whose range does not hold its hash`)
          const seq = BigInt(r.SequenceNumber!)
          if (seq <= lastSeq) t.fail('sequence numbers must increase within a shard')
          lastSeq = seq
          const prev = lastPerKey.get(key)
          if (prev !== undefined && prev > n) t.fail(`key ${key}: record ${n} came after ${prev}`)
          lastPerKey.set(key, n)
          if (!(r.ApproximateArrivalTimestamp instanceof Date)) t.fail('ApproximateArrivalTimestamp is a time')
        }
        if (!page.Records?.length) {
          t.equal(page.MillisBehindLatest, 0, 'caught up')
          break
        }
        iterator = page.NextShardIterator
      }
    }
    t.equal(seen.size, sent.length, 'every record came back exactly once')
    t.equal(seen.get(10000), 'shardId-000000000000', 'MD5("a") routes to the first of 4 shards')
    await client.send(new DeleteStreamCommand({ StreamName }))
    await t.rejects(client.send(new DescribeStreamCommand({ StreamName })), { name: 'ResourceNotFoundException' })
  })
}

t.test('iterators of all five types position reads as Kinesis does', async (t) => {
  // Arrival times come from the test's clock: AT_TIMESTAMP falls between two records whatever the machine's speed.
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  const StreamName = 'iters'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  const ShardId = 'shardId-000000000000'
  const put = async (text: string) => client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from(text) }))
  const first = await put('one')
  const second = await put('two')
  clock.advance(1000)
  const between = new Date(clock.now())
  clock.advance(1000)
  await put('three')
  const latest = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType: 'LATEST' }))).ShardIterator
  await put('four')
  const read = async (req: Omit<ConstructorParameters<typeof GetShardIteratorCommand>[0], 'StreamName' | 'ShardId'>) => {
    const it = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId, ...req }))).ShardIterator
    const page = await client.send(new GetRecordsCommand({ ShardIterator: it }))
    return (page.Records ?? []).map((r) => Buffer.from(r.Data!).toString())
  }
  t.same(await read({ ShardIteratorType: 'TRIM_HORIZON' }), ['one', 'two', 'three', 'four'])
  t.same(await read({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: second.SequenceNumber }), ['two', 'three', 'four'])
  t.same(await read({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: first.SequenceNumber }), ['two', 'three', 'four'])
  t.same(await read({ ShardIteratorType: 'AT_TIMESTAMP', Timestamp: between }), ['three', 'four'])
  // The shard's StartingSequenceNumber sorts below every record, so AFTER it begins at the first record.
  const shard = (await client.send(new ListShardsCommand({ StreamName }))).Shards![0]!
  const start = shard.SequenceNumberRange!.StartingSequenceNumber!
  t.ok(BigInt(start) < BigInt(first.SequenceNumber!), 'StartingSequenceNumber is below the first record\'s number')
  t.same(await read({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: start }), ['one', 'two', 'three', 'four'])
  t.same(await read({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: start }), ['one', 'two', 'three', 'four'])
  const page = await client.send(new GetRecordsCommand({ ShardIterator: latest }))
  t.same((page.Records ?? []).map((r) => Buffer.from(r.Data!).toString()), ['four'], 'LATEST yields only what was written after it')
  clock.advance(1000)
  const empty = await read({ ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(clock.now()) })
  t.same(empty, [], 'AT_TIMESTAMP past the last record yields nothing yet')
})
