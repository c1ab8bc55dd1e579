/**
 * Enhanced fan-out consumers through the unmodified AWS SDK: register, describe, list with paging,
 * deregister, the states they go through, AWS's ARN layout, limits and errors, and that they
 * survive a restart of the relay. Where a test looks at a status or a creation time, the relay runs
 * on a manual clock: a consumer is ACTIVE exactly a second after it is registered and gone exactly a
 * second after it is deregistered, whatever the machine's speed.
 */
import t, { type Test } from 'tap'
import {
  KinesisClient, CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, ListStreamConsumersCommand, DeregisterStreamConsumerCommand, type Consumer,
  TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand,
} from '@aws-sdk/client-kinesis'
import { resolveRelayConfig } from '../../shared/config.js'
import { startRelay } from '../../relay/relay.js'
import { manualClock, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

function sdk(t: Test, endpoint: string): KinesisClient {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  return client
}

async function streamArn(client: KinesisClient, StreamName: string): Promise<string> {
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  return (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!.StreamARN!
}

async function statusOf(client: KinesisClient, ConsumerARN: string): Promise<string | undefined> {
  return (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN }))).ConsumerDescription?.ConsumerStatus
}

/** How long a registered consumer stays CREATING, and a deregistered one DELETING (relay/consumers.ts). */
const STATUS_CHANGE_MS = 1000

t.test('a consumer is CREATING, then ACTIVE a second later, with an ARN in AWS\'s layout; describe by ARN or by stream and name', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'consumers-a')
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'app-1' }))
  t.equal(Consumer!.ConsumerStatus, 'CREATING')
  t.equal(Consumer!.ConsumerName, 'app-1')
  t.ok(Consumer!.ConsumerCreationTimestamp instanceof Date)
  t.equal(Consumer!.ConsumerCreationTimestamp!.getTime(), clock.now(), "created at the time on the relay's clock, to the millisecond")
  const m = /^arn:aws:kinesis:us-east-1:(\d{12}):stream\/consumers-a\/consumer\/app-1:(\d+)$/.exec(Consumer!.ConsumerARN!)
  t.ok(m, `ARN layout: ${Consumer!.ConsumerARN}`)
  t.equal(Number(m![2]), Math.floor(Consumer!.ConsumerCreationTimestamp!.getTime() / 1000), 'the ARN ends with the creation time in epoch seconds')
  t.equal(Number(m![2]), Math.floor(clock.now() / 1000), 'taken while the call ran')
  t.equal(Consumer!.ConsumerARN!.startsWith(`${StreamARN}/consumer/`), true)
  clock.advance(STATUS_CHANGE_MS - 1)
  t.equal(await statusOf(client, Consumer!.ConsumerARN!), 'CREATING', 'still CREATING 1 ms before a second has passed')
  clock.advance(1)
  t.equal(await statusOf(client, Consumer!.ConsumerARN!), 'ACTIVE', 'ACTIVE once it has')

  const byName = await client.send(new DescribeStreamConsumerCommand({ StreamARN, ConsumerName: 'app-1' }))
  t.same(byName.ConsumerDescription, {
    ConsumerName: 'app-1', ConsumerARN: Consumer!.ConsumerARN, ConsumerStatus: 'ACTIVE',
    ConsumerCreationTimestamp: Consumer!.ConsumerCreationTimestamp, StreamARN,
  })
  const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: 'consumers-a' }))
  t.equal(summary.StreamDescriptionSummary!.ConsumerCount, 1, 'DescribeStreamSummary counts consumers')

  await t.rejects(client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'app-1' })), { name: 'ResourceInUseException', message: /app-1.*already exists/ })
})

