/**
 * The agent under systemd: the unit passes `systemd-analyze verify` and scores at most 2.5 on
 * `systemd-analyze security`; a process started with a stand-in NOTIFY_SOCKET (a unix datagram
 * socket this test owns, through socat) receives READY=1 only after the outbox is open, WATCHDOG=1
 * while the pipeline makes progress (fed when idle, withheld when a store waits or the process hangs),
 * and STOPPING=1 on SIGTERM, which commits everything read
 * and exits well within TimeoutStopSec.
 */
import t, { type Test } from 'tap'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Records } from '../../agent/outbox/records.js'
import { ROOT, freePort, spawnUntilReady } from '../helpers/relay.js'
import { writeAgentConfig, putRecords } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'
import { openSensor, ptyPair } from '../helpers/pty.js'
import { renderUnit } from '../../agent/install.js'
import { startAgent } from '../../agent/agent.js'
import { validateAgentConfig } from '../../agent/config.js'
import { startWatchdog, type Notifier } from '../../agent/systemd.js'
import { manualClock } from '../../hardware/index.js'
import { loadCodec } from '../../hardware/index.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p))

interface NotifySocket {
  path: string
  messages: { text: string }[]
  count(key: string): number
  /** Sends MARK=name to the socket and waits for it: everything queued before it has been read. */
  mark(name: string): Promise<void>
}

/** Waits until /proc says the process is in the given state (T: stopped by a signal). */
async function processState(pid: number, state: string): Promise<void> {
  for (let i = 0; readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== state; i++) {
    if (i > 500) throw new Error(`process ${pid} never reached state ${state}`)
    await sleep(10)
  }
}

/** A stand-in for systemd's notify socket: every message, in the order it arrived. */
async function notifySocket(t: Test, dir: string): Promise<NotifySocket> {
  const path = join(dir, 'notify.sock')
  const messages: { text: string }[] = []
  const socat: ChildProcess = spawn('socat', ['-u', `UNIX-RECV:${path}`, '-'], { stdio: ['ignore', 'pipe', 'ignore'] })
  socat.stdout!.on('data', (d: Buffer) => messages.push({ text: d.toString() }))
  t.teardown(() => { socat.kill() })
  for (let i = 0; !existsSync(path); i++) {
    if (i > 200) throw new Error('socat did not create the notify socket')
    await sleep(10)
  }
  // Messages may arrive joined (systemd-notify ends its last line without a newline): count tokens.
  const count = (key: string) => messages.reduce((n, m) => n + (m.text.match(new RegExp(`(^|\\n|\\d)${key}`, 'g'))?.length ?? 0), 0)
  const mark = async (name: string) => {
    execFileSync('socat', ['-u', '-', `UNIX-SENDTO:${path}`], { input: `MARK=${name}\n` })
    for (let i = 0; !messages.some((m) => m.text.includes(`MARK=${name}\n`)); i++) {
      if (i > 500) throw new Error(`marker ${name} never came back`)
      await sleep(10)
    }
  }
  return { path, messages, count, mark }
}

function agentProcess(config: string, env: Record<string, string>) {
  return spawnUntilReady([join(ROOT, 'agent/entry.ts'), 'agent', 'run', '--config', config], 'tributary agent ready', env)
}

t.test('the unit passes systemd-analyze verify, and its security exposure is at most 2.5', { skip: ANALYZE ? false : 'systemd-analyze is not installed (Debian package systemd)' }, async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'agent.yaml')
  writeFileSync(config, 'device: d\n')
  const unit = renderUnit(readFileSync(join(ROOT, 'deploy/tributary-agent.service'), 'utf8'), { node: process.execPath, agent: join(ROOT, 'bin/tributary-agent.js'), config, passwordFile: config })
  const path = join(dir, 'tributary-agent.service')
  writeFileSync(path, unit)
  const verify = execFileSync(ANALYZE!, ['verify', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  t.equal(verify.trim(), '', 'verify reports nothing')
  const security = execFileSync(ANALYZE!, ['security', '--offline=yes', path], { encoding: 'utf8' })
  const score = Number(/Overall exposure level for tributary-agent\.service: ([\d.]+)/.exec(security)?.[1])
  t.ok(score <= 2.5, `exposure ${score} ≤ 2.5`)
  t.match(unit, /^Type=notify$/m)
  t.match(unit, /^WatchdogSec=/m)
  t.match(unit, /^StateDirectory=tributary-agent$/m)
  t.match(unit, /^SupplementaryGroups=dialout video$/m)
  t.match(unit, /^ProtectSystem=strict$/m)
  t.notMatch(unit, /^MemoryDenyWriteExecute=yes/m, 'not MemoryDenyWriteExecute: it kills V8\'s JIT')
  t.match(unit, /^LoadCredential=relay-password:/m)
})

