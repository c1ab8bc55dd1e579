/**
 * A real S3 server for tests: OpenStack Swift (Debian's 2.30) with its s3api middleware, on loopback,
 * with a throwaway one-device ring in the test's own temp directory. Proxy, object, container and
 * account servers and memcached each run as their own child process on free ports; `stop()` and
 * `start()` take the proxy down and bring it back on the same port, so a test can make the sink
 * unreachable. Credentials are tempauth's: access key `test:tester`, secret `testing`.
 *
 * Tests run in parallel and each picks free ports, so a port can be taken by another test between
 * being picked and being bound (Swift then retries its bind for 30 s). A server counts as ready only
 * when its own process holds the listening socket (read from /proc), never because something else
 * answers on its port; a start that finds a port taken begins again on new ports.
 *
 * Swift needs a file system with xattrs for its devices (ext4 or xfs; /tmp is ext4 here). .ci/run
 * installs the Debian packages; without them startSwift fails saying which are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { freePort } from './relay.js'
import { tempDir } from './tmp.js'

export interface Swift {
  /** http://127.0.0.1:PORT, the proxy (S3 API with path-style buckets). */
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  region: string
  /** Milliseconds from spawning the servers to all of them answering. */
  startupMs: number
  /** Creates a bucket (S3 CreateBucket through the proxy). */
  createBucket(name: string): Promise<void>
  /** Stops the proxy (SIGTERM, then SIGKILL): requests are refused until start(). */
  stop(): Promise<void>
  /** Starts the proxy again on the same port and waits until it answers. */
  start(): Promise<void>
  /** The servers' logs, for a failing test's message. */
  logs(): string
}

const SERVERS = {
  proxy: '/usr/bin/swift-proxy-server',
  object: '/usr/bin/swift-object-server',
  container: '/usr/bin/swift-container-server',
  account: '/usr/bin/swift-account-server',
} as const
const MEMCACHED = '/usr/bin/memcached'
const SETPRIV = '/usr/bin/setpriv'
const READY_TIMEOUT_MS = 45_000   // ~5 s idle, ~10 s with two test files running beside it on 2 cores
const START_ATTEMPTS = 3
const REGION = 'us-east-1'

type Backend = 'object' | 'container' | 'account'
const BACKENDS: Backend[] = ['object', 'container', 'account']

/** Why Swift cannot run here (packages missing), or null. */
export function swiftMissing(): string | null {
  const absent = [...Object.values(SERVERS), MEMCACHED, '/usr/bin/python3'].filter((path) => !existsSync(path))
  return absent.length === 0 ? null : `Swift is not installed (missing ${absent.join(', ')}): apt-get install swift-proxy swift-object swift-container swift-account memcached python3-swift`
}

/** A port picked for one of the servers is held by another process. */
class PortTaken extends Error {}

export async function startSwift(t: Test): Promise<Swift> {
  const missing = swiftMissing()
  if (missing !== null) throw new Error(missing)
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(t)
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === START_ATTEMPTS) throw err
      t.comment(`${err.message}; starting Swift again on new ports`)
    }
  }
}

