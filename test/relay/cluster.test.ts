/**
 * Two relays on one NATS JetStream (`--cluster`): any relay serves any request. A stream created on
 * one is described on the other; records written through either (PutRecords from the AWS SDK, device
 * batches over MQTT) are read through both, once each, in order; a relay started again finds them.
 */
import t from 'tap'
import mqtt from 'mqtt'
import { KinesisClient as SdkKinesis, CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand, SplitShardCommand, ListShardsCommand, RegisterStreamConsumerCommand, DescribeStreamConsumerCommand, SubscribeToShardCommand } from '@aws-sdk/client-kinesis'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { startNats, natsMissing } from '../helpers/nats.js'
import { testRelay } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'

const missing = natsMissing()
const sdk = (endpoint: string) => new SdkKinesis({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 })

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * A QoS 1 publish that settles when the relay refuses the batch by closing the connection: mqtt.js
 * leaves a QoS 1 publish pending forever when the server closes the connection and it may not
 * reconnect (it fails only QoS 0 ones then), so a refusal would look like a hang.
 */
function publishOrClosed(client: mqtt.MqttClient, topic: string, payload: Buffer): Promise<void> {
  if (!client.connected) return Promise.reject(new Error('the relay closed the connection'))
  return new Promise((resolve, reject) => {
    const closed = () => reject(new Error('the relay closed the connection before acknowledging the batch'))
    client.once('close', closed)
    client.publishAsync(topic, payload, { qos: 1 }).then(() => resolve(), reject).finally(() => client.off('close', closed))
  })
}

t.test('two relays on one JetStream serve the same streams', { skip: missing ?? false }, async (t) => {
  const nats = await startNats(t)
  const a = await testRelay(t, { cluster: nats.servers })
  const b = await testRelay(t, { cluster: nats.servers })
  const [ka, kb] = [sdk(a.endpoint), sdk(b.endpoint)]
  t.teardown(() => { ka.destroy(); kb.destroy() })

  // Created through A and used through B at once, without waiting for B to hear of it (40 shards:
  // B takes a while to open them all, and the request arrives meanwhile).
  await ka.send(new CreateStreamCommand({ StreamName: 'at-once', ShardCount: 40 }))
  const atOnce = await kb.send(new PutRecordsCommand({ StreamName: 'at-once', Records: [{ PartitionKey: 'k', Data: Buffer.from('first') }] }))
  t.equal(atOnce.FailedRecordCount, 0, 'a stream created through A takes records through B at once')

  await ka.send(new CreateStreamCommand({ StreamName: 'shared', ShardCount: 2 }))
  const started = Date.now()
  const seen = await until('stream seen on B', async () => {
    const r = await kb.send(new DescribeStreamSummaryCommand({ StreamName: 'shared' }))
    return r.StreamDescriptionSummary?.OpenShardCount
  })
  t.equal(seen, 2, 'relay B describes the stream relay A created, with its two shards')
  t.comment(`seen on B ${Date.now() - started} ms after the creation on A`)

  // Writes through both relays: one of them owns the stream, the other forwards.
  const put = async (k: SdkKinesis, prefix: string, n: number) => {
    for (let i = 0; i < n; i += 10) {
      const out = await k.send(new PutRecordsCommand({
        StreamName: 'shared',
        Records: Array.from({ length: 10 }, (_, j) => ({ PartitionKey: `${prefix}-${(i + j) % 4}`, Data: Buffer.from(`${prefix}-${i + j}`) })),
      }))
      t.equal(out.FailedRecordCount, 0)
    }
  }
  await Promise.all([put(ka, 'a', 100), put(kb, 'b', 100)])

  // A device on relay B, another on relay A.
  const device = async (port: number, id: string) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0 })
    for (let seq = 0; seq < 5; seq++) {
      const frame = codec.encodeBatch({ epoch: 7n, sequence: seq, records: Array.from({ length: 4 }, (_, i) => ({ partitionKey: `${id}-${i}`, data: Buffer.from(`${id}-${seq}-${i}`), producerTimeMs: Date.now(), flags: 0 })) })
      await client.publishAsync(topics.records(id, 'shared'), frame, { qos: 1 })
    }
    await client.endAsync()
  }
  await Promise.all([device(b.mqttPort, 'dev-b'), device(a.mqttPort, 'dev-a')])

  const fromA = await readStream(a.endpoint, 'shared')
  const fromB = await readStream(b.endpoint, 'shared')
  t.equal(fromA.length, 240, 'every record once, read through A')
  t.same(fromB, fromA, 'relay B reads exactly what relay A reads: same shards, order and sequence numbers')
  t.equal(new Set(fromA.map((r) => r.data)).size, 240, 'no record stored twice')
  for (const prefix of ['a', 'b']) {
    // Per partition key, records keep the order they were put in.
    for (let k = 0; k < 4; k++) {
      const mine = fromA.filter((r) => r.key === `${prefix}-${k}`).map((r) => Number(r.data.split('-')[1]))
      t.same(mine, [...mine].sort((x, y) => x - y), `key ${prefix}-${k} in order`)
    }
  }

  // A reshard on B reaches A: both route by the new map.
  const shards = (await kb.send(new ListShardsCommand({ StreamName: 'shared' }))).Shards!
  await kb.send(new SplitShardCommand({ StreamName: 'shared', ShardToSplit: shards[0]!.ShardId!, NewStartingHashKey: (BigInt(shards[0]!.HashKeyRange!.EndingHashKey!) / 2n).toString() }))
  const open = await until('new map on A', async () => {
    const r = await ka.send(new ListShardsCommand({ StreamName: 'shared' }))
    const n = r.Shards!.filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined).length
    return n === 3 ? n : undefined
  })
  t.equal(open, 3, 'relay A lists the three open shards relay B made')
  await put(ka, 'c', 20)
  const after = await readStream(b.endpoint, 'shared')
  t.equal(after.length, 260, 'records written after the reshard are read on B too')
})

