/**
 * The AWS CLI v2 resharding and configuring a stream against the relay: split-shard, merge-shards,
 * update-shard-count, retention, tags, list-shards with filters, describe-limits. Skips when no AWS
 * CLI v2 is installed (CI installs Debian's `awscli`).
 */
import t from 'tap'
import { manualClock, testRelay } from '../helpers/relay.js'
import { awsCliSkip as skip, awsCliVersion, awsWith, type AwsRun } from '../helpers/awscli.js'

if (awsCliVersion) t.comment(awsCliVersion)

const ids = (run: AwsRun) => (run.json?.Shards ?? []).map((s: { ShardId: string }) => s.ShardId)

t.test('the AWS CLI v2 reshards a stream and reads the shard map back with filters', { skip }, async (t) => {
  // The shard map's times come from the test's clock: the filter time lies between two changes whatever the machine's speed.
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const aws = awsWith(t, relay.endpoint, { id: 'x', secret: 'y' })
  const ok = (run: AwsRun, what: string) => t.equal(run.code, 0, `${what} exits 0 (stderr: ${run.stderr})`)

  ok(await aws('create-stream', '--stream-name', 'fleet', '--shard-count', '2'), 'create-stream')
  clock.advance(1000)
  const beforeSplit = new Date(clock.now()).toISOString()
  clock.advance(1000)
  const split = await aws('split-shard', '--stream-name', 'fleet', '--shard-to-split', 'shardId-000000000000', '--new-starting-hash-key', String(2n ** 126n))
  ok(split, 'split-shard')
  t.equal(split.stdout.trim(), '', 'split-shard prints nothing, as against AWS')
  ok(await aws('merge-shards', '--stream-name', 'fleet', '--shard-to-merge', 'shardId-000000000002', '--adjacent-shard-to-merge', 'shardId-000000000003'), 'merge-shards')

  const all = await aws('list-shards', '--stream-name', 'fleet')
  ok(all, 'list-shards')
  t.same(ids(all), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003', 'shardId-000000000004'])
  t.match(all.json.Shards[4], { ParentShardId: 'shardId-000000000002', AdjacentParentShardId: 'shardId-000000000003', HashKeyRange: { StartingHashKey: '0', EndingHashKey: String(2n ** 127n - 1n) } })
  t.type(all.json.Shards[0].SequenceNumberRange.EndingSequenceNumber, 'string', 'the split parent has an ending sequence number')

  const latest = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', 'Type=AT_LATEST')
  t.same(ids(latest), ['shardId-000000000001', 'shardId-000000000004'], 'list-shards --shard-filter Type=AT_LATEST')
  const after = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', 'Type=AFTER_SHARD_ID,ShardId=shardId-000000000002')
  t.same(ids(after), ['shardId-000000000003', 'shardId-000000000004'], 'Type=AFTER_SHARD_ID')
  const horizon = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', 'Type=AT_TRIM_HORIZON')
  t.same(ids(horizon), ['shardId-000000000000', 'shardId-000000000001'], 'Type=AT_TRIM_HORIZON')
  const at = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', `Type=AT_TIMESTAMP,Timestamp=${beforeSplit}`)
  t.same(ids(at), ['shardId-000000000000', 'shardId-000000000001'], 'Type=AT_TIMESTAMP before the split')
  const from = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', `Type=FROM_TIMESTAMP,Timestamp=${beforeSplit}`)
  t.same(ids(from), ids(all), 'Type=FROM_TIMESTAMP before the split')

  const scaled = await aws('update-shard-count', '--stream-name', 'fleet', '--target-shard-count', '4', '--scaling-type', 'UNIFORM_SCALING')
  ok(scaled, 'update-shard-count')
  t.match(scaled.json, { StreamName: 'fleet', CurrentShardCount: 2, TargetShardCount: 4 })
  const open = await aws('list-shards', '--stream-name', 'fleet', '--shard-filter', 'Type=AT_LATEST')
  const quarter = 2n ** 126n
  t.same(open.json.Shards.map((s: { HashKeyRange: { StartingHashKey: string } }) => s.HashKeyRange.StartingHashKey), ['0', String(quarter), String(2n * quarter), String(3n * quarter)], 'four even open shards')

  const summary = await aws('describe-stream-summary', '--stream-name', 'fleet')
  t.match(summary.json?.StreamDescriptionSummary, { StreamStatus: 'ACTIVE', OpenShardCount: 4 })
  const limits = await aws('describe-limits')
  ok(limits, 'describe-limits')
  t.match(limits.json, { ShardLimit: 1000, OpenShardCount: 4 })

  const bad = await aws('split-shard', '--stream-name', 'fleet', '--shard-to-split', 'shardId-000000000000', '--new-starting-hash-key', '5')
  t.not(bad.code, 0, 'splitting a closed shard fails')
  t.match(bad.stderr, /InvalidArgumentException.*has already been merged or split/)
  const big = await aws('update-shard-count', '--stream-name', 'fleet', '--target-shard-count', '9', '--scaling-type', 'UNIFORM_SCALING')
  t.match(big.stderr, /LimitExceededException/, 'more than double is refused')
})

t.test('the AWS CLI v2 sets retention and tags', { skip }, async (t) => {
  const relay = await testRelay(t)
  const aws = awsWith(t, relay.endpoint, { id: 'x', secret: 'y' })
  const ok = (run: AwsRun, what: string) => t.equal(run.code, 0, `${what} exits 0 (stderr: ${run.stderr})`)
  ok(await aws('create-stream', '--stream-name', 'conf', '--shard-count', '1'), 'create-stream')

  ok(await aws('increase-stream-retention-period', '--stream-name', 'conf', '--retention-period-hours', '72'), 'increase-stream-retention-period')
  t.equal((await aws('describe-stream-summary', '--stream-name', 'conf')).json?.StreamDescriptionSummary?.RetentionPeriodHours, 72)
  const shorter = await aws('increase-stream-retention-period', '--stream-name', 'conf', '--retention-period-hours', '48')
  t.match(shorter.stderr, /InvalidArgumentException.*can not be shorter than existing retention period \(72 hours\)/)
  ok(await aws('decrease-stream-retention-period', '--stream-name', 'conf', '--retention-period-hours', '48'), 'decrease-stream-retention-period')
  t.equal((await aws('describe-stream-summary', '--stream-name', 'conf')).json?.StreamDescriptionSummary?.RetentionPeriodHours, 48)
  const tooLong = await aws('increase-stream-retention-period', '--stream-name', 'conf', '--retention-period-hours', '9000')
  t.match(tooLong.stderr, /Maximum allowed retention period is 8760 hours/)

  ok(await aws('add-tags-to-stream', '--stream-name', 'conf', '--tags', 'team=edge,site=north'), 'add-tags-to-stream')
  const listed = await aws('list-tags-for-stream', '--stream-name', 'conf')
  t.same(listed.json, { Tags: [{ Key: 'site', Value: 'north' }, { Key: 'team', Value: 'edge' }], HasMoreTags: false })
  ok(await aws('remove-tags-from-stream', '--stream-name', 'conf', '--tag-keys', 'site'), 'remove-tags-from-stream')
  // TagResource / UntagResource / ListTagsForResource are newer than Debian's CLI 2.9; tags.test.ts covers them through the SDK.
  t.same((await aws('list-tags-for-stream', '--stream-name', 'conf')).json?.Tags, [{ Key: 'team', Value: 'edge' }])
})
