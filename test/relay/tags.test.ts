/**
 * Tags through the AWS SDK: the stream-named actions and the resource-based ones, paging, AWS's
 * limits and wording, and tags kept across a restart and dropped with their stream.
 */
import t from 'tap'
import {
  KinesisClient, CreateStreamCommand, AddTagsToStreamCommand, ListTagsForStreamCommand, RemoveTagsFromStreamCommand,
  TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand, DescribeStreamSummaryCommand, DeleteStreamCommand,
} from '@aws-sdk/client-kinesis'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const sdk = (endpoint: string) => new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })

t.test('tags are added, listed in pages, removed, and kept across a restart', async (t) => {
  const dataDir = tempDir(t)
  let relay = await testRelay(t, { dataDir })
  let client = sdk(relay.endpoint)
  const StreamName = 'tagged'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1, Tags: { team: 'edge', env: 'test' } }))
  t.same((await client.send(new ListTagsForStreamCommand({ StreamName }))).Tags, [{ Key: 'env', Value: 'test' }, { Key: 'team', Value: 'edge' }], 'tags given at creation, by key')

  await client.send(new AddTagsToStreamCommand({ StreamName, Tags: { team: 'fleet', 'cost center': 'R&D 42'.replace('&', '+'), empty: '' } }))
  const page1 = await client.send(new ListTagsForStreamCommand({ StreamName, Limit: 2 }))
  t.same(page1.Tags, [{ Key: 'cost center', Value: 'R+D 42' }, { Key: 'empty', Value: '' }])
  t.equal(page1.HasMoreTags, true)
  const page2 = await client.send(new ListTagsForStreamCommand({ StreamName, Limit: 2, ExclusiveStartTagKey: 'empty' }))
  t.same(page2.Tags, [{ Key: 'env', Value: 'test' }, { Key: 'team', Value: 'fleet' }], 'a value is replaced')
  t.equal(page2.HasMoreTags, false)

  await client.send(new RemoveTagsFromStreamCommand({ StreamName, TagKeys: ['env', 'not-there'] }))
  const { StreamARN } = (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!
  await client.send(new TagResourceCommand({ ResourceARN: StreamARN, Tags: { owner: 'ops' } }))
  await client.send(new UntagResourceCommand({ ResourceARN: StreamARN, TagKeys: ['empty'] }))
  const expected = { 'cost center': 'R+D 42', owner: 'ops', team: 'fleet' }
  t.same((await client.send(new ListTagsForResourceCommand({ ResourceARN: StreamARN }))).Tags, Object.entries(expected).map(([Key, Value]) => ({ Key, Value })))

  client.destroy()
  await relay.close()
  relay = await testRelay(t, { dataDir })
  client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  t.same((await client.send(new ListTagsForStreamCommand({ StreamName }))).Tags, Object.entries(expected).map(([Key, Value]) => ({ Key, Value })), 'kept across a restart')
  await client.send(new DeleteStreamCommand({ StreamName }))
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  t.same((await client.send(new ListTagsForStreamCommand({ StreamName }))).Tags, [], 'a stream created again has no tags')
})

t.test('tag limits and refusals, with AWS types and wording', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(relay.endpoint)
  t.teardown(() => client.destroy())
  const StreamName = 'limits'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  const many = (n: number, prefix: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, 'v']))
  await client.send(new AddTagsToStreamCommand({ StreamName, Tags: many(45, 'a') }))
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: many(6, 'b') })), {
    name: 'InvalidArgumentException', message: `Failed to add tags to stream ${StreamName} under account 000000000000 because a given stream cannot have more than 50 tags associated with it.`,
  })
  t.equal((await client.send(new ListTagsForStreamCommand({ StreamName }))).Tags!.length, 45, 'nothing of a refused request is kept')
  await client.send(new AddTagsToStreamCommand({ StreamName, Tags: many(5, 'b') }))
  await client.send(new AddTagsToStreamCommand({ StreamName, Tags: { a0: 'replacing is not adding' } }))

  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: { 'semi;colon': 'x' } })), {
    name: 'InvalidArgumentException', message: 'Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.',
  })
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: { 'per%cent': 'x' } })), { name: 'InvalidArgumentException', message: /because some tags contained illegal characters/ })
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: { ['k'.repeat(129)]: 'x' } })), {
    name: 'ValidationException', message: /at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: \[Member must have length less than or equal to 128, Member must have length greater than or equal to 1\]/,
  })
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: { k: 'v'.repeat(257) } })), { name: 'ValidationException', message: /at 'tags' failed to satisfy constraint: Map value must satisfy constraint: \[Member must have length less than or equal to 256, Member must have length greater than or equal to 0\]/ })
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: {} })), { name: 'ValidationException', message: /Member must have length greater than or equal to 1/ })
  await t.rejects(client.send(new RemoveTagsFromStreamCommand({ StreamName, TagKeys: Array.from({ length: 51 }, (_, i) => `k${i}`) })), { name: 'ValidationException', message: /at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50/ })
  await t.rejects(client.send(new ListTagsForStreamCommand({ StreamName, Limit: 51 })), { name: 'ValidationException', message: /at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50/ })
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName: 'nope', Tags: { a: 'b' } })), { name: 'ResourceNotFoundException', message: 'Stream nope under account 000000000000 not found.' })
  await t.rejects(client.send(new ListTagsForResourceCommand({ ResourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/limits/consumer/c:1' })), { name: 'ResourceNotFoundException' }, 'a consumer that is not registered')
  await t.rejects(client.send(new AddTagsToStreamCommand({ StreamName, Tags: { 'tributary:throughput-limits': 'maybe' } })), { name: 'InvalidArgumentException', message: /must be "on" or "off"/ })
})
