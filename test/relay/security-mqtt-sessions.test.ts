/**
 * Issue 11, device sessions: what a device's credentials allow over MQTT, performed as an attacker
 * (or a revoked device) would, against a real relay on real sockets. A removed or rotated device's
 * live session is closed at once and its next publish is not stored; a device cannot take another
 * device's client id (and session); an anonymous client cannot act as a registered device; a
 * rotation with a grace window keeps the old secret until the window ends (on the relay's clock),
 * then closes what it let in.
 */
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { manualClock, testRelay } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'
import { cli } from '../helpers/cli.js'
import { PacketType, publishPacket, wireLogin, within, type WireClient } from '../helpers/mqtt-wire.js'

type Relay = Awaited<ReturnType<typeof testRelay>>

const batch = (sequence: number, data: string) => codec.encodeBatch({
  epoch: 7n, sequence, records: [{ partitionKey: 'k', data: Buffer.from(data), producerTimeMs: Date.now(), clockSynced: true }],
})

async function admin(relay: Relay, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${relay.endpoint}${path}`, {
    method, headers: { authorization: `Bearer ${relay.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

async function addDevice(relay: Relay, id: string): Promise<string> {
  const { status, json } = await admin(relay, 'POST', '/admin/devices', { id })
  if (status !== 201) throw new Error(`adding ${id}: ${status} ${JSON.stringify(json)}`)
  return String(json.secret)
}

async function createStream(t: Test, relay: Relay, name: string): Promise<void> {
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: name, ShardCount: 1 })
}

const stored = async (relay: Relay, stream: string) => (await readStream(relay.endpoint, stream)).map((r) => r.data)

/** Publishes one batch (QoS 1) and waits for its PUBACK. */
async function publishAcked(client: WireClient, device: string, stream: string, id: number, data: string): Promise<void> {
  client.write(publishPacket(topics.records(device, stream), id, batch(id, data)))
  await client.next(PacketType.PUBACK)
  client.packets.length = 0
}

async function login(t: Test, relay: Relay, device: string, password: string, clientId = device) {
  const session = await wireLogin(relay.mqttPort, { clientId, username: device, password })
  t.teardown(() => { session.client.socket.destroy() })
  return session
}

for (const change of ['removed', 'rotated'] as const) {
  t.test(`a device ${change} while connected is disconnected at once, and what it publishes next is not stored`, async (t) => {
    const relay = await testRelay(t, { allowAnonymous: false })
    await createStream(t, relay, 'plant')
    const secret = await addDevice(relay, 'dev-r')
    const { client, returnCode } = await login(t, relay, 'dev-r', secret)
    t.equal(returnCode, 0, 'the device connects')
    await publishAcked(client, 'dev-r', 'plant', 1, 'before')

    const answer = change === 'removed' ? await admin(relay, 'DELETE', '/admin/devices/dev-r') : await admin(relay, 'POST', '/admin/devices/dev-r/rotate')
    t.equal(answer.status, 200, `the device is ${change}`)
    // The session ends by the relay's doing: the close event itself, bounded at 1 s.
    await within(1000, client.closed, 'the session closes')
    t.pass('the session is closed within 1 s')
    client.write(publishPacket(topics.records('dev-r', 'plant'), 2, batch(2, 'after')))
    t.same(client.packets.filter((p) => p.type === PacketType.PUBACK), [], 'no PUBACK for anything after the change')
    t.same(await stored(relay, 'plant'), ['before'], 'only what was published before the change is stored')

    const again = await wireLogin(relay.mqttPort, { clientId: 'dev-r', username: 'dev-r', password: secret })
    t.equal(again.returnCode, 4, 'the old secret cannot reconnect (CONNACK 4)')
    again.client.socket.destroy()
    if (change === 'rotated') {
      const fresh = await login(t, relay, 'dev-r', String(answer.json.secret))
      t.equal(fresh.returnCode, 0, 'the new secret connects')
      await publishAcked(fresh.client, 'dev-r', 'plant', 3, 'with the new secret')
      t.same(await stored(relay, 'plant'), ['before', 'with the new secret'])
    }
  })
}

