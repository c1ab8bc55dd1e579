/**
 * Durable MQTT ingest beside the transport ceiling, in one run: publishers (their own process) send
 * batches of 500 records of 100 bytes with QoS 1 to (1) the relay, which PUBACKs after the fsync of
 * the group commit holding the batch, and (2) a bare aedes broker that stores nothing: the ceiling.
 * Each row carries its share of that ceiling from the same run (issue 17's target for the relay:
 * ≥ 0.25). CSV on stdout, progress on stderr. Usage: npx tsx bench/mqtt-ingest.ts [publishers=4] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { codec } from '../hardware/index.js'
import { resolveRelayConfig } from '../shared/config.js'
import { startRelay } from '../relay/relay.js'
import { publish } from './processes.js'

const publishers = Number(process.argv[2] ?? 4)
const seconds = Number(process.argv[3] ?? 5)

process.stderr.write('relay (PUBACK after fsync)…\n')
const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-'))
const relay = await startRelay(resolveRelayConfig({}, process.env, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, autoCreateShardCount: 4 }), () => {})
const durable = await publish(relay.mqttPort, publishers, seconds)
await relay.close()
rmSync(dataDir, { recursive: true, force: true })

process.stderr.write('bare aedes (stores nothing)…\n')
const { Aedes } = await import('aedes')
const bare = await Aedes.createBroker()
const server = net.createServer(bare.handle)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
const ceiling = await publish((server.address() as net.AddressInfo).port, publishers, seconds)
bare.close()
server.close()

const rate = (r: { records: number; seconds: number }) => r.records / r.seconds
const share = rate(durable) / rate(ceiling)
console.log('benchmark,publishers,records,seconds,records_per_s,codec,share_of_bare_aedes')
console.log(`mqtt-ingest-durable,${publishers},${durable.records},${durable.seconds.toFixed(2)},${Math.round(rate(durable))},${codec.implementation},${share.toFixed(2)}`)
console.log(`mqtt-bare-aedes-ceiling,${publishers},${ceiling.records},${ceiling.seconds.toFixed(2)},${Math.round(rate(ceiling))},-,1.00`)
process.stderr.write(`relay's share of bare aedes: ${share.toFixed(2)} (target 0.25)\n`)
