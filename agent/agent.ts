/**
 * The agent, assembled: outbox, uplink, sources, and the loopback status endpoint
 * (`/status` JSON for `tributary agent status`, `/metrics` for Prometheus).
 */
import http from 'node:http'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { AddressInfo } from 'node:net'
import { Registry, CONTENT_TYPE } from '../shared/metrics.js'
import type { AgentConfig } from './config.js'
import { every, systemClock, type Clock } from '../hardware/index.js'
import { ACK_HOLD_MS, Outbox, OutboxFullError, type OutboxInput } from './outbox/index.js'
import { AGENT_VERSION } from './version.js'
import { Uplink, relayTransport, type Transport } from './uplink/index.js'
import { startSimulated, type Source } from './sources/simulated.js'
import { startPutApi, type PutApi } from './sources/putapi.js'
import { startSerial, type SerialSensor, type SerialStats } from './sources/serial.js'
import { createLogger, type LogFn } from './log.js'
import { localGuard } from './local-guard.js'
import { securityWarnings, type SecurityWarning } from './warnings.js'
import { WriteMeter, type StorageWear } from './wear.js'
import { systemBinding, type Codec, type SerialBinding } from '../hardware/index.js'
import type { CameraDeps, Video, VideoStatus } from './video/cameras.js'
import { videoWanted } from './video/wanted.js'

export type { LogFn } from './log.js'

/** How often records past their stream's age limit are looked for. */
const EXPIRE_EVERY_MS = 1000
/** The storage write meter's sampling period (agent/wear.ts projects from the last hour of samples). */
const WEAR_SAMPLE_MS = 60_000

export interface Agent {
  config: AgentConfig
  outbox: Outbox
  uplink: Uplink
  /** The cameras, their buffer and their sender; null without cameras. */
  video: Video | null
  statusPort: number
  putApiPort: number | null
  status(): AgentStatus
  /** How the capture pipeline is doing, for the systemd watchdog. */
  progress(): PipelineProgress
  stop(): Promise<void>
}

export interface PipelineProgress {
  /** Records committed to the outbox since start. */
  recordsStored: number
  /** How long the oldest store still waiting for its commit has waited (0: none waiting). */
  oldestPendingMs: number
  /** How long stores have been failing with storage errors, with none succeeding (0: not failing). */
  failingMs: number
}

export interface AgentStatus {
  device: string
  online: boolean
  at: string
  /** The agent's version (its package's). */
  version: string
  link: Uplink['stats']
  outbox: ReturnType<Outbox['stats']>
  /** While a backlog drains: records delivered since it began, records left, and the rate. */
  drain: { delivered: number; remaining: number; recordsPerSecond: number } | null
  memory: { rssBytes: number; heapUsedBytes: number; externalBytes: number }
  /** Serial sensors by name: link state, opens and losses, readings, framing errors by code. */
  serial: Record<string, SerialStats>
  /** What in the agent's setup exposes its credentials (found at start). */
  warnings: SecurityWarning[]
  /** Cameras by name (capture state, restarts, fragments captured/sent/persisted, drops, backlog) and their buffer; null without cameras. */
  video: VideoStatus | null
  /** What the agent has written to storage, today and projected per day, against the budget; null where /proc/self/io cannot be read. */
  storage: StorageWear | null
}

/** What the agent is built from besides its config: the machine's boundaries, passed in. */
export interface AgentDeps {
  /** Encodes the batch frames (the native addon or its TypeScript fallback, chosen at the edge). */
  codec: Codec
  clock?: Clock
  /** Default: a logger on stderr (in-process agents: tests, the demo); `tributary agent run` passes a stdout logger. */
  log?: LogFn
  serialBinding?: SerialBinding
  /** Default: the relay the config names. */
  transport?: Transport
  /** The reconnect jitter's source (0 ≤ x < 1); default Math.random. */
  random?: () => number
  /** The process's bytes written to storage so far, null when unknown; default /proc/self/io's write_bytes. */
  writeBytes?: () => number | null
  /** How cameras run ffmpeg (its path, restart delays); default ffmpeg on the PATH. */
  camera?: CameraDeps
}