t.test('deregistering goes through DELETING, then the consumer is gone a second later; registering the name again gives a new ARN', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'consumers-d')
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'gone' }))
  clock.advance(STATUS_CHANGE_MS)
  t.equal(await statusOf(client, Consumer!.ConsumerARN!), 'ACTIVE')
  await client.send(new DeregisterStreamConsumerCommand({ StreamARN, ConsumerName: 'gone' }))
  t.equal(await statusOf(client, Consumer!.ConsumerARN!), 'DELETING')
  clock.advance(STATUS_CHANGE_MS - 1)
  t.equal(await statusOf(client, Consumer!.ConsumerARN!), 'DELETING', 'still DELETING 1 ms before a second has passed')
  clock.advance(1)
  await t.rejects(statusOf(client, Consumer!.ConsumerARN!), { name: 'ResourceNotFoundException' }, 'gone once it has')
  t.same((await client.send(new ListStreamConsumersCommand({ StreamARN }))).Consumers, [])
  await t.rejects(client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN })), { name: 'ResourceNotFoundException' })
  // Two seconds on since the first registration, so the creation time in the ARN differs.
  const again = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'gone' }))
  t.match(again.Consumer!.ConsumerARN, new RegExp(`/consumer/gone:${Math.floor(clock.now() / 1000)}$`), 'created in a later second')
  t.not(again.Consumer!.ConsumerARN, Consumer!.ConsumerARN, 'a new ARN for the new consumer')
  await t.rejects(client.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN })), { name: 'ResourceNotFoundException' }, 'the old ARN does not name the new consumer')
})

t.test('ListStreamConsumers pages with MaxResults and NextToken; at most 20 consumers per stream', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'consumers-l')
  const names = Array.from({ length: 20 }, (_, i) => `c-${String(i).padStart(2, '0')}`)
  for (const ConsumerName of names) await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName }))
  await t.rejects(client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'one-too-many' })), { name: 'LimitExceededException' })
  const seen: Consumer[] = []
  let NextToken: string | undefined
  let pages = 0
  do {
    const page = await client.send(new ListStreamConsumersCommand({ StreamARN, MaxResults: 6, ...(NextToken ? { NextToken } : {}) }))
    seen.push(...page.Consumers!)
    t.ok(page.Consumers!.length <= 6)
    NextToken = page.NextToken
    pages++
  } while (NextToken)
  t.equal(pages, 4)
  t.same(seen.map((c) => c.ConsumerName), names, 'every consumer once, in name order')
  t.ok(seen.every((c) => c.ConsumerARN && c.ConsumerStatus && c.ConsumerCreationTimestamp instanceof Date))
  const other = await streamArn(client, 'consumers-other')
  const first = await client.send(new ListStreamConsumersCommand({ StreamARN, MaxResults: 1 }))
  await t.rejects(client.send(new ListStreamConsumersCommand({ StreamARN: other, NextToken: first.NextToken })), { name: 'InvalidArgumentException' }, 'a token belongs to its stream')
  await t.rejects(client.send(new ListStreamConsumersCommand({ StreamARN, NextToken: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA' })), { name: 'InvalidArgumentException', message: 'Invalid NextToken.' })
})

t.test('requests that name nothing that exists, or break the constraints, get AWS\'s error types', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'consumers-e')
  const missingStream = StreamARN.replace('consumers-e', 'nope')
  await t.rejects(client.send(new RegisterStreamConsumerCommand({ StreamARN: missingStream, ConsumerName: 'x' })), { name: 'ResourceNotFoundException', message: /^Stream nope under account \d{12} not found\.$/ })
  await t.rejects(client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'bad name' })),
    { name: 'ValidationException', message: "1 validation error detected: Value 'bad name' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+" })
  await t.rejects(client.send(new RegisterStreamConsumerCommand({ StreamARN: 'arn:aws:s3:::bucket', ConsumerName: 'x' })), { name: 'ValidationException', message: /at 'streamARN' failed to satisfy constraint/ })
  await t.rejects(client.send(new DescribeStreamConsumerCommand({ ConsumerName: 'x' })), { name: 'InvalidArgumentException' })
  await t.rejects(client.send(new DescribeStreamConsumerCommand({ StreamARN, ConsumerName: 'nobody' })), { name: 'ResourceNotFoundException' })
  await t.rejects(client.send(new ListStreamConsumersCommand({ StreamARN, MaxResults: 0 })), { name: 'ValidationException', message: /at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1/ })
  await t.rejects(client.send(new ListStreamConsumersCommand({ StreamARN, StreamCreationTimestamp: new Date(0) })), { name: 'ResourceNotFoundException' })
})