t.test('READY=1 comes only after the outbox is open; WATCHDOG=1 while records move and never while the process hangs; STOPPING=1 on SIGTERM', async (t) => {
  const dir = tempDir(t)
  const notify = await notifySocket(t, dir)
  const pty = await ptyPair(t, dir, 'wd')
  const outbox = join(dir, 'outbox.db')
  const config = writeAgentConfig(dir, {
    device: 'edge-notify',
    relay: { url: `mqtt://127.0.0.1:${await freePort()}` }, // nobody there: an outage is not a stall
    outbox: { path: outbox },
    status: { port: 0 },
    streams: { sensors: {} },
    sources: [{ type: 'serial', name: 'wd', stream: 'sensors', path: pty.device, parser: 'lines' }],
  })
  const { child, exited } = await agentProcess(config, { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '1000000' })
  t.teardown(() => { child.kill('SIGKILL') })
  for (let i = 0; notify.count('READY=1') === 0; i++) {
    if (i > 200) throw new Error('no READY=1')
    await sleep(10)
  }
  t.equal(notify.count('WATCHDOG=1'), 0, 'nothing before READY=1')
  t.match(notify.messages[0]!.text, /^READY=1\n/, 'READY=1 is the first message')
  // The outbox is open when READY=1 arrives: it exists and the agent holds its exclusive lock.
  t.ok(existsSync(outbox), 'the outbox exists')
  const db = new Database(outbox, { timeout: 0 })
  t.throws(() => db.exec('BEGIN IMMEDIATE'), { code: 'SQLITE_BUSY' }, 'and is locked by the agent')
  db.close()

  const sensor = await openSensor(pty.sensor)
  let feeding = true
  const feeder = (async () => { for (let n = 0; feeding; n++) { await sensor.write(`reading ${n}\n`); await sleep(20) } })()
  for (let i = 0; notify.count('WATCHDOG=1') < 2; i++) {
    if (i > 1000) throw new Error('no WATCHDOG=1 within 10 s')
    await sleep(10)
  }
  t.ok(notify.count('WATCHDOG=1') >= 2, 'fed while records move')

  // A hung process feeds nothing: systemd would restart it. Judged by order, not by arrival times:
  // once the process is stopped (state T), a marker sent to the socket queues behind everything it
  // sent before, so the count at the marker is the count at the stop.
  child.kill('SIGSTOP')
  await processState(child.pid!, 'T')
  await notify.mark('hang-begins')
  const beforeHang = notify.count('WATCHDOG=1')
  await sleep(2500) // two and a half watchdog intervals
  await notify.mark('hang-ends')
  t.equal(notify.count('WATCHDOG=1'), beforeHang, 'no WATCHDOG=1 while the process hangs')
  child.kill('SIGCONT')
  for (let i = 0; notify.count('WATCHDOG=1') === beforeHang; i++) {
    if (i > 1000) throw new Error('no WATCHDOG=1 within 10 s of SIGCONT')
    await sleep(10)
  }
  t.ok(notify.count('WATCHDOG=1') > beforeHang, 'fed again once it moves again')
  feeding = false
  await feeder
  await sensor.close()

  const termAt = performance.now()
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0 on SIGTERM')
  t.ok(performance.now() - termAt < 20_000, 'within TimeoutStopSec')
  t.ok(notify.count('STOPPING=1') >= 1, 'said STOPPING=1')
})

t.test('a config that fails validation never sends READY=1', async (t) => {
  const dir = tempDir(t)
  const notify = await notifySocket(t, dir)
  const config = writeAgentConfig(dir, { device: 'edge-bad', relay: { url: 'http://nope' }, streams: {} })
  await t.rejects(agentProcess(config, { NOTIFY_SOCKET: notify.path }), /relay\.url: must be mqtt:\/\/host:port/)
  await sleep(200)
  t.equal(notify.count('READY=1'), 0)
})

