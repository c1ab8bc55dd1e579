/**
 * Real NATS servers with JetStream for tests: Debian's nats-server (2.9) as child processes on free
 * loopback ports, each with its own store directory in the test's temp directory. One server, or a
 * cluster of three joined by routes (R3 streams need all three up to start, two to write). `kill(i)`
 * is kill -9; `start(i)` brings a server back on the same ports and store; `stop()` runs at teardown.
 * .ci/run installs the nats-server package; without it startNats fails saying so. `server` runs
 * another binary: the partition test needs 2.10 or later (`currentNatsServer`), which
 * scripts/nats-server-current.sh unpacks from Debian trixie's package.
 *
 * `{ partitionable: true }` (three servers) adds network partitions without root: every route goes
 * through a TCP proxy of this process, one per ordered pair of servers (server i dials j's proxy, which
 * dials j's route port). `partition(groups)` destroys the proxies' connections between groups and
 * refuses new ones; `heal()` accepts them again. The servers must not find each other around the
 * proxies: route gossip tells a server the route address a peer advertises, so each advertises a
 * port of this process that closes every connection (`no_advertise` keeps the client URLs out of it
 * too). Both calls return once each server's monitoring endpoint (/routez) shows the routes the
 * groups allow and no others.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { freePort, ROOT } from './relay.js'
import { tempDir } from './tmp.js'

/** The server binary: Debian's unless TRIBUTARY_NATS_SERVER names another (e.g. a newer release). */
export const NATS_SERVER = process.env.TRIBUTARY_NATS_SERVER || '/usr/sbin/nats-server'
/** util-linux's setpriv (Debian: essential), which execs the server with a parent-death signal. */
const SETPRIV = '/usr/bin/setpriv'
const READY_TIMEOUT_MS = 30_000

/** Every server this process runs, killed when it exits (a test that timed out skips its teardown). */
const running = new Set<ChildProcess>()
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

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

export interface PartitionableNats extends NatsCluster {
  /**
   * Cuts every route between servers in different groups (each server in exactly one group) and
   * resolves once every server's /routez lists exactly its own group's other servers.
   */
  partition(groups: number[][]): Promise<void>
  /** Lets every route through again; resolves once every server has routes to all the others. */
  heal(): Promise<void>
  /** The names (n0, n1, …) of the servers server i has a route to now, from its /routez (each once). */
  routes(i: number): Promise<string[]>
}

export interface NatsOptions {
  /** Routes through proxies this process can cut (three servers only): see the top of this file. */
  partitionable?: boolean
  /** The server binary (default NATS_SERVER). */
  server?: string
}

/** Why NATS cannot run here, or null. */
export function natsMissing(): string | null {
  return existsSync(NATS_SERVER) ? null : `nats-server is not installed (${NATS_SERVER}): apt-get install nats-server`
}

/**
 * A nats-server of 2.10 or later, for the partition test: TRIBUTARY_NATS_SERVER_CURRENT, else what
 * scripts/nats-server-current.sh unpacked (.cache/nats-server/), else the machine's own if it is
 * recent enough. Debian bookworm's 2.9.10 diverged after a partition (docs/cluster.md).
 */
export function currentNatsServer(): { server: string; version: string } | { missing: string } {
  const candidates = [process.env.TRIBUTARY_NATS_SERVER_CURRENT, join(ROOT, '.cache', 'nats-server', 'nats-server'), NATS_SERVER]
  const seen: string[] = []
  for (const server of candidates) {
    if (!server || !existsSync(server)) continue
    const version = serverVersion(server)
    if (!version) continue
    seen.push(`${server} is ${version.text}`)
    if (atLeast(version, 2, 10)) return { server, version: version.text }
  }
  return { missing: `no nats-server 2.10 or later (${seen.join(', ') || 'none found'}): run scripts/nats-server-current.sh` }
}

