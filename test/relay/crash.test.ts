/**
 * kill -9 of the relay while MQTT devices and PutRecords clients write, several times over: every
 * acknowledged record is there exactly once afterwards, and every batch a device resends is completed
 * without duplicates. TRIBUTARY_SOAK=1 runs more rounds.
 */
import t from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { randomBytes } from 'node:crypto'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { freePort, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { readStream } from '../helpers/kinesis.js'

const ROUNDS = process.env.TRIBUTARY_SOAK ? 12 : 3
const STREAM = 'crash'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A device that keeps every batch until it is PUBACKed and resends the same bytes after reconnecting. */
class Device {
  readonly id: string
  private readonly epoch = randomBytes(8).readBigUInt64LE() >> 11n
  private next = 0
  private n = 0
  readonly unacked = new Map<number, Buffer>()
  readonly acked = new Set<string>()
  readonly batchRecords = new Map<number, string[]>()
  private client: MqttClient | null = null
  private port: number
  private stopped = false
  private readonly inFlight = new Set<number>()

  constructor(id: string, port: number) {
    this.id = id
    this.port = port
  }

  async connect(): Promise<void> {
    while (!this.stopped) {
      try {
        const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.port}`, { clientId: this.id, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000, queueQoSZero: false })
        this.client = client
        this.inFlight.clear()
        client.on('close', () => { if (this.client === client) this.client = null })
        client.on('error', () => {})
        // Resend what was never acknowledged: the very same batches.
        for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) this.send(seq)
        return
      } catch {
        await sleep(100)
      }
    }
  }

  private send(seq: number): void {
    const client = this.client
    const frame = this.unacked.get(seq)
    if (!client || !frame || this.inFlight.has(seq)) return
    this.inFlight.add(seq)
    client.publish(topics.records(this.id, STREAM), frame, { qos: 1 }, (err) => {
      this.inFlight.delete(seq)
      if (err || !this.unacked.has(seq)) return
      this.unacked.delete(seq)
      for (const id of this.batchRecords.get(seq)!) this.acked.add(id)
    })
  }

  /** Forms a new batch (up to 8 unacknowledged at once) and sends it if connected. */
  tick(): void {
    if (this.unacked.size >= 8) return
    const seq = this.next++
    const ids = Array.from({ length: 50 }, () => `${this.id}:${this.n++}`)
    this.batchRecords.set(seq, ids)
    this.unacked.set(seq, codec.encodeBatch({ epoch: this.epoch, sequence: seq, records: ids.map((id, i) => ({ partitionKey: `${this.id}-${i % 5}`, data: Buffer.from(id), producerTimeMs: Date.now(), clockSynced: true })) }))
    this.send(seq)
  }

  connected(): boolean {
    return this.client?.connected ?? false
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.client?.endAsync(true).catch(() => {})
  }
}

t.test(`kill -9 of the relay ${ROUNDS} times while devices and PutRecords clients write loses and duplicates nothing acknowledged`, async (t) => {
  const dataDir = tempDir(t)
  const mqttPort = await freePort()
  const httpPort = await freePort()
  const args = ['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--allow-anonymous', '--group-commit-ms', '1']
  let relay: ChildRelay = await spawnRelay(args)
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const setup = new KinesisClient({ endpoint: relay.endpoint })
  await setup.call('CreateStream', { StreamName: STREAM, ShardCount: 4 })
  setup.close()

  const devices = [new Device('dev-1', mqttPort), new Device('dev-2', mqttPort)]
  await Promise.all(devices.map((d) => d.connect()))
  const apiAcked = new Set<string>()
  const apiSent = new Set<string>()
  let apiN = 0
  let writing = true

  // A PutRecords client that does not retry: what it was told is stored must be stored once.
  const apiWriter = (async () => {
    const kinesis = new KinesisClient({ endpoint: `http://127.0.0.1:${httpPort}` })
    while (writing) {
      const ids = Array.from({ length: 50 }, () => `api:${apiN++}`)
      for (const id of ids) apiSent.add(id)
      try {
        await kinesis.call('PutRecords', { StreamName: STREAM, Records: ids.map((id, i) => ({ PartitionKey: `api-${i % 7}`, Data: Buffer.from(id).toString('base64') })) })
        for (const id of ids) apiAcked.add(id)
      } catch {
        await sleep(50)
      }
    }
    kinesis.close()
  })()
  const ticker = setInterval(() => { for (const d of devices) d.tick() }, 5)

  for (let round = 0; round < ROUNDS; round++) {
    await sleep(700 + Math.random() * 800)
    relay.process.kill('SIGKILL')
    await relay.exited
    await sleep(50)
    relay = await spawnRelay(args)
    await Promise.all(devices.map((d) => (d.connected() ? undefined : d.connect())))
  }
  await sleep(500)
  clearInterval(ticker)
  writing = false
  await apiWriter
  // Let every device finish: all its batches acknowledged.
  for (let i = 0; i < 200 && devices.some((d) => d.unacked.size); i++) {
    await Promise.all(devices.map((d) => (d.connected() ? undefined : d.connect())))
    await sleep(50)
  }
  t.same(devices.map((d) => d.unacked.size), [0, 0], 'every device batch was acknowledged in the end')

  const counts = new Map<string, number>()
  for (const r of await readStream(relay.endpoint, STREAM)) counts.set(r.data, (counts.get(r.data) ?? 0) + 1)
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id)
  t.same(duplicated.slice(0, 10), [], 'no record is stored twice')
  let deviceRecords = 0
  const missingDevice: string[] = []
  for (const d of devices) {
    for (const ids of d.batchRecords.values()) {
      for (const id of ids) {
        deviceRecords++
        if (!counts.has(id)) missingDevice.push(id)
      }
    }
  }
  t.same(missingDevice.slice(0, 10), [], `every device record is stored (${deviceRecords} records)`)
  const missingApi = [...apiAcked].filter((id) => !counts.has(id))
  t.same(missingApi.slice(0, 10), [], `every acknowledged PutRecords record is stored (${apiAcked.size} acknowledged)`)
  const unknown = [...counts.keys()].filter((id) => id.startsWith('api:') && !apiSent.has(id))
  t.same(unknown, [], 'nothing appears that was never sent')
  t.ok(deviceRecords > 1000 && apiAcked.size > 500, `enough traffic went through (${deviceRecords} device, ${apiAcked.size} API)`)
  await Promise.all(devices.map((d) => d.stop()))
  relay.process.kill('SIGTERM')
  await relay.exited
})
