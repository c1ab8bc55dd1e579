/**
 * MQTT state shared through Redis (`mqttRedis`): two in-process relays on the Redis at
 * 127.0.0.1:6379 (.ci/run starts it), real MQTT clients on both. Each run claims a database number
 * of its own (a key in database 0 held while it runs) and empties it after.
 *
 * A device may subscribe only to its own rejects and video-acks, so no device can read another's
 * status or will: those are watched through an observer, a plain aedes broker (no ACL) on the same
 * Redis with the same packages, as an operator's tool would be.
 */
import net from 'node:net'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import type { RelayToDeviceMessage } from '../../shared/messages.js'
import { freePort, spawnRelay, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const REDIS = { host: '127.0.0.1', port: 6379 }
const run = promisify(execFile)

/** One redis-cli command on database `db`; its output (raw, so binary values come back as written). */
async function redis(db: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', REDIS.host, '-p', String(REDIS.port), '-n', String(db), '--raw', ...args], { encoding: 'latin1' })
  return stdout.trim()
}

/** A database number no other run is using, claimed until the test ends, then emptied and given back. */
async function claimDatabase(t: Test): Promise<number> {
  for (let db = 1; db <= 15; db++) {
    const lock = `tributary-test:mqtt-redis:db${db}`
    if ((await redis(0, 'SET', lock, String(process.pid), 'NX', 'EX', '900')) !== 'OK') continue
    await redis(db, 'FLUSHDB') // left over by a run that was killed
    t.teardown(async () => {
      await redis(db, 'FLUSHDB')
      await redis(0, 'DEL', lock)
    })
    return db
  }
  throw new Error('every Redis database 1-15 is claimed by another run')
}

/** Every message published on the Redis server (any channel, any database), counted from a raw PSUBSCRIBE. */
async function watchRedisPubSub(t: Test): Promise<{ count(): number }> {
  const socket = net.connect(REDIS.port, REDIS.host)
  t.teardown(() => { socket.destroy() })
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  socket.write('*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n')
  while (!text.includes('psubscribe')) await new Promise((r) => setTimeout(r, 10))
  return { count: () => text.split('pmessage').length - 1 }
}

async function connect(port: number, id: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0, ...options })
}

