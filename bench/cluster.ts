/**
 * The relay as a cluster on NATS JetStream, against JetStream itself, in one run: for R1 (one NATS
 * server) and R3 (three, clustered with routes), first JetStream's own async publish rate for the
 * same records (one message per record, as the shard logs store them, 8 publishers each keeping
 * 1,000 publishes in flight, into one stream per shard), then PutRecords through two relays (the AWS
 * SDK, 500 records of 100 bytes per call, 8 calls in flight per relay) and device batches over MQTT
 * through two relays (QoS 1, 500 records per batch, 4 devices per relay). The relay's share of the
 * ceiling is its rate over JetStream's. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/cluster.ts [seconds=5]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import mqtt from 'mqtt'
import { connect } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { KinesisClient, CreateStreamCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { codec } from '../hardware/index.js'
import { topics } from '../shared/topics.js'
import { freePort } from './processes.js'

const seconds = Number(process.argv[2] ?? 5)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const SHARDS = 4
const data = Buffer.alloc(100, 0x61)
const children: ChildProcess[] = []
const say = (line: string) => process.stderr.write(`${line}\n`)

async function startNats(dir: string, size: 1 | 3): Promise<string> {
  const nodes = await Promise.all(Array.from({ length: size }, async () => ({ port: await freePort(), route: await freePort() })))
  nodes.forEach((node, i) => {
    const conf = join(dir, `nats-${i}.conf`)
    const routes = nodes.filter((_, j) => j !== i).map((o) => `"nats-route://127.0.0.1:${o.route}"`).join(', ')
    writeFileSync(conf, [`server_name: n${i}`, `listen: 127.0.0.1:${node.port}`, 'max_payload: 8MB', `jetstream { store_dir: "${join(dir, `js-${i}`)}" }`,
      ...(size > 1 ? [`cluster { name: bench, listen: 127.0.0.1:${node.route}, routes: [${routes}] }`] : [])].join('\n'))
    children.push(spawn('/usr/sbin/nats-server', ['-c', conf], { stdio: 'ignore' }))
  })
  const servers = nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(',')
  const nc = await connect({ servers: servers.split(','), maxReconnectAttempts: -1, waitOnFirstConnect: true })
  for (let i = 0; ; i++) {
    try { await jetstreamManager(nc, { timeout: 1000 }); break } catch (err) { if (i > 60) throw err; await new Promise((r) => setTimeout(r, 250)) }
  }
  await nc.close()
  return servers
}

/** JetStream's own rate: one message per record, publishes pipelined. */
async function jetstreamRate(servers: string, replicas: number): Promise<number> {
  const nc = await connect({ servers: servers.split(',') })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  for (let s = 0; s < SHARDS; s++) {
    // Until every server has joined, an R3 stream has no place to go.
    for (let i = 0; ; i++) {
      try { await jsm.streams.add({ name: `peer-${s}`, subjects: [`peer.${s}`], num_replicas: replicas }); break } catch (err) { if (i > 120) throw err; await new Promise((r) => setTimeout(r, 250)) }
    }
  }
  // About the size of a stored record: the framing and the 56-digit sequence's worth of fields.
  const body = Buffer.alloc(data.length + 60, 0x61)
  let sent = 0
  const deadline = Date.now() + seconds * 1000
  const started = performance.now()
  // Each publisher keeps 1,000 publishes in flight all the time (a sliding window, as an async publisher does).
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    let inflight = 0
    let wake: (() => void) | null = null
    let n = 0
    while (Date.now() < deadline) {
      inflight++
      js.publish(`peer.${(w + n) % SHARDS}`, body, { msgID: `${w}-${n}` }).then(() => {
        sent++
        inflight--
        if (wake) { const w2 = wake; wake = null; w2() }
      })
      n++
      if (inflight >= 1000) await new Promise<void>((resolve) => { wake = resolve })
    }
    while (inflight > 0) await new Promise<void>((resolve) => { wake = resolve })
  }))
  const rate = sent / ((performance.now() - started) / 1000)
  await nc.close()
  return rate
}

