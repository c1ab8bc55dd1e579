import t from 'tap'
import { join } from 'node:path'
import { spawn, execFile, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { validateAgentConfig } from '../../agent/config.js'
import { startAgent, type Agent, type AgentDeps } from '../../agent/agent.js'
import { manualClock } from '../../hardware/index.js'
import { loadCodec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { freePort, testRelay, ROOT } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { spawnAgent, writeAgentConfig } from '../helpers/agent.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}
type Tap = { teardown(fn: () => unknown): void }

/** Runs the CLI without blocking this process (which serves the agent being asked). */
const cliRun = (args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
  })
})

async function agentFor(t: Tap, dir: string, url: string, extra: { streams?: object; uplink?: object } = {}, deps: Partial<AgentDeps> = {}): Promise<Agent> {
  const agent = await startAgent(validateAgentConfig({
    device: 'edge-st', relay: { url }, outbox: { path: join(dir, 'outbox.db'), commitIntervalMs: 5 },
    uplink: { backoffInitialMs: 50, ...extra.uplink }, status: { port: 0, publishIntervalMs: 200 },
    streams: { s: {}, ...extra.streams }, sources: [{ type: 'put-api', port: 0 }],
  }), { log: () => {}, codec: loadCodec(process.env), ...deps })
  t.teardown(() => agent.stop())
  return agent
}

const put = (agent: Agent, stream: string, n: number, from = 0) => fetch(`http://127.0.0.1:${agent.putApiPort}/PutRecords`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: stream, Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: `k${i % 4}`, Data: Buffer.from(`r${from + i}`).toString('base64') })) }),
})

t.test('tributary agent status shows backlog, link and a progress bar while a backlog drains', async (t) => {
  const relay = await testRelay(t)
  const dir = tempDir(t)
  // The drain's time is the test's: with the clock held, the rate cap lets one batch go (the bucket
  // starts with one) and no more; a second of clock lets a second's worth go.
  const clock = manualClock({ wallMs: Date.now() })
  const agent = await agentFor(t, dir, `mqtt://127.0.0.1:${relay.mqttPort}`, { uplink: { drainRatePerSecond: 1000, batchRecords: 200 } }, { clock })
  await until('the agent is connected', () => agent.uplink.stats.state === 'connected')
  for (let i = 0; i < 20; i++) t.equal((await put(agent, 's', 500, i * 500)).status, 200)
  await until('the first batch is acknowledged and gone', () => agent.uplink.stats.recordsAcked === 200 && agent.outbox.backlog() === 9800)
  t.match(agent.status().drain, { delivered: 0, remaining: 9800 }, 'a drain begins: a backlog while connected')
  clock.advance(1000)
  await until('a second of budget is delivered', () => agent.uplink.stats.recordsAcked >= 1200 && agent.outbox.backlog() <= 8800)
  t.equal(agent.uplink.stats.recordsAcked, 1200, 'the rate cap holds: 1,000 records in a second')
  const cli = await cliRun(['agent', 'status', '--url', `http://127.0.0.1:${agent.statusPort}`])
  t.equal(cli.status, 0, cli.stderr)
  t.match(cli.stdout, /device edge-st: connected/)
  t.match(cli.stdout, /last PUBACK: \d{4}-/)
  t.match(cli.stdout, /s\s+backlog\s+8800/)
  t.match(cli.stdout, /draining \[#*\.*\] 10\.2% 1000\/9800 at 1000 records\/s/, 'a progress bar while the backlog drains')
  const metrics = await (await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`)).text()
  t.match(metrics, /tributary_agent_records_stored_total\{stream="s"\} 10000/)
  // "r0" … "r9999": 10,000 × "r" and 38,890 digits.
  t.match(metrics, /tributary_agent_record_data_bytes_stored_total\{stream="s"\} 48890\n/, 'the record data committed, in bytes')
  t.match(metrics, /tributary_agent_backlog_records\{stream="s"\} \d+/)
  t.match(metrics, /tributary_agent_connected 1/)
  const down = await cliRun(['agent', 'status', '--url', 'http://127.0.0.1:1'])
  t.equal(down.status, 1)
  t.match(down.stderr, /no agent answers at http:\/\/127\.0\.0\.1:1/)
})

t.test('the put API answers a clear error when a reject-new stream is full, and loses nothing stored', async (t) => {
  const relay = await testRelay(t)
  const dir = tempDir(t)
  // Connected to nothing that stores: a relay port that is closed, so the records stay in the outbox.
  const agent = await agentFor(t, dir, `mqtt://127.0.0.1:${await freePort()}`, { streams: { tight: { maxBytes: 2000, onFull: 'reject-new' } } })
  t.equal((await put(agent, 'tight', 50)).status, 200)
  const refused = await put(agent, 'tight', 50, 50)
  t.equal(refused.status, 503)
  t.match(await refused.json(), { __type: 'OutboxFullException', code: 'STORAGE_FULL', message: /stream tight holds \d+ bytes/ })
  t.equal(agent.outbox.stats().streams.tight?.backlog, 50, 'the records stored before are all still there')
  const dead = await agent.outbox.enqueue([{ stream: 'tight2', partitionKey: 'k', data: Buffer.from('x') }])
  t.equal(dead.length, 1)
  let batch = agent.outbox.formBatch(100, 1 << 20)!
  while (batch.stream !== 'tight2') batch = agent.outbox.formBatch(100, 1 << 20)!
  agent.outbox.deadLetter(batch.seq, null, { code: 'STREAM_NOT_FOUND', message: 'gone' })
  const listed = await (await fetch(`http://127.0.0.1:${agent.statusPort}/dead-letters?limit=10`)).json() as { id: number; data: string | null; code: string }[]
  t.match(listed, [{ code: 'STREAM_NOT_FOUND', data: null }], 'dead letters are listed without their data by default')
  const withData = await (await fetch(`http://127.0.0.1:${agent.statusPort}/dead-letters?data=1&after=0`)).json() as { data: string }[]
  t.equal(Buffer.from(withData[0]!.data, 'base64').toString(), 'x', 'and with it when asked')
  t.same(await (await fetch(`http://127.0.0.1:${agent.statusPort}/dead-letters?after=${listed[0]!.id}`)).json(), [], 'paging goes past the last one')
  const bad = await fetch(`http://127.0.0.1:${agent.putApiPort}/PutRecord`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: 'tight', PartitionKey: '', Data: 'AA==' }) })
  t.equal(bad.status, 400)
  t.match(await bad.json(), { __type: 'ValidationException', message: /partition key/ })
  void relay
})

