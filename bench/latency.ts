/**
 * End-to-end latency, sensor to consumer: records written at a steady rate to an agent's local put
 * API (the agent in its own process, outbox at synchronous=FULL), forwarded over MQTT to a relay
 * (its own process, PUBACK after fsync), read by a consumer on every shard. Two consumers, each in
 * its own run: enhanced fan-out (SubscribeToShard through the AWS SDK: records pushed as they are
 * committed) and GetRecords polling without pause. Latency = time the consumer sees a record − time
 * it was handed to the agent, after a first second at the same rate that warms the processes up and
 * is not counted. Prints p50, p99, max per consumer and rate; on stderr, the agent's
 * share (its put answer, after its outbox commit) and the hand-over to the relay's append.
 * Usage: npx tsx bench/latency.ts [seconds=5] [rates=1000,10000] [consumers=fan-out,polling]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  KinesisClient as SdkClient, RegisterStreamConsumerCommand, DescribeStreamConsumerCommand, SubscribeToShardCommand,
} from '@aws-sdk/client-kinesis'
import { KinesisClient } from '../relay/kinesis/client.js'
import { readyLine } from './processes.js'

const seconds = Number(process.argv[2] ?? 5)
const rates = (process.argv[3] ?? '1000,10000').split(',').map(Number)
const kinds = (process.argv[4] ?? 'fan-out,polling').split(',') as ('fan-out' | 'polling')[]
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// The relay as it is installed (compiled) when `npm run bench` has built it; else from the sources.
const relayArgs = existsSync(join(root, 'dist/relay/cli/entry.js')) ? [join(root, 'dist/relay/cli/entry.js')] : ['--import', 'tsx', join(root, 'relay/cli/entry.ts')]

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
const sortedOf = (values: number[]) => [...values].sort((a, b) => a - b)
const wallNow = () => performance.timeOrigin + performance.now()

/** What a consumer saw of one record: its producer stamp and its relay arrival time (ms). */
type Seen = (stamp: number, arrivalMs: number, at?: number) => void

/** GetRecords on every shard from LATEST, without pause. Every iterator is taken before it resolves. */
async function pollingConsumer(kinesis: KinesisClient, shards: string[], seen: Seen): Promise<() => Promise<void>> {
  let consuming = true
  const iterators = await Promise.all(shards.map(async (ShardId) => (await kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: 'latency', ShardId, ShardIteratorType: 'LATEST' })).ShardIterator))
  const loops = iterators.map(async (first) => {
    let it = first
    while (consuming) {
      const page = await kinesis.call<{ Records: { Data: string; ApproximateArrivalTimestamp: number }[]; NextShardIterator: string }>('GetRecords', { ShardIterator: it })
      for (const r of page.Records) seen(Number(Buffer.from(r.Data, 'base64').toString()), r.ApproximateArrivalTimestamp * 1000)
      it = page.NextShardIterator
      if (!page.Records.length) await new Promise((r) => setTimeout(r, 1))
    }
  })
  return async () => { consuming = false; await Promise.all(loops) }
}

