/**
 * Resharding through the unmodified AWS SDK while writers keep writing: SplitShard, MergeShards and
 * UpdateShardCount close parents with an ending sequence number, give children their lineage and
 * ranges, and a reader that finishes parents before children (following ChildShards) gets every
 * record exactly once, in order per key, each in a shard whose range holds its hash.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamCommand, ListShardsCommand, PutRecordsCommand, PutRecordCommand,
  GetShardIteratorCommand, GetRecordsCommand, SplitShardCommand, MergeShardsCommand, UpdateShardCountCommand,
  DescribeStreamSummaryCommand, type Shard, type ChildShard,
} from '@aws-sdk/client-kinesis'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { testRelay } from '../helpers/relay.js'

const md5Hash = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))

function sdk(t: Test, endpoint: string): KinesisClient {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  return client
}

/**
 * Writers with disjoint keys, each sending its records in order, one PutRecords at a time. `holdAt`
 * makes them wait before writing past a count, so a test can reshard at a point it knows writing
 * has not finished, however fast the machine is.
 */
function startWriters(client: KinesisClient, StreamName: string, total: number, writers: number) {
  const keys = Array.from({ length: 400 }, () => randomBytes(6).toString('hex'))
  let next = 0
  let written = 0
  let cap = total
  const run = async (w: number) => {
    const mine = keys.filter((_, i) => i % writers === w)
    const counters = new Map<string, number>()
    while (next < total) {
      if (next >= cap) { await new Promise((r) => setTimeout(r, 5)); continue }
      const size = Math.min(250, cap - next)
      next += size
      const Records = Array.from({ length: size }, () => {
        const key = mine[Math.floor(Math.random() * mine.length)]!
        const n = counters.get(key) ?? 0
        counters.set(key, n + 1)
        return { PartitionKey: key, Data: Buffer.from(JSON.stringify({ key, n })) }
      })
      const out = await client.send(new PutRecordsCommand({ StreamName, Records }))
      if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records failed`)
      written += size
    }
  }
  const done = Promise.all(Array.from({ length: writers }, (_, w) => run(w)))
  return { done, written: () => written, holdAt: (n: number) => { cap = n } }
}

interface Read { shardId: string; key: string; n: number; seq: string }

/** Reads every shard, parents before children, each to its end (closed) or to the tip (open). */
async function readAll(client: KinesisClient, StreamName: string) {
  const shards = (await client.send(new ListShardsCommand({ StreamName }))).Shards!
  const byId = new Map(shards.map((s) => [s.ShardId!, s]))
  const done = new Set<string>()
  const records: Read[] = []
  const childShards = new Map<string, ChildShard[]>()
  const ready = (s: Shard) => [s.ParentShardId, s.AdjacentParentShardId].every((p) => !p || !byId.has(p) || done.has(p))
  while (done.size < shards.length) {
    const shard = shards.find((s) => !done.has(s.ShardId!) && ready(s))!
    let iterator = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
    while (iterator) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }))
      for (const r of page.Records!) {
        const { key, n } = JSON.parse(Buffer.from(r.Data!).toString()) as { key: string; n: number }
        if (r.PartitionKey !== key) throw new Error(`record ${key}/${n} came back with key ${r.PartitionKey}`)
        records.push({ shardId: shard.ShardId!, key, n, seq: r.SequenceNumber! })
      }
      if (page.ChildShards) childShards.set(shard.ShardId!, page.ChildShards)
      iterator = page.NextShardIterator
      if (!page.Records!.length && page.MillisBehindLatest === 0 && iterator) break
    }
    done.add(shard.ShardId!)
  }
  return { shards, records, childShards }
}

function checkRecords(t: Test, shards: Shard[], records: Read[], total: number): void {
  t.equal(records.length, total, 'every record is read')
  t.equal(new Set(records.map((r) => `${r.key}/${r.n}`)).size, total, 'none twice')
  const range = new Map(shards.map((s) => [s.ShardId!, [BigInt(s.HashKeyRange!.StartingHashKey!), BigInt(s.HashKeyRange!.EndingHashKey!)] as const]))
  const misplaced = records.filter((r) => { const [a, b] = range.get(r.shardId)!; const h = md5Hash(r.key); return h < a || h > b })
  t.equal(misplaced.length, 0, "each record is in a shard whose range holds its key's hash")
  const last = new Map<string, number>()
  let outOfOrder = 0
  for (const r of records) {
    if (r.n !== (last.get(r.key) ?? -1) + 1) outOfOrder++
    last.set(r.key, r.n)
  }
  t.equal(outOfOrder, 0, 'per key, records come in the order they were written')
}

t.test('10,000 records into 4 shards, a split and a merge while writing continues: nothing lost, duplicated or out of order', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamName = 'reshard-live'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 4 }))
  // Writing goes on through each reshard; the writers wait at 5,000 until the split has answered
  // and at 7,500 until the merge has, so both land mid-stream and records follow each.
  const writers = startWriters(client, StreamName, 10_000, 2)
  writers.holdAt(5000)
  while (writers.written() < 3000) await new Promise((r) => setTimeout(r, 5))

  const before = (await client.send(new ListShardsCommand({ StreamName }))).Shards!
  const s1 = before[1]!
  const mid = (BigInt(s1.HashKeyRange!.StartingHashKey!) + BigInt(s1.HashKeyRange!.EndingHashKey!)) / 2n
  await client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000001', NewStartingHashKey: mid.toString() }))
  writers.holdAt(7500)
  while (writers.written() < 6000) await new Promise((r) => setTimeout(r, 5))
  await client.send(new MergeShardsCommand({ StreamName, ShardToMerge: 'shardId-000000000002', AdjacentShardToMerge: 'shardId-000000000003' }))
  writers.holdAt(10_000)
  await writers.done

  const summary = (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!
  t.equal(summary.StreamStatus, 'ACTIVE')
  t.equal(summary.OpenShardCount, 4, '4 - 1 + 2 - 2 + 1 open shards')
  const shards = (await client.send(new DescribeStreamCommand({ StreamName }))).StreamDescription!.Shards!
  t.same(shards.map((s) => s.ShardId), [0, 1, 2, 3, 4, 5, 6].map((i) => `shardId-00000000000${i}`), 'closed shards stay listed')
  const [p0, p1, p2, p3, c4, c5, c6] = shards as [Shard, Shard, Shard, Shard, Shard, Shard, Shard]
  t.notOk(p0.SequenceNumberRange!.EndingSequenceNumber, 'an untouched shard stays open')
  for (const p of [p1, p2, p3]) t.ok(p.SequenceNumberRange!.EndingSequenceNumber, `${p.ShardId} closed with an ending sequence number`)
  t.match(c4, { ParentShardId: p1.ShardId, HashKeyRange: { StartingHashKey: p1.HashKeyRange!.StartingHashKey, EndingHashKey: (mid - 1n).toString() } })
  t.match(c5, { ParentShardId: p1.ShardId, HashKeyRange: { StartingHashKey: mid.toString(), EndingHashKey: p1.HashKeyRange!.EndingHashKey } })
  t.notOk(c4.AdjacentParentShardId)
  t.match(c6, { ParentShardId: p2.ShardId, AdjacentParentShardId: p3.ShardId, HashKeyRange: { StartingHashKey: p2.HashKeyRange!.StartingHashKey, EndingHashKey: p3.HashKeyRange!.EndingHashKey } })

  const { records, childShards } = await readAll(client, StreamName)
  checkRecords(t, shards, records, 10_000)
  t.same(childShards.get(p1.ShardId!)?.map((c) => c.ShardId), [c4.ShardId, c5.ShardId], 'the split parent names its children at its end')
  t.same(childShards.get(p2.ShardId!), [{ ShardId: c6.ShardId, ParentShards: [p2.ShardId, p3.ShardId], HashKeyRange: c6.HashKeyRange }])
  t.same(childShards.get(p3.ShardId!)?.map((c) => c.ShardId), [c6.ShardId])
  t.notOk(childShards.has(p0.ShardId!))
  for (const p of [p1, p2, p3]) {
    const end = BigInt(p.SequenceNumberRange!.EndingSequenceNumber!)
    const outside = records.filter((r) => r.shardId === p.ShardId && BigInt(r.seq) > end)
    t.same(outside, [], `every record of ${p.ShardId} is within its range`)
  }
  // 2,000+ records after each reshard over ~100 keys per writer: every shard of each side has some.
  for (const s of [p1, p2, p3]) t.ok(records.some((r) => r.shardId === s.ShardId), `${s.ShardId} kept what was written before it closed`)
  for (const s of [c4, c5, c6]) t.ok(records.some((r) => r.shardId === s.ShardId), `${s.ShardId} received writes after the reshard`)
})

t.test('UpdateShardCount scales 4 → 6 → 3 while writing: uniform open shards, every record kept in order', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamName = 'reshard-scale'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 4 }))
  const writers = startWriters(client, StreamName, 4000, 2)
  writers.holdAt(2000)
  while (writers.written() < 1000) await new Promise((r) => setTimeout(r, 5))
  const up = await client.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 6, ScalingType: 'UNIFORM_SCALING' }))
  t.match(up, { StreamName, CurrentShardCount: 4, TargetShardCount: 6 })
  writers.holdAt(3000)
  while (writers.written() < 2500) await new Promise((r) => setTimeout(r, 5))
  await client.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 3, ScalingType: 'UNIFORM_SCALING' }))
  writers.holdAt(4000)
  await writers.done

  const open = (await client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_LATEST' } }))).Shards!
  const step = (1n << 128n) / 3n
  t.same(open.map((s) => [s.HashKeyRange!.StartingHashKey, s.HashKeyRange!.EndingHashKey]),
    [[0n, step - 1n], [step, 2n * step - 1n], [2n * step, (1n << 128n) - 1n]].map(([a, b]) => [a!.toString(), b!.toString()]), 'three even ranges')
  for (const s of open) t.ok(s.ParentShardId, `${s.ShardId} records its parent`)
  const { shards, records } = await readAll(client, StreamName)
  t.ok(shards.every((s) => !s.AdjacentParentShardId || s.ParentShardId), 'at most a parent and an adjacent parent each')
  checkRecords(t, shards, records, 4000)

  await t.rejects(client.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 7, ScalingType: 'UNIFORM_SCALING' })), { name: 'LimitExceededException' }, 'more than double is refused')
  await t.rejects(client.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 1, ScalingType: 'UNIFORM_SCALING' })), { name: 'LimitExceededException' }, 'below half is refused')
})

t.test('resharding refuses what Kinesis refuses, with its types and wording', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamName = 'reshard-errors'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 3 }))
  const shards = (await client.send(new ListShardsCommand({ StreamName }))).Shards!
  const start0 = BigInt(shards[0]!.HashKeyRange!.StartingHashKey!)
  const end0 = BigInt(shards[0]!.HashKeyRange!.EndingHashKey!)

  await t.rejects(client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (start0 + 1n).toString() })), {
    name: 'InvalidArgumentException',
    message: `NewStartingHashKey ${start0 + 1n} used in SplitShard() on shard shardId-000000000000 in stream ${StreamName} under account 000000000000 is not both greater than one plus the shard's StartingHashKey ${start0} and less than the shard's EndingHashKey ${end0}.`,
  })
  await t.rejects(client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000009', NewStartingHashKey: '5' })), {
    name: 'ResourceNotFoundException', message: `Could not find shard shardId-000000000009 in stream ${StreamName} under account 000000000000.`,
  })
  await t.rejects(client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: 'x1' })), {
    name: 'ValidationException', message: "1 validation error detected: Value 'x1' at 'newStartingHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
  })
  await t.rejects(client.send(new MergeShardsCommand({ StreamName, ShardToMerge: 'shardId-000000000000', AdjacentShardToMerge: 'shardId-000000000002' })), {
    name: 'InvalidArgumentException', message: `Shards shardId-000000000000 and shardId-000000000002 in stream ${StreamName} under account 000000000000 are not an adjacent pair of shards eligible for merging`,
  })
  await client.send(new MergeShardsCommand({ StreamName, ShardToMerge: 'shardId-000000000001', AdjacentShardToMerge: 'shardId-000000000000' }))
  await t.rejects(client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (start0 + 5n).toString() })), {
    name: 'InvalidArgumentException', message: `Shard shardId-000000000000 in stream ${StreamName} under account 000000000000 has already been merged or split, and thus is not eligible for merging or splitting.`,
  })
  const merged = (await client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_LATEST' } }))).Shards!
  t.match(merged.find((s) => s.ShardId === 'shardId-000000000003'), { ParentShardId: 'shardId-000000000001', AdjacentParentShardId: 'shardId-000000000000', HashKeyRange: { StartingHashKey: '0', EndingHashKey: shards[1]!.HashKeyRange!.EndingHashKey } },
    'the shard named first is the parent, whichever side it is on')

  // Two reshards at once: the second finds the stream UPDATING.
  const results = await Promise.allSettled([
    client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000002', NewStartingHashKey: (BigInt(shards[2]!.HashKeyRange!.StartingHashKey!) + 1000n).toString() })),
    client.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })),
  ])
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(refused.length, 1, 'one of two concurrent reshards is refused')
  t.match(refused[0]?.reason, { name: 'ResourceInUseException', message: `Stream ${StreamName} under account 000000000000 not ACTIVE, instead in state UPDATING` })

  const put = await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'a', Data: Buffer.from('x') }))
  const open = (await client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_LATEST' } }))).Shards!.map((s) => s.ShardId)
  t.ok(open.includes(put.ShardId), 'writes go to open shards only')
})

t.test('device batches over MQTT keep flowing through a split and land only in open shards', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamName = 'reshard-mqtt'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 2 }))
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'dev-r', protocolVersion: 4, reconnectPeriod: 0, queueQoSZero: false })
  t.teardown(() => device.endAsync(true))
  const keys = Array.from({ length: 50 }, (_, i) => `sensor-${i}`)
  const counters = new Map<string, number>()
  let sequence = 0
  const publish = async () => {
    const records = Array.from({ length: 100 }, () => {
      const key = keys[Math.floor(Math.random() * keys.length)]!
      const n = counters.get(key) ?? 0
      counters.set(key, n + 1)
      return { partitionKey: key, data: Buffer.from(JSON.stringify({ key, n })), producerTimeMs: Date.now(), clockSynced: true }
    })
    await device.publishAsync(topics.records('dev-r', StreamName), codec.encodeBatch({ epoch: 7n, sequence: sequence++, records }), { qos: 1 })
  }
  let stop = false
  const publisher = (async () => { while (!stop) await publish() })()
  while (sequence < 10) await new Promise((r) => setTimeout(r, 5))
  await client.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000001', NewStartingHashKey: (3n << 126n).toString() }))
  const splitAt = sequence
  while (sequence < splitAt + 10) await new Promise((r) => setTimeout(r, 5))
  stop = true
  await publisher
  const total = sequence * 100
  const { shards, records } = await readAll(client, StreamName)
  checkRecords(t, shards, records, total)
  t.ok(records.some((r) => r.shardId === 'shardId-000000000002') && records.some((r) => r.shardId === 'shardId-000000000003'), 'batches after the split went to the children')
})