t.test("a device cannot take another device's client id: refused, and the other stays connected with its session", async (t) => {
  const relay = await testRelay(t, { allowAnonymous: false })
  await createStream(t, relay, 'line')
  const secretA = await addDevice(relay, 'dev-a')
  const secretB = await addDevice(relay, 'dev-b')
  const victim = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'dev-b', username: 'dev-b', password: secretB, clean: false, protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => victim.endAsync(true))
  await victim.subscribeAsync(topics.rejects('dev-b'), { qos: 1 })
  let victimClosed = false
  victim.on('close', () => { victimClosed = true })

  const thief = await login(t, relay, 'dev-a', secretA, 'dev-b')
  t.equal(thief.returnCode, 2, 'authenticating as dev-a with client id dev-b is refused (CONNACK 2, identifier rejected)')
  await thief.client.closed
  t.same(thief.client.packets.map((p) => p.type), [PacketType.CONNACK], "the thief gets a refusal and nothing of dev-b's session")

  // dev-b's session is untouched: a bad batch's reject still reaches it, on the same connection.
  const message = new Promise<string>((resolve) => victim.once('message', (_topic, payload) => resolve(payload.toString())))
  await victim.publishAsync(topics.records('dev-b', 'line'), Buffer.from('not a batch'), { qos: 1 })
  const reject = await within(10_000, message, 'the reject reaches dev-b')
  t.match(JSON.parse(reject), { type: 'reject', stream: 'line' }, "dev-b still receives its rejects")
  t.notOk(victimClosed, 'dev-b was never disconnected')
  t.equal(victim.connected, true)

  const own = await login(t, relay, 'dev-a', secretA)
  t.equal(own.returnCode, 0, 'dev-a with its own client id connects')
})

t.test('with anonymous access on, a registered device id cannot be used anonymously; an unregistered one still can', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: true })
  await createStream(t, relay, 'open')
  await addDevice(relay, 'dev-known')
  const posing = await wireLogin(relay.mqttPort, { clientId: 'dev-known' })
  t.equal(posing.returnCode, 5, 'acting as the registered dev-known without its secret is refused (CONNACK 5)')
  await posing.client.closed

  const anon = await wireLogin(relay.mqttPort, { clientId: 'dev-free' })
  t.teardown(() => { anon.client.socket.destroy() })
  t.equal(anon.returnCode, 0, 'an unregistered id connects anonymously')
  await publishAcked(anon.client, 'dev-free', 'open', 1, 'anonymous')

  // Registering the id an anonymous client holds ends that client's session: only the device may act as it now.
  await addDevice(relay, 'dev-free')
  await within(1000, anon.client.closed, 'the anonymous session closes')
  t.pass('the anonymous session under a newly registered id is closed')
  t.same(await stored(relay, 'open'), ['anonymous'])
})

t.test('rotate --grace keeps the old secret working until the window ends on the relay clock, then closes its sessions', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, { allowAnonymous: false }, { clock })
  await createStream(t, relay, 'fleet')
  const old = await addDevice(relay, 'dev-g')
  const before = await login(t, relay, 'dev-g', old)
  t.equal(before.returnCode, 0)

  const run = await cli(['devices', 'rotate', 'dev-g', '--grace', '1h', '--token', relay.adminToken, '--endpoint', relay.endpoint])
  t.equal(run.code, 0, `devices rotate --grace 1h exits 0 (stderr: ${run.stderr})`)
  const until = new Date(clock.now() + 3_600_000).toISOString()
  t.match(run.stdout, `the old one keeps working until ${until}`, 'and says until when the old secret works')
  const fresh = /: (\S+)\s*$/.exec(run.stdout)?.[1] ?? ''

  await publishAcked(before.client, 'dev-g', 'fleet', 1, 'kept session, after the rotation')
  clock.advance(3_600_000 - 1)
  await publishAcked(before.client, 'dev-g', 'fleet', 2, 'kept session, 1 ms before the end')
  // One session per device (its client id): a reconnect on the old secret replaces the kept one.
  const late = await login(t, relay, 'dev-g', old)
  t.equal(late.returnCode, 0, 'the old secret still connects 1 ms before the window ends')
  await publishAcked(late.client, 'dev-g', 'fleet', 3, 'reconnected on the old secret')

  clock.advance(1)
  await within(1000, late.client.closed, 'the session on the old secret closes')
  t.pass('at the end of the window the session on the old secret is closed')
  const after = await wireLogin(relay.mqttPort, { clientId: 'dev-g', username: 'dev-g', password: old })
  t.equal(after.returnCode, 4, 'the old secret is refused once the window has ended')
  after.client.socket.destroy()
  const current = await login(t, relay, 'dev-g', fresh)
  t.equal(current.returnCode, 0, 'the new secret connects')
  clock.advance(86_400_000)
  await publishAcked(current.client, 'dev-g', 'fleet', 4, 'new secret, a day later')
  t.notOk(current.client.isClosed(), 'and its session has no end')
  t.same(await stored(relay, 'fleet'), ['kept session, after the rotation', 'kept session, 1 ms before the end', 'reconnected on the old secret', 'new secret, a day later'])
})