t.test('a device batch whose commit JetStream refused is stored when it is resent, not taken for a duplicate', { skip: missing ?? false }, async (t) => {
  const nats = await startNats(t)
  const relay = await testRelay(t, { cluster: nats.servers })
  const batch = (seq: number) => codec.encodeBatch({ epoch: 9n, sequence: seq, records: [0, 1, 2].map((i) => ({ partitionKey: `k${i}`, data: Buffer.from(`b${seq}-${i}`), producerTimeMs: Date.now(), flags: 0 })) })
  const connect = () => mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'dev-r', protocolVersion: 4, reconnectPeriod: 0 })
  let client = await connect()
  await client.publishAsync(topics.records('dev-r', 'refused'), batch(0), { qos: 1 })

  // JetStream goes away while batch 1 waits for its commit: no PUBACK, the connection is closed.
  nats.kill(0)
  const outcome = await publishOrClosed(client, topics.records('dev-r', 'refused'), batch(1)).then(() => 'acknowledged', () => 'refused')
  t.equal(outcome, 'refused', 'the batch is not acknowledged while JetStream cannot store it')
  client.end(true)

  await nats.start(0)
  await nats.ready()
  // The device resends batch 1 (same epoch and sequence) until it is acknowledged, then goes on.
  // The relay may refuse the first resends (its lease not confirmed yet after the outage): each
  // refusal closes the connection, and the device connects again, as the agent does.
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      client = await connect()
      await publishOrClosed(client, topics.records('dev-r', 'refused'), batch(1))
      break
    } catch (err) {
      client.end(true)
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  await client.publishAsync(topics.records('dev-r', 'refused'), batch(2), { qos: 1 })
  await client.endAsync()
  const data = (await readStream(relay.endpoint, 'refused')).map((r) => r.data).sort()
  t.same(data, ['b0-0', 'b0-1', 'b0-2', 'b1-0', 'b1-1', 'b1-2', 'b2-0', 'b2-1', 'b2-2'], 'the resent batch is stored once, with the others')
})

t.test('a consumer registered on one relay subscribes on the other and gets what the first acknowledges', { skip: missing ?? false }, async (t) => {
  const nats = await startNats(t)
  const a = await testRelay(t, { cluster: nats.servers })
  const b = await testRelay(t, { cluster: nats.servers })
  const [ka, kb] = [sdk(a.endpoint), new SdkKinesis({ endpoint: b.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } })]
  t.teardown(() => { ka.destroy(); kb.destroy() })
  await ka.send(new CreateStreamCommand({ StreamName: 'efo', ShardCount: 1 }))
  const arn = (await ka.send(new DescribeStreamSummaryCommand({ StreamName: 'efo' }))).StreamDescriptionSummary!.StreamARN!
  const { Consumer } = await ka.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'reader' }))
  await until('consumer active on B', async () => {
    const d = await kb.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }))
    return d.ConsumerDescription!.ConsumerStatus === 'ACTIVE' ? true : undefined
  })
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const out = await kb.send(new SubscribeToShardCommand({ ConsumerARN: Consumer!.ConsumerARN!, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const received: string[] = []
  const reading = (async () => {
    for await (const ev of out.EventStream!) {
      for (const r of ev.SubscribeToShardEvent?.Records ?? []) received.push(Buffer.from(r.Data!).toString())
      if (received.length >= 30) break
    }
  })().catch(() => {})
  for (let i = 0; i < 3; i++) {
    await ka.send(new PutRecordsCommand({ StreamName: 'efo', Records: Array.from({ length: 10 }, (_, j) => ({ PartitionKey: 'k', Data: Buffer.from(`r${i * 10 + j}`) })) }))
    await new Promise((r) => setTimeout(r, 50))
  }
  await until('events on B', async () => (received.length >= 30 ? true : undefined), 10_000)
  t.same(received, Array.from({ length: 30 }, (_, i) => `r${i}`), 'the subscription on B pushes every record written through A, in order')
  abort.abort()
  await reading
})
