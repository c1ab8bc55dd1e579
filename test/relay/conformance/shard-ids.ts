/**
 * Class: shard ids, read as Kinesis reads them. The part after the first hyphen (the whole id when
 * there is none) is a decimal shard index: `shardId-000000000001`, `shardId-1`, `1` and `abc-1`
 * all name shard 1. An index past 2147483647 or not a number names no shard: "Could not find shard
 * <id as given> in stream …", checked before the stream is looked up. Answers name shards in the
 * canonical `shardId-%012d` form.
 *
 * Where the expectations come from: AWS's answers as kinesalite records them
 * (https://github.com/mhart/kinesalite, test/getShardIterator.js: "unknown stream and short
 * prefix" `a-00002147483647`, "no prefix" `-00002147483647`, "shard ID too big" `2147483648`,
 * "raw shard ID too big" `shardId-002147483648`, "string shard ID" `ABKLFD8`, "exponent shard ID"
 * `2.14E4`, "raw shard ID does not exist" `shardId-5`, "random shard ID with hyphen"; and
 * test/splitShard.js, test/mergeShards.js for resharding's "Could not find shard" wording). Where
 * kinesalite reads only the part between the first and second hyphen and the issue says "after the
 * first hyphen", the reading is followed (docs/compatibility.md). ListShards and
 * DescribeStream's ExclusiveStartShardId and ShardFilter.ShardId follow the same reading; AWS's
 * answer to an id there that names no shard is not recorded, so it gets GetShardIterator's.
 */
import type { Fixture, Row } from './rows.js'

const CLASS = 'shard-ids'
const GSI = 'AWS answers recorded by kinesalite: https://github.com/mhart/kinesalite/blob/master/test/getShardIterator.js'
const RESHARD = 'AWS answers recorded by kinesalite: https://github.com/mhart/kinesalite/blob/master/test/splitShard.js, test/mergeShards.js'
const LIST = 'API reference, ListShards ExclusiveStartShardId / ShardFilter: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html; ids read as GetShardIterator reads them (kinesalite test/getShardIterator.js)'

const canonical = (i: number) => `shardId-${String(i).padStart(12, '0')}`
const notFound = (message: string) => ({ __type: 'ResourceNotFoundException', message })
const doesNotExist = (f: Fixture, index: number, stream = f.stream) => notFound(`Shard ${canonical(index)} in stream ${stream} under account ${f.account} does not exist`)
const couldNotFind = (f: Fixture, id: string, stream = f.stream) => notFound(`Could not find shard ${id} in stream ${stream} under account ${f.account}.`)

/** Ids of shard 1 in every form Kinesis reads. */
const SHARD_1 = ['shardId-000000000001', 'shardId-1', '1', '000001', 'abc-1', 'shard-01', '-1', 'x.y_z-0000000000000000001']
/** Ids that name no shard: not a decimal number after the first hyphen, or past 2^31-1. */
const NO_SHARD = ['2147483648', 'shardId-002147483648', 'ABKLFD8', '2.14E4', 'shardId-', 'shardId-1-2', 'shardId-0x1', '99999999999999999999']

const rows: Row[] = []

for (const id of SHARD_1) {
  rows.push({
    class: CLASS,
    name: `GetShardIterator reads ${JSON.stringify(id)} as shard 1, and names it shardId-000000000001 (a sequence number of shard 0 is refused naming both)`,
    request: { action: 'GetShardIterator', body: (f) => ({ StreamName: f.stream, ShardId: id, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: f.seq0 }) },
    expect: { status: 400, body: { __type: 'InvalidArgumentException', message: `Invalid StartingSequenceNumber. It encodes ${canonical(0)}, while it was used in a call to a shard with ${canonical(1)}` } },
    source: `${GSI} ("shard mismatches simple sequence")`,
  })
  rows.push({
    class: CLASS,
    name: `GetShardIterator gives an iterator for ${JSON.stringify(id)}`,
    request: { action: 'GetShardIterator', body: (f) => ({ StreamName: f.stream, ShardId: id, ShardIteratorType: 'TRIM_HORIZON' }) },
    expect: { status: 200, match: { ShardIterator: /^\S{1,512}$/ } },
    source: `${GSI} ("should work with random shard ID with hyphen")`,
  })
}

for (const id of ['shardId-0', '0', 'shard-0', 'a-000']) {
  rows.push({
    class: CLASS,
    name: `GetShardIterator AT_SEQUENCE_NUMBER on ${JSON.stringify(id)} accepts shard 0's own sequence number`,
    request: { action: 'GetShardIterator', body: (f) => ({ StreamName: f.stream, ShardId: id, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: f.seq0 }) },
    expect: { status: 200, match: { ShardIterator: /^\S{1,512}$/ } },
    source: GSI,
  })
}

