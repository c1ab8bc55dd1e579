/**
 * Durable MQTT ingest: several publishers send batches of 500 records of 100 bytes with QoS 1 and a
 * window of unacknowledged batches each; the relay PUBACKs after fsync. Prints CSV on stdout,
 * progress on stderr. Usage: npx tsx bench/mqtt-ingest.ts [publishers=4] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { codec } from '../hardware/index.js'
import { resolveRelayConfig } from '../shared/config.js'
import { topics } from '../shared/topics.js'
import { startRelay } from '../relay/relay.js'

const publishers = Number(process.argv[2] ?? 4)
const seconds = Number(process.argv[3] ?? 5)
const WINDOW = 16
const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-'))
const relay = await startRelay(resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, autoCreateShardCount: 4 }), () => {})

let acked = 0
const deadline = Date.now() + seconds * 1000
const payload = Buffer.alloc(100, 0x61)
const run = async (p: number) => {
  const id = `bench-${p}`
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: id, protocolVersion: 4 })
  let seq = 0
  let inFlight = 0
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (inFlight < WINDOW && Date.now() < deadline) {
        const frame = codec.encodeBatch({ epoch: BigInt(p + 1), sequence: seq++, records: Array.from({ length: 500 }, (_, i) => ({ partitionKey: `k${i % 64}`, data: payload, producerTimeMs: 0, clockSynced: true })) })
        inFlight++
        client.publish(topics.records(id, 'bench'), frame, { qos: 1 }, () => {
          inFlight--
          acked += 500
          if (Date.now() < deadline) pump()
          else if (inFlight === 0) resolve()
        })
      }
    }
    pump()
  })
  await client.endAsync()
}
const started = performance.now()
const progress = setInterval(() => process.stderr.write(`\r${acked} records acknowledged`), 500)
await Promise.all(Array.from({ length: publishers }, (_, p) => run(p)))
clearInterval(progress)
const elapsed = (performance.now() - started) / 1000
process.stderr.write('\n')
console.log('benchmark,publishers,records,seconds,records_per_s,codec')
console.log(`mqtt-ingest-durable,${publishers},${acked},${elapsed.toFixed(2)},${Math.round(acked / elapsed)},${codec.implementation}`)
await relay.close()
rmSync(dataDir, { recursive: true, force: true })
