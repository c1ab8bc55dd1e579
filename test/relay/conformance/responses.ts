/**
 * Class: responses. A successful answer carries the members AWS's answer carries, in the service
 * model's order, and leaves out the ones AWS leaves out; timestamps are epoch seconds (a JSON
 * number; CBOR tag 1, which the runner reads back as seconds), whole where AWS's are whole; paging
 * members (HasMoreStreams, HasMoreShards, NextToken) appear as AWS pages.
 *
 * Where the expectations come from:
 * - AWS's answers as kinesalite records them (https://github.com/mhart/kinesalite test/*.js and
 *   actions/*.js): PutRecord's body is exactly {ShardId, SequenceNumber} on a stream without
 *   encryption (test/putRecord.js, `res.body.should.eql({ShardId: …})` once SequenceNumber is
 *   taken out) and PutRecords' {FailedRecordCount, Records} (actions/putRecords.js); DescribeStream
 *   and DescribeStreamSummary say EncryptionType "NONE" and EnhancedMonitoring
 *   [{ShardLevelMetrics: []}] (test/describeStreamSummary.js, actions/createStream.js);
 *   StreamCreationTimestamp is whole seconds (actions/createStream.js, Math.floor(createTime /
 *   1000)); a three-shard stream's hash key ranges and 56-digit starting sequence numbers
 *   (test/describeStream.js, test/listShards.js); GetShardIterator answers only ShardIterator
 *   (test/getShardIterator.js, `Object.keys(res.body).should.eql(['ShardIterator'])`);
 * - which members each answer has, their order, and the paging rules ("If you specify a value
 *   greater than 100, at most 100 results are returned"; ListShards' NextToken "when the number of
 *   shards … is greater than … MaxResults"): AWS's service model and its documentation strings
 *   (botocore data/kinesis/2013-12-02/service-2.json; the @aws-sdk/client-kinesis output schemas
 *   list the same members). Members newer than kinesalite (StreamModeDetails, ConsumerCount,
 *   StreamSummaries, the consumer actions) follow the model.
 *
 * Rows read the fixture stream (three shards, one record in shard 0, one consumer) and write only
 * to its shard 2, which no other row reads, so every row gives the same answer each time it runs.
 */
import type { Fixture, Row, Value } from './rows.js'

const CLASS = 'responses'
const KINESALITE = 'https://github.com/mhart/kinesalite'
const MODEL = "AWS's service model (botocore data/kinesis/2013-12-02/service-2.json: output members, their order and documentation)"
const MAX_HASH_KEY = ((1n << 128n) - 1n).toString()

/** kinesalite's test/describeStream.js and test/listShards.js: AWS's three shards of a new stream. */
const THREE_SHARDS = [
  { ShardId: 'shardId-000000000000', HashKeyRange: { StartingHashKey: '0', EndingHashKey: '113427455640312821154458202477256070484' } },
  { ShardId: 'shardId-000000000001', HashKeyRange: { StartingHashKey: '113427455640312821154458202477256070485', EndingHashKey: '226854911280625642308916404954512140969' } },
  { ShardId: 'shardId-000000000002', HashKeyRange: { StartingHashKey: '226854911280625642308916404954512140970', EndingHashKey: '340282366920938463463374607431768211455' } },
]

type Body = any // eslint-disable-line @typescript-eslint/no-explicit-any

/** A shard as the rows compare it: its members' names in order, its ranges, and whether its starting sequence number is AWS's 56 digits. */
const shardFacts = (s: Body) => ({
  keys: Object.keys(s),
  ShardId: s.ShardId,
  HashKeyRange: s.HashKeyRange,
  sequenceKeys: Object.keys(s.SequenceNumberRange),
  startsWith56Digits: /^\d{56}$/.test(s.SequenceNumberRange.StartingSequenceNumber),
})
const shardExpected = (s: (typeof THREE_SHARDS)[number]) => ({ keys: ['ShardId', 'HashKeyRange', 'SequenceNumberRange'], ...s, sequenceKeys: ['StartingSequenceNumber'], startsWith56Digits: true })
const wholeSeconds = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 1e9 && v < 1e10