t.test('consumers survive a restart of the relay; deleting the stream removes them', async (t) => {
  const dataDir = tempDir(t)
  const config = resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true })
  const clock = manualClock()
  let relay = await startRelay(config, () => {}, { clock })
  let client = new KinesisClient({ endpoint: `http://127.0.0.1:${relay.httpPort}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  const StreamARN = await streamArn(client, 'consumers-r')
  const a = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'kept' }))
  clock.advance(STATUS_CHANGE_MS)
  t.equal(await statusOf(client, a.Consumer!.ConsumerARN!), 'ACTIVE')
  // Restarted while the second is still CREATING (the clock does not move again): it comes back ACTIVE.
  const b = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'young' }))
  t.equal(await statusOf(client, b.Consumer!.ConsumerARN!), 'CREATING', 'the second is CREATING when the relay stops')
  client.destroy()
  await relay.close()

  relay = await startRelay(config, () => {}, { clock })
  t.teardown(() => relay.close())
  client = new KinesisClient({ endpoint: `http://127.0.0.1:${relay.httpPort}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  const listed = (await client.send(new ListStreamConsumersCommand({ StreamARN }))).Consumers!
  t.same(listed.map((c) => [c.ConsumerName, c.ConsumerARN, c.ConsumerStatus]), [
    ['kept', a.Consumer!.ConsumerARN, 'ACTIVE'],
    ['young', b.Consumer!.ConsumerARN, 'ACTIVE'],
  ])
  t.same(listed[0]!.ConsumerCreationTimestamp, a.Consumer!.ConsumerCreationTimestamp)

  await client.send(new DeleteStreamCommand({ StreamName: 'consumers-r', EnforceConsumerDeletion: true }))
  const recreated = await streamArn(client, 'consumers-r')
  t.same((await client.send(new ListStreamConsumersCommand({ StreamARN: recreated }))).Consumers, [], 'a stream created again starts without consumers')
  await t.rejects(client.send(new DescribeStreamConsumerCommand({ ConsumerARN: a.Consumer!.ConsumerARN })), { name: 'ResourceNotFoundException' })
})

t.test('a stream with consumers is deleted only with EnforceConsumerDeletion', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'consumers-del')
  await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'holder' }))
  await t.rejects(client.send(new DeleteStreamCommand({ StreamName: 'consumers-del' })), {
    name: 'ResourceInUseException',
    message: /^DeleteStream can't delete \d{12}:consumers-del because there are consumers associated with this data stream\. To delete consumers-del anyway, set the EnforceConsumerDeletion parameter to true/,
  })
  await client.send(new DeleteStreamCommand({ StreamName: 'consumers-del', EnforceConsumerDeletion: true }))
  await t.rejects(client.send(new DescribeStreamSummaryCommand({ StreamName: 'consumers-del' })), { name: 'ResourceNotFoundException' })
})

t.test('a consumer keeps tags: given at registration, changed by TagResource and UntagResource, gone with it', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = sdk(t, relay.endpoint)
  const StreamARN = await streamArn(client, 'tagged-consumers')
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'app', Tags: { team: 'edge', tier: 'gold' } }))
  const ResourceARN = Consumer!.ConsumerARN!
  const tags = async (arn = ResourceARN) => (await client.send(new ListTagsForResourceCommand({ ResourceARN: arn }))).Tags
  t.same(await tags(), [{ Key: 'team', Value: 'edge' }, { Key: 'tier', Value: 'gold' }], 'the tags given at registration')
  await client.send(new TagResourceCommand({ ResourceARN, Tags: { tier: 'silver', owner: 'ops' } }))
  await client.send(new UntagResourceCommand({ ResourceARN, TagKeys: ['team'] }))
  t.same(await tags(), [{ Key: 'owner', Value: 'ops' }, { Key: 'tier', Value: 'silver' }])
  t.same(await tags(StreamARN), [], "the stream's own tags are separate")
  await t.rejects(client.send(new TagResourceCommand({ ResourceARN, Tags: { 'bad%': 'x' } })), { name: 'InvalidArgumentException' })
  await t.rejects(client.send(new TagResourceCommand({ ResourceARN: `${StreamARN}/consumer/nobody:1`, Tags: { a: 'b' } })), { name: 'ResourceNotFoundException' })
  await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: ResourceARN }))
  clock.advance(STATUS_CHANGE_MS)
  t.same((await client.send(new ListStreamConsumersCommand({ StreamARN }))).Consumers, [], 'gone a second after it was deregistered')
  await t.rejects(tags(), { name: 'ResourceNotFoundException' }, 'and its ARN has no tags to list')
  // Registered again under the same name: a new consumer, without the old one's tags.
  const again = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: 'app' }))
  t.same(await tags(again.Consumer!.ConsumerARN!), [], 'a new consumer of the same name starts without tags')
})