const versions = new Map<string, { major: number; minor: number; text: string } | null>()
/** What `server --version` says, once per binary. */
function serverVersion(server: string): { major: number; minor: number; text: string } | null {
  if (!versions.has(server)) {
    let out = ''
    try { out = execFileSync(server, ['--version'], { encoding: 'utf8' }) } catch { /* not a working server: no version */ }
    const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(out)
    versions.set(server, m ? { major: Number(m[1]), minor: Number(m[2]), text: m[0] } : null)
  }
  return versions.get(server)!
}
const atLeast = (v: { major: number; minor: number }, major: number, minor: number) => v.major > major || (v.major === major && v.minor >= minor)

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

/**
 * Waits until a stream replicated on every server can be created (a new cluster answers JetStream
 * requests before its meta leader places streams: "jetstream is not enabled", "no suitable peers").
 */
async function placeable(urls: string[]): Promise<void> {
  const nc = await natsConnect({ servers: urls })
  const deadline = Date.now() + READY_TIMEOUT_MS
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2000 })
    for (;;) {
      try {
        await jsm.streams.add({ name: 'tributary-test-probe', subjects: ['tributary-test-probe'], num_replicas: urls.length })
        await jsm.streams.delete('tributary-test-probe')
        return
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`JetStream could not place a stream on ${urls.length} servers within ${READY_TIMEOUT_MS} ms: ${(err as Error).message}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  } finally {
    await nc.close()
  }
}

/** The servers started but did not form a JetStream cluster that can place a stream (they are stopped). */
export class NatsStartError extends Error {}

/**
 * A partitionable cluster, started again on new ports when its servers do not form a JetStream
 * cluster through the proxies: 2.10.27 left JetStream without peers ("no suitable peers for
 * placement") for 30 s in 2 of about 60 starts here, on a loaded machine, before anything was cut.
 */
export async function startPartitionable(t: Test, server: string, attempts = 3): Promise<PartitionableNats> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNats(t, 3, { partitionable: true, server })
    } catch (err) {
      if (!(err instanceof NatsStartError) || attempt >= attempts) throw err
      t.comment(`the NATS servers did not form a cluster (attempt ${attempt} of ${attempts}): starting them again on new ports`)
    }
  }
}

/** Starts `size` NATS servers with JetStream (1, or 3 clustered with routes). */
export async function startNats(t: Test, size: 3, options: NatsOptions & { partitionable: true }): Promise<PartitionableNats>
export async function startNats(t: Test, size?: 1 | 3, options?: NatsOptions): Promise<NatsCluster>
export async function startNats(t: Test, size: 1 | 3 = 1, options: NatsOptions = {}): Promise<NatsCluster | PartitionableNats> {
  const server = options.server ?? NATS_SERVER
  if (!existsSync(server)) throw new Error(server === NATS_SERVER ? natsMissing()! : `nats-server not found at ${server}`)
  if (options.partitionable && size !== 3) throw new TypeError('partitionable NATS needs a cluster of three servers')
  const dir = tempDir(t, 'tributary-nats-')
  const nodes: { port: number; route: number; http: number; conf: string; child: ChildProcess | null; out: string[] }[] = []
  // The proxies listen first: a port freePort hands out is free until its server binds it, and a proxy taking it meanwhile would stop that server.
  const links = options.partitionable ? await routeProxies(t, size, (j) => nodes[j]!.route) : null
  for (let i = 0; i < size; i++) {
    nodes.push({ port: await freePort(), route: await freePort(), http: links ? await freePort() : 0, conf: join(dir, `n${i}.conf`), child: null, out: [] })
  }
  nodes.forEach((node, i) => {
    const routes = links
      ? nodes.flatMap((_, j) => (j === i ? [] : [`"nats-route://127.0.0.1:${links.proxyPort(i, j)}"`]))
      : nodes.filter((_, j) => j !== i).map((other) => `"nats-route://127.0.0.1:${other.route}"`)
    // From 2.10 a server keeps a pool of routes to each peer. Through these proxies, with the
    // advertised address leading nowhere, 3 of 15 starts of 2.10.27 left JetStream without peers
    // for 30 s ("no suitable peers for placement"); with one route per peer, as 2.9 has, 15 of 15
    // started. Partitions cut every route of a pair either way.
    const version = serverVersion(server)
    const pooled = version !== null && atLeast(version, 2, 10)
    const hidden = links ? `, no_advertise: true, advertise: "127.0.0.1:${links.sinkPort}"${pooled ? ', pool_size: -1' : ''}` : ''
    writeFileSync(node.conf, [
      `server_name: n${i}`,
      `listen: 127.0.0.1:${node.port}`,
      ...(links ? [`http: 127.0.0.1:${node.http}`] : []),
      `max_payload: 8MB`,
      `jetstream { store_dir: "${join(dir, `store-${i}`)}", max_memory_store: 256MB, max_file_store: 2GB }`,
      ...(size > 1 ? [`cluster { name: tributary, listen: 127.0.0.1:${node.route}, routes: [${routes.join(', ')}]${hidden} }`] : []),
    ].join('\n') + '\n')
  })

  const start = async (i: number) => {
    const node = nodes[i]!
    // setpriv's parent-death signal: the server dies with this process even when a timed-out test
    // never reaches its teardown (a leaked server keeps routes to ports later tests may be given).
    const child = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', server, '-c', node.conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    node.child = child
    running.add(child)
    const keep = (chunk: Buffer) => { node.out.push(chunk.toString()); if (node.out.length > 400) node.out.splice(0, 100) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    child.on('exit', () => { running.delete(child); if (node.child === child) node.child = null })
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
  // Every server, each on its own: a client of any of them must find JetStream there.
  for (const url of urls) await ready([url])
  if (size > 1) {
    await placeable(urls).catch((err: Error) => {
      // The servers go now, not at teardown: a caller may start another cluster meanwhile.
      for (let i = 0; i < nodes.length; i++) kill(i)
      throw new NatsStartError(`${err.message}\n${nodes.map((node, i) => `--- n${i} (the end of its log)\n${node.out.join('').slice(-4000)}`).join('\n')}`)
    })
  }
  const cluster: NatsCluster = {
    urls,
    servers: urls.join(','),
    kill,
    start,
    running: (i) => nodes[i]!.child !== null,
    ready,
    logs: () => nodes.map((node, i) => `--- n${i}\n${node.out.join('')}`).join('\n'),
  }
  if (!links) return cluster

  const names = new Map<string, string>() // server id → n<i>
  const routes = async (i: number): Promise<string[]> => {
    const get = async (path: string) => (await fetch(`http://127.0.0.1:${nodes[i]!.http}${path}`)).json() as Promise<Record<string, unknown>>
    // A server's id is new at each start: looked up again when one is unknown.
    if (!names.has(((await get('/varz')) as { server_id: string }).server_id)) {
      for (let j = 0; j < nodes.length; j++) {
        const varz = await fetch(`http://127.0.0.1:${nodes[j]!.http}/varz`).then((r) => r.json() as Promise<{ server_id: string }>, () => null)
        if (varz) names.set(varz.server_id, `n${j}`)
      }
    }
    const routez = (await get('/routez')) as { routes?: { remote_id: string }[] }
    // Once per peer: from 2.10 a server may keep a pool of routes to each (three by default).
    return [...new Set((routez.routes ?? []).map((r) => names.get(r.remote_id) ?? r.remote_id))].sort()
  }
  /** Waits until each server's routes are those `allowed` says. */
  const settle = async (allowed: (i: number, j: number) => boolean, what: string) => {
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      const seen = await Promise.all(nodes.map((_, i) => routes(i)))
      const wrong = seen.map((got, i) => ({ i, got, want: nodes.flatMap((_, j) => (j !== i && allowed(i, j) ? [`n${j}`] : [])) }))
        .filter(({ got, want }) => got.join() !== want.join())
      if (!wrong.length) return
      if (Date.now() > deadline) {
        throw new Error(`${what}: routes did not settle within ${READY_TIMEOUT_MS} ms (${wrong.map(({ i, got, want }) => `n${i} has [${got}], wants [${want}]`).join('; ')})`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  // All routes are up (each through its proxy: the advertised address leads nowhere) before a caller can cut one.
  await settle(() => true, 'start')
  return {
    ...cluster,
    routes,
    async partition(groups) {
      const groupOf = new Map<number, number>()
      groups.forEach((group, g) => { for (const i of group) groupOf.set(i, g) })
      if (groupOf.size !== nodes.length || groups.flat().length !== nodes.length || [...groupOf.keys()].some((i) => !nodes[i])) {
        throw new TypeError(`partition needs every server in exactly one group: ${JSON.stringify(groups)}`)
      }
      await links.cut((i, j) => groupOf.get(i) !== groupOf.get(j))
      await settle((i, j) => groupOf.get(i) === groupOf.get(j), `partition ${JSON.stringify(groups)}`)
    },
    async heal() {
      await links.cut(() => false)
      await settle(() => true, 'heal')
    },
  }
}

interface RouteProxies {
  /** The port server i dials to reach server j's route port. */
  proxyPort(i: number, j: number): number
  /** A port that closes every connection: what each server advertises for routes, so gossip finds no way around. */
  sinkPort: number
  /**
   * Cuts the pairs `cut` says and lets every other pair through. A cut pair's connections are
   * destroyed and its proxies stop listening, so a server's redial is refused and it waits its
   * reconnect delay, as against a host that is down (a proxy that accepted and closed at once would
   * have it redial in a busy loop).
   */
  cut(cut: (i: number, j: number) => boolean): Promise<void>
}

/** One TCP proxy per ordered pair of servers, closed at teardown. */
async function routeProxies(t: Test, size: number, routePort: (j: number) => number): Promise<RouteProxies> {
  const listenOnce = (server: Server, port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve((server.address() as import('node:net').AddressInfo).port)
    })
  })
  /** Listens on `port` (0: any); a port given back may be in a client's hands for a moment, so that is retried. */
  const listen = async (server: Server, port = 0): Promise<number> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await listenOnce(server, port)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 100) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }
  const pairKey = (i: number, j: number) => `${Math.min(i, j)}-${Math.max(i, j)}`
  const open = new Map<string, Set<Socket>>() // live sockets by unordered pair
  const proxies: { i: number; j: number; server: Server; port: number }[] = []
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      if (i === j) continue
      const pair = pairKey(i, j)
      const server = createServer({ noDelay: true }, (inbound) => {
        const outbound = connect({ port: routePort(j), host: '127.0.0.1', noDelay: true })
        const live = open.get(pair) ?? new Set<Socket>()
        open.set(pair, live)
        for (const socket of [inbound, outbound]) {
          live.add(socket)
          socket.on('error', () => {})
          socket.on('close', () => { live.delete(socket); inbound.destroy(); outbound.destroy() })
        }
        inbound.pipe(outbound)
        outbound.pipe(inbound)
      })
      proxies.push({ i, j, server, port: await listen(server) })
    }
  }
  const sink = createServer((socket) => { socket.on('error', () => {}); socket.destroy() })
  const sinkPort = await listen(sink)
  t.teardown(() => {
    for (const live of open.values()) for (const socket of live) socket.destroy()
    for (const { server } of proxies) if (server.listening) server.close()
    sink.close()
  })
  return {
    proxyPort: (i, j) => proxies.find((p) => p.i === i && p.j === j)!.port,
    sinkPort,
    async cut(cut) {
      for (const proxy of proxies) {
        const cutNow = cut(proxy.i, proxy.j)
        if (cutNow && proxy.server.listening) proxy.server.close()
        if (cutNow) for (const socket of open.get(pairKey(proxy.i, proxy.j)) ?? []) socket.destroy()
        // The same port again: the servers' configurations name it.
        if (!cutNow && !proxy.server.listening) await listen(proxy.server, proxy.port)
      }
    },
  }
}
