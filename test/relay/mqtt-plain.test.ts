/**
 * Plain records over MQTT (issue 20): a device that cannot run the agent publishes any payload to
 * `tributary/v1/{device}/put/{stream}[/{partitionKey}]` and it is one record, as AWS IoT Core takes
 * any payload and a rule puts it into Kinesis. Sent with Debian's mosquitto_pub, read back with the
 * AWS SDK.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis'
import mqtt from 'mqtt'
import { topics } from '../../shared/topics.js'
import type { RejectMessage } from '../../shared/messages.js'
import { join } from 'node:path'
import { ROOT, spawnUntilReady, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { PacketType, publishPacket, wireLogin, within } from '../helpers/mqtt-wire.js'

const hasMosquittoPub = spawnSync('mosquitto_pub', ['--help']).status !== 127 && spawnSync('which', ['mosquitto_pub']).status === 0

interface Read { key: string; data: Buffer; arrival: Date | undefined }

async function readAll(endpoint: string, stream: string): Promise<Read[]> {
  const kinesis = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } })
  try {
    const out: Read[] = []
    const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: stream }))
    for (const s of Shards!) {
      let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
      for (;;) {
        const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }))
        for (const r of page.Records!) out.push({ key: r.PartitionKey!, data: Buffer.from(r.Data!), arrival: r.ApproximateArrivalTimestamp })
        if (!page.Records!.length || !page.NextShardIterator) break
        it = page.NextShardIterator
      }
    }
    return out
  } finally {
    kinesis.destroy()
  }
}

/** mosquitto_pub against the in-process relay (spawned, never spawnSync: the relay shares this event loop). */
function mosquittoPub(port: number, args: string[], input?: Buffer): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (status) => { clearTimeout(timer); resolve({ status, stderr }) })
    child.stdin!.end(input)
  })
}

async function until<T>(what: string, get: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const v = await Promise.resolve().then(get).catch(() => undefined)
    if (v !== undefined && ok(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within 15 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('mosquitto_pub at QoS 1 puts a record the AWS SDK reads back, keyed by the device or by the topic', { skip: hasMosquittoPub ? false : 'needs mosquitto_pub (mosquitto-clients)' }, async (t) => {
  const relay = await testRelay(t, { allowAnonymous: true })
  const before = Date.now()
  t.match(await mosquittoPub(relay.mqttPort, ['-i', 'esp32-1', '-q', '1', '-t', topics.put('esp32-1', 'temps'), '-m', '{"t":21.5}']), { status: 0 }, 'published and acknowledged')
  t.match(await mosquittoPub(relay.mqttPort, ['-i', 'esp32-1', '-q', '1', '-t', topics.put('esp32-1', 'temps', 'room-2'), '-m', '{"t":19.0}']), { status: 0 })
  // Any bytes, as sent.
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13])
  t.match(await mosquittoPub(relay.mqttPort, ['-i', 'esp32-1', '-q', '1', '-t', topics.put('esp32-1', 'temps', 'raw'), '-s'], binary), { status: 0 }, 'a binary payload from stdin')
  const read = await readAll(relay.endpoint, 'temps')
  t.same(read.map((x) => [x.key, x.data.toString('latin1')]).sort(), [['esp32-1', '{"t":21.5}'], ['raw', binary.toString('latin1')], ['room-2', '{"t":19.0}']].sort())
  t.ok(read.every((x) => x.arrival && x.arrival.getTime() >= before - 1000), 'stamped with the relay\'s arrival time')
})

t.test('QoS 0 is stored best effort; many single publishes share group commits', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: true })
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'gw-1', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => device.endAsync())
  await device.publishAsync(topics.put('gw-1', 'plain', 'q0'), 'fire and forget', { qos: 0 })
  await until('the QoS 0 record', () => readAll(relay.endpoint, 'plain'), (rs) => rs.length === 1)
  // 500 QoS 1 publishes in flight at once: each is acknowledged after its fsync, many per commit.
  await Promise.all(Array.from({ length: 500 }, (_, i) => device.publishAsync(topics.put('gw-1', 'plain', `k${i % 7}`), `r${i}`, { qos: 1 })))
  const read = await readAll(relay.endpoint, 'plain')
  t.equal(read.length, 501, 'every record stored once')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  const commits = Number(/^tributary_group_commit_records_count (\d+)/m.exec(metrics)![1])
  t.ok(commits < 250, `500 publishes made durable in ${commits} group commits`)
})

