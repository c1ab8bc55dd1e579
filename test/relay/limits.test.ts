/**
 * Throughput limits (off by default, switched on per stream by a tag), retention periods,
 * DescribeLimits and UpdateStreamMode, through the AWS SDK with AWS's types and wording.
 * Budgets and windows run on a manual clock: time passes only where a test says it does, so a slow
 * machine cannot refill a budget between two calls.
 */
import t from 'tap'
import {
  KinesisClient, CreateStreamCommand, PutRecordsCommand, PutRecordCommand, GetShardIteratorCommand, GetRecordsCommand,
  AddTagsToStreamCommand, RemoveTagsFromStreamCommand, IncreaseStreamRetentionPeriodCommand, DecreaseStreamRetentionPeriodCommand,
  DescribeStreamSummaryCommand, DescribeLimitsCommand, UpdateStreamModeCommand, UpdateShardCountCommand, ListShardsCommand, SplitShardCommand, MergeShardsCommand,
} from '@aws-sdk/client-kinesis'
import { manualClock, testRelay } from '../helpers/relay.js'

const sdk = (endpoint: string) => new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
const LIMITS = 'tributary:throughput-limits'

t.test('throughput limits are off by default, and switched on per stream answer as Kinesis does', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  const StreamName = 'metered'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  // 500 records of 4,000 bytes plus a 1-byte key: about 1.9 MiB into one shard in one call.
  const big = Array.from({ length: 500 }, () => ({ PartitionKey: 'k', Data: Buffer.alloc(4000, 7) }))
  const free = await client.send(new PutRecordsCommand({ StreamName, Records: big }))
  t.equal(free.FailedRecordCount, 0, 'off by default: nothing is refused')

  await client.send(new AddTagsToStreamCommand({ StreamName, Tags: { [LIMITS]: 'on' } }))
  clock.advance(1100) // a full second's budget
  const metered = await client.send(new PutRecordsCommand({ StreamName, Records: big }))
  const allowed = Math.floor((1024 * 1024) / 4001)
  t.equal(metered.FailedRecordCount, 500 - allowed, 'records past 1 MiB/s per shard fail')
  t.ok(metered.Records!.slice(0, allowed).every((r) => r.SequenceNumber && r.ShardId === 'shardId-000000000000'), 'the first MiB is stored')
  t.same(metered.Records![allowed], {
    ErrorCode: 'ProvisionedThroughputExceededException',
    ErrorMessage: `Rate exceeded for shard shardId-000000000000 in stream ${StreamName} under account 000000000000.`,
  }, 'the rest fail one by one with an ErrorCode, as in Kinesis')
  await t.rejects(client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.alloc(900_000) })), {
    name: 'ProvisionedThroughputExceededException', message: `Rate exceeded for shard shardId-000000000000 in stream ${StreamName} under account 000000000000.`,
  }, 'PutRecord over the limit is refused whole')
  await t.rejects(client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.alloc(1000) })), { name: 'ProvisionedThroughputExceededException' }, 'and so is a small one while no time has passed to refill the budget')

  // Reads: at most 5 GetRecords calls a second per shard; the sixth in quick succession is refused.
  const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName, ShardId: 'shardId-000000000000', ShardIteratorType: 'LATEST' }))
  const outcomes: string[] = []
  for (let i = 0; i < 10; i++) {
    outcomes.push(await client.send(new GetRecordsCommand({ ShardIterator, Limit: 1 })).then(() => 'ok', (e: Error) => e.name))
  }
  t.ok(outcomes.includes('ProvisionedThroughputExceededException'), 'ten quick reads of one shard meet the 5 calls/s limit')
  t.equal(outcomes.slice(0, 5).filter((o) => o === 'ok').length, 5, 'the first five get through')
  t.same(outcomes.slice(5), Array(5).fill('ProvisionedThroughputExceededException'), 'and, with no time passing, none of the other five')
  clock.advance(200)
  t.ok(await client.send(new GetRecordsCommand({ ShardIterator, Limit: 1 })), 'a fifth of a second later one more call gets through')
  await t.rejects(client.send(new GetRecordsCommand({ ShardIterator, Limit: 1 })), { name: 'ProvisionedThroughputExceededException' }, 'but only one')

  // A reader that fetches more than 2 MiB at once is held back until the budget refills.
  clock.advance(1100)
  const { ShardIterator: fromStart } = await client.send(new GetShardIteratorCommand({ StreamName, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))
  const page = await client.send(new GetRecordsCommand({ ShardIterator: fromStart }))
  t.ok(page.Records!.length > 500, 'one large read is served')
  await t.rejects(client.send(new GetRecordsCommand({ ShardIterator: page.NextShardIterator })), { name: 'ProvisionedThroughputExceededException' }, 'and the next waits for the 2 MiB/s budget')
  // The read overdrew the budget by what it fetched past 2 MiB; it refills at 2 MiB a second.
  const fetched = page.Records!.reduce((n, r) => n + r.Data!.length, 0)
  const overdrawnMs = ((fetched - 2 * 1024 * 1024) / (2 * 1024 * 1024)) * 1000
  t.ok(overdrawnMs > 100, `the read overdrew the budget (${fetched} bytes fetched)`)
  clock.advance(Math.floor(overdrawnMs) - 50)
  await t.rejects(client.send(new GetRecordsCommand({ ShardIterator: page.NextShardIterator })), { name: 'ProvisionedThroughputExceededException' }, 'still held back just before the overdraft is repaid')
  clock.advance(100)
  t.same((await client.send(new GetRecordsCommand({ ShardIterator: page.NextShardIterator }))).Records, [], 'and served once it is')

  // Retry logic works: after a pause the same writes go through.
  clock.advance(1100)
  t.ok((await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.alloc(1000) }))).SequenceNumber, 'after a pause a retry succeeds')

  await client.send(new RemoveTagsFromStreamCommand({ StreamName, TagKeys: [LIMITS] }))
  t.equal((await client.send(new PutRecordsCommand({ StreamName, Records: big }))).FailedRecordCount, 0, 'switched off again')
})

