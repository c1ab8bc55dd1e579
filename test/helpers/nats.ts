/**
 * Real NATS servers with JetStream for tests: Debian's nats-server (2.9) as child processes on free
 * loopback ports, each with its own store directory in the test's temp directory. One server, or a
 * cluster of three joined by routes (R3 streams need all three up to start, two to write). `kill(i)`
 * is kill -9; `start(i)` brings a server back on the same ports and store; `stop()` runs at teardown.
 * .ci/run installs the nats-server package; without it startNats fails saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { freePort } from './relay.js'
import { tempDir } from './tmp.js'

export const NATS_SERVER = '/usr/sbin/nats-server'
const READY_TIMEOUT_MS = 30_000

export interface NatsCluster {
  /** nats://127.0.0.1:PORT of each server, in order. */
  urls: string[]
  /** The servers' client URLs as one comma-separated list (what `--cluster` takes). */
  servers: string
  /** SIGKILLs server i. */
  kill(i: number): void
  /** Starts server i again (same ports, same store) and waits until it takes clients. */
  start(i: number): Promise<void>
  /** True while server i runs. */
  running(i: number): boolean
  /** Waits until JetStream answers through `urls` (a cluster's meta leader is elected). */
  ready(urls?: string[]): Promise<void>
  /** Every server's output so far, for a failing test's message. */
  logs(): string
}

/** Why NATS cannot run here, or null. */
export function natsMissing(): string | null {
  return existsSync(NATS_SERVER) ? null : `nats-server is not installed (${NATS_SERVER}): apt-get install nats-server`
}

async function listening(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within ${READY_TIMEOUT_MS} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Starts `size` NATS servers with JetStream (1, or 3 clustered with routes). */
export async function startNats(t: Test, size: 1 | 3 = 1): Promise<NatsCluster> {
  const missing = natsMissing()
  if (missing !== null) throw new Error(missing)
  const dir = tempDir(t, 'tributary-nats-')
  const nodes: { port: number; route: number; conf: string; child: ChildProcess | null; out: string[] }[] = []
  for (let i = 0; i < size; i++) nodes.push({ port: await freePort(), route: await freePort(), conf: join(dir, `n${i}.conf`), child: null, out: [] })
  nodes.forEach((node, i) => {
    const routes = nodes.filter((_, j) => j !== i).map((other) => `"nats-route://127.0.0.1:${other.route}"`)
    writeFileSync(node.conf, [
      `server_name: n${i}`,
      `listen: 127.0.0.1:${node.port}`,
      `max_payload: 8MB`,
      `jetstream { store_dir: "${join(dir, `store-${i}`)}", max_memory_store: 256MB, max_file_store: 2GB }`,
      ...(size > 1 ? [`cluster { name: tributary, listen: 127.0.0.1:${node.route}, routes: [${routes.join(', ')}] }`] : []),
    ].join('\n') + '\n')
  })

  const start = async (i: number) => {
    const node = nodes[i]!
    const child = spawn(NATS_SERVER, ['-c', node.conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    node.child = child
    const keep = (chunk: Buffer) => { node.out.push(chunk.toString()); if (node.out.length > 400) node.out.splice(0, 100) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    child.on('exit', () => { if (node.child === child) node.child = null })
    await listening(node.port, Date.now() + READY_TIMEOUT_MS)
  }
  const kill = (i: number) => {
    const node = nodes[i]!
    node.child?.kill('SIGKILL')
    node.child = null
  }
  t.teardown(() => { for (let i = 0; i < nodes.length; i++) kill(i) })
  await Promise.all(nodes.map((_, i) => start(i)))
  const urls = nodes.map((node) => `nats://127.0.0.1:${node.port}`)
  const ready = async (through = urls) => {
    const nc = await natsConnect({ servers: through })
    const deadline = Date.now() + READY_TIMEOUT_MS
    try {
      for (;;) {
        try {
          await jetstreamManager(nc, { timeout: 1000 })
          return
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`JetStream was not ready within ${READY_TIMEOUT_MS} ms: ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, 200))
        }
      }
    } finally {
      await nc.close()
    }
  }
  await ready()
  return {
    urls,
    servers: urls.join(','),
    kill,
    start,
    running: (i) => nodes[i]!.child !== null,
    ready,
    logs: () => nodes.map((node, i) => `--- n${i}\n${node.out.join('')}`).join('\n'),
  }
}
