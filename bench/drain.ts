/**
 * Backlog drain: an outbox holding N records (100-byte readings) drains into a relay running in its
 * own process on this machine; reports records/s and the agent's peak resident memory (measured in
 * this process, which runs only the agent). CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/drain.ts [records=1000000]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Outbox } from '../agent/outbox/index.js'

const N = Number(process.argv[2] ?? 1_000_000)
const root = join(fileURLToPath(import.meta.url), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-drain-'))
const outboxPath = join(dir, 'outbox.db')

process.stderr.write(`filling an outbox with ${N} records…\n`)
{
  const box = new Outbox({ path: outboxPath, maxBytes: 8 * 1024 * 1024 * 1024, synchronous: 'NORMAL', commitIntervalMs: 100, commitRows: 50_000, policies: {} })
  const data = Buffer.alloc(100, 0x61)
  for (let i = 0; i < N; i += 10_000) {
    await box.enqueue(Array.from({ length: Math.min(10_000, N - i) }, (_, j) => ({ stream: 'backlog', partitionKey: `sensor-${(i + j) % 256}`, data })))
  }
  box.close()
}

const relay = spawn(process.execPath, ['--import', 'tsx', join(root, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', '--auto-create-shards', '4'], { stdio: ['ignore', 'pipe', 'ignore'] })
const mqttPort = await new Promise<number>((resolve) => {
  let out = ''
  relay.stdout!.on('data', (d: Buffer) => {
    out += d
    const m = /mqtt:\/\/[^:]+:(\d+)/.exec(out)
    if (m) resolve(Number(m[1]))
  })
})

// The agent runs as on a device: its own process, the built JavaScript (npm run build), started the
// way its service starts it (bin/tributary-agent.js, with the small-device heap settings).
const config = join(dir, 'agent.yaml')
writeFileSync(config, [
  'device: bench-drain',
  'relay:', `  url: mqtt://127.0.0.1:${mqttPort}`, '  maxInflight: 16',
  'outbox:', `  path: ${outboxPath}`, '  maxBytes: 8589934592',
  'status:', '  port: 0',
  'streams:', '  backlog: {}',
  'sources: []',
].join('\n'))
// DRAIN_NODE_ARGS: node flags to try on the agent (e.g. `--jitless`), added to those of its #! line.
const agentFlags = (process.env.DRAIN_NODE_ARGS ?? '').split(' ').filter(Boolean)
const agent = agentFlags.length
  ? spawn(process.execPath, ['--max-semi-space-size=2', '--max-old-space-size=64', ...agentFlags, join(root, 'bin/tributary-agent.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] })
  : spawn(join(root, 'bin/tributary-agent.js'), ['run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] })
const statusPort = await new Promise<number>((resolve) => {
  let out = ''
  agent.stdout!.on('data', (d: Buffer) => {
    out += d
    const m = /status=http:\/\/[^:]+:(\d+)/.exec(out)
    if (m) resolve(Number(m[1]))
  })
})
const rss = () => {
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8')
  return { now: Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024, peak: Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024 }
}
const rssAtStart = rss().now
const started = performance.now()
await new Promise<void>((resolve) => {
  const timer = setInterval(async () => {
    const s = await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json() as { link: { recordsAcked: number }; memory: { heapUsedBytes: number; externalBytes: number } }
    process.stderr.write(`\r${s.link.recordsAcked}/${N} delivered, agent RSS ${rss().now.toFixed(0)} MB (heap ${(s.memory.heapUsedBytes / 1048576).toFixed(0)}, external ${(s.memory.externalBytes / 1048576).toFixed(0)})   `)
    // Delivered is acknowledged by the relay; the outbox deletes acknowledged batches up to a second later.
    if (s.link.recordsAcked >= N) { clearInterval(timer); resolve() }
  }, 250)
})
const seconds = (performance.now() - started) / 1000
const peak = rss().peak
process.stderr.write('\n')
console.log('benchmark,records,seconds,records_per_s,agent_peak_rss_mb,agent_rss_at_start_mb')
console.log(`backlog-drain,${N},${seconds.toFixed(2)},${Math.round(N / seconds)},${peak.toFixed(1)},${rssAtStart.toFixed(1)}`)
agent.kill('SIGTERM')
await new Promise((r) => agent.once('exit', r))
relay.kill('SIGTERM')
await new Promise((r) => relay.once('exit', r))
rmSync(dir, { recursive: true, force: true })
