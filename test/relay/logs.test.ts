/**
 * The relay's log says what happened at the level it deserves (issue 19): a device that connects,
 * publishes and says DISCONNECT is routine; a connection that breaks is one warning with its reason;
 * a device failing in a loop logs a few lines a minute, not one per try.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { resolveRelayConfig } from '../../shared/config.js'
import { ConfigError } from '../../shared/errors.js'
import { jsonLogger, levelOf, LogLimiter } from '../../relay/observe.js'
import { loggedRelay, ROOT, spawnUntilReady } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { connectPacket, PacketType, publishPacket, wireConnect, wireLogin, within, type WireClient } from '../helpers/mqtt-wire.js'

interface Line { level: string; event: string; [field: string]: unknown }

const DISCONNECT = Buffer.from([0xe0, 0x00])

function batch(device: string): Buffer {
  return codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: device, data: Buffer.from(`hello from ${device}`), producerTimeMs: Date.now(), clockSynced: true }] })
}

/** Logs in as `device` and publishes one batch, waiting for its PUBACK. */
async function publishOne(port: number, device: string, keepalive = 60): Promise<WireClient> {
  const { client, returnCode } = await wireLogin(port, { clientId: device, keepalive })
  if (returnCode !== 0) throw new Error(`${device}: CONNACK ${returnCode}`)
  client.write(publishPacket(topics.records(device, 'logs'), 1, batch(device)))
  await within(10_000, client.next(PacketType.PUBACK), `${device}'s PUBACK`)
  return client
}

/** The relay as users run it, its stderr read line by line. */
async function relayProcess(t: Test, args: string[]): Promise<{ mqttPort: number; lines: Line[] }> {
  const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', tempDir(t), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', ...args], 'tributary relay ready')
  const lines: Line[] = []
  let partial = ''
  child.stderr!.on('data', (d: Buffer) => {
    const text = partial + d.toString()
    const parts = text.split('\n')
    partial = parts.pop()!
    for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as Line)
  })
  t.teardown(async () => { child.kill('SIGTERM'); await exited })
  return { mqttPort: Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1]), lines }
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 20 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('1,000 devices that connect, publish and disconnect cleanly log no warning or error; a broken connection logs one warning with its reason', async (t) => {
  const { mqttPort, lines } = await relayProcess(t, ['--log-level', 'debug'])
  const devices = Array.from({ length: 1000 }, (_, i) => `clean-${i}`)
  for (let i = 0; i < devices.length; i += 25) {
    await Promise.all(devices.slice(i, i + 25).map(async (device) => {
      const client = await publishOne(mqttPort, device)
      client.write(DISCONNECT)
      client.socket.end()
      await client.closed
    }))
  }
  await until('every clean end is logged at debug', () => lines.filter((l) => l.event === 'client_disconnected').length === 1000)
  t.same(lines.filter((l) => l.level === 'warn' || l.level === 'error'), [], 'no warn or error line')
  t.ok(lines.every((l) => ['debug', 'info', 'warn', 'error'].includes(l.level) && typeof l.time === 'string'), 'every line has a level and a time')
  t.match(lines.find((l) => l.event === 'client_disconnected'), { level: 'debug', device: /^clean-/ })

  // Closed without DISCONNECT (the device lost power, or its process was killed): one warning.
  const cut = await publishOne(mqttPort, 'cut-1')
  cut.socket.end()
  // Reset (a NAT or a modem dropped the connection): one warning with the socket's reason.
  const reset = await publishOne(mqttPort, 'reset-1')
  reset.socket.resetAndDestroy()
  // Silent (the network went away): the keep-alive runs out (1.5 × 1 s).
  const silent = await publishOne(mqttPort, 'silent-1', 1)
  await within(10_000, silent.closed, 'the silent device is dropped after its keep-alive')
  await until('three connections lost', () => lines.filter((l) => l.event === 'connection_lost').length >= 3)
  await new Promise((r) => setTimeout(r, 200))
  const warnings = lines.filter((l) => l.level === 'warn' || l.level === 'error')
  t.same(warnings.map((l) => [l.event, l.device]).sort(), [['connection_lost', 'cut-1'], ['connection_lost', 'reset-1'], ['connection_lost', 'silent-1']], 'one warning per broken connection, and nothing else')
  t.match(warnings.find((l) => l.device === 'cut-1'), { reason: 'closed without DISCONNECT' })
  t.match(warnings.find((l) => l.device === 'reset-1'), { reason: /ECONNRESET/ })
  t.match(warnings.find((l) => l.device === 'silent-1'), { reason: /keep ?alive/ })
})

t.test('at the default level a clean disconnect is not logged at all', async (t) => {
  const { mqttPort, lines } = await relayProcess(t, [])
  for (let i = 0; i < 20; i++) {
    const client = await publishOne(mqttPort, `quiet-${i}`)
    client.write(DISCONNECT)
    client.socket.end()
    await client.closed
  }
  const cut = await publishOne(mqttPort, 'quiet-cut')
  cut.socket.end()
  await until('the broken one is logged', () => lines.some((l) => l.event === 'connection_lost'))
  t.same(lines.filter((l) => l.event === 'client_disconnected'), [])
  t.ok(lines.every((l) => l.level !== 'debug'), 'no debug line')
})