/** Resolves with the first message on `topic` that `client` receives. */
function nextMessage(client: MqttClient, topic: string, timeoutMs = 10_000): Promise<{ payload: string; retain: boolean; dup: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing on ${topic} in ${timeoutMs} ms`)), timeoutMs)
    client.on('message', (got, payload, packet) => {
      if (got !== topic) return
      clearTimeout(timer)
      resolve({ payload: payload.toString(), retain: packet.retain, dup: packet.dup })
    })
  })
}

/** A broker on the same Redis without Tributary's ACL: what any broker there (relay B included) knows. */
async function observer(t: Test, db: number): Promise<number> {
  const { Aedes } = await import('aedes')
  const { default: MQEmitterRedis } = await import('mqemitter-redis')
  // @ts-expect-error: aedes-persistence-redis ships no type declarations
  const { default: persistenceRedis } = await import('aedes-persistence-redis')
  const options = { ...REDIS, db }
  // The relays prefix their channels with the database (relay/broker.ts).
  const Prefixed = (MQEmitterRedis as unknown as { MQEmitterRedisPrefix: new (prefix: string, o: object) => { close(cb: () => void): void } }).MQEmitterRedisPrefix
  const mq = new Prefixed(`db${db}/`, options)
  const persistence = persistenceRedis(options)
  const broker = await Aedes.createBroker({ mq, persistence })
  const server = net.createServer((socket) => broker.handle(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await persistence.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}

const loaded = (name: string) => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes(`/node_modules/${name}/`))

// First: this test checks that the packages were never loaded in this process.
t.test('a relay without mqttRedis keeps MQTT state in itself: it loads no Redis package and sends nothing to Redis', async (t) => {
  const pubsub = await watchRedisPubSub(t)
  const keys = async () => (await redis(0, 'INFO', 'keyspace')).replace(/,avg_ttl=\d+/g, '')
  const keyspace = await keys()
  const relay = await testRelay(t)
  const dev = await connect(relay.mqttPort, 'plain-dev', { clean: false, will: { topic: topics.status('plain-dev'), payload: Buffer.from('offline'), qos: 1, retain: true } })
  await dev.subscribeAsync(topics.rejects('plain-dev'), { qos: 1 })
  await dev.publishAsync(topics.status('plain-dev'), '{"state":"up"}', { qos: 1, retain: true })
  await dev.publishAsync(topics.records('plain-dev', 'auto'), codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: 'k', data: Buffer.from('x'), producerTimeMs: Date.now(), clockSynced: true }] }), { qos: 1 })
  dev.stream.destroy()
  await relay.close()
  t.notOk(loaded('mqemitter-redis'), 'mqemitter-redis is not loaded')
  t.notOk(loaded('aedes-persistence-redis'), 'aedes-persistence-redis is not loaded')
  t.notOk(loaded('ioredis'), 'ioredis is not loaded')
  t.equal(pubsub.count(), 0, 'nothing was published on Redis')
  t.equal(await keys(), keyspace, 'no key was written in any database')
})

t.test('a relay does not start when the Redis of mqttRedis cannot be reached, and says which setting', async (t) => {
  const port = await freePort() // nothing listens there
  const dataDir = join(tempDir(t), 'data')
  // A process, as an operator starts it: it must exit with the reason, not wait for Redis.
  const failed: Error = await spawnRelay(['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--mqtt-redis', `redis://user:hunter2@127.0.0.1:${port}/3`])
    .then(() => { throw new Error('the relay started') }, (err: Error) => err)
  t.match(failed.message, new RegExp(`exited with 1 before it was ready: [^]*mqttRedis: cannot reach Redis at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}/3 \\(--mqtt-redis, TRIBUTARY_MQTT_REDIS\\): [^]*ECONNREFUSED`))
  t.notMatch(failed.message, 'hunter2', 'the password is not shown')
})

t.test('a retained status published through relay A is served from Redis after relay A is gone', async (t) => {
  const db = await claimDatabase(t)
  const a = await testRelay(t, { mqttRedis: `redis://127.0.0.1:6379/${db}` })
  const dev = await connect(a.mqttPort, 'dev-r')
  await dev.publishAsync(topics.status('dev-r'), '{"state":"up","backlog":3}', { qos: 1, retain: true })
  await dev.endAsync()
  await a.close()
  t.match(await redis(db, 'HGET', 'retained', topics.status('dev-r')), '{"state":"up","backlog":3}', 'the retained message is in the shared store')
  const sub = await connect(await observer(t, db), 'observer-r')
  t.teardown(() => sub.endAsync(true))
  const got = nextMessage(sub, topics.status('dev-r'))
  await sub.subscribeAsync(topics.status('dev-r'), { qos: 1 })
  t.same(await got, { payload: '{"state":"up","backlog":3}', retain: true, dup: false }, 'a subscriber on another broker gets it as retained')
})

t.test('the will of a device on relay A whose connection dies reaches a subscriber on another broker', async (t) => {
  const db = await claimDatabase(t)
  const a = await testRelay(t, { mqttRedis: `redis://127.0.0.1:6379/${db}` })
  const sub = await connect(await observer(t, db), 'observer-w')
  t.teardown(() => sub.endAsync(true))
  await sub.subscribeAsync(topics.status('dev-w'), { qos: 1 })
  const dev = await connect(a.mqttPort, 'dev-w', { will: { topic: topics.status('dev-w'), payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true } })
  await dev.publishAsync(topics.status('dev-w'), '{"state":"up"}', { qos: 1, retain: true })
  t.equal((await nextMessage(sub, topics.status('dev-w'))).payload, '{"state":"up"}')
  const will = nextMessage(sub, topics.status('dev-w'))
  dev.stream.destroy() // no DISCONNECT: the connection is lost
  t.equal((await will).payload, '{"state":"offline"}', 'the will arrives')
  t.match(await redis(db, 'HGET', 'retained', topics.status('dev-w')), '{"state":"offline"}', 'and replaces the retained status in the shared store')
})