t.test('a rotation without grace during another one\'s window ends both older secrets at once', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, { allowAnonymous: false }, { clock })
  const first = await addDevice(relay, 'dev-h')
  const onFirst = await login(t, relay, 'dev-h', first)
  const graced = await admin(relay, 'POST', '/admin/devices/dev-h/rotate', { graceSeconds: 3600 })
  t.equal(graced.status, 200)
  t.equal(graced.json.previousValidUntil, new Date(clock.now() + 3_600_000).toISOString())
  const listed = await admin(relay, 'GET', '/admin/devices')
  t.same(listed.json.devices, [{ id: 'dev-h', createdMs: clock.now(), rotatedMs: clock.now(), previousUntilMs: clock.now() + 3_600_000 }], 'the list shows the window')
  await publishAcked(onFirst.client, 'dev-h', 'auto', 1, 'in the window')
  t.pass('the session on the first secret is kept through the graced rotation')
  const sharp = await admin(relay, 'POST', '/admin/devices/dev-h/rotate', {})
  t.equal(sharp.json.previousValidUntil, null, 'no grace asked, none given')
  await within(1000, onFirst.client.closed, 'the session on the first secret closes')
  t.pass('the session on the first secret, still in its window, is closed')
  for (const [name, secret] of [['first', first], ['second', String(graced.json.secret)]]) {
    const attempt = await wireLogin(relay.mqttPort, { clientId: 'dev-h', username: 'dev-h', password: secret })
    t.equal(attempt.returnCode, 4, `the ${name} secret is refused`)
    attempt.client.socket.destroy()
  }
  const third = await login(t, relay, 'dev-h', String(sharp.json.secret))
  t.equal(third.returnCode, 0, 'only the newest connects')
  const after = await admin(relay, 'GET', '/admin/devices')
  t.same(after.json.devices, [{ id: 'dev-h', createdMs: clock.now(), rotatedMs: clock.now() }], 'and the list shows no window')
})

t.test('admin requests with a body that is not an object, or a broken path, are 400s that change nothing', async (t) => {
  const relay = await testRelay(t)
  const secret = await addDevice(relay, 'dev-x')
  for (const body of ['null', '[]', '7', '"dev-y"']) {
    const add = await admin(relay, 'POST', '/admin/devices', body)
    t.equal(add.status, 400, `adding with body ${body} is a 400`)
    t.equal(add.json.code, 'CONFIG_INVALID')
    const rotate = await admin(relay, 'POST', '/admin/devices/dev-x/rotate', body)
    t.equal(rotate.status, 400, `rotating with body ${body} is a 400`)
  }
  for (const grace of [-1, 1.5, '1h', 31 * 86_400]) {
    const rotate = await admin(relay, 'POST', '/admin/devices/dev-x/rotate', { graceSeconds: grace })
    t.equal(rotate.status, 400, `graceSeconds ${JSON.stringify(grace)} is a 400`)
    t.match(String(rotate.json.message), /graceSeconds/)
  }
  const broken = await admin(relay, 'DELETE', '/admin/devices/%E0%A4%A')
  t.equal(broken.status, 400, 'a path with broken percent-encoding is a 400')
  t.equal(broken.json.code, 'REQUEST_INVALID')
  const listed = await admin(relay, 'GET', '/admin/devices')
  t.same((listed.json.devices as { id: string }[]).map((d) => d.id), ['dev-x'], 'no device was added or removed')
  const still = await login(t, relay, 'dev-x', secret)
  t.equal(still.returnCode, 0, 'and dev-x was not rotated: its secret still connects')
})
