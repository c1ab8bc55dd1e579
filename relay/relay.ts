/**
 * The relay, assembled: metadata (SQLite), shard logs (segment files), the stream domain (streams,
 * ingest, router, reader, fan-out, consumers), the MQTT broker, and the HTTP port with its routes
 * (relay/routes.ts), plus the housekeeping timers (retention, producer-state snapshots). Video streams
 * (relay/video/) add their store, MQTT ingest, API and timers.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { RelayConfig } from '../shared/config.js'
import { codec, every, systemClock, type Clock } from '../hardware/index.js'
import { adminRoutes, adminTokenOf } from './admin.js'
import { startBroker, type Broker } from './broker.js'
import { Checkpoints } from './checkpoints.js'
import { Consumers } from './consumers.js'
import { prepareDataDir } from './datadir.js'
import { openDeliveries, readDeliveryFile, type Deliveries } from './delivery/index.js'
import { DeviceCa } from './device-ca.js'
import { DeviceCertificates } from './device-certs.js'
import { Devices } from './devices.js'
import { Fleet } from './fleet.js'
import { RATE_STEP_MS, StreamRates } from './stream-rates.js'
import { LocalKeyCipher } from './encryption.js'
import { Fanout } from './fanout.js'
import { FirehoseApi } from './firehose/index.js'
import { HttpGuard, startHttp, type HttpServer } from './http.js'
import { Ingest } from './ingest.js'
import { KinesisApi } from './kinesis/api.js'
import { AwsWording } from './kinesis/errors.js'
import { IteratorCodec } from './kinesis/iterator.js'
import { PageTokens } from './kinesis/tokens.js'
import { openLogStore, sealedLogStore } from './log/index.js'
import type { MetadataStore } from './meta/types.js'
import { SqliteMetadataStore } from './meta/sqlite.js'
import { jsonLogger, relayMetrics, type LogFn, type LogLevel, type RelayMetrics } from './observe.js'
import { ShardReader } from './reader.js'
import { Router } from './router.js'
import { routes } from './routes.js'
import { looseKeyWarning, readAccessKeysFile } from './secrets.js'
import { StreamSettingsRegistry } from './settings.js'
import { Streams, type ReshardStep } from './streams.js'
import { countingVideo, openVideo, type VideoService } from './video/index.js'
import { ConsoleServer, streamViews } from './console/index.js'
import { topics } from '../shared/topics.js'
import { fileLimit, openSegmentsFor } from './filelimit.js'
import { watchStorage } from './storage-watch.js'
import { TopicRules, type TopicRule } from './rules.js'
import type { PublishPacket } from 'aedes'

export interface Relay {
  config: RelayConfig
  mqttPort: number
  mqttTlsPort: number | null
  httpPort: number
  /** Whether the HTTP port speaks TLS (https://). */
  httpTls: boolean
  adminToken: string
  streams: Streams
  metrics: RelayMetrics
  /** The Kinesis endpoint, to which an extension (or a test) can add an action. */
  kinesis: KinesisApi
  /** Video streams: their store, MQTT ingest and API. */
  video: VideoService
  /** Delivery streams (Firehose): their runners and the service the Firehose API uses. */
  delivery: Deliveries
  /** Reads the access-keys file again and replaces the file's keys (SIGHUP); how many keys there are now. Throws, keeping the old keys, on a bad file. */
  reloadAccessKeys(): number
  close(): Promise<void>
}

async function secret(meta: MetadataStore, key: string): Promise<Buffer> {
  const existing = await meta.getSetting(key)
  if (existing) return Buffer.from(existing, 'hex')
  const value = randomBytes(32)
  await meta.putSetting(key, value.toString('hex'))
  return value
}

/** What the caller may substitute: the clock that iterators, tokens, throughput budgets, arrival times, retention, fan-out and the housekeeping timers run on; a hook at each reshard step (crash tests). */
export interface RelayDeps {
  clock?: Clock
  onReshardStep?: (step: ReshardStep, stream: string) => void
  /** Topic rules from the config file (relay/rules.ts, validated by parseRules). */
  rules?: TopicRule[]
}

