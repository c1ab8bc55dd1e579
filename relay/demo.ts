/**
 * `npm start`: a self-contained demo. A relay on free ports with a throwaway data directory, a real
 * agent process with simulated sensors whose durable outbox forwards over MQTT, and a tail that prints
 * records as a Kinesis consumer sees them. Where ffmpeg is installed, the agent also runs a synthetic
 * camera, and each video fragment the relay stores is printed as ListFragments lists it. Ctrl-C stops
 * all of it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn, spawnSync } from 'node:child_process'
import { resolveRelayConfig } from '../shared/config.js'
import { startRelay } from './relay.js'
import { KinesisClient } from './kinesis/client.js'
import { formatPretty, tail } from './cli/tail.js'

const STREAM = 'sensors'
const VIDEO = 'camera'
const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0
const dir = mkdtempSync(join(tmpdir(), 'tributary-demo-'))
const config = resolveRelayConfig({}, {}, { dataDir: join(dir, 'relay'), mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true })
const relay = await startRelay(config, () => {})
const endpoint = `http://127.0.0.1:${relay.httpPort}`
const kinesis = new KinesisClient({ endpoint })
await kinesis.call('CreateStream', { StreamName: STREAM, ShardCount: 2 })
if (hasFfmpeg) await kinesis.rest('/createStream', { StreamName: VIDEO, DataRetentionInHours: 1, MediaType: 'video/h264' })
const camera = hasFfmpeg ? `
  - type: camera
    stream: ${VIDEO}
    input: synthetic
    width: 320
    height: 240
    fps: 10
    bitrateKbps: 300
` : ''

// The agent runs as its own process, as on a device, from a config file like the one you would write.
const agentConfig = join(dir, 'agent.yaml')
writeFileSync(agentConfig, `device: demo-device-1
relay:
  url: mqtt://127.0.0.1:${relay.mqttPort}
outbox:
  path: ${join(dir, 'agent', 'outbox.db')}
status:
  port: 0
streams:
  ${STREAM}:
    priority: 1
sources:
  - type: simulated
    stream: ${STREAM}
    rateHz: 2
    sensors:
      - { id: temp-1, kind: temperature }
      - { id: humidity-1, kind: humidity }
      - { id: vibration-1, kind: vibration }${camera}
`)
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const agent = spawn(process.execPath, [join(root, 'bin', 'tributary.js'), 'agent', 'run', '--config', agentConfig], { stdio: ['ignore', 'pipe', 'ignore'] })
agent.stdout.on('data', (d: Buffer) => process.stdout.write(`agent: ${d}`))

console.log(`relay: mqtt://127.0.0.1:${relay.mqttPort}  kinesis ${endpoint}  data ${dir}`)
console.log(`try:   aws kinesis list-shards --stream-name ${STREAM} --endpoint-url ${endpoint}   (any access key)`)
if (hasFfmpeg) {
  console.log(`video: tributary video fragments ${VIDEO} --endpoint ${endpoint}   (a synthetic camera, ~2 s fragments)`)
  console.log(`watch: ${endpoint}/console/video   (sign in with the admin token ${relay.adminToken})`)
}
else console.log('video: ffmpeg is not installed, so the demo runs no camera')
console.log(`tail ${STREAM}: records as a consumer reads them (Ctrl-C stops)\n`)
const controller = new AbortController()
const tailing = tail(kinesis, { stream: STREAM, from: 'TRIM_HORIZON', signal: controller.signal, onRecord: (r) => console.log(formatPretty(r)) })

// Video: each fragment once, as ListFragments (server time, newest since the last look) lists it.
interface Fragment { FragmentNumber: string; FragmentSizeInBytes: number; ProducerTimestamp: number; FragmentLengthInMilliseconds: number }
let seenUntil = 0
const seen = new Set<string>()
const watchVideo = hasFfmpeg ? setInterval(() => {
  const to = Date.now() / 1000
  kinesis.rest<{ Fragments: Fragment[] }>('/listFragments', { StreamName: VIDEO, FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: seenUntil, EndTimestamp: to } } })
    .then(({ Fragments }) => {
      for (const f of Fragments.sort((a, b) => a.ProducerTimestamp - b.ProducerTimestamp)) {
        if (seen.has(f.FragmentNumber)) continue
        seen.add(f.FragmentNumber)
        if (seen.size > 100) seen.delete(seen.values().next().value!)
        console.log(`video ${VIDEO}: fragment …${f.FragmentNumber.slice(-6)} at ${new Date(f.ProducerTimestamp * 1000).toISOString()}, ${(f.FragmentLengthInMilliseconds / 1000).toFixed(1)} s, ${(f.FragmentSizeInBytes / 1024).toFixed(0)} KiB`)
      }
      seenUntil = Math.max(0, to - 5)
    }, () => {})
}, 2000) : null

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  controller.abort()
  if (watchVideo) clearInterval(watchVideo)
  await tailing.catch(() => {})
  const exited = new Promise((resolve) => agent.once('exit', resolve))
  agent.kill('SIGTERM')
  await exited
  kinesis.close()
  await relay.close()
  rmSync(dir, { recursive: true, force: true })
  console.log('\nstopped')
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())
agent.on('exit', (code) => { if (!stopping) { console.error(`agent exited with ${code}`); void stop() } })
