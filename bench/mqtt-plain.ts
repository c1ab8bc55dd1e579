/**
 * Plain records over MQTT (issue 20) beside device batches, against the same relay in one run:
 * publishers (their own process) send (1) one 100-byte record per QoS 1 publish on
 * `tributary/v1/{device}/put/{stream}/{key}`, 256 unacknowledged per connection, as a device without
 * the agent does, and (2) the agent's batches of 500 such records, 16 unacknowledged. Both are
 * acknowledged only after the fsync of the group commit holding them. CSV on stdout, progress on
 * stderr. Usage: npx tsx bench/mqtt-plain.ts [publishers=4] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { codec } from '../hardware/index.js'
import { resolveRelayConfig } from '../shared/config.js'
import { startRelay } from '../relay/relay.js'
import { publish } from './processes.js'

const publishers = Number(process.argv[2] ?? 4)
const seconds = Number(process.argv[3] ?? 5)

async function run(mode: '' | 'plain'): Promise<{ records: number; seconds: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-'))
  const relay = await startRelay(resolveRelayConfig({}, process.env, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, autoCreateShardCount: 4 }), () => {})
  try {
    return await publish(relay.mqttPort, publishers, seconds, mode)
  } finally {
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

process.stderr.write('plain records, one per publish…\n')
const plain = await run('plain')
process.stderr.write('device batches of 500…\n')
const batches = await run('')
const rate = (r: { records: number; seconds: number }) => r.records / r.seconds
console.log('benchmark,publishers,records,seconds,records_per_s,codec,ratio_to_batches')
console.log(`mqtt-plain-records,${publishers},${plain.records},${plain.seconds.toFixed(2)},${Math.round(rate(plain))},${codec.implementation},${(rate(plain) / rate(batches)).toFixed(3)}`)
console.log(`mqtt-device-batches,${publishers},${batches.records},${batches.seconds.toFixed(2)},${Math.round(rate(batches))},${codec.implementation},1.000`)
process.stderr.write(`plain records: ${Math.round(rate(plain))} records/s, ${(rate(plain) / rate(batches)).toFixed(3)} of batches' rate\n`)
