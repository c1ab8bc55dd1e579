/** Relays for tests: in-process on free ports with a temp data directory, or as a child process to kill -9. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import type { Test } from 'tap'
import { resolveRelayConfig, type RelayConfig } from '../../shared/config.js'
import { startRelay, type Relay, type RelayDeps } from '../../relay/relay.js'
import { manualClock as hardwareManualClock, type ManualClock } from '../../hardware/index.js'
import { tempDir } from './tmp.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * An in-process relay. `deps.clock` replaces its clock (iterators, paging tokens, throughput budgets,
 * arrival times, retention, fan-out, housekeeping timers): pass a `manualClock()` so an outcome that
 * depends on elapsed time does not depend on how fast the machine is.
 */
export async function testRelay(t: Test, settings: Partial<RelayConfig> = {}, deps: RelayDeps = {}): Promise<Relay & { endpoint: string }> {
  const config = resolveRelayConfig({}, {}, { dataDir: tempDir(t), mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, ...settings })
  const relay = await startRelay(config, process.env.TRIBUTARY_TEST_LOG ? (event, fields) => { process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`) } : () => {}, deps)
  t.teardown(() => relay.close())
  return Object.assign(relay, { endpoint: `http://127.0.0.1:${relay.httpPort}` })
}

/** A logged line of an in-process relay. */
export interface LoggedLine { event: string; fields: Record<string, unknown> }

/** An in-process relay whose log lines are kept in `lines`, on a manual clock (its own unless given). */
export async function loggedRelay(t: Test, settings: Partial<RelayConfig> = {}, clock: TestClock = manualClock()): Promise<{ relay: Relay & { endpoint: string }; lines: LoggedLine[]; clock: TestClock }> {
  const lines: LoggedLine[] = []
  const config = resolveRelayConfig({}, {}, { dataDir: tempDir(t), mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, ...settings })
  const relay = await startRelay(config, (event, fields = {}) => { lines.push({ event, fields }) }, { clock })
  t.teardown(() => relay.close())
  return { relay: Object.assign(relay, { endpoint: `http://127.0.0.1:${relay.httpPort}` }), lines, clock }
}

/** The hardware's manual clock, with `now()` for the wall time the relay reads. */
export type TestClock = ManualClock & { now: () => number }

/** Starts at `startMs` (by default the real time when it is made, so timestamps look ordinary). */
export function manualClock(startMs = Date.now()): TestClock {
  const clock = hardwareManualClock({ wallMs: startMs })
  return Object.assign(clock, { now: () => clock.wallMs() })
}

/** The count of successful Kinesis API calls of `action` the relay has served, read from its /metrics. */
export async function apiCalls(endpoint: string, action: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('tributary_api_requests_total{') && line.includes(`action="${action}"`) && line.includes('outcome="ok"')) sum += Number(line.split(' ').pop())
  }
  return sum
}

/**
 * Resolves once the relay has served `count` more successful `action` calls than `since` (by default,
 * than when called). "Several polls later", counted rather than slept: a slow machine makes it take
 * longer, never makes it check less. `timeoutMs` only bounds a client that has stopped polling.
 */
export async function afterCalls(endpoint: string, action: string, count: number, since?: number, timeoutMs = 30_000): Promise<void> {
  const from = since ?? await apiCalls(endpoint, action)
  const deadline = Date.now() + timeoutMs
  while ((await apiCalls(endpoint, action)) < from + count) {
    if (Date.now() > deadline) throw new Error(`the relay served fewer than ${count} ${action} calls in ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export interface ChildRelay {
  process: ChildProcess
  mqttPort: number
  httpPort: number
  endpoint: string
  /** Resolves when the process has exited. */
  exited: Promise<number | null>
}

/**
 * Runs `tributary relay` in a child process (through tsx) and resolves once it prints that it is
 * ready. Ports are given so a restarted relay comes back on the same ones.
 */
export async function spawnRelay(args: string[], env: Record<string, string> = {}): Promise<ChildRelay> {
  const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', ...args], 'tributary relay ready', env)
  const mqttPort = Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1])
  const [, scheme, port] = /(https?):\/\/[^:]+:(\d+)/.exec(ready)!
  const httpPort = Number(port)
  return { process: child, mqttPort, httpPort, endpoint: `${scheme}://127.0.0.1:${httpPort}`, exited }
}

/** Runs a TypeScript entry point through tsx and resolves with the first stdout line starting with `prefix`. */
export async function spawnUntilReady(args: string[], prefix: string, env: Record<string, string> = {}, via: string[] = [], nodeArgs: string[] = []): Promise<{ child: ChildProcess; exited: Promise<number | null>; ready: string }> {
  // `via` runs the process under another (strace, say): the child is then that program. `nodeArgs` go to node itself (V8 flags, say).
  const command = [...via, process.execPath, ...nodeArgs, '--import', 'tsx', ...args]
  const child = spawn(command[0]!, command.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const ready = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith(prefix))
      if (line) resolve(line)
    })
    exited.then((code) => reject(new Error(`${args[0]} exited with ${code} before it was ready: ${stderr}`)))
  })
  return { child, exited, ready }
}

/** A free TCP port on loopback (for relays that must come back on the same port). */
export async function freePort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as import('node:net').AddressInfo).port
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}