t.test('SIGTERM commits every line read before it, in order, and exits well within TimeoutStopSec', async (t) => {
  const dir = tempDir(t)
  const pty = await ptyPair(t, dir, 'term')
  const outbox = join(dir, 'outbox.db')
  const config = writeAgentConfig(dir, {
    device: 'edge-term',
    relay: { url: `mqtt://127.0.0.1:${await freePort()}` },
    outbox: { path: outbox },
    status: { port: 0 },
    streams: { sensors: {} },
    sources: [{ type: 'serial', name: 'term', stream: 'sensors', path: pty.device, parser: 'lines' }],
  })
  const { child, exited } = await agentProcess(config, {})
  t.teardown(() => { child.kill('SIGKILL') })
  await sleep(300)
  const sensor = await openSensor(pty.sensor)
  let n = 0
  const stopAfter = 500 + Math.random() * 1000
  const started = performance.now()
  while (performance.now() - started < stopAfter) { if (await sensor.write(`line ${n}\n`)) n++; await sleep(10) }
  const written = n
  const termAt = performance.now()
  child.kill('SIGTERM')
  const code = await exited
  const took = performance.now() - termAt
  await sensor.close()
  t.equal(code, 0)
  t.ok(took < 5000, `stopped in ${Math.round(took)} ms`)
  const db = new Database(outbox, { readonly: true })
  const records = new Records(db)
  const rows = records.perStream().flatMap((s) => records.range(s.stream, 0, Number.MAX_SAFE_INTEGER)).sort((a, b) => a.id - b.id).map((r) => Number(r.data.toString().split(' ')[1]))
  db.close()
  t.same(rows, Array.from({ length: rows.length }, (_, i) => i), 'a gapless prefix, in order')
  t.ok(rows.length >= written - 3, `${rows.length} of ${written} lines committed (only lines still in the pty may be missing)`)
})

t.test('the watchdog is withheld while a store waits on a wedged outbox, and resumes when it moves', async (t) => {
  const dir = tempDir(t)
  // The watchdog's time is the test's: it ticks every 200 ms of this clock and judges waits by it.
  const clock = manualClock()
  const agent = await startAgent(validateAgentConfig({
    device: 'edge-wedge', relay: { url: `mqtt://127.0.0.1:${await freePort()}` }, outbox: { path: join(dir, 'outbox.db') },
    status: { port: 0 }, streams: { s: {} }, sources: [{ type: 'put-api', port: 0 }],
  }), { log: () => {}, codec: loadCodec(process.env), clock })
  t.teardown(() => agent.stop())
  const sent: string[] = []
  const logged: string[] = []
  const notifier: Notifier = { implementation: 'native', send: (m) => sent.push(m) }
  const stop = startWatchdog(notifier, 400, agent.progress, (e) => logged.push(e), () => 'ok', clock)
  t.teardown(stop)
  const fed = () => sent.filter((m) => m.startsWith('WATCHDOG=1')).length
  // Idle, with the relay unreachable: nothing waits, the outbox holds whatever comes; no reason to restart.
  clock.advance(200)
  t.equal(fed(), 1, 'fed while idle, even with the relay away')
  t.equal((await putRecords(agent.putApiPort!, 's', [{ key: 'k', data: 'one' }])).status, 200)
  clock.advance(200)
  t.equal(fed(), 2, 'fed while stores commit')
  // Wedge the outbox: commits stop completing (as on a hung disk).
  const enqueue = agent.outbox.enqueue.bind(agent.outbox)
  let release: () => void = () => {}
  let entered: () => void = () => {}
  const gate = new Promise<void>((r) => { release = r })
  const waiting = new Promise<void>((r) => { entered = r })
  agent.outbox.enqueue = (rows) => { entered(); return gate.then(() => enqueue(rows)) }
  const pending = putRecords(agent.putApiPort!, 's', [{ key: 'k', data: 'two' }])
  await waiting
  // A store may wait up to half the interval (200 ms) and the watchdog is still fed; past that, not.
  clock.advance(200)
  t.equal(fed(), 3, 'fed while the wait is within half the interval')
  const before = sent.length
  clock.advance(1000)
  t.equal(sent.length, before, 'no WATCHDOG=1 while a store waits')
  t.ok(logged.includes('watchdog_withheld'), 'and the agent says why')
  release()
  t.equal((await pending).status, 200, 'the waiting record is stored once the outbox moves')
  clock.advance(200)
  t.ok(sent.length > before, 'fed again')
  t.ok(logged.includes('watchdog_resumed'))
})
