/**
 * Publishers for bench/mqtt-ingest.ts, run in their own process so the broker under test has its
 * own core: N connections, batches of 500 records of 100 bytes, QoS 1 with a window of unacknowledged
 * batches each. Prints one JSON line: {"records": acknowledged, "seconds": elapsed, "startUs", "endUs"}
 * (the last two from process.hrtime, so a CPU profile of the broker can be cut to the run).
 * Usage: tsx bench/mqtt-publishers.ts PORT PUBLISHERS SECONDS [json|plain]
 * (`json`: each record is a ~100-byte JSON object, for delivery streams that convert records.
 * `plain`: each publish is one record of 100 bytes on the plain-record topic, 256 unacknowledged at
 * a time per connection, as a device without the agent sends them.)
 */
import mqtt from 'mqtt'
import { codec } from '../hardware/index.js'
import { topics } from '../shared/topics.js'

const [port, publishers, seconds] = process.argv.slice(2).map(Number) as [number, number, number]
const json = process.argv[5] === 'json'
const plain = process.argv[5] === 'plain'
const WINDOW = plain ? 256 : 16
const PER_PUBLISH = plain ? 1 : 500
const payload = json ? Buffer.from(JSON.stringify({ device: 'd7', seq: 123456, value: 512.345, ts: 1_800_000_000_000, site: 'north-ridge-7' }).padEnd(100, ' ')) : Buffer.alloc(100, 0x61)
let acked = 0
const deadline = Date.now() + seconds * 1000

// An epoch of this run's own: a second run against the same relay (after a warm-up, say) would
// otherwise resend the first run's (epoch, sequence) pairs, which the relay answers as duplicates
// without storing them.
const runEpoch = BigInt(Date.now()) * 1000n

async function run(p: number): Promise<void> {
  const id = `bench-${p}`
  const epoch = runEpoch + BigInt(p + 1)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, protocolVersion: 4 })
  let seq = 0
  let inFlight = 0
  // Frames are made ahead, so encoding does not count against the broker.
  const frames = plain ? [] : Array.from({ length: 64 }, (_, k) => codec.encodeBatch({ epoch, sequence: k, records: Array.from({ length: 500 }, (_, i) => ({ partitionKey: `k${i % 64}`, data: payload, producerTimeMs: 0, clockSynced: true })) }))
  const keys = Array.from({ length: 64 }, (_, k) => topics.put(id, 'bench', `k${k}`))
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (inFlight < WINDOW && Date.now() < deadline) {
        let topic: string
        let body: Buffer
        if (plain) {
          topic = keys[seq % keys.length]!
          body = payload
        } else {
          // A fresh sequence each time (the relay dedupes resends): re-stamp the header's sequence.
          topic = topics.records(id, 'bench')
          body = Buffer.from(frames[seq % frames.length]!)
          body.writeUInt32LE(seq, 20)
          body.writeUInt32LE(codec.crc32c(body, 0, 12, body.length), 4)
        }
        seq++
        inFlight++
        client.publish(topic, body, { qos: 1 }, () => {
          inFlight--
          acked += PER_PUBLISH
          if (Date.now() < deadline) pump()
          else if (inFlight === 0) resolve()
        })
      }
    }
    pump()
  })
  await client.endAsync()
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n)
const startUs = nowUs()
await Promise.all(Array.from({ length: publishers }, (_, p) => run(p)))
const endUs = nowUs()
console.log(JSON.stringify({ records: acked, seconds: (endUs - startUs) / 1e6, startUs, endUs }))
