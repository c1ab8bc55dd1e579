/**
 * The agent against a real relay (and a real Mosquitto with limits): rejected records are
 * dead-lettered without holding back the rest, a full relay keeps the data on the device until it
 * has room, and a broker's limits never drive the agent into a reconnect loop.
 */
import t from 'tap'
import { join } from 'node:path'
import { spawn, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { validateAgentConfig } from '../../agent/config.js'
import { startAgent, type Agent, type AgentDeps } from '../../agent/agent.js'
import { manualClock } from '../../hardware/index.js'
import { loadCodec } from '../../hardware/index.js'
import { freePort, spawnRelay, testRelay } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}

async function agentFor(t: Tap, dir: string, url: string, extra: Record<string, unknown> = {}, deps: Partial<AgentDeps> = {}): Promise<Agent> {
  const config = validateAgentConfig({
    device: 'edge-up', relay: { url, ...(extra.relay as object ?? {}) },
    outbox: { path: join(dir, 'outbox.db'), commitIntervalMs: 5 },
    uplink: { backoffInitialMs: 50, backoffMaxMs: 500, ...(extra.uplink as object ?? {}) },
    status: { port: 0 }, streams: { s: {} }, sources: [{ type: 'put-api', port: 0 }],
  })
  const agent = await startAgent(config, { log: () => {}, codec: loadCodec(process.env), ...deps })
  t.teardown(() => agent.stop())
  return agent
}
type Tap = { teardown(fn: () => unknown): void }

const put = (agent: Agent, stream: string, records: { key: string; data: string }[]) => fetch(`http://127.0.0.1:${agent.putApiPort}/PutRecords`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: stream, Records: records.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data).toString('base64') })) }),
})

t.test('a record the relay rejects lands in the dead-letter table and does not hold back the records behind it', async (t) => {
  const relay = await testRelay(t, { autoCreateStreams: false })
  const dir = tempDir(t)
  const agent = await agentFor(t, dir, `mqtt://127.0.0.1:${relay.mqttPort}`)
  await fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'x-amz-target': 'Kinesis_20131202.CreateStream', 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify({ StreamName: 's', ShardCount: 1 }) })
  // A stream the relay does not have (auto-create is off): the whole batch is rejected.
  t.equal((await put(agent, 'nowhere', [{ key: 'k', data: 'lost-stream' }])).status, 200)
  t.equal((await put(agent, 's', [{ key: 'k', data: 'a' }, { key: 'k', data: 'b' }])).status, 200)
  await until('the outbox is empty', () => agent.outbox.backlog() === 0)
  await until('the dead letter is recorded', () => agent.outbox.deadLetters().length === 1)
  t.match(agent.outbox.deadLetters(), [{ stream: 'nowhere', code: 'STREAM_NOT_FOUND' }])
  t.same((await readStream(relay.endpoint, 's')).map((r) => r.data), ['a', 'b'], 'the records behind it were delivered')
  const status = agent.status()
  t.match(status.outbox.deadLetters, [{ stream: 'nowhere', code: 'STREAM_NOT_FOUND', count: 1 }], 'status shows the dead letter')
})

t.test('a relay at its disk cap refuses batches; the agent keeps the data, says why, backs off, and delivers once there is room', async (t) => {
  const dir = tempDir(t)
  const mqttPort = await freePort()
  const args = (cap: number) => ['--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0', '--allow-anonymous', '--max-data-bytes', String(cap)]
  let relay = await spawnRelay(args(2048))
  t.teardown(() => { relay.process.kill('SIGKILL') })
  // The uplink's time is the test's: no retry happens until the clock is moved, and with no jitter
  // each retry waits exactly half its backoff step (50, 100, 200, 400, then the 500 ms cap).
  const clock = manualClock({ wallMs: Date.now() })
  // What the relay said: the uplink logs each refusal with its code (lastError may later hold the reset that follows it).
  const refusals: unknown[] = []
  const log = (event: string, fields?: Record<string, unknown>) => { if (event === 'relay_unavailable') refusals.push(fields?.code) }
  const agent = await agentFor(t, join(dir, 'agent'), `mqtt://127.0.0.1:${mqttPort}`, { uplink: { batchRecords: 10 } }, { clock, random: () => 0, log })
  const link = agent.uplink.stats
  for (let i = 0; i < 20; i++) await put(agent, 's', Array.from({ length: 10 }, (_, j) => ({ key: `k${j}`, data: `r${i * 10 + j}`.padEnd(100, '.') })))
  await until('the relay says it is full', () => refusals.includes('STORAGE_FULL'))
  await until('the uplink waits to retry', () => link.state === 'backoff')
  t.ok(agent.outbox.backlog() > 0, `the agent keeps what the relay could not take (${agent.outbox.backlog()} records)`)
  t.ok(link.reconnects >= 1, 'it backs off and retries')
  // Every attempt is accepted (CONNACK) and then refused: only a PUBACK resets the backoff, so the
  // waits keep growing to the cap instead of looping at the first step.
  for (const wait of [25, 50, 100, 200, 250, 250]) {
    const reconnects = link.reconnects
    clock.advance(wait - 1)
    t.equal(link.state, 'backoff', `no retry before its ${wait} ms`)
    clock.advance(1)
    t.equal(link.state, 'connecting', `the retry after ${wait} ms`)
    await until('the relay refuses again', () => link.reconnects === reconnects + 1 && link.state === 'backoff')
  }
  t.same([...new Set(refusals)], ['STORAGE_FULL'], 'every refusal said why: STORAGE_FULL')
  relay.process.kill('SIGTERM')
  await relay.exited
  relay = await spawnRelay(args(0))
  await until('everything is delivered', () => { clock.advance(250); return agent.outbox.backlog() === 0 }, 30_000)
  const stored = await readStream(relay.endpoint, 's')
  t.equal(stored.length, 200, 'every record arrived')
  t.equal(new Set(stored.map((r) => r.data)).size, 200, 'none twice')
})

const hasMosquitto = (() => { try { execFileSync('which', ['mosquitto']); return true } catch { return false } })()

t.test('a broker that limits packet size and in-flight messages never drives the agent into a reconnect loop', { skip: hasMosquitto ? false : 'mosquitto is not installed' }, async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 65536\nmax_inflight_messages 2\npersistence false\n`)
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' })
  t.teardown(() => { broker.kill('SIGKILL') })
  await sleep(300)
  const agent = await agentFor(t, dir, `mqtt://127.0.0.1:${port}`, { relay: { maxPacketBytes: 65536, maxInflight: 2 }, uplink: { batchBytes: 60_000 } })
  // Records that fill batches close to the limit, and one larger than any batch may be.
  for (let i = 0; i < 10; i++) await put(agent, 's', Array.from({ length: 50 }, (_, j) => ({ key: `k${j}`, data: 'x'.repeat(1000) + (i * 50 + j) })))
  const huge = await put(agent, 's', [{ key: 'huge', data: 'y'.repeat(100_000) }])
  t.equal(huge.status, 400, 'a record that cannot fit in any batch is refused at the door')
  t.match(await huge.json(), { message: /too large for a batch/ })
  await until('the outbox drains through the limited broker', () => agent.outbox.backlog() === 0, 30_000)
  t.equal(agent.uplink.stats.reconnects, 0, 'no reconnect at all')
  t.ok(agent.uplink.stats.batchesAcked >= 9, `${agent.uplink.stats.batchesAcked} batches acknowledged`)
})