t.test('a QoS 1 reject relay A sent to a device that left before acknowledging it is delivered when the device reconnects to relay B', async (t) => {
  const db = await claimDatabase(t)
  const url = `redis://127.0.0.1:6379/${db}`
  // Without auto-create, a batch for a stream that does not exist is answered with a reject.
  const a = await testRelay(t, { mqttRedis: url, autoCreateStreams: false })
  const b = await testRelay(t, { mqttRedis: url, autoCreateStreams: false })
  // The device receives the reject but dies before its PUBACK (mqtt.js sends it when handleMessage
  // calls back, which it never does here): the message stays queued in Redis.
  const first = await connect(a.mqttPort, 'dev-q', { clean: false })
  const seenOnA = new Promise<RelayToDeviceMessage>((resolve) => {
    first.handleMessage = (packet) => {
      first.stream.destroy()
      resolve(JSON.parse(packet.payload.toString()) as RelayToDeviceMessage)
    }
  })
  await first.subscribeAsync(topics.rejects('dev-q'), { qos: 1 })
  first.publish(topics.records('dev-q', 'missing'), codec.encodeBatch({ epoch: 5n, sequence: 9, records: [{ partitionKey: 'k', data: Buffer.from('x'), producerTimeMs: Date.now(), clockSynced: true }] }), { qos: 1 })
  const reject = await seenOnA
  t.match(reject, { type: 'reject', stream: 'missing', code: 'STREAM_NOT_FOUND', batchSequence: 9 })
  // The session (its subscription) and the unacknowledged reject are in Redis.
  t.equal(await redis(db, 'SISMEMBER', 'clients', 'dev-q'), '1', 'the persistent session is in Redis')
  // Reconnecting to B without subscribing again: the session resumes there and the reject comes again.
  const again = await connect(b.mqttPort, 'dev-q', { clean: false })
  t.teardown(() => again.endAsync(true))
  const redelivered = await nextMessage(again, topics.rejects('dev-q'))
  t.same(JSON.parse(redelivered.payload), reject, 'relay B delivers the same reject')
})

t.test('a device that connects to relay B is taken over from relay A, which closes its old connection', async (t) => {
  const db = await claimDatabase(t)
  const url = `redis://127.0.0.1:6379/${db}`
  const a = await testRelay(t, { mqttRedis: url })
  const b = await testRelay(t, { mqttRedis: url })
  const old = await connect(a.mqttPort, 'dev-t')
  const closed = new Promise<void>((resolve) => old.once('close', () => resolve()))
  const fresh = await connect(b.mqttPort, 'dev-t')
  t.teardown(() => fresh.endAsync(true))
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(r, 10_000, 'still open after 10 s'))])
  t.equal(outcome, 'closed', 'the connection on relay A was closed')
  t.ok(fresh.connected, 'the connection on relay B stays')
})

t.test('device batches are not sent through Redis: they have no subscribers', async (t) => {
  const db = await claimDatabase(t)
  const a = await testRelay(t, { mqttRedis: `redis://127.0.0.1:6379/${db}` })
  const dev = await connect(a.mqttPort, 'dev-b')
  t.teardown(() => dev.endAsync(true))
  const pubsub = await watchRedisPubSub(t)
  const before = pubsub.count()
  for (let i = 0; i < 5; i++) {
    await dev.publishAsync(topics.records('dev-b', 'auto'), codec.encodeBatch({ epoch: 1n, sequence: i, records: [{ partitionKey: 'k', data: Buffer.alloc(1000, i), producerTimeMs: Date.now(), clockSynced: true }] }), { qos: 1 })
  }
  await dev.publishAsync(topics.status('dev-b'), '{"state":"up"}', { qos: 1 })
  // The status went through Redis (so the watch works); the batches did not.
  while (pubsub.count() === before) await new Promise((r) => setTimeout(r, 10))
  t.equal(pubsub.count() - before, 1, 'only the status was published on Redis')
})
