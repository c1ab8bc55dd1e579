/**
 * Unplugging a serial sensor: socat is stopped at random moments while a sensor streams JSON lines
 * at 100/s, and started again. The agent notices each loss within 5 s, reopens each time, and every
 * line it read whole reaches the relay once, in order. Two agents never share a port. Quick variant:
 * 4 unplugs; soak tier (TRIBUTARY_SOAK=1): 100.
 */
import t from 'tap'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { ROOT, testRelay } from '../helpers/relay.js'
import { spawnAgent, writeAgentConfig, type ChildAgent } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'
import { openSensor, ptyPair } from '../helpers/pty.js'

const SOAK = process.env.TRIBUTARY_SOAK === '1'
const UNPLUGS = SOAK ? 100 : 4
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface SerialStatus { readings: number; framingErrors: Record<string, number>; link: { state: string; losses: number; opens: number; lastOpenError: { code: string; message: string } | null } }
async function serialStatus(agent: ChildAgent, name: string): Promise<SerialStatus> {
  return ((await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { serial: Record<string, SerialStatus> }).serial[name]!
}
async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<number> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(25)
  }
  return performance.now() - started
}

t.test(`${UNPLUGS} unplugs at random moments: each noticed within 5 s, reopened, no line that arrived whole lost`, async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t)
  const pty = await ptyPair(t, dir, 'env')
  const config = writeAgentConfig(dir, {
    device: 'edge-unplug',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, 'outbox.db') },
    status: { port: 0 },
    streams: { sensors: {} },
    sources: [{ type: 'serial', name: 'env', stream: 'sensors', path: pty.device, baudRate: 115200, parser: 'json', partitionKey: 'env-1', reopenInitialMs: 100, reopenMaxMs: 1000 }],
  })
  const agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })
  await until('first open', async () => (await serialStatus(agent, 'env')).link.state === 'open', 5000)

  let n = 0
  let sensor = await openSensor(pty.sensor)
  let feeding = true
  // While unplugged there is no cable: the sensor's lines go nowhere until the agent has the port again.
  let plugged = true
  let writing = false
  // The sensor streams whole lines at 100/s; writes while unplugged fail and are not counted.
  const feeder = (async () => {
    while (feeding) {
      if (plugged) {
        writing = true
        if (await sensor.write(JSON.stringify({ n }) + '\n')) n++
        writing = false
      }
      await sleep(10)
    }
  })()

  let slowestNotice = 0
  // The number of lines written when each unplug began: a line can only be lost just before one.
  const cuts: number[] = []
  for (let k = 0; k < UNPLUGS; k++) {
    await sleep(200 + Math.random() * 600)
    const losses = (await serialStatus(agent, 'env')).link.losses
    const unplugged = pty.unplug(k % 2 ? 'SIGKILL' : 'SIGTERM')
    plugged = false
    cuts.push(writing ? n + 1 : n)
    await unplugged
    const noticed = await until(`loss ${k + 1} noticed`, async () => (await serialStatus(agent, 'env')).link.losses > losses, 5000)
    slowestNotice = Math.max(slowestNotice, noticed)
    await sleep(Math.random() * 300)
    await pty.plug()
    await sensor.close()
    sensor = await openSensor(pty.sensor)
    await until(`reopen ${k + 1}`, async () => (await serialStatus(agent, 'env')).link.state === 'open', 5000)
    plugged = true
  }
  await sleep(300)
  feeding = false
  await feeder
  await sensor.close()
  t.ok(slowestNotice < 5000, `every loss noticed within 5 s (slowest ${Math.round(slowestNotice)} ms)`)

  const s = await serialStatus(agent, 'env')
  t.equal(s.link.losses, UNPLUGS, 'each unplug counted once')
  t.equal(s.link.opens, UNPLUGS + 1, 'reopened after each')
  // A line written just before the sensor closed may still be on its way through the pty and the
  // parser: the count is the one read once everything counted is delivered and it stopped changing.
  let readings = -1
  await until('all delivered', async () => {
    const st = (await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { outbox: { backlog: number }; link: { recordsAcked: number }; serial: Record<string, { readings: number }> }
    const now = st.serial.env!.readings
    const settled = now === readings && st.outbox.backlog === 0 && st.link.recordsAcked >= now
    readings = now
    return settled
  }, 20_000)
  const records = await readStream(relay.endpoint, 'sensors')
  const ns = records.map((r) => (JSON.parse(r.data) as { n: number }).n)
  t.equal(records.length, readings, 'every line the agent counted is in the stream')
  t.ok(ns.every((v, i) => i === 0 || v > ns[i - 1]!), 'in order, no duplicates')
  // Judged against what the sensor wrote, not the agent's own count. A line is lost only when the
  // cable goes while it is in the wire or the pty (cut in half, or not yet read): that is a tail of
  // the lines written before an unplug, never a line with a delivered one after it in the same
  // stretch, and never a line written after the last reopen.
  const delivered = new Set(ns)
  const misplaced: number[] = []
  let missing = 0
  for (let m = 0; m < n; m++) {
    if (delivered.has(m)) continue
    missing++
    const cut = cuts.find((c) => c > m)
    if (cut === undefined) { misplaced.push(m); continue }
    for (let later = m + 1; later < cut; later++) if (delivered.has(later)) { misplaced.push(m); break }
  }
  t.same(misplaced, [], `${missing} of ${n} lines missing, each in the tail cut off by an unplug (cuts at ${cuts.join(', ')})`)
  for (let k = 0; k < cuts.length; k++) {
    const from = k === 0 ? 0 : cuts[k - 1]!
    t.ok(ns.some((v) => v >= from && v < cuts[k]!), `lines written before unplug ${k + 1} arrived`)
  }
  t.same(Object.keys(s.framingErrors).filter((c) => c !== 'PARTIAL' && c !== 'MALFORMED'), [], 'only cut lines were discarded')
})