let stderrLog: LogFn | null = null

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
  const clock = deps.clock ?? systemClock
  const log = deps.log ?? (stderrLog ??= createLogger({ fd: 2 }))
  const warnings = securityWarnings(config)
  for (const w of warnings) log('security_warning', { code: w.code, message: w.message })
  mkdirSync(dirname(config.outbox.path), { recursive: true })
  const wear = WriteMeter.start(clock, config.outbox.writeBudgetMBPerDay, deps.writeBytes)
  // Acknowledgements wait for the next serial flush to ride with, rather than a commit of their own.
  const ackHoldMs = config.sources.some((s) => s.type === 'serial') ? Math.max(ACK_HOLD_MS, config.serial.flushMs + 500) : ACK_HOLD_MS
  const outbox = new Outbox({ ...config.outbox, policies: config.streams, clock, log, ackHoldMs })
  const uplink = new Uplink({
    config, outbox, clock, log, codec: deps.codec, random: deps.random,
    transport: deps.transport ?? relayTransport(config.relay),
    // The agent's status, published retained on the device's status topic.
    status: () => ({ ...status() }),
  })

  // Metrics. One outbox snapshot serves every gauge of a scrape (it runs a query per stream).
  let snapshot: { at: number; stats: ReturnType<Outbox['stats']> } | null = null
  const scraped = () => {
    const now = clock.monoMs()
    if (!snapshot || now - snapshot.at > 250) snapshot = { at: now, stats: outbox.stats() }
    return snapshot.stats
  }
  const registry = new Registry()
  const stored = registry.counter('tributary_agent_records_stored_total', 'Records committed to the outbox, by stream.', ['stream'])
  const storedBytes = registry.counter('tributary_agent_record_data_bytes_stored_total', 'Bytes of record data (payloads) committed to the outbox, by stream.', ['stream'])
  const dropped = registry.counter('tributary_agent_records_dropped_total', 'Records dropped by policy, by stream and reason.', ['stream', 'reason'])
  const dead = registry.counter('tributary_agent_dead_letters_total', 'Records moved to the dead-letter table, by stream and code.', ['stream', 'code'])
  registry.gauge('tributary_agent_backlog_records', 'Records in the outbox not yet acknowledged by the relay, by stream.', ['stream'],
    () => Object.entries(scraped().streams).map(([stream, s]) => ({ labels: { stream }, value: s.backlog })))
  registry.gauge('tributary_agent_oldest_record_age_seconds', 'Age of the oldest record in the outbox, by stream.', ['stream'],
    () => Object.entries(scraped().streams).map(([stream, s]) => ({ labels: { stream }, value: s.oldestAgeSeconds })))
  registry.gauge('tributary_agent_connected', '1 while connected to the relay.', [], () => (uplink.stats.state === 'connected' ? 1 : 0))
  registry.gauge('tributary_agent_alarms', 'Active alarms (e.g. a quarantined outbox).', [], () => outbox.alarms.length)
  registry.gauge('tributary_agent_outbox_file_bytes', 'Size of the outbox database file.', [], () => scraped().fileBytes)
  registry.gauge('tributary_agent_records_acked', 'Records acknowledged by the relay since start.', [], () => uplink.stats.recordsAcked)
  if (wear) {
    registry.gauge('tributary_agent_storage_written_bytes', 'Bytes the agent has caused to be written to storage since start (/proc/self/io write_bytes).', [], () => wear.status().writtenBytes)
    registry.gauge('tributary_agent_storage_projected_mb_per_day', 'The last hour\'s storage write rate over 24 hours, in MB.', [], () => wear.status().projectedMBPerDay ?? 0)
  }
  outbox.on('dropped', (stream: string, reason: string, n: number) => dropped.inc({ stream, reason }, n))
  outbox.on('deadLetter', (stream: string, code: string) => dead.inc({ stream, code }))

  // Progress of the capture side: stores waiting for their commit, and storage failing.
  const pendingStores = new Map<number, number>()
  let storeSeq = 0
  let recordsStored = 0
  let failingSince: number | null = null
  const store = async (rows: OutboxInput[]) => {
    const id = storeSeq++
    pendingStores.set(id, clock.monoMs())
    try {
      const ids = await outbox.enqueue(rows)
      failingSince = null
      recordsStored += rows.length
      const byStream = new Map<string, { n: number; bytes: number }>()
      for (const r of rows) {
        const tally = byStream.get(r.stream)
        if (tally) { tally.n++; tally.bytes += r.data.length } else byStream.set(r.stream, { n: 1, bytes: r.data.length })
      }
      for (const [stream, { n, bytes }] of byStream) {
        stored.inc({ stream }, n)
        storedBytes.inc({ stream }, bytes)
      }
      return ids
    } catch (err) {
      // A full outbox is policy at work (counted drops), not a stuck pipeline.
      if (err instanceof OutboxFullError) failingSince = null
      else failingSince ??= clock.monoMs()
      throw err
    } finally {
      pendingStores.delete(id)
    }
  }
  const progress = (): PipelineProgress => {
    const now = clock.monoMs()
    const oldest = pendingStores.values().next()
    return { recordsStored, oldestPendingMs: oldest.done ? 0 : now - oldest.value, failingMs: failingSince === null ? 0 : now - failingSince }
  }

  // Drain progress: from the moment a backlog exists while connected, until it is gone.
  let drain: { startedMs: number; startedAcked: number } | null = null
  const status = (): AgentStatus => {
    const o = outbox.stats()
    const connected = uplink.stats.state === 'connected'
    if (connected && o.backlog > config.uplink.batchRecords && !drain) drain = { startedMs: clock.monoMs(), startedAcked: uplink.stats.recordsAcked }
    if (drain && (o.backlog <= config.uplink.batchRecords || !connected)) drain = null
    const elapsed = drain ? (clock.monoMs() - drain.startedMs) / 1000 : 0
    return {
      device: config.device,
      online: connected,
      at: new Date(clock.wallMs()).toISOString(),
      version: AGENT_VERSION,
      link: { ...uplink.stats },
      outbox: o,
      memory: (({ rss, heapUsed, external }) => ({ rssBytes: rss, heapUsedBytes: heapUsed, externalBytes: external }))(process.memoryUsage()),
      serial: Object.fromEntries(serial.map((s) => [s.name, { ...s.stats, link: { ...s.stats.link } }])),
      warnings,
      video: video?.status() ?? null,
      storage: wear?.status() ?? null,
      drain: drain ? { delivered: uplink.stats.recordsAcked - drain.startedAcked, remaining: o.backlog, recordsPerSecond: elapsed > 0 ? (uplink.stats.recordsAcked - drain.startedAcked) / elapsed : 0 } : null,
    }
  }

  // Cameras write into their own buffer beside the outbox; their fragments share the uplink's
  // connection. Loaded only when wanted: a device without a camera does not carry its modules.
  const video = videoWanted(config)
    ? (await import('./video/cameras.js')).startVideo({ config, uplink, clock, log, codec: deps.codec, registry, camera: deps.camera })
    : null

  const sources: Source[] = []
  const serial: SerialSensor[] = []
  let putApi: PutApi | null = null
  const framing = registry.counter('tributary_agent_serial_framing_errors_total', 'Bytes a serial parser discarded, by source and code.', ['source', 'code'])
  const losses = registry.counter('tributary_agent_serial_link_losses_total', 'Serial links lost (unplugged, silent, failing), by source and reason.', ['source', 'reason'])
  registry.gauge('tributary_agent_serial_link_up', '1 while the serial port is open.', ['source'], () => serial.map((s) => ({ labels: { source: s.name }, value: s.stats.link.state === 'open' ? 1 : 0 })))
  registry.gauge('tributary_agent_serial_readings', 'Readings parsed from the serial port since start.', ['source'], () => serial.map((s) => ({ labels: { source: s.name }, value: s.stats.readings })))
  // Serial readings are not waited on by anyone: they gather for serial.flushMs and are handed to the
  // outbox in one tick, so every sensor's readings share one commit and one batch. stop() flushes them.
  let serialQueue: { rows: OutboxInput[]; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = []
  const flushSerial = () => {
    const queue = serialQueue
    serialQueue = []
    if (!queue.length) return
    // One hand-over per stream, its readings in capture order: the outbox keeps a run of a stream's
    // records as one chunk (a chunk per reading would rewrite a B-tree leaf for each), and a stream
    // refused at its cap refuses its own readings only.
    const byStream = new Map<string, typeof queue>()
    for (const q of queue) {
      const stream = q.rows[0]?.stream ?? ''
      if (!q.rows.every((r) => r.stream === stream)) {
        store(q.rows).then(q.resolve, q.reject)
        continue
      }
      const group = byStream.get(stream)
      if (group) group.push(q)
      else byStream.set(stream, [q])
    }
    for (const group of byStream.values()) {
      store(group.flatMap((q) => q.rows)).then((ids) => {
        let at = 0
        for (const q of group) { q.resolve(ids.slice(at, at + q.rows.length)); at += q.rows.length }
      }, (err) => { for (const q of group) q.reject(err) })
    }
  }
  const serialStore = config.serial.flushMs === 0 ? store : (rows: OutboxInput[]) => new Promise((resolve, reject) => { serialQueue.push({ rows, resolve, reject }) })
  for (const s of config.sources) {
    if (s.type === 'simulated') sources.push(startSimulated(s, clock, store, (err) => log('source_error', { source: 'simulated', stream: s.stream, error: err.message })))
    else if (s.type === 'serial') {
      serial.push(startSerial(s, {
        binding: deps.serialBinding ?? systemBinding(), clock, store: serialStore, log,
        onFramingError: (code) => framing.inc({ source: s.name, code }),
        onLoss: (reason) => losses.inc({ source: s.name, reason }),
      }))
    } else if (s.type === 'put-api') putApi = await startPutApi(s, clock, store, config.uplink.batchBytes)
  }

  // Loopback only by default, and it serves the dead letters' data: the same checks as the put API
  // (no web pages, no rebound names), without a body to type.
  const guard = localGuard({ bindHost: config.status.host, allowedHosts: config.status.allowedHosts, token: null, json: false }, () => (server.address() as AddressInfo).port)
  const server = http.createServer((req, res) => {
    const refusal = guard(req)
    if (refusal) {
      res.writeHead(refusal.status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ __type: refusal.type, code: refusal.code, message: refusal.message }))
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD', connection: 'close' }).end(JSON.stringify({ __type: 'MethodNotAllowed', message: 'the status server answers GET only' }))
    } else if (req.url === '/status') {
      const text = JSON.stringify(status())
      res.writeHead(200, { 'content-type': 'application/json' }).end(text)
    } else if (req.url === '/metrics') {
      video?.beforeScrape()
      res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(registry.render())
    } else if (req.url?.startsWith('/dead-letters')) {
      // Paged: ?after=<id>&limit=<n>&data=1 to include the records' data.
      const q = new URL(req.url, 'http://x').searchParams
      const limit = Math.min(1000, Math.max(1, Number(q.get('limit') ?? 100) || 100))
      const text = JSON.stringify(outbox.deadLetters(limit, Number(q.get('after') ?? 0) || 0, q.get('data') === '1').map((d) => ({ ...d, data: d.data?.toString('base64') ?? null })))
      res.writeHead(200, { 'content-type': 'application/json' }).end(text)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.status.port, config.status.host, () => resolve())
  })

  let overBudget = false
  const timers = [
    ...(serial.length && config.serial.flushMs > 0 ? [every(clock, config.serial.flushMs, flushSerial)] : []),
    every(clock, config.status.publishIntervalMs, () => uplink.publishStatus()),
    ...(wear ? [every(clock, WEAR_SAMPLE_MS, () => {
      const w = wear.status()
      if (w.overBudget && !overBudget) log('write_budget_exceeded', { projectedMBPerDay: w.projectedMBPerDay, budgetMBPerDay: w.budgetMBPerDay })
      overBudget = w.overBudget
    })] : []),
    every(clock, EXPIRE_EVERY_MS, () => {
      try { outbox.expire() } catch (err) { log('expire_failed', { error: (err as Error).message }) }
      video?.expire()
    }),
  ]
  uplink.start()
  log('agent_started', { device: config.device, codec: deps.codec.implementation, outbox: config.outbox.path, epoch: outbox.epoch.toString(), backlog: outbox.backlog(), alarms: outbox.alarms.map((a) => a.code) })

  return {
    config, outbox, uplink, video,
    statusPort: (server.address() as AddressInfo).port,
    putApiPort: putApi?.port ?? null,
    status,
    progress,
    stop: async () => {
      for (const cancel of timers) cancel()
      for (const s of sources) s.stop()
      await Promise.all(serial.map((s) => s.stop()))
      flushSerial()
      await putApi?.close()
      // Cameras first (no new fragments), then the connection, then the buffer once its writes are done.
      const videoStopped = video?.stop()
      await uplink.stop()
      await videoStopped
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
      outbox.close()
    },
  }
}
