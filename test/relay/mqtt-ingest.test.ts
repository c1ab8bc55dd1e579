/**
 * Device batches over real MQTT into a real relay: PUBACK means stored, resends are completed
 * without duplicates, and bad input is reported on the device's rejects topic with codes.
 */
import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { HEADER_SIZE } from '../../shared/frame.js'
import type { RelayToDeviceMessage } from '../../shared/messages.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { testRelay } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'

interface Device {
  client: MqttClient
  messages: RelayToDeviceMessage[]
  next(): Promise<RelayToDeviceMessage>
}

async function device(t: Test, port: number, id: string): Promise<Device> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0, queueQoSZero: false })
  t.teardown(() => client.endAsync(true))
  const messages: RelayToDeviceMessage[] = []
  const waiters: ((m: RelayToDeviceMessage) => void)[] = []
  client.on('message', (_topic, payload) => {
    const m = JSON.parse(payload.toString()) as RelayToDeviceMessage
    const w = waiters.shift()
    if (w) w(m)
    else messages.push(m)
  })
  await client.subscribeAsync(topics.rejects(id), { qos: 1 })
  return {
    client, messages,
    next: () => new Promise((resolve, reject) => {
      const queued = messages.shift()
      if (queued) return resolve(queued)
      const timer = setTimeout(() => reject(new Error('no message on the rejects topic')), 5000)
      waiters.push((m) => { clearTimeout(timer); resolve(m) })
    }),
  }
}

const readAll = async (kinesis: KinesisClient, stream: string) => (await readStream(kinesis.endpoint, stream)).map(({ key, data }) => ({ key, data }))

const batch = (sequence: number, items: [string, string][], epoch = 42n) => codec.encodeBatch({
  epoch, sequence, records: items.map(([partitionKey, data]) => ({ partitionKey, data: Buffer.from(data), producerTimeMs: Date.now(), clockSynced: true })),
})

t.test('a batch is readable through the Kinesis API as soon as its PUBACK arrives', async (t) => {
  // The group commit waits its longest (1 s) before the fsync: a PUBACK sent before the commit would
  // arrive while the records are still invisible to readers.
  const relay = await testRelay(t, { groupCommitMs: 1000 })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'temps', ShardCount: 2 })
  const d = await device(t, relay.mqttPort, 'dev-a')
  await d.client.publishAsync(topics.records('dev-a', 'temps'), batch(0, [['s1', 'r0'], ['s2', 'r1'], ['s1', 'r2']]), { qos: 1 })
  const stored = await readAll(kinesis, 'temps')
  t.same(stored.map((r) => r.data).sort(), ['r0', 'r1', 'r2'])
  // A PutRecord lands in the same shards and looks the same to a reader.
  await kinesis.call('PutRecord', { StreamName: 'temps', PartitionKey: 's1', Data: Buffer.from('api').toString('base64') })
  const s1 = (await readAll(kinesis, 'temps')).filter((r) => r.key === 's1').map((r) => r.data)
  t.same(s1, ['r0', 'r2', 'api'], 'device and API records share a shard and its order')
})

t.test('a resent batch is completed, not duplicated', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const d = await device(t, relay.mqttPort, 'dev-b')
  const topic = topics.records('dev-b', 'auto')
  const items: [string, string][] = Array.from({ length: 10 }, (_, i) => [`k${i % 3}`, `v${i}`])
  // The first copy carries only the first half (as if the relay died half-way); the resend is whole.
  const half = codec.decodeBatch(batch(7, items))
  const firstHalf = codec.encodeBatch({ epoch: half.epoch, sequence: half.sequence, records: half.records.slice(0, 5) })
  await d.client.publishAsync(topic, firstHalf, { qos: 1 })
  await d.client.publishAsync(topic, batch(7, items), { qos: 1 })
  await d.client.publishAsync(topic, batch(7, items), { qos: 1 })
  const stored = await readAll(kinesis, 'auto')
  t.same(stored.map((r) => r.data).sort(), items.map(([, v]) => v).sort(), 'each record is stored exactly once')
  // Another epoch with the same sequence is a different producer incarnation.
  await d.client.publishAsync(topic, batch(7, [['k', 'new-epoch']], 43n), { qos: 1 })
  t.equal((await readAll(kinesis, 'auto')).length, 11)
  t.equal(relay.streams.get('auto')?.meta.status, 'ACTIVE', 'the stream was created on first use')
})