for (const id of ['shardId-5', '5', 'a-000000000005', 'shardId-2147483647']) {
  const index = Number(id.slice(id.indexOf('-') + 1))
  rows.push({
    class: CLASS,
    name: `GetShardIterator for ${JSON.stringify(id)}, a shard the stream does not have, names it canonically`,
    request: { action: 'GetShardIterator', body: (f) => ({ StreamName: f.stream, ShardId: id, ShardIteratorType: 'LATEST' }) },
    expect: { status: 400, body: (f) => doesNotExist(f, index) },
    source: `${GSI} ("raw shard ID does not exist")`,
  })
}

for (const id of ['a-00002147483647', '-00002147483647', 'shardId-000000000000']) {
  rows.push({
    class: CLASS,
    name: `GetShardIterator on a stream that does not exist, with ${JSON.stringify(id)}, says the shard does not exist`,
    request: { action: 'GetShardIterator', body: { StreamName: 'no-such-stream', ShardId: id, ShardIteratorType: 'LATEST' } },
    expect: { status: 400, body: (f) => doesNotExist(f, Number(id.slice(id.indexOf('-') + 1)), 'no-such-stream') },
    source: `${GSI} ("unknown stream and short prefix", "unknown stream and no prefix")`,
  })
}

for (const id of NO_SHARD) {
  rows.push({
    class: CLASS,
    name: `GetShardIterator with ${JSON.stringify(id)}, which names no shard, is "Could not find shard" quoting it`,
    request: { action: 'GetShardIterator', body: (f) => ({ StreamName: f.stream, ShardId: id, ShardIteratorType: 'LATEST' }) },
    expect: { status: 400, body: (f) => couldNotFind(f, id) },
    source: `${GSI} ("shard ID too big", "raw shard ID too big", "string shard ID", "exponent shard ID")`,
  })
  rows.push({
    class: CLASS,
    name: `GetShardIterator with ${JSON.stringify(id)} on a stream that does not exist is still "Could not find shard"`,
    request: { action: 'GetShardIterator', body: { StreamName: 'no-such-stream', ShardId: id, ShardIteratorType: 'LATEST' } },
    expect: { status: 400, body: (f) => couldNotFind(f, id, 'no-such-stream') },
    source: GSI,
  })
  rows.push({
    class: CLASS,
    name: `SplitShard with ShardToSplit ${JSON.stringify(id)} is "Could not find shard" quoting it`,
    request: { action: 'SplitShard', body: (f) => ({ StreamName: f.stream, ShardToSplit: id, NewStartingHashKey: '5' }) },
    expect: { status: 400, body: (f) => couldNotFind(f, id) },
    source: RESHARD,
  })
  rows.push({
    class: CLASS,
    name: `MergeShards with AdjacentShardToMerge ${JSON.stringify(id)} is "Could not find shard" quoting it`,
    request: { action: 'MergeShards', body: (f) => ({ StreamName: f.stream, ShardToMerge: '0', AdjacentShardToMerge: id }) },
    expect: { status: 400, body: (f) => couldNotFind(f, id) },
    source: RESHARD,
  })
  rows.push({
    class: CLASS,
    name: `ListShards with ExclusiveStartShardId ${JSON.stringify(id)} is "Could not find shard" quoting it`,
    request: { action: 'ListShards', body: (f) => ({ StreamName: f.stream, ExclusiveStartShardId: id }) },
    expect: { status: 400, body: (f) => couldNotFind(f, id) },
    source: LIST,
  })
}

for (const id of ['0', 'shardId-0', 'shard-000']) {
  rows.push({
    class: CLASS,
    name: `SplitShard reads ShardToSplit ${JSON.stringify(id)} as shard 0 (a hash key outside it is refused naming shardId-000000000000)`,
    request: { action: 'SplitShard', body: (f) => ({ StreamName: f.stream, ShardToSplit: id, NewStartingHashKey: '1' }) },
    expect: {
      status: 400,
      body: (f) => ({
        __type: 'InvalidArgumentException',
        message: `NewStartingHashKey 1 used in SplitShard() on shard ${canonical(0)} in stream ${f.stream} under account ${f.account} is not both greater than one plus the shard's StartingHashKey ${f.shard0.start} and less than the shard's EndingHashKey ${f.shard0.end}.`,
      }),
    },
    source: `${RESHARD} ("NewStartingHashKey … is not both greater than one plus the shard's StartingHashKey")`,
  })
  rows.push({
    class: CLASS,
    name: `MergeShards reads ${JSON.stringify(id)} and "2" as shards 0 and 2, and names both canonically as not adjacent`,
    request: { action: 'MergeShards', body: (f) => ({ StreamName: f.stream, ShardToMerge: id, AdjacentShardToMerge: '2' }) },
    expect: { status: 400, body: (f) => ({ __type: 'InvalidArgumentException', message: `Shards ${canonical(0)} and ${canonical(2)} in stream ${f.stream} under account ${f.account} are not an adjacent pair of shards eligible for merging` }) },
    source: `${RESHARD} ("are not an adjacent pair of shards eligible for merging")`,
  })
}

