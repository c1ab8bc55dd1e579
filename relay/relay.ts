/**
 * The relay, assembled: metadata (SQLite), shard logs (segment files), streams, ingest, the MQTT
 * broker and the HTTP port, plus the housekeeping timers (retention, producer-state snapshots).
 */
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { ErrorCode, StorageError, TributaryError } from '../shared/errors.js'
import type { RelayConfig } from '../shared/config.js'
import { codec } from '../hardware/index.js'
import { openLogStore } from './log/index.js'
import { SqliteMetadataStore } from './meta/sqlite.js'
import { reshardCrashHook, Streams } from './streams.js'
import { Ingest } from './ingest.js'
import { Devices } from './devices.js'
import { Checkpoints } from './checkpoints.js'
import { startBroker, type Broker } from './broker.js'
import { BodyBudgetError, readBody, send, sendJson, startHttp, type AnyRequest, type AnyResponse, type HttpServer } from './http.js'
import { relayMetrics, type RelayMetrics } from './observe.js'
import { CONTENT_TYPE as METRICS_TYPE } from '../shared/metrics.js'
import { actions } from './kinesis/actions.js'
import { Consumers } from './kinesis/consumers.js'
import { LocalKeyCipher } from './kinesis/encryption.js'
import { describeExtras, extendedActions, type ExtendedContext, type ExtendedHandler } from './kinesis/extensions.js'
import { Fanout, StreamingResult } from './kinesis/fanout.js'
import { protocolOf } from './kinesis/protocol.js'
import { StreamSettingsRegistry } from './kinesis/settings.js'
import { KinesisError } from './kinesis/errors.js'
import { IteratorCodec } from './kinesis/iterator.js'
import { verifySigV4 } from './kinesis/sigv4.js'

export type LogFn = (event: string, fields?: Record<string, unknown>) => void

export interface Relay {
  config: RelayConfig
  mqttPort: number
  mqttTlsPort: number | null
  httpPort: number
  adminToken: string
  streams: Streams
  metrics: RelayMetrics
  close(): Promise<void>
}

const AMZ_JSON = 'application/x-amz-json-1.1'
const MAX_BODY = 12 * 1024 * 1024

/** JSON lines on stderr, one per event. */
export const jsonLog: LogFn = (event, fields = {}) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n')
}

async function secret(meta: SqliteMetadataStore, key: string): Promise<Buffer> {
  const existing = await meta.getSetting(key)
  if (existing) return Buffer.from(existing, 'hex')
  const value = randomBytes(32)
  await meta.putSetting(key, value.toString('hex'))
  return value
}

