/**
 * ListShards after resharding, through the AWS SDK: paging with MaxResults and NextToken (which
 * keeps the filter), every ShardFilter type as the API reference defines it, AWS's refusals, and
 * closed shards leaving the listing once their records are past retention.
 */
import t from 'tap'
import { join } from 'node:path'
import { existsSync, readdirSync } from 'node:fs'
import { KinesisClient, CreateStreamCommand, ListShardsCommand, ListStreamsCommand, SplitShardCommand, MergeShardsCommand, type ListShardsCommandInput } from '@aws-sdk/client-kinesis'
import { manualClock, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { openLogStore } from '../../relay/log/index.js'
import { Streams } from '../../relay/streams.js'

const id = (i: number) => `shardId-${String(i).padStart(12, '0')}`

t.test('ListShards pages and filters a resharded stream as Kinesis does', async (t) => {
  // The shard map's times come from the test's clock: each filter time lies between two changes whatever the machine's speed.
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  const StreamName = 'filters'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 4 }))
  clock.advance(1000)
  const beforeSplit = new Date(clock.now())
  clock.advance(1000)
  await client.send(new SplitShardCommand({ StreamName, ShardToSplit: id(0), NewStartingHashKey: (1n << 124n).toString() }))
  clock.advance(1000)
  const between = new Date(clock.now())
  clock.advance(1000)
  await client.send(new MergeShardsCommand({ StreamName, ShardToMerge: id(2), AdjacentShardToMerge: id(3) }))
  clock.advance(1000)
  const afterMerge = new Date(clock.now())

  const ids = async (input: Omit<ListShardsCommandInput, 'StreamName'>) => (await client.send(new ListShardsCommand({ StreamName, ...input }))).Shards!.map((s) => s.ShardId)
  t.same(await ids({}), [0, 1, 2, 3, 4, 5, 6].map(id), 'all shards, open and closed, by default')
  t.same(await ids({ ShardFilter: { Type: 'FROM_TRIM_HORIZON' } }), [0, 1, 2, 3, 4, 5, 6].map(id), 'FROM_TRIM_HORIZON: all within retention')
  t.same(await ids({ ShardFilter: { Type: 'AT_TRIM_HORIZON' } }), [0, 1, 2, 3].map(id), 'AT_TRIM_HORIZON: the shards open at the trim horizon')
  t.same(await ids({ ShardFilter: { Type: 'AT_LATEST' } }), [1, 4, 5, 6].map(id), 'AT_LATEST: the open shards')
  t.same(await ids({ ShardFilter: { Type: 'AFTER_SHARD_ID', ShardId: id(2) } }), [3, 4, 5, 6].map(id), 'AFTER_SHARD_ID')
  t.same(await ids({ ShardFilter: { Type: 'AT_TIMESTAMP', Timestamp: beforeSplit } }), [0, 1, 2, 3].map(id), 'AT_TIMESTAMP before the split')
  t.same(await ids({ ShardFilter: { Type: 'AT_TIMESTAMP', Timestamp: between } }), [1, 2, 3, 4, 5].map(id), 'AT_TIMESTAMP between split and merge')
  t.same(await ids({ ShardFilter: { Type: 'AT_TIMESTAMP', Timestamp: afterMerge } }), [1, 4, 5, 6].map(id), 'AT_TIMESTAMP after the merge')
  t.same(await ids({ ShardFilter: { Type: 'FROM_TIMESTAMP', Timestamp: between } }), [1, 2, 3, 4, 5, 6].map(id), 'FROM_TIMESTAMP: shards closed since, and the open ones')
  t.same(await ids({ ShardFilter: { Type: 'FROM_TIMESTAMP', Timestamp: new Date(0) } }), [0, 1, 2, 3, 4, 5, 6].map(id), 'FROM_TIMESTAMP before the trim horizon: from the trim horizon')
  t.same(await ids({ ExclusiveStartShardId: id(4) }), [5, 6].map(id), 'ExclusiveStartShardId')

  // Paging: MaxResults pages, the NextToken alone names the stream and carries the filter.
  const pages: string[][] = []
  let NextToken: string | undefined
  do {
    const out = await client.send(new ListShardsCommand(NextToken ? { NextToken, MaxResults: 2 } : { StreamName, MaxResults: 2, ShardFilter: { Type: 'FROM_TIMESTAMP', Timestamp: between } }))
    pages.push(out.Shards!.map((s) => s.ShardId!))
    NextToken = out.NextToken
  } while (NextToken)
  t.same(pages, [[1, 2], [3, 4], [5, 6]].map((p) => p.map(id)), 'three pages of two, filtered throughout')

  const token = (await client.send(new ListShardsCommand({ StreamName, MaxResults: 1 }))).NextToken!
  await t.rejects(client.send(new ListShardsCommand({ StreamName, NextToken: token })), { name: 'InvalidArgumentException', message: 'NextToken and StreamName cannot be provided together.' })
  await t.rejects(client.send(new ListShardsCommand({})), { name: 'InvalidArgumentException', message: 'Either NextToken or StreamName should be provided.' })
  await t.rejects(client.send(new ListShardsCommand({ NextToken: token, ExclusiveStartShardId: id(1) })), { name: 'InvalidArgumentException', message: 'NextToken and ExclusiveStartShardId cannot be provided together.' })

  await t.rejects(client.send(new ListShardsCommand({ NextToken: 'bm90IGEgdG9rZW4gYXQgYWxsIDop' })), { name: 'InvalidArgumentException', message: 'Invalid NextToken.' })
  await t.rejects(client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AFTER_SHARD_ID' } })), { name: 'InvalidArgumentException', message: /ShardId must be provided/ })
  await t.rejects(client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_TIMESTAMP' } })), { name: 'InvalidArgumentException', message: /Timestamp must be provided/ })
  await t.rejects(client.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'SOMETIMES' as never } })), {
    name: 'ValidationException', message: "1 validation error detected: Value 'SOMETIMES' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
  })
  await t.rejects(client.send(new ListShardsCommand({ StreamName, MaxResults: 0 })), { name: 'ValidationException', message: /at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1/ })
})