async function startRelays(dir: string, servers: string, replicas: number): Promise<{ http: number; mqtt: number }[]> {
  const args = existsSync(join(root, 'dist/relay/cli/entry.js')) ? [join(root, 'dist/relay/cli/entry.js')] : ['--import', 'tsx', join(root, 'relay/cli/entry.ts')]
  const relays: { http: number; mqtt: number }[] = []
  for (const name of ['a', 'b']) {
    const http = await freePort()
    const mqttPort = await freePort()
    children.push(spawn(process.execPath, [...args, 'relay', '--data-dir', join(dir, name), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(http),
      '--allow-anonymous', '--cluster', servers, '--cluster-name', `bench${replicas}`, '--replicas', String(replicas), '--auto-create-shards', String(SHARDS)], { stdio: 'ignore' }))
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => { const s = net.connect(http, '127.0.0.1', () => { s.destroy(); resolve(true) }); s.on('error', () => resolve(false)) })
      if (ok) break
      if (i > 400) throw new Error(`relay ${name} did not start`)
      await new Promise((r) => setTimeout(r, 50))
    }
    relays.push({ http, mqtt: mqttPort })
  }
  return relays
}

async function putRecordsRate(relays: { http: number }[]): Promise<number> {
  const clients = relays.map((r) => new KinesisClient({ endpoint: `http://127.0.0.1:${r.http}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: 32 } as never }) }))
  await clients[0]!.send(new CreateStreamCommand({ StreamName: 'puts', ShardCount: SHARDS }))
  await new Promise((r) => setTimeout(r, 500))
  let put = 0
  const deadline = Date.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(clients.flatMap((client, c) => Array.from({ length: 8 }, async (_, w) => {
    let n = 0
    while (Date.now() < deadline) {
      await client.send(new PutRecordsCommand({ StreamName: 'puts', Records: Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `k${c}-${w}-${n}-${i}`, Data: data })) }))
      put += 500
      n++
    }
  })))
  for (const c of clients) c.destroy()
  return put / ((performance.now() - started) / 1000)
}

async function mqttRate(relays: { mqtt: number }[]): Promise<number> {
  let stored = 0
  const deadline = Date.now() + seconds * 1000
  let started = 0
  await Promise.all(relays.flatMap((r, c) => Array.from({ length: 4 }, async (_, d) => {
    const id = `dev-${c}-${d}`
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${r.mqtt}`, { clientId: id, protocolVersion: 4, reconnectPeriod: 0 })
    // The stream is created by the first batch; the clock starts after it.
    await client.publishAsync(topics.records(id, 'batches'), codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: 'warm', data, producerTimeMs: Date.now(), clockSynced: false }] }), { qos: 1 })
    started ||= performance.now()
    let seq = 1
    const inflight: Promise<unknown>[] = []
    while (Date.now() < deadline) {
      const frame = codec.encodeBatch({ epoch: 1n, sequence: seq, records: Array.from({ length: 500 }, (_, i) => ({ partitionKey: `${id}-${seq}-${i}`, data, producerTimeMs: Date.now(), clockSynced: false })) })
      seq++
      inflight.push(client.publishAsync(topics.records(id, 'batches'), frame, { qos: 1 }).then(() => { stored += 500 }))
      if (inflight.length >= 4) await inflight.shift()
    }
    await Promise.all(inflight)
    await client.endAsync()
  })))
  return stored / ((performance.now() - started) / 1000)
}

const rows: string[] = []
try {
  for (const replicas of [1, 3] as const) {
    const dir = mkdtempSync(join(tmpdir(), `tributary-bench-cluster-r${replicas}-`))
    try {
      say(`R${replicas}: starting ${replicas} NATS server(s)…`)
      const servers = await startNats(dir, replicas)
      say(`R${replicas}: JetStream's own async publish for ${seconds} s…`)
      const peer = await jetstreamRate(servers, replicas)
      say(`R${replicas}: ${Math.round(peer)} messages/s; starting two relays…`)
      const relays = await startRelays(dir, servers, replicas)
      say(`R${replicas}: PutRecords through both relays for ${seconds} s…`)
      const puts = await putRecordsRate(relays)
      say(`R${replicas}: ${Math.round(puts)} records/s; device batches over MQTT through both relays for ${seconds} s…`)
      const batches = await mqttRate(relays)
      say(`R${replicas}: ${Math.round(batches)} records/s`)
      rows.push(`R${replicas},${Math.round(peer)},${Math.round(puts)},${(puts / peer).toFixed(2)},${Math.round(batches)},${(batches / peer).toFixed(2)}`)
    } finally {
      for (const c of children.splice(0)) c.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
  console.log('replicas,jetstream_publish_per_s,putrecords_records_per_s,putrecords_share,mqtt_records_per_s,mqtt_share')
  for (const row of rows) console.log(row)
} finally {
  for (const c of children) c.kill('SIGKILL')
}