/** The admin token lives in the data directory, created at first start, readable only by its owner. */
export function adminTokenOf(dataDir: string): string {
  const path = join(dataDir, 'admin.token')
  if (!existsSync(path)) writeFileSync(path, randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' })
  return readFileSync(path, 'utf8').trim()
}

/** What a test may substitute: the clock (ms) that iterators, tokens, throughput budgets, arrival times and retention read. */
export interface RelayDeps {
  now?: () => number
}

export async function startRelay(config: RelayConfig, log: LogFn = jsonLog, deps: RelayDeps = {}): Promise<Relay> {
  const now = deps.now ?? Date.now
  mkdirSync(config.dataDir, { recursive: true })
  const metrics = relayMetrics()
  const meta = new SqliteMetadataStore(join(config.dataDir, 'meta.db'))
  const settings = new StreamSettingsRegistry(meta)
  const cipher = new LocalKeyCipher(join(config.dataDir, 'encryption.key'), (streamId) => settings.isEncrypted(streamId))
  const logs = openLogStore({
    root: join(config.dataDir, 'streams'),
    segmentBytes: config.segmentBytes,
    groupCommitMs: config.groupCommitMs,
    maxStreamBytes: config.maxStreamBytes,
    onCorruption: (report) => {
      metrics.corruptions.inc()
      log('log_corruption', { ...report })
    },
    onCommit: (records, ms) => {
      metrics.commitRecords.observe(records)
      metrics.commitSeconds.observe(ms / 1000)
    },
    cipher,
    now,
  })
  const streams = new Streams({ now, meta, logs, region: config.region, accountId: config.accountId, retentionHours: config.retentionHours, onReshardStep: reshardCrashHook(process.env.TRIBUTARY_TEST_CRASH_AT) })
  await streams.init()
  // Encryption settings are known before the first append (device batches start with the broker).
  await settings.load(streams)
  const onRead = (stream: string, records: number, bytes: number) => {
    metrics.recordsOut.inc({ stream }, records)
    metrics.bytesOut.inc({ stream }, bytes)
  }
  const fanout = new Fanout({ logs, streams, onRead, lifetimeMs: config.subscriptionSeconds * 1000 })
  const consumers = new Consumers({ meta, streams, onDeregister: (c) => fanout.endConsumer(c) })
  await consumers.init()
  const adminToken = adminTokenOf(config.dataDir)
  const devices = new Devices(meta)
  const checkpoints = new Checkpoints(meta, streams)
  const rejected = (code: string, count: number) => metrics.rejections.inc({ code }, count)
  const ingest = new Ingest({
    streams, logs,
    autoCreateStreams: config.autoCreateStreams,
    autoCreateShardCount: config.autoCreateShardCount,
    maxBatchRecords: config.maxBatchRecords,
    maxDataBytes: config.maxDataBytes,
    onStored: (stream, records, bytes, source) => {
      metrics.recordsIn.inc({ stream, source }, records)
      metrics.bytesIn.inc({ stream, source }, bytes)
    },
    onRejected: rejected,
  })
  const ctx: ExtendedContext = {
    streams, ingest,
    iterators: new IteratorCodec(await secret(meta, 'iterator-key')),
    tokenKey: await secret(meta, 'token-key'),
    accountId: config.accountId,
    region: config.region,
    now,
    onRead,
    describeExtras: (state) => describeExtras(state, settings, consumers),
    meta, consumers, settings, fanout, cipher,
  }
  const handlers: Record<string, ExtendedHandler> = { ...actions, ...extendedActions }

  let broker: Broker | null = null
  metrics.registry.gauge('tributary_connected_devices', 'MQTT clients connected now.', [], () => broker?.connectedDevices() ?? 0)
  metrics.registry.gauge('tributary_storage_bytes', 'Bytes in shard log segments.', [], () => logs.totalBytes())
  metrics.registry.gauge('tributary_streams', 'Streams on this relay.', [], () => streams.list().length)
  metrics.registry.gauge('tributary_fanout_subscriptions', 'SubscribeToShard subscriptions open now.', [], () => fanout.active())

  broker = await startBroker({
    host: config.mqttHost, port: config.mqttPort, tlsPort: config.mqttTlsPort, tlsCert: config.tlsCert, tlsKey: config.tlsKey,
    allowAnonymous: config.allowAnonymous, maxPacketBytes: config.maxPacketBytes, devices, ingest, log,
    onLatency: (s) => metrics.ingestLatency.observe(s, { source: 'mqtt' }),
    onRejected: rejected,
  })

  const handleKinesis = async (req: AnyRequest, res: AnyResponse, body: Buffer) => {
    const target = String(req.headers['x-amz-target'] ?? '')
    const action = target.startsWith('Kinesis_20131202.') ? target.slice('Kinesis_20131202.'.length) : ''
    const started = performance.now()
    // JSON 1.1 or CBOR 1.1, answered in kind (errors too).
    const protocol = protocolOf(req.headers['content-type'])
    try {
      if (config.accessKeys.length) {
        verifySigV4({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body }, config.accessKeys, { service: 'kinesis' })
      }
      const handler = Object.hasOwn(handlers, action) ? handlers[action] : undefined
      if (!handler) throw new KinesisError('UnknownOperationException', action ? `Operation ${action} is not supported by Tributary.` : 'Missing or malformed X-Amz-Target header.')
      const result = await handler(protocol.decode(body), ctx)
      if (action === 'PutRecord' || action === 'PutRecords') metrics.ingestLatency.observe((performance.now() - started) / 1000, { source: 'api' })
      metrics.apiRequests.inc({ action, outcome: 'ok' })
      // SubscribeToShard answers with an event stream that outlives this call.
      if (result instanceof StreamingResult) return result.start(res, protocol)
      send(res, 200, protocol.contentType, protocol.encode(result))
    } catch (err) {
      let error: KinesisError
      if (err instanceof KinesisError) error = err
      else if (err instanceof StorageError) error = new KinesisError('ServiceUnavailable', err.message)
      else if (err instanceof TributaryError && err.code === ErrorCode.STREAM_NOT_FOUND) error = new KinesisError('ResourceNotFoundException', err.message)
      else if (err instanceof TributaryError && err.code === ErrorCode.DECRYPT_FAILED) error = new KinesisError('KMSAccessDeniedException', err.message)
      else {
        log('api_error', { action, error: (err as Error).stack ?? String(err) })
        error = new KinesisError('InternalFailure', 'Internal service failure.')
      }
      metrics.apiRequests.inc({ action: action || 'unknown', outcome: error.type })
      rejected(error.type, 1)
      send(res, error.status, protocol.contentType, protocol.encode(error.toJSON()))
    }
  }

  const tokenBuf = Buffer.from(adminToken)
  const handleAdmin = async (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => {
    const auth = String(req.headers.authorization ?? '')
    const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '')
    if (given.length !== tokenBuf.length || !timingSafeEqual(given, tokenBuf)) {
      rejected(ErrorCode.AUTH_FAILED, 1)
      return sendJson(res, 401, { code: ErrorCode.AUTH_FAILED, message: 'admin token missing or wrong' })
    }
    try {
      const m = /^\/admin\/devices(?:\/([^/]+))?(\/rotate)?$/.exec(path)
      if (!m) return sendJson(res, 404, { code: ErrorCode.NOT_FOUND, message: `no admin route ${path}` })
      const id = m[1] ? decodeURIComponent(m[1]) : undefined
      if (req.method === 'GET' && !id) return sendJson(res, 200, { devices: await devices.list() })
      if (req.method === 'POST' && !id) {
        const { id: newId } = JSON.parse(body.toString() || '{}') as { id?: unknown }
        if (typeof newId !== 'string') return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: 'body must be {"id": "<device id>"}' })
        return sendJson(res, 201, { id: newId, secret: await devices.add(newId) })
      }
      if (req.method === 'POST' && id && m[2]) return sendJson(res, 200, { id, secret: await devices.rotate(id) })
      if (req.method === 'DELETE' && id && !m[2]) {
        await devices.remove(id)
        return sendJson(res, 200, { id, removed: true })
      }
      return sendJson(res, 405, { code: ErrorCode.NOT_FOUND, message: `${req.method} ${path} is not an admin operation` })
    } catch (err) {
      if (err instanceof TributaryError) {
        const status = err.code === ErrorCode.CONFLICT ? 409 : err.code === ErrorCode.NOT_FOUND ? 404 : 400
        return sendJson(res, status, { code: err.code, message: err.message })
      }
      if (err instanceof SyntaxError) return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: `body is not JSON: ${err.message}` })
      throw err
    }
  }

  const http: HttpServer = await startHttp(config.httpHost, config.httpPort, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    void (async () => {
      if (req.method === 'GET' && path === '/healthz') {
        const failed = logs.failed
        return sendJson(res, failed ? 503 : 200, { status: failed ? 'failing' : 'ok', storage: failed ? failed.message : 'ok', corruptions: logs.corruptions().length, native: codec.implementation })
      }
      if (req.method === 'GET' && path === '/metrics') return send(res, 200, METRICS_TYPE, metrics.registry.render())
      let body: Buffer | null
      try {
        body = await readBody(req, MAX_BODY)
      } catch (err) {
        if (err instanceof BodyBudgetError) return sendJson(res, 503, { __type: 'ServiceUnavailable', message: 'the relay is holding too many request bytes; retry' }, AMZ_JSON)
        throw err
      }
      if (body === null) return sendJson(res, 413, { __type: 'SerializationException', message: `request body is over ${MAX_BODY} bytes` }, AMZ_JSON)
      if (path.startsWith('/admin/')) return handleAdmin(req, res, path, body)
      if (path.startsWith('/checkpoints/')) {
        if (config.accessKeys.length) {
          try {
            verifySigV4({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body }, config.accessKeys, { service: 'kinesis' })
          } catch (err) {
            if (!(err instanceof KinesisError)) throw err
            return sendJson(res, err.status === 400 ? 403 : err.status, { code: ErrorCode.AUTH_FAILED, message: err.message })
          }
        }
        const out = await checkpoints.handle(req.method ?? 'GET', path, body)
        return sendJson(res, out.status, out.json)
      }
      if (req.method === 'POST' && (path === '/' || req.headers['x-amz-target'])) return handleKinesis(req, res, body)
      sendJson(res, 404, { code: ErrorCode.NOT_FOUND, message: `no route ${req.method} ${path}` })
    })().catch((err: Error) => {
      log('http_error', { error: err.stack ?? String(err) })
      if (!res.headersSent) sendJson(res, 500, { __type: 'InternalFailure', message: 'Internal service failure.' })
    })
  })

  const timers = [
    setInterval(() => {
      logs.enforceRetention((id) => streams.retentionMs(id)).then((freed) => freed && log('retention', { freedBytes: freed }), (err: Error) => log('retention_error', { error: err.message }))
      streams.expireClosedShards().then((n) => n && log('retention', { expiredShards: n }), (err: Error) => log('retention_error', { error: err.message }))
    }, 60_000),
    setInterval(() => {
      streams.snapshotProducers().catch((err: Error) => log('snapshot_error', { error: err.message }))
    }, 10_000),
  ]
  for (const t of timers) t.unref()

  return {
    config, streams, metrics, adminToken,
    mqttPort: broker.port,
    mqttTlsPort: broker.tlsPort,
    httpPort: http.port,
    close: async () => {
      for (const t of timers) clearInterval(t)
      fanout.close()
      consumers.close()
      await broker!.close()
      await http.close()
      if (!logs.failed) await streams.snapshotProducers().catch(() => {})
      await logs.close()
      await meta.close()
    },
  }
}
