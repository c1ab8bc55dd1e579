/**
 * `npm start`: a self-contained demo. A relay on free ports with a throwaway data directory, a small
 * built-in producer publishing simulated sensor readings as a device would (batch frames over real
 * MQTT, QoS 1), and a tail that prints records as a Kinesis consumer sees them. Ctrl-C stops all.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import { resolveRelayConfig } from '../shared/config.js'
import { topics } from '../shared/topics.js'
import { codec } from '../hardware/index.js'
import { startRelay } from './relay.js'
import { KinesisClient } from './kinesis/client.js'
import { formatPretty, tail } from './cli/tail.js'

const STREAM = 'sensors'
const DEVICE = 'demo-device-1'

const dataDir = mkdtempSync(join(tmpdir(), 'tributary-demo-'))
const config = resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true })
const relay = await startRelay(config, () => {})
const endpoint = `http://127.0.0.1:${relay.httpPort}`
console.log(`relay: mqtt://127.0.0.1:${relay.mqttPort}  kinesis ${endpoint}  data ${dataDir}`)
console.log(`try:   aws kinesis list-streams --endpoint-url ${endpoint}   (any access key)`)

const kinesis = new KinesisClient({ endpoint })
await kinesis.call('CreateStream', { StreamName: STREAM, ShardCount: 2 })

// The producer: what the agent will do, in miniature.
const client = mqtt.connect(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: DEVICE, protocolVersion: 4, queueQoSZero: false, reconnectPeriod: 1000 })
const epoch = randomBytes(8).readBigUInt64LE() >> 12n
let sequence = 0
const sensors = ['temp-1', 'temp-2', 'humidity-1', 'vibration-1']
const reading = (sensor: string, t: number) => {
  if (sensor.startsWith('temp')) return { sensor, celsius: +(21 + 3 * Math.sin(t / 60_000) + Math.random() * 0.2).toFixed(2) }
  if (sensor.startsWith('humidity')) return { sensor, percent: +(45 + 5 * Math.sin(t / 90_000) + Math.random()).toFixed(1) }
  return { sensor, rms_g: +(0.02 + Math.random() * 0.01).toFixed(4) }
}
const timer = setInterval(() => {
  if (!client.connected) return
  const now = Date.now()
  const frame = codec.encodeBatch({
    epoch, sequence: sequence++,
    records: sensors.map((s) => ({ partitionKey: s, data: Buffer.from(JSON.stringify({ ...reading(s, now), at: new Date(now).toISOString() })), producerTimeMs: now, clockSynced: true })),
  })
  client.publish(topics.records(DEVICE, STREAM), frame, { qos: 1 })
}, 500)

const controller = new AbortController()
console.log(`tail ${STREAM}: records as a consumer reads them (Ctrl-C stops)\n`)
const tailing = tail(kinesis, { stream: STREAM, from: 'TRIM_HORIZON', signal: controller.signal, onRecord: (r) => console.log(formatPretty(r)) })

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  clearInterval(timer)
  controller.abort()
  await tailing.catch(() => {})
  await new Promise<void>((resolve) => client.end(false, {}, () => resolve()))
  kinesis.close()
  await relay.close()
  rmSync(dataDir, { recursive: true, force: true })
  console.log('\nstopped')
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())