const row = (action: string, name: string, body: Value<unknown>, of: (b: Body) => unknown, equals: Value<unknown>, source: string): Row => ({
  class: CLASS, name: `${action}: ${name}`, request: { action, body }, expect: { status: 200, pick: { of, equals } }, source,
})

const streamArn = (f: Fixture) => f.streamArn

export const rows: Row[] = [
  row('PutRecord', 'on a stream without encryption is exactly ShardId and SequenceNumber (no EncryptionType)',
    (f) => ({ StreamName: f.stream, PartitionKey: 'responses', ExplicitHashKey: MAX_HASH_KEY, Data: Buffer.from('responses').toString('base64') }),
    (b) => ({ keys: Object.keys(b), ShardId: b.ShardId, sequence56: /^\d{56}$/.test(b.SequenceNumber) }),
    { keys: ['ShardId', 'SequenceNumber'], ShardId: 'shardId-000000000002', sequence56: true },
    `${KINESALITE} test/putRecord.js (AWS's answer, 'should work with final ExplicitHashKey'); ${MODEL}: EncryptionType is not required, and AWS's documentation examples show it only as "KMS" on an encrypted stream`),
  row('PutRecords', 'on a stream without encryption is FailedRecordCount 0 and each record\'s SequenceNumber and ShardId (no EncryptionType)',
    (f) => ({ StreamName: f.stream, Records: [1, 2].map((i) => ({ PartitionKey: `r${i}`, ExplicitHashKey: MAX_HASH_KEY, Data: Buffer.from(`responses-${i}`).toString('base64') })) }),
    (b) => ({ keys: Object.keys(b), FailedRecordCount: b.FailedRecordCount, records: b.Records.map((r: Body) => ({ keys: Object.keys(r), ShardId: r.ShardId, sequence56: /^\d{56}$/.test(r.SequenceNumber) })) }),
    { keys: ['FailedRecordCount', 'Records'], FailedRecordCount: 0, records: [1, 2].map(() => ({ keys: ['SequenceNumber', 'ShardId'], ShardId: 'shardId-000000000002', sequence56: true })) },
    `${KINESALITE} actions/putRecords.js ({FailedRecordCount: 0, Records}); ${MODEL} (PutRecordsResultEntry: SequenceNumber, ShardId)`),
  row('DescribeStream', 'is the stream\'s description in the model\'s member order, EncryptionType "NONE", whole-second StreamCreationTimestamp, AWS\'s three shards',
    (f) => ({ StreamName: f.stream }),
    (b) => {
      const d = b.StreamDescription
      return {
        keys: Object.keys(b), descriptionKeys: Object.keys(d), StreamName: d.StreamName, StreamARN: d.StreamARN, StreamStatus: d.StreamStatus, StreamModeDetails: d.StreamModeDetails,
        shards: d.Shards.map(shardFacts), HasMoreShards: d.HasMoreShards, RetentionPeriodHours: d.RetentionPeriodHours, created: wholeSeconds(d.StreamCreationTimestamp),
        EnhancedMonitoring: d.EnhancedMonitoring, EncryptionType: d.EncryptionType,
      }
    },
    (f) => ({
      keys: ['StreamDescription'],
      descriptionKeys: ['StreamName', 'StreamARN', 'StreamStatus', 'StreamModeDetails', 'Shards', 'HasMoreShards', 'RetentionPeriodHours', 'StreamCreationTimestamp', 'EnhancedMonitoring', 'EncryptionType'],
      StreamName: f.stream, StreamARN: f.streamArn, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' },
      shards: THREE_SHARDS.map(shardExpected), HasMoreShards: false, RetentionPeriodHours: 24, created: true,
      EnhancedMonitoring: [{ ShardLevelMetrics: [] }], EncryptionType: 'NONE',
    }),
    `${KINESALITE} test/describeStream.js, actions/createStream.js; ${MODEL} (StreamDescription's member order; KeyId only with KMS)`),
  row('DescribeStream', 'with Limit 1 is the first shard and HasMoreShards true', (f) => ({ StreamName: f.stream, Limit: 1 }),
    (b) => ({ ids: b.StreamDescription.Shards.map((s: Body) => s.ShardId), HasMoreShards: b.StreamDescription.HasMoreShards }),
    { ids: ['shardId-000000000000'], HasMoreShards: true }, `${MODEL} (DescribeStreamInput.Limit, StreamDescription.HasMoreShards)`),
  row('DescribeStream', 'after the second shard is the third and HasMoreShards false', (f) => ({ StreamName: f.stream, ExclusiveStartShardId: 'shardId-000000000001' }),
    (b) => ({ ids: b.StreamDescription.Shards.map((s: Body) => s.ShardId), HasMoreShards: b.StreamDescription.HasMoreShards }),
    { ids: ['shardId-000000000002'], HasMoreShards: false }, `${MODEL} (ExclusiveStartShardId)`),
  row('DescribeStream', 'with Limit 10000 is every shard (at most 100 a page)', (f) => ({ StreamName: f.stream, Limit: 10000 }),
    (b) => ({ count: b.StreamDescription.Shards.length, HasMoreShards: b.StreamDescription.HasMoreShards }), { count: 3, HasMoreShards: false },
    `${MODEL} ("If you specify a value greater than 100, at most 100 results are returned")`),
  row('DescribeStreamSummary', 'is the summary in the model\'s member order: EncryptionType "NONE", no KeyId, OpenShardCount, ConsumerCount',
    (f) => ({ StreamName: f.stream }),
    (b) => {
      const d = b.StreamDescriptionSummary
      return {
        keys: Object.keys(b), summaryKeys: Object.keys(d), StreamName: d.StreamName, StreamARN: d.StreamARN, StreamStatus: d.StreamStatus, StreamModeDetails: d.StreamModeDetails,
        RetentionPeriodHours: d.RetentionPeriodHours, created: wholeSeconds(d.StreamCreationTimestamp), EnhancedMonitoring: d.EnhancedMonitoring, EncryptionType: d.EncryptionType,
        OpenShardCount: d.OpenShardCount, ConsumerCount: d.ConsumerCount,
      }
    },
    (f) => ({
      keys: ['StreamDescriptionSummary'],
      summaryKeys: ['StreamName', 'StreamARN', 'StreamStatus', 'StreamModeDetails', 'RetentionPeriodHours', 'StreamCreationTimestamp', 'EnhancedMonitoring', 'EncryptionType', 'OpenShardCount', 'ConsumerCount'],
      StreamName: f.stream, StreamARN: f.streamArn, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' }, RetentionPeriodHours: 24, created: true,
      EnhancedMonitoring: [{ ShardLevelMetrics: [] }], EncryptionType: 'NONE', OpenShardCount: 3, ConsumerCount: 1,
    }),
    `${KINESALITE} test/describeStreamSummary.js, actions/describeStreamSummary.js; ${MODEL} (StreamDescriptionSummary's member order)`),
  row('ListShards', 'is AWS\'s three shards and no NextToken', (f) => ({ StreamName: f.stream }),
    (b) => ({ keys: Object.keys(b), shards: b.Shards.map(shardFacts) }), { keys: ['Shards'], shards: THREE_SHARDS.map(shardExpected) },
    `${KINESALITE} test/listShards.js; ${MODEL} (ListShardsOutput.NextToken only when more shards remain)`),
  row('ListShards', 'with MaxResults 1 is the first shard and a NextToken', (f) => ({ StreamName: f.stream, MaxResults: 1 }),
    (b) => ({ keys: Object.keys(b), ids: b.Shards.map((s: Body) => s.ShardId), token: typeof b.NextToken === 'string' && b.NextToken.length > 0 }),
    { keys: ['Shards', 'NextToken'], ids: ['shardId-000000000000'], token: true }, `${MODEL} (ListShardsOutput.NextToken)`),
  row('ListShards', 'with MaxResults 2 is two shards and a NextToken', (f) => ({ StreamName: f.stream, MaxResults: 2 }),
    (b) => ({ keys: Object.keys(b), ids: b.Shards.map((s: Body) => s.ShardId) }), { keys: ['Shards', 'NextToken'], ids: ['shardId-000000000000', 'shardId-000000000001'] }, `${MODEL} (ListShardsOutput.NextToken)`),
  row('ListShards', 'after the second shard is the third and no NextToken', (f) => ({ StreamName: f.stream, ExclusiveStartShardId: 'shardId-000000000001' }),
    (b) => ({ keys: Object.keys(b), ids: b.Shards.map((s: Body) => s.ShardId) }), { keys: ['Shards'], ids: ['shardId-000000000002'] }, `${MODEL} (ExclusiveStartShardId)`),
  row('ListShards', 'with MaxResults 10000 is every shard and no NextToken (at most 1000 a page)', (f) => ({ StreamName: f.stream, MaxResults: 10000 }),
    (b) => ({ keys: Object.keys(b), count: b.Shards.length }), { keys: ['Shards'], count: 3 }, `${MODEL} ("If you specify a value greater than 1000, at most 1000 results are returned")`),
  row('ListStreams', 'names the streams in order, NextToken exactly when HasMoreStreams, and a summary of each with a whole-second timestamp', {},
    (b) => ({
      keys: Object.keys(b).filter((k) => k !== 'NextToken'), tokenIffMore: ('NextToken' in b) === b.HasMoreStreams, sorted: [...b.StreamNames].sort().join() === b.StreamNames.join(),
      summariesNameTheStreams: b.StreamSummaries.map((s: Body) => s.StreamName).join() === b.StreamNames.join(),
      summaryKeys: [...new Set(b.StreamSummaries.map((s: Body) => Object.keys(s).join()))], wholeSeconds: b.StreamSummaries.every((s: Body) => wholeSeconds(s.StreamCreationTimestamp)),
    }),
    { keys: ['StreamNames', 'HasMoreStreams', 'StreamSummaries'], tokenIffMore: true, sorted: true, summariesNameTheStreams: true, summaryKeys: ['StreamName,StreamARN,StreamStatus,StreamModeDetails,StreamCreationTimestamp'], wholeSeconds: true },
    `${KINESALITE} actions/listStreams.js (StreamNames, HasMoreStreams); ${MODEL} (ListStreamsOutput: StreamNames, HasMoreStreams, NextToken, StreamSummaries; StreamSummary's members)`),
  row('ListStreams', 'with Limit 1 after a name just before the fixture\'s is the fixture stream and its summary', { Limit: 1, ExclusiveStartStreamName: 'conformancd' },
    (b) => ({ StreamNames: b.StreamNames, summary: { ...b.StreamSummaries[0], StreamCreationTimestamp: wholeSeconds(b.StreamSummaries[0].StreamCreationTimestamp) }, tokenIffMore: ('NextToken' in b) === b.HasMoreStreams }),
    (f) => ({ StreamNames: [f.stream], summary: { StreamName: f.stream, StreamARN: f.streamArn, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' }, StreamCreationTimestamp: true }, tokenIffMore: true }),
    `${MODEL} (ListStreamsInput.Limit, ExclusiveStartStreamName; StreamSummary)`),
  row('ListStreams', 'after the fixture\'s name leaves it out and lists only later names', (f) => ({ ExclusiveStartStreamName: f.stream }),
    (b) => ({ later: b.StreamNames.every((n: string) => n > 'conformance') }), { later: true }, `${KINESALITE} actions/listStreams.js (start after ExclusiveStartStreamName)`),
  row('ListStreams', 'with Limit 10000 is at most 100 names', { Limit: 10000 }, (b) => ({ atMost100: b.StreamNames.length <= 100 }), { atMost100: true },
    `${MODEL} ("If you specify a value greater than 100, at most 100 results are returned")`),
  row('GetShardIterator', 'is ShardIterator alone', (f) => ({ StreamName: f.stream, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }),
    (b) => ({ keys: Object.keys(b), fits: typeof b.ShardIterator === 'string' && b.ShardIterator.length >= 1 && b.ShardIterator.length <= 512 }), { keys: ['ShardIterator'], fits: true },
    `${KINESALITE} test/getShardIterator.js (Object.keys(res.body).should.eql(['ShardIterator'])); ${MODEL} (ShardIterator: 1 to 512 characters)`),
  row('ListTagsForStream', 'of a stream without tags is no tags and HasMoreTags false', (f) => ({ StreamName: f.stream }), (b) => b, { Tags: [], HasMoreTags: false },
    `${KINESALITE} actions/listTagsForStream.js ({Tags, HasMoreTags}); ${MODEL}`),
  row('ListTagsForResource', 'of a stream without tags is no tags', (f) => ({ ResourceARN: f.streamArn }), (b) => b, { Tags: [] }, `${MODEL} (ListTagsForResourceOutput: Tags)`),
  row('DescribeLimits', 'is the account\'s limits and counts as whole numbers, in the model\'s order', {},
    (b) => ({ keys: Object.keys(b).slice(0, 4), whole: Object.values(b).every((v) => Number.isInteger(v)) }),
    { keys: ['ShardLimit', 'OpenShardCount', 'OnDemandStreamCount', 'OnDemandStreamCountLimit'], whole: true }, `${MODEL} (DescribeLimitsOutput's required members)`),
  row('DescribeStreamConsumer', 'is the consumer\'s description in the model\'s order', (f) => ({ ConsumerARN: f.consumerArn }),
    (b) => ({ keys: Object.keys(b), descriptionKeys: Object.keys(b.ConsumerDescription), ConsumerARN: b.ConsumerDescription.ConsumerARN, ConsumerStatus: b.ConsumerDescription.ConsumerStatus,
      StreamARN: b.ConsumerDescription.StreamARN, created: typeof b.ConsumerDescription.ConsumerCreationTimestamp === 'number' }),
    (f) => ({ keys: ['ConsumerDescription'], descriptionKeys: ['ConsumerName', 'ConsumerARN', 'ConsumerStatus', 'ConsumerCreationTimestamp', 'StreamARN'], ConsumerARN: f.consumerArn, ConsumerStatus: 'ACTIVE', StreamARN: f.streamArn, created: true }),
    `${MODEL} (ConsumerDescription)`),
  row('ListStreamConsumers', 'is the consumers in the model\'s member order and no NextToken', (f) => ({ StreamARN: streamArn(f) }),
    (b) => ({ keys: Object.keys(b), consumers: b.Consumers.map((c: Body) => ({ keys: Object.keys(c), ConsumerARN: c.ConsumerARN })) }),
    (f) => ({ keys: ['Consumers'], consumers: [{ keys: ['ConsumerName', 'ConsumerARN', 'ConsumerStatus', 'ConsumerCreationTimestamp'], ConsumerARN: f.consumerArn }] }),
    `${MODEL} (ListStreamConsumersOutput: Consumers, NextToken when more remain; Consumer)`),
  row('ListStreamConsumers', 'with MaxResults 10000 is every consumer (at most 100 a page)', (f) => ({ StreamARN: streamArn(f), MaxResults: 10000 }),
    (b) => ({ keys: Object.keys(b), count: b.Consumers.length }), { keys: ['Consumers'], count: 1 }, `${MODEL} ("If you specify a value greater than 100, at most 100 results are returned")`),
]

// Actions whose output is Unit in the model: 200, the protocol's Content-Type, an empty body.
const EMPTY_SOURCE = `${KINESALITE} test/createStream.js, test/addTagsToStream.js, test/removeTagsFromStream.js (res.body.should.equal('')); ${MODEL} (output smithy.api#Unit)`
let created = 0
const emptyAnswer = (action: string, what: string, body: Value<unknown>) =>
  rows.push({ class: CLASS, name: `${action} ${what} is 200 with an empty body`, request: { action, body }, expect: { status: 200, raw: '' }, source: EMPTY_SOURCE })
emptyAnswer('CreateStream', 'of a new stream', () => ({ StreamName: `conformance-empty-${created++}`, ShardCount: 1 }))
emptyAnswer('AddTagsToStream', 'to the stream', (f: Fixture) => ({ StreamName: f.stream, Tags: { conformance: 'yes' } }))
emptyAnswer('RemoveTagsFromStream', 'of the stream', (f: Fixture) => ({ StreamName: f.stream, TagKeys: ['conformance'] }))
emptyAnswer('TagResource', 'on the stream\'s ARN', (f: Fixture) => ({ ResourceARN: f.streamArn, Tags: { conformance: 'yes' } }))
emptyAnswer('UntagResource', 'on the stream\'s ARN', (f: Fixture) => ({ ResourceARN: f.streamArn, TagKeys: ['conformance'] }))