t.test('two agents on one port: the second is refused with SERIAL_BUSY and takes over when the first stops', async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t)
  const pty = await ptyPair(t, dir, 'shared')
  const config = (name: string) => writeAgentConfig(dir, {
    device: name,
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, `${name}.db`) },
    status: { port: 0 },
    streams: { sensors: {} },
    sources: [{ type: 'serial', name: 'port', stream: 'sensors', path: pty.device, parser: 'lines', reopenInitialMs: 100, reopenMaxMs: 500 }],
  })
  const first = await spawnAgent(config('first'))
  t.teardown(() => { first.process.kill('SIGKILL') })
  await until('first opens', async () => (await serialStatus(first, 'port')).link.state === 'open', 5000)
  const second = await spawnAgent(config('second'))
  t.teardown(() => { second.process.kill('SIGKILL') })
  await until('second is refused', async () => (await serialStatus(second, 'port')).link.lastOpenError?.code === 'SERIAL_BUSY', 5000)
  const refused = await serialStatus(second, 'port')
  t.match(refused.link.lastOpenError!.message, /another process holds this port/)
  t.not(refused.link.state, 'open')
  const cli = await new Promise<string>((resolve) => execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), 'agent', 'status', '--url', `http://127.0.0.1:${second.statusPort}`], { cwd: ROOT, encoding: 'utf8' }, (_err, stdout) => resolve(stdout)))
  t.match(cli, /serial port: (down|opening) \(SERIAL_BUSY: .*another process holds this port\)/, 'agent status says why the port is not open')

  const sensor = await openSensor(pty.sensor)
  await sensor.write('to the first\n')
  await until('the first reads', async () => (await serialStatus(first, 'port')).readings === 1, 5000)
  t.equal((await serialStatus(second, 'port')).readings, 0, 'the second read nothing')

  first.process.kill('SIGTERM')
  t.equal(await first.exited, 0, 'the first stops cleanly')
  await until('the second takes over', async () => (await serialStatus(second, 'port')).link.state === 'open', 5000)
  await sensor.write('to the second\n')
  await until('the second reads', async () => (await serialStatus(second, 'port')).readings === 1, 5000)
  await sensor.close()
})