/** A Mosquitto broker of the test's own on a free port (anonymous, nothing kept), killed at teardown. */
async function startMosquitto(t: Tap, dir: string): Promise<number> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' })
  t.teardown(() => { broker.kill('SIGKILL') })
  return port
}

const hasMosquitto = (() => { try { execFileSync('which', ['mosquitto']); return true } catch { return false } })()

t.test('status is published retained on the device topic, and a stopping agent says goodbye (offline)', { skip: hasMosquitto ? false : 'mosquitto is not installed' }, async (t) => {
  const dir = tempDir(t)
  const port = await startMosquitto(t, dir)
  const agent = await agentFor(t, dir, `mqtt://127.0.0.1:${port}`)
  // Until the broker is up the agent backs off and retries; connected, it has published its status.
  await until('the agent is connected', () => agent.uplink.stats.state === 'connected')
  await put(agent, 's', 3)
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'watcher', protocolVersion: 4 })
  t.teardown(() => watcher.endAsync(true))
  const statuses: { online: boolean; device: string; outbox?: { backlog: number } }[] = []
  watcher.on('message', (_topic, payload, packet) => statuses.push({ ...JSON.parse(payload.toString()), retained: packet.retain }))
  await watcher.subscribeAsync(topics.status('edge-st'), { qos: 1 })
  await until('a status arrives', () => statuses.length > 0)
  t.match(statuses[0], { device: 'edge-st', online: true, retained: true }, 'a new subscriber gets the retained status')
  t.ok(statuses.some((s) => s.outbox !== undefined), 'with the outbox figures')
  await agent.stop()
  await until('the goodbye arrives', () => statuses[statuses.length - 1]?.online === false)
  t.match(statuses[statuses.length - 1], { online: false }, 'stopping marks the device offline')
})

t.test('the will marks a killed agent offline: the broker publishes it when the connection dies unannounced', { skip: hasMosquitto ? false : 'mosquitto is not installed' }, async (t) => {
  const dir = tempDir(t)
  const port = await startMosquitto(t, dir)
  let watcher: mqtt.MqttClient | null = null
  for (const deadline = Date.now() + 20_000; !watcher; await sleep(50)) {
    if (Date.now() > deadline) throw new Error('mosquitto did not come up')
    watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'watcher-kill', protocolVersion: 4, reconnectPeriod: 0 }).catch(() => null)
  }
  t.teardown(() => watcher!.endAsync(true))
  const statuses: { online: boolean; device: string; retained: boolean }[] = []
  watcher.on('message', (_topic, payload, packet) => statuses.push({ ...JSON.parse(payload.toString()), retained: packet.retain }))
  await watcher.subscribeAsync(topics.status('edge-kill'), { qos: 1 })
  const config = writeAgentConfig(dir, {
    device: 'edge-kill', relay: { url: `mqtt://127.0.0.1:${port}` }, outbox: { path: join(dir, 'outbox.db') },
    status: { port: 0, publishIntervalMs: 200 }, streams: { s: {} }, sources: [{ type: 'put-api', port: 0 }],
  })
  const child = await spawnAgent(config)
  t.teardown(() => { child.process.kill('SIGKILL') })
  await until('the agent says it is online', () => statuses.some((s) => s.device === 'edge-kill' && s.online === true))
  child.process.kill('SIGKILL')
  await child.exited
  // No goodbye could be sent: only the broker's will can say the device went offline.
  await until('the will arrives', () => statuses[statuses.length - 1]?.online === false)
  t.match(statuses[statuses.length - 1], { device: 'edge-kill', online: false }, 'the will marks the killed device offline')
  const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'late-watcher', protocolVersion: 4 })
  t.teardown(() => late.endAsync(true))
  const retained = new Promise<{ online: boolean }>((resolve) => late.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()))))
  await late.subscribeAsync(topics.status('edge-kill'), { qos: 1 })
  t.match(await retained, { online: false }, 'and a subscriber arriving later is told so by the retained will')
})