async function startOnce(t: Test): Promise<Swift> {
  const dir = tempDir(t, 'tributary-swift-')
  const devices = join(dir, 'devices')
  mkdirSync(join(devices, 'sdb1'), { recursive: true })
  const user = userInfo().username
  const ports = { proxy: await freePort(), object: await freePort(), container: await freePort(), account: await freePort(), memcached: await freePort() }

  writeConfigs(dir, devices, user, ports)
  buildRings(dir, ports)

  const children = new Map<string, ChildProcess>()
  const logFiles = new Map<string, string>()
  const launch = (name: string, command: string, args: string[]): void => {
    const log = join(dir, `${name}.log`)
    logFiles.set(name, log)
    const fd = openSync(log, 'a')
    // setpriv execs the server in place (same pid) with a parent-death signal: a test process that
    // dies without its teardown (a tap timeout) takes its servers with it.
    const child = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], { stdio: ['ignore', fd, fd] })
      : spawn(command, args, { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    children.set(name, child)
  }
  const logs = (): string => [...logFiles].map(([name, path]) => `--- ${name} (${path})\n${tail(path)}`).join('\n')
  const stopChild = async (name: string): Promise<void> => {
    const child = children.get(name)
    children.delete(name)
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 3_000)
    await exited
    clearTimeout(killer)
  }
  const stopAll = async (): Promise<void> => {
    await Promise.all([...children.keys()].map(stopChild))
  }
  t.teardown(stopAll)

  const began = Date.now()
  launch('memcached', MEMCACHED, ['-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0', '-m', '16', '-u', user])
  for (const backend of BACKENDS) launch(backend, SERVERS[backend], [join(dir, `${backend}-server.conf`), '--verbose'])
  const launchProxy = (): void => launch('proxy', SERVERS.proxy, [join(dir, 'proxy-server.conf'), '--verbose'])
  launchProxy()
  const waitFor = async (names: string[]): Promise<void> => {
    const deadline = Date.now() + READY_TIMEOUT_MS
    const pending = new Set(names)
    while (pending.size > 0) {
      for (const name of pending) {
        const child = children.get(name)
        const port = ports[name as keyof typeof ports]
        const holder = listener(port, child?.pid)
        if (holder !== undefined && holder !== child?.pid) throw new PortTaken(`port ${port}, picked for Swift's ${name} server, is held by process ${holder}`)
        if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
          throw new Error(`Swift's ${name} server exited (${child.exitCode ?? child.signalCode}) before it was ready\n${logs()}`)
        }
        if (holder === undefined) continue
        // memcached speaks its own protocol; the others must answer their healthcheck too.
        if (name === 'memcached' || (await answers(port))) pending.delete(name)
      }
      if (pending.size === 0) break
      if (Date.now() > deadline) throw new Error(`Swift's ${[...pending].join(', ')} did not answer /healthcheck within ${READY_TIMEOUT_MS} ms\n${logs()}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  try {
    await waitFor(['memcached', 'proxy', ...BACKENDS])
  } catch (err) {
    await stopAll()
    throw err
  }
  const startupMs = Date.now() - began

  const endpoint = `http://127.0.0.1:${ports.proxy}`
  const credentials = { accessKeyId: 'test:tester', secretAccessKey: 'testing' }
  return {
    endpoint,
    ...credentials,
    region: REGION,
    startupMs,
    async createBucket(name: string) {
      const client = new S3Client({ endpoint, region: REGION, credentials, forcePathStyle: true, maxAttempts: 1 })
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }))
      } finally {
        client.destroy()
      }
    },
    async stop() {
      await stopChild('proxy')
    },
    async start() {
      if (children.has('proxy')) return
      launchProxy()
      await waitFor(['proxy'])
    },
    logs,
  }
}

/**
 * The pid of the process holding the listening TCP socket on 127.0.0.1:`port` (or on any address),
 * looking at `likely`'s descriptors first; undefined when nothing listens there, -1 when a process this
 * user cannot see holds it.
 */
function listener(port: number, likely?: number): number | undefined {
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXADDR:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
      if (fields.length < 10 || fields[3] !== '0A') continue
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(fields[9]!)
    }
  }
  if (inodes.size === 0) return undefined
  const pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))
  // The server we launched is the usual holder: look at its descriptors first.
  if (likely !== undefined) pids.unshift(String(likely))
  for (const entry of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let target: string
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`)
      } catch {
        continue
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
      if (inode !== undefined && inodes.has(inode)) return Number(entry)
    }
  }
  return -1
}

/** Whether a server answers GET /healthcheck with 200. */
async function answers(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(1_000) })
    await response.arrayBuffer()
    return response.ok
  } catch {
    return false
  }
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

function writeConfigs(dir: string, devices: string, user: string, ports: Record<'proxy' | Backend | 'memcached', number>): void {
  // swift_dir points every server at this directory's swift.conf and rings, not /etc/swift's.
  const common = (port: number) => `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
swift_dir = ${dir}
devices = ${devices}
mount_check = false
user = ${user}
workers = 0
log_level = INFO
`
  writeFileSync(join(dir, 'swift.conf'), `[swift-hash]
swift_hash_path_suffix = tributary-test
swift_hash_path_prefix = tributary-test

[storage-policy:0]
name = Policy-0
default = yes
`)
  for (const backend of BACKENDS) {
    writeFileSync(join(dir, `${backend}-server.conf`), `${common(ports[backend])}
[pipeline:main]
pipeline = healthcheck ${backend}-server

[app:${backend}-server]
use = egg:swift#${backend}

[filter:healthcheck]
use = egg:swift#healthcheck
`)
  }
  writeFileSync(join(dir, 'proxy-server.conf'), `${common(ports.proxy)}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api
location = ${REGION}

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${ports.memcached}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
`)
}

/** One device per ring on this test's ports, built in one Python process (the CLI would take nine). */
function buildRings(dir: string, ports: Record<Backend, number>): void {
  const script = `
import sys
from swift.common.ring import RingBuilder
for name, port in ((${BACKENDS.map((b) => `('${b}', ${ports[b]})`).join(', ')})):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
                     'replication_ip': '127.0.0.1', 'replication_port': port, 'device': 'sdb1', 'weight': 1, 'meta': ''})
    builder.rebalance()
    builder.get_ring().save(sys.argv[1] + '/' + name + '.ring.gz')
`
  const result = spawnSync('/usr/bin/python3', ['-c', script, dir], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`building Swift's rings failed (${result.status ?? result.signal}): ${result.stderr}`)
}