t.test('a device that reconnects in a loop logs five lines a minute, and the next line counts what was held back', async (t) => {
  const { relay, lines, clock } = await loggedRelay(t)
  const lost = () => lines.filter((l) => l.event === 'connection_lost')
  const connected = async () => Number(/^tributary_connected_devices (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text())![1])
  for (let i = 0; i < 20; i++) {
    const client = await publishOne(relay.mqttPort, 'flappy')
    client.socket.resetAndDestroy()
    // Each end is seen before the next connection (else the next would take the session over instead).
    for (let waited = 0; await connected() !== 0; waited += 10) {
      if (waited > 20_000) throw new Error(`connection ${i} did not end`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  await new Promise((r) => setTimeout(r, 100))
  t.equal(lost().length, 5, 'five of 20 broken connections logged')
  clock.advance(60_000)
  const client = await publishOne(relay.mqttPort, 'flappy')
  client.socket.resetAndDestroy()
  await until('the next minute\'s first line', () => lost().length === 6)
  t.match(lost()[5]!.fields, { device: 'flappy', suppressed: 15 }, 'it says 15 were held back')

  // Failed logins from one address: the same.
  for (let i = 0; i < 12; i++) {
    const c = await wireConnect(relay.mqttPort)
    c.write(connectPacket({ clientId: 'not-registered', username: 'not-registered', password: 'wrong' }))
    await c.closed
  }
  t.equal(lines.filter((l) => l.event === 'auth_failed').length, 5, 'five of 12 failed logins logged')
})

t.test('a session taken over by a new connection of the same device is not a lost connection', async (t) => {
  const { relay, lines, clock } = await loggedRelay(t)
  const first = await publishOne(relay.mqttPort, 'twice')
  const second = await publishOne(relay.mqttPort, 'twice')
  await within(10_000, first.closed, 'the first connection is closed by the second')
  second.write(DISCONNECT)
  second.socket.end()
  await second.closed
  await until('the second end is logged', () => lines.some((l) => l.event === 'client_disconnected'))
  t.same(lines.filter((l) => l.event === 'connection_lost'), [], 'no lost connection')
  t.equal(lines.filter((l) => l.event === 'session_taken_over').length, 1)
})

t.test('a packet over the limit is one packet_too_large warning, not also a lost connection', async (t) => {
  const { relay, lines } = await loggedRelay(t, { maxPacketBytes: 65536 })
  const client = await publishOne(relay.mqttPort, 'big-1')
  client.write(publishPacket(topics.records('big-1', 'logs'), 2, Buffer.alloc(100_000)))
  await within(10_000, client.closed, 'the connection is closed')
  await until('the refusal is logged', () => lines.some((l) => l.event === 'packet_too_large'))
  await new Promise((r) => setTimeout(r, 100))
  t.same(lines.filter((l) => ['packet_too_large', 'connection_lost'].includes(l.event)).map((l) => l.event), ['packet_too_large'])
})

t.test('levels: every known event has one, lines below the chosen level are dropped, and a bad level is refused by name', async (t) => {
  t.equal(levelOf('batch_not_stored'), 'error')
  t.equal(levelOf('connection_lost'), 'warn')
  t.equal(levelOf('client_disconnected'), 'debug')
  t.equal(levelOf('retention'), 'info', 'an event not in the table is info')
  const out: string[] = []
  const log = jsonLogger('warn', (line) => out.push(line))
  log('retention', { freedBytes: 1 })
  log('connection_lost', { device: 'd', reason: 'x' })
  log('batch_not_stored', { device: 'd', level: 'info' })
  const parsed = out.map((l) => JSON.parse(l) as Line)
  t.same(parsed.map((l) => [l.level, l.event]), [['warn', 'connection_lost'], ['error', 'batch_not_stored']], 'info dropped at warn')
  t.equal(parsed[1]!.level, 'error', 'a field named level cannot change a line\'s level')
  t.throws(() => resolveRelayConfig({ 'log-level': 'verbose' }), ConfigError)
  t.throws(() => resolveRelayConfig({ 'log-level': 'verbose' }), /logLevel|log-level.*debug, info, warn or error/)
  t.equal(resolveRelayConfig({}, { TRIBUTARY_LOG_LEVEL: 'error' }).logLevel, 'error')
})

t.test('the limiter forgets quiet sources and holds at most its cap', async (t) => {
  let now = 0
  const limiter = new LogLimiter({ now: () => now, windowMs: 1000, burst: 2, maxSources: 100 })
  const seen: string[] = []
  for (let i = 0; i < 1000; i++) limiter.log((event, fields) => seen.push(`${event}:${String(fields.source)}`), `s${i}`, 'e', { source: `s${i}` })
  t.equal(seen.length, 1000, 'each new source logs')
  t.ok(limiter.size() <= 100, `${limiter.size()} sources tracked, within the cap`)
  now = 5000
  limiter.log(() => {}, 'fresh', 'e', {})
  t.equal(limiter.size(), 1, 'the quiet ones are swept when full')
})