t.test('a closed shard leaves listings, and the disk, once its records are past retention; its children stay', async (t) => {
  const dir_ = tempDir(t)
  let now = Date.now()
  const meta = new SqliteMetadataStore(join(dir_, 'meta.db'))
  // One clock for the shard map and the records' arrival times.
  const logs = openLogStore({ root: join(dir_, 'streams'), now: () => now })
  t.teardown(async () => { await logs.close(); await meta.close() })
  const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24, now: () => now })
  await streams.init()
  const state = await streams.create('expiring', 1)
  state.shards[0]!.log.append([{ partitionKey: 'k', data: Buffer.from('old'), producerTimeMs: 0, flags: 0 }])
  await logs.commit()
  await streams.split(state, id(0), 1n << 127n)
  t.same(streams.retained(state).map((s) => s.meta.shardId), [0, 1, 2].map(id))
  now += 23 * 3_600_000
  t.same(streams.retained(state).map((s) => s.meta.shardId), [0, 1, 2].map(id), 'within retention the parent is listed')
  now += 2 * 3_600_000
  t.same(streams.retained(state).map((s) => s.meta.shardId), [1, 2].map(id), 'past it, only the children')
  t.same(streams.retained(state).map((s) => s.meta.parentShardId), [id(0), id(0)], 'which still name it as their parent')
  const dir = join(dir_, 'streams', state.meta.id, id(0))
  t.ok(existsSync(dir))
  t.equal(await streams.expireClosedShards(), 1, 'its log is removed')
  t.notOk(existsSync(dir), 'from the disk')
  t.equal(await streams.expireClosedShards(), 0, 'once')
})

t.test('closed shards that never held a record leave the disk too, and stay gone after a restart', async (t) => {
  const dir_ = tempDir(t)
  let now = Date.now()
  const open = async () => {
    const meta = new SqliteMetadataStore(join(dir_, 'meta.db'))
    const logs = openLogStore({ root: join(dir_, 'streams'), now: () => now })
    const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24, now: () => now })
    await streams.init()
    return { streams, close: async () => { await logs.close(); await meta.close() } }
  }
  let relay = await open()
  let state = await relay.streams.create('empty-parents', 1)
  // 1 -> 2 -> 1: three shards close without a record (the scale-up's shards and the first parent).
  await relay.streams.scale(state, 2)
  await relay.streams.scale(state, 1)
  const shardDirs = () => readdirSync(join(dir_, 'streams', state.meta.id)).sort()
  const openIds = state.open.map((s) => s.meta.shardId)
  now += 25 * 3_600_000
  t.equal(await relay.streams.expireClosedShards(), state.shards.length - 1, 'every closed shard past retention is removed, empty or not')
  t.same(shardDirs(), openIds, 'only the open shard is left on disk')
  await relay.close()
  relay = await open()
  state = relay.streams.get('empty-parents')!
  t.same(shardDirs(), openIds, 'a restart does not bring the expired shards back')
  t.equal(await relay.streams.expireClosedShards(), 0)
  await relay.close()
})

t.test('ListStreams pages with Limit, NextToken and ExclusiveStartStreamName, with StreamSummaries', async (t) => {
  const relay = await testRelay(t)
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  const names = ['e', 'a', 'd', 'b', 'c']
  for (const StreamName of names) await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  const first = await client.send(new ListStreamsCommand({ Limit: 2 }))
  t.same(first.StreamNames, ['a', 'b'], 'in name order')
  t.equal(first.HasMoreStreams, true)
  t.match(first.StreamSummaries, [
    { StreamName: 'a', StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/a', StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' } },
    { StreamName: 'b' },
  ])
  t.type(first.StreamSummaries![0]!.StreamCreationTimestamp, Date)
  const second = await client.send(new ListStreamsCommand({ Limit: 2, NextToken: first.NextToken }))
  t.same(second.StreamNames, ['c', 'd'])
  const third = await client.send(new ListStreamsCommand({ Limit: 2, NextToken: second.NextToken }))
  t.same(third.StreamNames, ['e'])
  t.equal(third.HasMoreStreams, false)
  t.notOk(third.NextToken, 'no token on the last page')
  t.same((await client.send(new ListStreamsCommand({ ExclusiveStartStreamName: 'b', Limit: 2 }))).StreamNames, ['c', 'd'], 'ExclusiveStartStreamName')
  await t.rejects(client.send(new ListStreamsCommand({ NextToken: 'garbage-token' })), { name: 'InvalidArgumentException' })
  await t.rejects(client.send(new ListStreamsCommand({ Limit: 0 })), { name: 'ValidationException', message: /at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1/ })
})