t.test('retention periods: 24 to 8760 hours, each action in its own direction', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  const StreamName = 'kept'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  const hours = async () => (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!.RetentionPeriodHours
  t.equal(await hours(), 24)
  await client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 168 }))
  t.equal(await hours(), 168)
  await t.rejects(client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 48 })), {
    name: 'InvalidArgumentException', message: `Requested retention period (48 hours) for stream ${StreamName} can not be shorter than existing retention period (168 hours). Use DecreaseRetentionPeriod API.`,
  })
  await t.rejects(client.send(new DecreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 200 })), {
    name: 'InvalidArgumentException', message: `Requested retention period (200 hours) for stream ${StreamName} can not be longer than existing retention period (168 hours). Use IncreaseRetentionPeriod API.`,
  })
  await t.rejects(client.send(new DecreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 23 })), {
    name: 'InvalidArgumentException', message: 'Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.',
  })
  await t.rejects(client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 8761 })), {
    name: 'InvalidArgumentException', message: 'Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long.',
  })
  await t.rejects(client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName } as never)), {
    name: 'ValidationException', message: "1 validation error detected: Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null",
  })
  await client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 8760 }))
  await client.send(new DecreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 24 }))
  t.equal(await hours(), 24)
})

t.test('DescribeLimits counts open shards; UpdateStreamMode switches capacity mode', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  await client.send(new CreateStreamCommand({ StreamName: 'a', ShardCount: 2 }))
  await client.send(new CreateStreamCommand({ StreamName: 'b', ShardCount: 3 }))
  await client.send(new UpdateShardCountCommand({ StreamName: 'a', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' }))
  t.match(await client.send(new DescribeLimitsCommand({})), { ShardLimit: 1000, OpenShardCount: 7, OnDemandStreamCount: 0, OnDemandStreamCountLimit: 50 })

  const { StreamARN } = (await client.send(new DescribeStreamSummaryCommand({ StreamName: 'b' }))).StreamDescriptionSummary!
  await client.send(new UpdateStreamModeCommand({ StreamARN, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }))
  t.equal((await client.send(new DescribeStreamSummaryCommand({ StreamName: 'b' }))).StreamDescriptionSummary!.StreamModeDetails!.StreamMode, 'ON_DEMAND')
  t.equal((await client.send(new DescribeLimitsCommand({}))).OnDemandStreamCount, 1)
  await t.rejects(client.send(new UpdateShardCountCommand({ StreamName: 'b', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })), { name: 'ValidationException', message: 'Request is invalid. Stream b under account 000000000000 is in On-Demand mode.' }, 'on-demand streams are not scaled by hand')
  await t.rejects(client.send(new SplitShardCommand({ StreamName: 'b', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: '12345' })), { name: 'ValidationException', message: /is in On-Demand mode/ }, 'nor split')
  await t.rejects(client.send(new MergeShardsCommand({ StreamName: 'b', ShardToMerge: 'shardId-000000000000', AdjacentShardToMerge: 'shardId-000000000001' })), { name: 'ValidationException', message: /is in On-Demand mode/ }, 'nor merged')
  await t.rejects(client.send(new UpdateStreamModeCommand({ StreamARN, StreamModeDetails: { StreamMode: 'ON_DEMAND' } })), { name: 'InvalidArgumentException', message: /already in ON_DEMAND mode/ })
  await t.rejects(client.send(new UpdateStreamModeCommand({ StreamModeDetails: { StreamMode: 'PROVISIONED' } } as never)), { name: 'ValidationException', message: /at 'streamARN' failed to satisfy constraint: Member must not be null/ })
  await client.send(new UpdateStreamModeCommand({ StreamARN, StreamModeDetails: { StreamMode: 'PROVISIONED' } }))
  await client.send(new UpdateShardCountCommand({ StreamName: 'b', TargetShardCount: 2, ScalingType: 'UNIFORM_SCALING' }))
  t.equal((await client.send(new ListShardsCommand({ StreamName: 'b', ShardFilter: { Type: 'AT_LATEST' } }))).Shards!.length, 2)
})

t.test('UpdateShardCount runs at most ten times per stream in a rolling 24 hours', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  await client.send(new CreateStreamCommand({ StreamName: 'busy', ShardCount: 2 }))
  for (let i = 0; i < 10; i++) await client.send(new UpdateShardCountCommand({ StreamName: 'busy', TargetShardCount: i % 2 ? 2 : 3, ScalingType: 'UNIFORM_SCALING' }))
  await t.rejects(client.send(new UpdateShardCountCommand({ StreamName: 'busy', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })), {
    name: 'LimitExceededException', message: /Cannot scale a stream more than 10 times in a rolling 24-hour period/,
  })
  await client.send(new CreateStreamCommand({ StreamName: 'calm', ShardCount: 2 }))
  t.match(await client.send(new UpdateShardCountCommand({ StreamName: 'calm', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })), { TargetShardCount: 4 }, 'per stream')
  const open = (await client.send(new ListShardsCommand({ StreamName: 'busy', ShardFilter: { Type: 'AT_LATEST' } }))).Shards!
  await client.send(new SplitShardCommand({ StreamName: 'busy', ShardToSplit: open[0]!.ShardId, NewStartingHashKey: '1000000' }))
  t.equal((await client.send(new ListShardsCommand({ StreamName: 'busy', ShardFilter: { Type: 'AT_LATEST' } }))).Shards!.length, open.length + 1, 'SplitShard is not counted against it')

  // The window rolls: just short of a day after the first scaling the stream is still refused, a day after it scales again.
  clock.advance(24 * 3600 * 1000 - 1000)
  await t.rejects(client.send(new UpdateShardCountCommand({ StreamName: 'busy', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })), { name: 'LimitExceededException' }, 'not yet a day later')
  clock.advance(1000)
  t.match(await client.send(new UpdateShardCountCommand({ StreamName: 'busy', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })), { TargetShardCount: 4 }, 'a day later, the oldest scaling has left the window')
})
