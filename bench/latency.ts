/**
 * End-to-end latency, sensor to consumer: records written at a steady rate to an agent's local put
 * API (the agent in its own process, outbox at synchronous=FULL), forwarded over MQTT to a relay
 * (its own process, PUBACK after fsync), read by a consumer polling GetRecords on every shard.
 * Latency = time the consumer sees a record − time it was handed to the agent. Prints p50, p99, max
 * per rate. Usage: npx tsx bench/latency.ts [seconds=5] [rates=1000,10000]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KinesisClient } from '../relay/kinesis/client.js'

const seconds = Number(process.argv[2] ?? 5)
const rates = (process.argv[3] ?? '1000,10000').split(',').map(Number)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function readyLine(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith(prefix))
      if (line) resolve(line)
    })
  })
}

/** SIGTERM, then SIGKILL if the process has not gone within 5 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => { process.stderr.write(`pid ${child.pid} (${child.spawnargs.slice(0, 4).join(' ')}) ignored SIGTERM for 5 s; killing it\n`); child.kill('SIGKILL') }, 5000)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN

console.log('benchmark,records_per_s,sent,received,p50_ms,p99_ms,max_ms')
for (const rate of rates) {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-latency-'))
  const relay = spawn(process.execPath, ['--import', 'tsx', join(root, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const relayReady = await readyLine(relay, 'tributary relay ready')
  const mqttPort = /mqtt:\/\/[^:]+:(\d+)/.exec(relayReady)![1]
  const endpoint = `http://127.0.0.1:${/http:\/\/[^:]+:(\d+)/.exec(relayReady)![1]}`
  const kinesis = new KinesisClient({ endpoint })
  await kinesis.call('CreateStream', { StreamName: 'latency', ShardCount: 2 })
  const config = join(dir, 'agent.yaml')
  writeFileSync(config, [
    'device: latency-bench', 'relay:', `  url: mqtt://127.0.0.1:${mqttPort}`,
    'outbox:', `  path: ${join(dir, 'outbox.db')}`, '  commitIntervalMs: 5',
    'status:', '  port: 0', 'streams:', '  latency: {}', 'sources:', '  - { type: put-api, port: 0 }',
  ].join('\n'))
  const agent = spawn(join(root, 'bin/tributary-agent.js'), ['run', '--config', config], { stdio: ['ignore', 'pipe', 'ignore'] })
  const putPort = /put-api=http:\/\/[^:]+:(\d+)/.exec(await readyLine(agent, 'tributary agent ready'))![1]

  // The consumer: LATEST on every shard, polling without pause.
  const { Shards } = await kinesis.call<{ Shards: { ShardId: string }[] }>('ListShards', { StreamName: 'latency' })
  const latencies: number[] = []
  // Hand-over to the relay's append (its arrival timestamp): the agent's share plus the wire.
  const toRelay: number[] = []
  let consuming = true
  // Every iterator is taken before the first record is sent, so LATEST misses nothing.
  const iterators = await Promise.all(Shards.map(async (s) => (await kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: 'latency', ShardId: s.ShardId, ShardIteratorType: 'LATEST' })).ShardIterator))
  const consumers = iterators.map(async (first) => {
    let it = first
    while (consuming) {
      const page = await kinesis.call<{ Records: { Data: string; ApproximateArrivalTimestamp: number }[]; NextShardIterator: string }>('GetRecords', { ShardIterator: it })
      const now = performance.timeOrigin + performance.now()
      for (const r of page.Records) {
        const stamp = Number(Buffer.from(r.Data, 'base64').toString())
        latencies.push(now - stamp)
        toRelay.push(r.ApproximateArrivalTimestamp * 1000 - stamp)
      }
      it = page.NextShardIterator
      if (!page.Records.length) await new Promise((r) => setTimeout(r, 1))
    }
  })

  // The producer: every 10 ms, the records due at this rate, one PutRecords call. Calls are not
  // awaited before the next tick, so the offered rate holds even while a call waits for the outbox.
  process.stderr.write(`${rate} records/s for ${seconds} s…\n`)
  const perTick = Math.max(1, Math.round(rate / 100))
  const started = Date.now()
  const ticks = seconds * 100
  let sent = 0
  const calls: Promise<unknown>[] = []
  const failed: string[] = []
  for (let tick = 0; tick < ticks; tick++) {
    const due = started + tick * 10
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()))
    const stamp = String(performance.timeOrigin + performance.now())
    const data = Buffer.from(stamp).toString('base64')
    calls.push(fetch(`http://127.0.0.1:${putPort}/PutRecords`, { method: 'POST', body: JSON.stringify({ StreamName: 'latency', Records: Array.from({ length: perTick }, (_, i) => ({ PartitionKey: `s${i % 16}`, Data: data })) }) }).then(async (r) => { const body = await r.text(); if (!r.ok) failed.push(`${r.status} ${body.slice(0, 200)}`) }))
    sent += perTick
  }
  await Promise.all(calls)
  if (failed.length) process.stderr.write(`  ${failed.length} PutRecords calls failed, e.g. ${failed[0]}\n`)
  const deadline = Date.now() + 5000
  while (latencies.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  consuming = false
  await Promise.all(consumers)
  const sorted = [...latencies].sort((a, b) => a - b)
  const relaySorted = [...toRelay].sort((a, b) => a - b)
  process.stderr.write(`  of which hand-over to relay append: p50 ${pct(relaySorted, 0.5).toFixed(1)} ms, p99 ${pct(relaySorted, 0.99).toFixed(1)} ms\n`)
  console.log(`sensor-to-consumer,${rate},${sent},${latencies.length},${pct(sorted, 0.5).toFixed(1)},${pct(sorted, 0.99).toFixed(1)},${(sorted[sorted.length - 1] ?? NaN).toFixed(1)}`)
  kinesis.close()
  await Promise.all([stop(agent), stop(relay)])
  rmSync(dir, { recursive: true, force: true })
}