for (const id of ['shardId-7', '7']) {
  rows.push({
    class: CLASS,
    name: `SplitShard on ${JSON.stringify(id)}, a shard the stream does not have, names it canonically`,
    request: { action: 'SplitShard', body: (f) => ({ StreamName: f.stream, ShardToSplit: id, NewStartingHashKey: '5' }) },
    expect: { status: 400, body: (f) => couldNotFind(f, canonical(7)) },
    source: RESHARD,
  })
  rows.push({
    class: CLASS,
    name: `MergeShards with ${JSON.stringify(id)}, a shard the stream does not have, names it canonically`,
    request: { action: 'MergeShards', body: (f) => ({ StreamName: f.stream, ShardToMerge: '0', AdjacentShardToMerge: id }) },
    expect: { status: 400, body: (f) => couldNotFind(f, canonical(7)) },
    source: RESHARD,
  })
}

const ids = (body: { Shards?: { ShardId: string }[]; StreamDescription?: { Shards: { ShardId: string }[] } }) =>
  (body.Shards ?? body.StreamDescription?.Shards ?? []).map((s) => s.ShardId)

for (const id of ['shardId-000000000000', 'shardId-0', '0', 'a-0']) {
  rows.push({
    class: CLASS,
    name: `ListShards after ExclusiveStartShardId ${JSON.stringify(id)} lists shards 1 and 2`,
    request: { action: 'ListShards', body: (f) => ({ StreamName: f.stream, ExclusiveStartShardId: id }) },
    expect: { status: 200, pick: { of: ids, equals: [canonical(1), canonical(2)] } },
    source: LIST,
  })
  rows.push({
    class: CLASS,
    name: `ListShards with ShardFilter AFTER_SHARD_ID ${JSON.stringify(id)} lists shards 1 and 2`,
    request: { action: 'ListShards', body: (f) => ({ StreamName: f.stream, ShardFilter: { Type: 'AFTER_SHARD_ID', ShardId: id } }) },
    expect: { status: 200, pick: { of: ids, equals: [canonical(1), canonical(2)] } },
    source: LIST,
  })
}

for (const id of ['shardId-1', '1']) {
  rows.push({
    class: CLASS,
    name: `DescribeStream after ExclusiveStartShardId ${JSON.stringify(id)} lists shard 2 only`,
    request: { action: 'DescribeStream', body: (f) => ({ StreamName: f.stream, ExclusiveStartShardId: id }) },
    expect: { status: 200, pick: { of: ids, equals: [canonical(2)] } },
    source: 'API reference, DescribeStream ExclusiveStartShardId: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStream.html; ids read as GetShardIterator reads them',
  })
}

// SubscribeToShard: AWS's wording for its shard ids is not recorded; GetShardIterator's is the closest.
const SUBSCRIBE = `SubscribeToShard's ShardId: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShard.html; wording as ${GSI}`
for (const id of ['ABKLFD8', 'shardId-002147483648', 'shardId-1-2']) {
  rows.push({
    class: CLASS,
    name: `SubscribeToShard with ${JSON.stringify(id)}, which names no shard, is "Could not find shard" quoting it`,
    request: { action: 'SubscribeToShard', body: (f) => ({ ConsumerARN: f.consumerArn, ShardId: id, StartingPosition: { Type: 'LATEST' } }) },
    expect: { status: 400, body: (f) => couldNotFind(f, id) },
    source: SUBSCRIBE,
  })
}
for (const id of ['shardId-9', '9', 'abc-0009']) {
  rows.push({
    class: CLASS,
    name: `SubscribeToShard with ${JSON.stringify(id)}, a shard the stream does not have, names it canonically`,
    request: { action: 'SubscribeToShard', body: (f) => ({ ConsumerARN: f.consumerArn, ShardId: id, StartingPosition: { Type: 'LATEST' } }) },
    expect: { status: 400, body: (f) => doesNotExist(f, 9) },
    source: SUBSCRIBE,
  })
}

rows.push({
  class: CLASS,
  name: 'ListShards answers every shard id in the canonical form',
  request: { action: 'ListShards', body: (f) => ({ StreamName: f.stream }) },
  expect: { status: 200, pick: { of: ids, equals: [canonical(0), canonical(1), canonical(2)] } },
  source: LIST,
})

export { rows }