/** SubscribeToShard on every shard from LATEST; resolves once every subscription is established. */
async function fanOutConsumer(endpoint: string, streamArn: string, shards: string[], seen: Seen): Promise<() => Promise<void>> {
  const sdk = new SdkClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  const { Consumer } = await sdk.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'latency-bench' }))
  for (let i = 0; i < 100; i++) {
    const d = await sdk.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }))
    if (d.ConsumerDescription?.ConsumerStatus === 'ACTIVE') break
    await new Promise((r) => setTimeout(r, 100))
  }
  const abort = new AbortController()
  const loops = await Promise.all(shards.map(async (ShardId) => {
    const out = await sdk.send(new SubscribeToShardCommand({ ConsumerARN: Consumer!.ConsumerARN, ShardId, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
    // Wrapped, so that awaiting the subscription does not wait for its end.
    return { done: (async () => {
      for await (const event of out.EventStream!) {
        const now = wallNow()
        for (const r of event.SubscribeToShardEvent?.Records ?? []) {
          seen(Number(Buffer.from(r.Data!).toString()), r.ApproximateArrivalTimestamp!.getTime(), now)
        }
      }
    })().catch((err: Error) => { if (err.name !== 'AbortError') process.stderr.write(`  subscription to ${ShardId} ended: ${err.name}: ${err.message}\n`) }) }
  }))
  return async () => { abort.abort(); await Promise.all(loops.map((l) => l.done)); sdk.destroy() }
}

console.log('benchmark,consumer,records_per_s,sent,received,p50_ms,p99_ms,max_ms')
for (const kind of kinds) {
  for (const rate of rates) {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-latency-'))
    const relay = spawn(process.execPath, [...relayArgs, 'relay', '--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], { stdio: ['ignore', 'pipe', 'ignore'] })
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

    const { Shards } = await kinesis.call<{ Shards: { ShardId: string }[] }>('ListShards', { StreamName: 'latency' })
    const shards = Shards.map((s) => s.ShardId)
    const latencies: number[] = []
    // Hand-over to the relay's append (its arrival timestamp): the agent's share plus the wire.
    const toRelay: number[] = []
    // The first second warms the processes up (JIT, caches, connections) and is not counted.
    let measuredFrom = Infinity
    const seen = (stamp: number, arrivalMs: number, at = wallNow()) => {
      if (stamp < measuredFrom) return
      latencies.push(at - stamp)
      toRelay.push(arrivalMs - stamp)
    }
    const { StreamDescriptionSummary } = await kinesis.call<{ StreamDescriptionSummary: { StreamARN: string } }>('DescribeStreamSummary', { StreamName: 'latency' })
    const stopConsumer = kind === 'fan-out'
      ? await fanOutConsumer(endpoint, StreamDescriptionSummary.StreamARN, shards, seen)
      : await pollingConsumer(kinesis, shards, seen)

    // The producer: every 10 ms, the records due at this rate, one PutRecords call. Calls are not
    // awaited before the next tick, so the offered rate holds even while a call waits for the outbox.
    process.stderr.write(`${kind}, ${rate} records/s for ${seconds} s…\n`)
    const perTick = Math.max(1, Math.round(rate / 100))
    const started = Date.now()
    let sent = 0
    const calls: Promise<unknown>[] = []
    const failed: string[] = []
    // How long the agent took to answer each put (its outbox commit).
    const answered: number[] = []
    const warmTicks = 100
    for (let tick = 0; tick < warmTicks + seconds * 100; tick++) {
      const due = started + tick * 10
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()))
      const stamp = wallNow()
      if (tick === warmTicks) measuredFrom = stamp
      const counted = tick >= warmTicks
      const data = Buffer.from(String(stamp)).toString('base64')
      calls.push(fetch(`http://127.0.0.1:${putPort}/PutRecords`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: 'latency', Records: Array.from({ length: perTick }, (_, i) => ({ PartitionKey: `s${i % 16}`, Data: data })) }) })
        .then(async (r) => {
          const body = await r.text()
          if (counted) answered.push(wallNow() - stamp)
          if (!r.ok) failed.push(`${r.status} ${body.slice(0, 200)}`)
        }))
      if (counted) sent += perTick
    }
    await Promise.all(calls)
    if (failed.length) process.stderr.write(`  ${failed.length} PutRecords calls failed, e.g. ${failed[0]}\n`)
    const deadline = Date.now() + 5000
    while (latencies.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await stopConsumer()
    const sorted = sortedOf(latencies)
    const relaySorted = sortedOf(toRelay)
    const answeredSorted = sortedOf(answered)
    process.stderr.write(`  the agent answered puts (outbox commit): p50 ${pct(answeredSorted, 0.5).toFixed(1)} ms, p99 ${pct(answeredSorted, 0.99).toFixed(1)} ms\n`)
    process.stderr.write(`  hand-over to the relay's append: p50 ${pct(relaySorted, 0.5).toFixed(1)} ms, p99 ${pct(relaySorted, 0.99).toFixed(1)} ms\n`)
    console.log(`sensor-to-consumer,${kind},${rate},${sent},${latencies.length},${pct(sorted, 0.5).toFixed(1)},${pct(sorted, 0.99).toFixed(1)},${(sorted[sorted.length - 1] ?? NaN).toFixed(1)}`)
    kinesis.close()
    await Promise.all([stop(agent), stop(relay)])
    rmSync(dir, { recursive: true, force: true })
  }
}