t.test('refusals: an oversized record, a bad key, an unknown stream (auto-create off) are acknowledged and said on the rejects topic; another device\'s topic closes the connection', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: true, autoCreateStreams: false })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } })
  t.teardown(() => kinesis.destroy())
  await kinesis.send(new CreateStreamCommand({ StreamName: 'known', ShardCount: 1 }))
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'mcu-1', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => device.end(true))
  const rejects: RejectMessage[] = []
  device.on('message', (_topic, payload) => rejects.push(JSON.parse(payload.toString()) as RejectMessage))
  await device.subscribeAsync(topics.rejects('mcu-1'), { qos: 1 })
  const cases: [string, Buffer, string][] = [
    [topics.put('mcu-1', 'known'), Buffer.alloc(1024 * 1024 + 1), 'RECORD_TOO_LARGE'],
    [topics.put('mcu-1', 'known', 'k'.repeat(257)), Buffer.from('x'), 'PARTITION_KEY_INVALID'],
    [topics.put('mcu-1', 'nowhere'), Buffer.from('x'), 'STREAM_NOT_FOUND'],
  ]
  for (const [topic, payload] of cases) await device.publishAsync(topic, payload, { qos: 1 })
  t.pass('each refused publish is acknowledged (a resend cannot help)')
  await until('three rejects', () => rejects.length, (n) => n === 3)
  t.same(rejects.map((r) => [r.code, r.topic, r.batchSequence]), cases.map(([topic, , code]) => [code, topic, -1]), 'each named by its code and topic')
  await device.publishAsync(topics.put('mcu-1', 'known'), 'fine', { qos: 1 })
  t.same((await readAll(relay.endpoint, 'known')).map((r) => r.data.toString()), ['fine'], 'only the good record stored')

  // Under another device's id: refused, and (MQTT 3.1.1 has no negative PUBACK) the connection closed.
  const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
  device.publish(topics.put('mcu-2', 'known'), 'not mine', { qos: 1 })
  await within(10_000, closed, 'the connection is closed')
  t.same((await readAll(relay.endpoint, 'known')).length, 1, 'nothing stored for it')
})

t.test('a QoS 1 publish resent after a broken connection is stored at most twice', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: true })
  const first = await wireLogin(relay.mqttPort, { clientId: 'flaky-1' })
  const packet = publishPacket(topics.put('flaky-1', 'resent', 'k'), 7, Buffer.from('once or twice'))
  first.client.write(packet)
  // The connection breaks before the PUBACK is read; the device sends the publish again.
  first.client.socket.destroy()
  const second = await wireLogin(relay.mqttPort, { clientId: 'flaky-1' })
  t.teardown(() => { second.client.socket.destroy() })
  second.client.write(Buffer.concat([Buffer.from([packet[0]! | 0x08]), packet.subarray(1)])) // DUP set
  await within(10_000, second.client.next(PacketType.PUBACK), 'the resend is acknowledged')
  const read = await until('the record', () => readAll(relay.endpoint, 'resent'), (rs) => rs.length >= 1)
  t.ok(read.length >= 1 && read.length <= 2, `stored ${read.length} time(s): at least once, at most twice (no producer identity on a plain record)`)
})

t.test('every acknowledged plain record survives a kill -9 of the relay', async (t) => {
  const dir = tempDir(t)
  const start = async () => {
    const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', dir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], 'tributary relay ready')
    t.teardown(() => { child.kill('SIGKILL') })
    return { child, exited, mqttPort: Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1]), endpoint: `http://${/ http:\/\/([^ ]+)/.exec(ready)![1]}` }
  }
  let relay = await start()
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'sensor-9', protocolVersion: 4, reconnectPeriod: 0 })
  device.on('error', () => {})
  const acked: string[] = []
  const sending = Array.from({ length: 3000 }, (_, i) => device.publishAsync(topics.put('sensor-9', 'durable', `k${i % 5}`), `v${i}`, { qos: 1 }).then(() => { acked.push(`v${i}`) }, () => {}))
  await until('some acknowledged', () => acked.length, (n) => n >= 500)
  relay.child.kill('SIGKILL')
  await relay.exited
  device.end(true)
  await Promise.race([Promise.all(sending), new Promise((r) => setTimeout(r, 2000))])
  relay = await start()
  const read = new Set((await readAll(relay.endpoint, 'durable')).map((r) => r.data.toString()))
  t.ok(acked.length >= 500, `${acked.length} records acknowledged before the kill`)
  t.same(acked.filter((v) => !read.has(v)), [], 'every one is there after the restart')
})