t.test('bad frames are acknowledged and reported with codes; nothing else is harmed', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const d = await device(t, relay.mqttPort, 'dev-c')
  const topic = topics.records('dev-c', 'bad')
  await d.client.publishAsync(topic, batch(0, [['ok', 'before']]), { qos: 1 })

  await d.client.publishAsync(topic, Buffer.from('this is not a frame at all, just text'), { qos: 1 })
  t.match(await d.next(), { type: 'reject', code: 'FRAME_BAD_MAGIC' })
  const good = batch(1, [['k', 'v']])
  await d.client.publishAsync(topic, good.subarray(0, good.length - 3), { qos: 1 })
  t.match(await d.next(), { type: 'reject', code: 'FRAME_TRUNCATED' })
  await d.client.publishAsync(topic, good.subarray(0, HEADER_SIZE - 1), { qos: 1 })
  t.match(await d.next(), { type: 'reject', code: 'FRAME_TRUNCATED' })
  const flipped = Buffer.from(good)
  flipped[flipped.length - 1]! ^= 0x01
  await d.client.publishAsync(topic, flipped, { qos: 1 })
  t.match(await d.next(), { type: 'reject', code: 'FRAME_BAD_CHECKSUM', epoch: '42', batchSequence: 1 }, 'a frame whose header is readable is named, so the device can dead-letter it')

  // Per-record rules: the good records of a batch are stored, the bad ones named.
  await d.client.publishAsync(topic, batch(2, [['fine', 'a'], ['', 'empty-key'], ['x'.repeat(257), 'long-key'], ['fine', 'b']]), { qos: 1 })
  const reject = await d.next()
  t.match(reject, { type: 'reject', stream: 'bad', epoch: '42', batchSequence: 2 })
  t.same(reject.type === 'reject' && reject.records.map((r) => [r.index, r.code]), [[1, 'PARTITION_KEY_INVALID'], [2, 'PARTITION_KEY_INVALID']])

  await d.client.publishAsync(topic, batch(3, [['big', 'x'.repeat(2 * 1024 * 1024)], ['small', 'c']]), { qos: 1 })
  const big = await d.next()
  t.same(big.type === 'reject' && big.records.map((r) => [r.index, r.code]), [[0, 'RECORD_TOO_LARGE']])

  const stored = (await readAll(kinesis, 'bad')).map((r) => r.data).sort()
  t.same(stored, ['a', 'b', 'before', 'c'], 'only the good records are stored, each once')
  t.ok(d.client.connected, 'the device stays connected')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_rejections_total\{code="FRAME_BAD_MAGIC"\} 1/)
  t.match(metrics, /tributary_rejections_total\{code="PARTITION_KEY_INVALID"\} 2/)
})

t.test('a stream that does not exist is rejected when auto-create is off', async (t) => {
  const relay = await testRelay(t, { autoCreateStreams: false })
  const d = await device(t, relay.mqttPort, 'dev-d')
  await d.client.publishAsync(topics.records('dev-d', 'nowhere'), batch(0, [['k', 'v']]), { qos: 1 })
  t.match(await d.next(), { type: 'reject', code: 'STREAM_NOT_FOUND', stream: 'nowhere' })
  t.equal(relay.streams.get('nowhere'), undefined)
})

t.test("a device cannot publish to another device's topic or read its rejects", async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'shared', ShardCount: 1 })
  const intruder = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'dev-e', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => intruder.endAsync(true))
  // SUBACK with 0x80 (failure), which mqtt.js reports as an error.
  await t.rejects(intruder.subscribeAsync(topics.rejects('dev-victim'), { qos: 1 }), /Subscribe error/, "subscribing to another device's rejects is refused")
  const closed = new Promise<void>((resolve) => intruder.once('close', () => resolve()))
  intruder.publish(topics.records('dev-victim', 'shared'), batch(0, [['k', 'forged']]), { qos: 1 })
  await closed
  t.pass('the connection is closed')
  t.same(await readAll(kinesis, 'shared'), [], 'nothing was stored')
})

t.test('when the relay cannot store it does not acknowledge: it says why and closes the connection', async (t) => {
  const relay = await testRelay(t, { maxDataBytes: 1 })
  const d = await device(t, relay.mqttPort, 'dev-f')
  const topic = topics.records('dev-f', 'full')
  // The cap is checked against what is on disk: the first batch fits, then the relay is full.
  // Its PUBACK comes once it is committed, and so counted: no wait is needed before the next.
  await d.client.publishAsync(topic, batch(0, [['k', 'first']]), { qos: 1 })
  let acked = false
  const closed = new Promise<void>((resolve) => d.client.once('close', () => resolve()))
  d.client.publish(topic, batch(1, [['k', 'second']]), { qos: 1 }, (err) => { if (!err) acked = true })
  const message = await d.next()
  t.match(message, { type: 'unavailable', code: 'STORAGE_FULL' })
  await closed
  t.notOk(acked, 'no PUBACK for a batch that was not stored')
})

t.test('a packet over the broker limit closes the connection before it is buffered', async (t) => {
  const relay = await testRelay(t, { maxPacketBytes: 256 * 1024 })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'limits', ShardCount: 1 })
  const d = await device(t, relay.mqttPort, 'dev-g')
  const closed = new Promise<void>((resolve) => d.client.once('close', () => resolve()))
  d.client.publish(topics.records('dev-g', 'limits'), batch(0, [['k', 'x'.repeat(300 * 1024)]]), { qos: 1 })
  await closed
  t.same(await readAll(kinesis, 'limits'), [], 'nothing was stored')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_rejections_total\{code="FRAME_TOO_LARGE"\} 1/)
})