export async function startRelay(config: RelayConfig, log: LogFn = jsonLogger(config.logLevel as LogLevel), deps: RelayDeps = {}): Promise<Relay> {
  const clock = deps.clock ?? systemClock
  const now = () => clock.wallMs()
  // Secrets and the data directory are checked before anything listens or is written.
  const layout = prepareDataDir(config.dataDir, (count) => log('data_dir_modes_tightened', { dataDir: config.dataDir, count }))
  const adminToken = adminTokenOf(config.dataDir)
  const deliveryFile = config.deliveryFile ? readDeliveryFile(config.deliveryFile) : { buckets: {}, transforms: {}, deliveryStreams: [] }
  const fileKeys = () => config.accessKeysFile ? readAccessKeysFile(config.accessKeysFile) : []
  // One list, replaced in place on reload, so the HTTP routes and the Kinesis API see the new keys at once.
  const accessKeys = [...config.accessKeys, ...fileKeys()]
  for (const key of [config.tlsKey, config.httpsKey]) {
    const warning = key && existsSync(key) ? looseKeyWarning(key) : null
    if (warning) log('secret_file_mode', { file: key, warning })
  }
  const metrics = relayMetrics()
  const cipher = new LocalKeyCipher(join(config.dataDir, 'encryption.key'), (streamId) => settings.isEncrypted(streamId))
  if (existsSync(join(config.dataDir, 'encryption.key'))) cipher.ensureKey()
  const onCommit = (records: number, ms: number) => {
    metrics.commitRecords.observe(records)
    metrics.commitSeconds.observe(ms / 1000)
  }
  // In a cluster, shard logs and metadata live in NATS JetStream; loaded only then, so the embedded relay starts as fast as ever.
  const cluster = config.cluster
    ? await (await import('./cluster/index.js')).openCluster({
      servers: config.cluster, name: config.clusterName, replicas: config.replicas,
      groupCommitMs: config.groupCommitMs, maxStreamBytes: config.maxStreamBytes, now, onCommit, log,
    })
    : null
  const meta: MetadataStore = cluster ? cluster.meta : new SqliteMetadataStore(layout.metaPath)
  const settings = new StreamSettingsRegistry(meta)
  const files = fileLimit()
  const maxOpenSegments = config.maxOpenSegments || openSegmentsFor(files?.soft ?? null)
  const shown = (n: number | undefined) => (n === undefined ? 'unknown' : n === Infinity ? 'unlimited' : n)
  if (!cluster) log('file_limit', { soft: shown(files?.soft), hard: shown(files?.hard), maxOpenSegments, chosen: config.maxOpenSegments ? 'set' : 'auto' })
  const logs = cluster ? sealedLogStore(cluster.logs, cipher) : openLogStore({
    root: join(config.dataDir, 'streams'),
    journalPath: join(config.dataDir, 'streams.journal'),
    journal: config.journal,
    journalBytes: config.journalBytes,
    maxOpenFiles: maxOpenSegments,
    onReplay: (replayed) => log('journal_replayed', { ...replayed }),
    segmentBytes: config.segmentBytes,
    groupCommitMs: config.groupCommitMs,
    maxStreamBytes: config.maxStreamBytes,
    onCorruption: (report) => {
      metrics.corruptions.inc()
      log('log_corruption', { ...report })
    },
    onCommit,
    cipher,
    now,
  })
  const streams = new Streams({ now, meta, logs, region: config.region, accountId: config.accountId, retentionHours: config.retentionHours, shardLimit: config.shardLimit, onReshardStep: deps.onReshardStep })
  await streams.init()
  // Encryption settings are known before the first append (device batches start with the broker).
  await settings.load(streams)
  const onRead = (stream: string, records: number, bytes: number) => {
    metrics.recordsOut.inc({ stream }, records)
    metrics.bytesOut.inc({ stream }, bytes)
  }
  const reader = new ShardReader(streams)
  const router = new Router(codec)
  const fanout = new Fanout({ clock, logs, streams, reader, onRead, lifetimeMs: config.subscriptionSeconds * 1000 })
  const consumers = new Consumers({ clock, meta, streams, onDeregister: (c) => fanout.endConsumer(c) })
  await consumers.init()
  const devices = new Devices(meta, now)
  // The device CA exists only with MQTT over TLS, where certificates are presented.
  const deviceCa = config.tlsCert ? await DeviceCa.open({ dataDir: config.dataDir, certFile: config.deviceCaCert, keyFile: config.deviceCaKey, certDays: config.deviceCertDays, now }) : null
  const certificates = new DeviceCertificates({ meta, devices, ca: deviceCa, now })
  const checkpoints = new Checkpoints(meta, streams, now)
  const rejected = (code: string, count: number) => metrics.rejections.inc({ code }, count)
  let broker: Broker | null = null
  // Video: its catalog in meta.db, fragments under <dataDir>/video; acks go out through the broker.
  const video = await openVideo({
    config, metaPath: layout.metaPath, clock, registry: metrics.registry, log,
    logBytes: () => logs.totalBytes(),
    tokenKey: await secret(meta, 'video-token-key'),
    publish: (device, ack) => new Promise<void>((resolve) => {
      // Closed: a store that finishes while the relay stops has no one to tell (the device resends).
      if (!broker || broker.aedes.closed) return resolve()
      broker.aedes.publish({ cmd: 'publish', topic: topics.videoAcks(device), payload: Buffer.from(JSON.stringify(ack)), qos: 1, retain: false, dup: false } as PublishPacket, () => resolve())
    }),
    disconnect: (device) => broker?.disconnect(device),
  })
  // Each stream's incoming records and bytes over the last hour (the console's chart); none without a console.
  const rates = config.console ? new StreamRates() : null
  const ingest = new Ingest({
    streams, router, now,
    // The data directory's cap counts video too.
    logs: countingVideo(logs, () => video.store.totalBytes()),
    autoCreateStreams: config.autoCreateStreams,
    autoCreateShardCount: config.autoCreateShardCount,
    autoCreateMaxPerDevice: config.autoCreateMaxPerDevice,
    maxBatchRecords: config.maxBatchRecords,
    maxDataBytes: config.maxDataBytes,
    onStored: (stream, records, bytes, source) => {
      metrics.recordsIn.inc({ stream, source }, records)
      metrics.bytesIn.inc({ stream, source }, bytes)
      rates?.add(stream, records, bytes)
    },
    onRejected: rejected,
    placement: cluster?.placement,
  })
  cluster?.attach({ streams, ingest, consumers, settings })
  // Delivery streams read through the same shard reader; direct put goes through the same ingest.
  const delivery = await openDeliveries({
    dataDir: config.dataDir, metaPath: layout.metaPath, meta, streams, reader, ingest, clock, log,
    region: config.region, accountId: config.accountId, registry: metrics.registry,
    file: deliveryFile,
  })
  const firehose = new FirehoseApi({ service: delivery, accessKeys, now, log, onRequest: (action, outcome) => metrics.firehoseRequests.inc({ action, outcome }) })
  const kinesis = new KinesisApi({
    ctx: {
      streams, ingest, router, reader, fanout, consumers, settings, cipher, meta, onRead, now,
      iterators: new IteratorCodec(await secret(meta, 'iterator-key')),
      tokens: new PageTokens(await secret(meta, 'token-key'), now),
      errors: new AwsWording(config.accountId, config.region),
      accountId: config.accountId,
      region: config.region,
    },
    accessKeys, metrics, log,
  })

  metrics.registry.gauge('tributary_connected_devices', 'MQTT clients connected now.', [], () => broker?.connectedDevices() ?? 0)
  metrics.registry.gauge('tributary_storage_bytes', 'Bytes in shard log segments.', [], () => logs.totalBytes())
  metrics.registry.gauge('tributary_streams', 'Streams on this relay.', [], () => streams.list().length)
  metrics.registry.gauge('tributary_fanout_subscriptions', 'SubscribeToShard subscriptions open now.', [], () => fanout.active())

  broker = await startBroker({
    host: config.mqttHost, port: config.mqttPort, tlsPort: config.mqttTlsPort, tlsCert: config.tlsCert, tlsKey: config.tlsKey,
    allowAnonymous: config.allowAnonymous, maxPacketBytes: config.maxPacketBytes, devices, certificates, ingest, video: video.ingest, log, clock,
    rules: deps.rules?.length ? new TopicRules(deps.rules) : undefined,
    maxConnectBytes: config.mqttMaxConnectBytes, maxPending: config.mqttMaxPending, maxPendingPerAddress: config.mqttMaxPendingPerAddress, maxRefusals: config.mqttMaxRefusals,
    mqttRedis: config.mqttRedis,
    onLatency: (s) => metrics.ingestLatency.observe(s, { source: 'mqtt' }),
    onRejected: rejected,
  })
  // What each device's agent last said (its retained status, or its will): the console's devices page.
  // Followed only for a console: without one, the broker's publishes pass nothing more.
  const fleet = config.console ? new Fleet(now) : null
  if (fleet) {
    fleet.attach(broker.aedes)
    // A device added, rotated or removed (the console, the admin API, the CLI): the page hears of it.
    devices.onChange(async (id) => fleet.changed(id, !(await devices.isRegistered(id))))
  }

  const guard = new HttpGuard({
    idleMs: config.httpIdleMs, minBodyBytesPerSecond: config.httpMinBodyRate, maxBodyBytesInFlight: config.httpMaxBodyBytesInFlight,
    maxBodyBytesPerAddress: config.httpMaxBodyBytesPerAddress, maxBodyBytesPerConnection: config.httpMaxBodyBytesPerConnection,
    maxConnectionsPerAddress: config.httpMaxConnectionsPerAddress,
  })
  const httpsTls = config.httpsCert ? { cert: readFileSync(config.httpsCert), key: readFileSync(config.httpsKey) } : undefined
  const http: HttpServer = await startHttp(config.httpHost, config.httpPort, routes({
    kinesis, firehose, video: video.api, putMedia: video.putMedia, checkpoints, logs, metrics, log, now, guard, adminToken, region: config.region,
    admin: adminRoutes({ token: adminToken, devices, certificates, onRejected: (code) => rejected(code, 1) }),
    accessKeys,
    console: fleet && rates ? new ConsoleServer({
      api: video.api, store: video.store, streams: video.streams, adminToken, now, guard, fleet: { fleet, devices },
      dataStreams: {
        views: () => streamViews({ streams: () => streams.list(), rates, encrypted: (id) => settings.isEncrypted(id), consumers, fanout, meta, deliveries: () => delivery.list(), now }),
        rates,
        openShards: (name) => streams.get(name)?.open.map((s) => ({ shardId: s.meta.shardId, log: s.log })) ?? null,
      },
      deliveries: () => delivery.list(),
    }) : undefined,
  }), { guard, tls: httpsTls, onGuard: (event, fields) => log(`http_${event}`, fields) })

  const timers = [
    ...(rates ? [every(clock, RATE_STEP_MS, () => rates.step())] : []),
    every(clock, 60_000, () => {
      logs.enforceRetention((id) => streams.retentionMs(id)).then((freed) => freed && log('retention', { freedBytes: freed }), (err: Error) => log('retention_error', { error: err.message }))
      streams.expireClosedShards().then((n) => n && log('retention', { expiredShards: n }), (err: Error) => log('retention_error', { error: err.message }))
    }),
    every(clock, 10_000, () => {
      streams.snapshotProducers().catch((err: Error) => log('snapshot_error', { error: err.message }))
    }),
    watchStorage({ logs, dir: join(config.dataDir, 'streams'), clock, log }),
  ]

  return {
    config, streams, metrics, adminToken, kinesis, video, delivery,
    reloadAccessKeys: () => {
      const next = [...config.accessKeys, ...fileKeys()]
      accessKeys.splice(0, accessKeys.length, ...next)
      return accessKeys.length
    },
    mqttPort: broker.port,
    mqttTlsPort: broker.tlsPort,
    httpPort: http.port,
    httpTls: http.tls,
    close: async () => {
      for (const cancel of timers) cancel()
      fanout.close()
      consumers.close()
      await broker!.close()
      await http.close()
      await delivery.close()
      if (!logs.failed) await streams.snapshotProducers().catch(() => {})
      await logs.close()
      await video.close()
      await meta.close()
      await cluster?.close()
    },
  }
}
