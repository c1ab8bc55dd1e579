/**
 * Issue 11, limits against floods, performed against a real relay on real sockets: a half-sent
 * CONNECT of 4 MiB is cut at the pre-authentication packet limit; pending (unauthenticated)
 * connections are capped per address and in all; 20,000 refused subscriptions make one log line and
 * a disconnect, not 20,000 lines; the shard limit holds on every path that creates shards, and a
 * device's auto-created streams are capped. Meanwhile a real device still connects and publishes.
 */
import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import type { RelayToDeviceMessage } from '../../shared/messages.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { loggedRelay, testRelay } from '../helpers/relay.js'
import { connectPacket, PacketType, remainingLength, subscribePacket, wireConnect, wireLogin, within } from '../helpers/mqtt-wire.js'

const batch = (sequence: number, data: string | Buffer) => codec.encodeBatch({
  epoch: 9n, sequence, records: [{ partitionKey: 'k', data: Buffer.isBuffer(data) ? data : Buffer.from(data), producerTimeMs: Date.now(), clockSynced: true }],
})

interface Device { client: MqttClient; next(): Promise<RelayToDeviceMessage> }

/** A real device (mqtt.js), anonymous, listening on its rejects topic. */
async function device(t: Test, port: number, id: string): Promise<Device> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0, queueQoSZero: false })
  t.teardown(() => client.endAsync(true))
  const queued: RelayToDeviceMessage[] = []
  const waiters: ((m: RelayToDeviceMessage) => void)[] = []
  client.on('message', (_topic, payload) => {
    const m = JSON.parse(payload.toString()) as RelayToDeviceMessage
    const w = waiters.shift()
    if (w) w(m)
    else queued.push(m)
  })
  await client.subscribeAsync(topics.rejects(id), { qos: 1 })
  return {
    client,
    next: () => within(10_000, new Promise((resolve) => {
      const m = queued.shift()
      if (m) resolve(m)
      else waiters.push(resolve)
    }), `a message on ${id}'s rejects topic`),
  }
}

/** An in-process relay whose log lines the test reads. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('a half-sent 4 MiB CONNECT is cut at the pre-authentication limit, while a real device connects and then sends 1 MiB', async (t) => {
  const relay = await testRelay(t)
  const attacker = await wireConnect(relay.mqttPort)
  // A CONNECT announcing just under 4 MiB (within max-packet-bytes), of which 1 KiB is sent: the relay
  // must not wait for the rest (it used to, holding the buffer until the 30 s connect timeout).
  const announced = 4 * 1024 * 1024 - 16
  attacker.write(Buffer.concat([Buffer.from([0x10]), remainingLength(announced), Buffer.alloc(1024)]))
  await within(5000, attacker.closed, 'the relay closes the connection')
  t.pass('closed from the header alone (64 KiB limit before authentication)')
  t.same(attacker.packets, [], 'no CONNACK')

  const d = await device(t, relay.mqttPort, 'dev-real')
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'big', ShardCount: 1 })
  await d.client.publishAsync(topics.records('dev-real', 'big'), batch(0, Buffer.alloc(1000 * 1024, 1)), { qos: 1 })
  t.pass('an authenticated device may send packets up to max-packet-bytes (here 1 MiB), past the CONNECT limit')
})

t.test('pending connections are capped per address and in all; a device from elsewhere still connects', async (t) => {
  const relay = await testRelay(t, { mqttMaxPendingPerAddress: 4, mqttMaxPending: 6 })
  // Each sends a third of a CONNECT and stops: pending until the connect timeout.
  const half = connectPacket({ clientId: 'dev-slow' }).subarray(0, 6)
  const from2 = []
  for (let i = 0; i < 4; i++) {
    const c = await wireConnect(relay.mqttPort, '127.0.0.2')
    t.teardown(() => { c.socket.destroy() })
    c.write(half)
    from2.push(c)
  }
  const fifth = await wireConnect(relay.mqttPort, '127.0.0.2')
  await within(5000, fifth.closed, 'the fifth pending connection from 127.0.0.2 is closed')
  t.pass('the 5th pending connection from one address is refused')
  t.notOk(from2.some((c) => c.isClosed()), 'the four before it are still held (and counted)')

  const d = await device(t, relay.mqttPort, 'dev-elsewhere')
  t.ok(d.client.connected, 'a device from 127.0.0.1 connects meanwhile')

  const from3 = []
  for (let i = 0; i < 2; i++) {
    const c = await wireConnect(relay.mqttPort, '127.0.0.3')
    t.teardown(() => { c.socket.destroy() })
    c.write(half)
    from3.push(c)
  }
  const seventh = await wireConnect(relay.mqttPort, '127.0.0.4')
  await within(5000, seventh.closed, 'the seventh pending connection in all is closed')
  t.pass('past 6 pending in all, a connection from a fourth address is refused too')

  // One of them finishes its CONNECT: authenticated, it leaves the count, and a new one is admitted.
  from2[0]!.write(connectPacket({ clientId: 'dev-slow' }).subarray(6))
  const connack = await from2[0]!.next(PacketType.CONNACK)
  t.equal(connack.body[1], 0, 'a slow client that completes its CONNECT is accepted')
  const next = await wireLogin(relay.mqttPort, { clientId: 'dev-next' })
  t.teardown(() => { next.client.socket.destroy() })
  t.equal(next.returnCode, 0, 'and its place is free for the next')
})

t.test('20,000 refused filters in one SUBSCRIBE make one log line and a disconnect, not 20,000 lines', async (t) => {
  const { relay, lines } = await loggedRelay(t, {})
  const { client, returnCode } = await wireLogin(relay.mqttPort, { clientId: 'dev-flood' })
  t.teardown(() => { client.socket.destroy() })
  t.equal(returnCode, 0)
  client.write(subscribePacket(1, Array.from({ length: 20_000 }, (_, i) => topics.rejects(`dev-victim-${i}`))))
  await within(10_000, client.closed, 'the flooding client is disconnected')
  t.same(client.packets.filter((p) => p.type === PacketType.SUBACK), [], 'no SUBACK: it was closed first')
  await until('the refusal summary is logged', () => lines.some((l) => l.event === 'subscribe_refused'))
  const refusals = lines.filter((l) => l.event === 'subscribe_refused')
  t.equal(refusals.length, 1, 'one log line for the refusals')
  t.match(refusals[0]!.fields, { client: 'dev-flood', count: 101, topics: [topics.rejects('dev-victim-0')] }, 'with their count (the limit, 100, plus the one past it) and the first topics')
  t.equal((refusals[0]!.fields.topics as string[]).length, 5, 'five topics named, not all')
  t.same(lines.filter((l) => l.event === 'client_closed').map((l) => l.fields), [{ device: 'dev-flood', client: 'dev-flood', reason: 'too_many_refusals', refusals: 101 }])
  t.ok(lines.length < 20, `the relay logged ${lines.length} lines in all`)

  const d = await device(t, relay.mqttPort, 'dev-fine')
  t.ok(d.client.connected, 'a well-behaved device connects after the flood')
})

t.test('refusals under the limit are logged once per window on the relay clock, with a count', async (t) => {
  const { relay, lines, clock } = await loggedRelay(t, { mqttMaxRefusals: 1000 })
  const { client } = await wireLogin(relay.mqttPort, { clientId: 'dev-curious' })
  t.teardown(() => { client.socket.destroy() })
  client.write(subscribePacket(1, Array.from({ length: 50 }, (_, i) => topics.rejects(`dev-other-${i}`))))
  const suback = await client.next(PacketType.SUBACK)
  t.equal(suback.body.length, 2 + 50, 'a SUBACK for all 50 filters')
  t.ok(suback.body.subarray(2).every((code) => code === 0x80), 'every one refused')
  t.same(lines.filter((l) => l.event === 'subscribe_refused'), [], 'nothing logged within the window')
  clock.advance(10_000)
  t.same(lines.filter((l) => l.event === 'subscribe_refused').map((l) => l.fields.count), [50], 'one line with the count at its end')
  client.packets.length = 0
  client.write(subscribePacket(2, Array.from({ length: 30 }, (_, i) => topics.rejects(`dev-more-${i}`))))
  await client.next(PacketType.SUBACK)
  clock.advance(10_000)
  t.same(lines.filter((l) => l.event === 'subscribe_refused').map((l) => l.fields.count), [50, 30], 'and one more for the next window')
  t.notOk(client.isClosed(), 'under the limit the client stays connected')
})

t.test('the shard limit holds on CreateStream, UpdateShardCount, SplitShard and auto-create from MQTT', async (t) => {
  const relay = await testRelay(t, { shardLimit: 5 })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const limited = { type: 'LimitExceededException', message: /shard limit/ }

  await kinesis.call('CreateStream', { StreamName: 'a', ShardCount: 3 })
  t.match(await kinesis.call('DescribeLimits', {}), { ShardLimit: 5, OpenShardCount: 3 }, 'DescribeLimits states the configured limit')
  await t.rejects(kinesis.call('CreateStream', { StreamName: 'b', ShardCount: 3 }), limited, 'CreateStream past the limit (3 + 3 > 5)')
  await t.rejects(kinesis.call('UpdateShardCount', { StreamName: 'a', TargetShardCount: 6, ScalingType: 'UNIFORM_SCALING' }), limited, 'UpdateShardCount past it')
  await kinesis.call('CreateStream', { StreamName: 'b', ShardCount: 2 })
  const { Shards } = await kinesis.call<{ Shards: { ShardId: string }[] }>('ListShards', { StreamName: 'b' })
  await t.rejects(kinesis.call('SplitShard', { StreamName: 'b', ShardToSplit: Shards[0]!.ShardId, NewStartingHashKey: '1000' }), limited, 'SplitShard past it')

  const d = await device(t, relay.mqttPort, 'dev-auto')
  await d.client.publishAsync(topics.records('dev-auto', 'new-one'), batch(0, 'x'), { qos: 1 })
  t.match(await d.next(), { type: 'reject', stream: 'new-one', code: 'LIMIT_EXCEEDED', message: /shard limit of 5/ }, 'auto-create past it is rejected on the rejects topic')
  t.equal(relay.streams.get('new-one'), undefined, 'and makes no stream')

  await kinesis.call('DeleteStream', { StreamName: 'b' })
  // Five creations of 2 shards at once, with 2 free: exactly one gets them, counted before any is open.
  const results = await Promise.allSettled(['c1', 'c2', 'c3', 'c4', 'c5'].map((name) => kinesis.call('CreateStream', { StreamName: name, ShardCount: 2 })))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'concurrent creations cannot pass the limit together')
  t.equal(relay.streams.openShardCount(), 5, 'five shards open, the limit')
})

t.test("a device's auto-created streams are capped; other devices and existing streams are unaffected", async (t) => {
  const relay = await testRelay(t, { autoCreateMaxPerDevice: 2 })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const d = await device(t, relay.mqttPort, 'dev-greedy')
  for (const [i, name] of ['g1', 'g2'].entries()) await d.client.publishAsync(topics.records('dev-greedy', name), batch(i, name), { qos: 1 })
  t.ok(relay.streams.get('g1') && relay.streams.get('g2'), 'its first two streams are created')
  await d.client.publishAsync(topics.records('dev-greedy', 'g3'), batch(2, 'g3'), { qos: 1 })
  t.match(await d.next(), { type: 'reject', stream: 'g3', code: 'LIMIT_EXCEEDED', message: /auto-create-max-per-device/ }, 'the third is rejected on its rejects topic')
  t.equal(relay.streams.get('g3'), undefined, 'and not created')
  const { Tags } = await kinesis.call<{ Tags: { Key: string; Value: string }[] }>('ListTagsForStream', { StreamName: 'g1' })
  t.same(Tags, [{ Key: 'tributary:auto-created-by', Value: 'dev-greedy' }], 'an auto-created stream names its device')

  await d.client.publishAsync(topics.records('dev-greedy', 'g1'), batch(3, 'more'), { qos: 1 })
  const other = await device(t, relay.mqttPort, 'dev-other')
  await other.client.publishAsync(topics.records('dev-other', 'g3'), batch(0, 'g3'), { qos: 1 })
  t.ok(relay.streams.get('g3'), 'another device creates g3')
  await d.client.publishAsync(topics.records('dev-greedy', 'g3'), batch(4, 'joins'), { qos: 1 })
  await kinesis.call('DeleteStream', { StreamName: 'g2' })
  await d.client.publishAsync(topics.records('dev-greedy', 'g4'), batch(5, 'g4'), { qos: 1 })
  t.ok(relay.streams.get('g4'), 'with one of its streams deleted, the device may create another')
  await d.client.publishAsync(topics.records('dev-greedy', 'g5'), batch(6, 'g5'), { qos: 1 })
  t.match(await d.next(), { type: 'reject', stream: 'g5', code: 'LIMIT_EXCEEDED' }, 'and no more than that')
})
