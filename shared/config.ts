/**
 * The relay's configuration schema. Every setting has one name, a default, an environment variable
 * and a command-line flag; values come from flags, then the environment, then a config file, then
 * the default (DESIGN.md, "Defaults"). Validation names the offending field.
 */
import { isIP } from 'node:net'
import { ConfigError } from './errors.js'

type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'accessKeys'

interface Field {
  type: FieldType
  default: unknown
  env: string
  flag: string
  min?: number
  max?: number
  help: string
}

export interface AccessKey {
  accessKeyId: string
  secretAccessKey: string
}

export interface RelayConfig {
  dataDir: string
  mqttHost: string
  mqttPort: number
  mqttTlsPort: number
  tlsCert: string
  tlsKey: string
  deviceCaCert: string
  deviceCaKey: string
  deviceCertDays: number
  httpHost: string
  httpPort: number
  allowAnonymous: boolean
  console: boolean
  autoCreateStreams: boolean
  autoCreateShardCount: number
  retentionHours: number
  segmentBytes: number
  maxStreamBytes: number
  maxDataBytes: number
  groupCommitMs: number
  journal: boolean
  journalBytes: number
  maxOpenSegments: number
  maxBatchRecords: number
  maxPacketBytes: number
  region: string
  accountId: string
  accessKeys: AccessKey[]
  accessKeysFile: string
  subscriptionSeconds: number
  shardLimit: number
  autoCreateMaxPerDevice: number
  mqttMaxConnectBytes: number
  mqttMaxPending: number
  mqttMaxPendingPerAddress: number
  mqttMaxRefusals: number
  httpsCert: string
  httpsKey: string
  httpIdleMs: number
  httpMinBodyRate: number
  httpMaxBodyBytesInFlight: number
  httpMaxBodyBytesPerAddress: number
  httpMaxBodyBytesPerConnection: number
  httpMaxConnectionsPerAddress: number
  videoLiveBufferSeconds: number
  videoMaxPendingFragments: number
  videoMaxPendingBytes: number
  videoMaxPendingFragmentsTotal: number
  videoMaxPendingBytesTotal: number
  videoPendingTimeoutMs: number
  deliveryFile: string
  cluster: string
  clusterName: string
  replicas: number
  mqttRedis: string
  logLevel: string
}

/** A Redis URL as `mqttRedis` takes it: credentials, host, port, an optional database number, nothing after. */
const MQTT_REDIS_URL = /^rediss?:\/\/([^\s/@]+@)?([^\s/@:[\]]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?(\/\d{1,5})?\/?$/

export const relaySchema: Record<keyof RelayConfig, Field> = {
  dataDir: { type: 'string', default: './data', env: 'TRIBUTARY_DATA_DIR', flag: 'data-dir', help: 'directory for shard logs, metadata and the admin token' },
  mqttHost: { type: 'string', default: '0.0.0.0', env: 'TRIBUTARY_MQTT_HOST', flag: 'mqtt-host', help: 'address the MQTT broker binds' },
  mqttPort: { type: 'integer', default: 1883, env: 'TRIBUTARY_MQTT_PORT', flag: 'mqtt-port', min: 0, max: 65535, help: 'MQTT port (0 picks a free one)' },
  mqttTlsPort: { type: 'integer', default: 8883, env: 'TRIBUTARY_MQTT_TLS_PORT', flag: 'mqtt-tls-port', min: 0, max: 65535, help: 'MQTT over TLS, when a certificate and key are set' },
  tlsCert: { type: 'string', default: '', env: 'TRIBUTARY_TLS_CERT', flag: 'tls-cert', help: 'PEM certificate file for MQTT over TLS' },
  tlsKey: { type: 'string', default: '', env: 'TRIBUTARY_TLS_KEY', flag: 'tls-key', help: 'PEM private key file for MQTT over TLS' },
  deviceCaCert: { type: 'string', default: '', env: 'TRIBUTARY_DEVICE_CA_CERT', flag: 'device-ca-cert', help: 'PEM certificate of the CA whose device certificates MQTT over TLS accepts; default: the relay\'s own, created in <dataDir>/device-ca.pem' },
  deviceCaKey: { type: 'string', default: '', env: 'TRIBUTARY_DEVICE_CA_KEY', flag: 'device-ca-key', help: 'PEM private key of --device-ca-cert (mode 600), so devices add --cert can sign; without it the relay only verifies' },
  deviceCertDays: { type: 'integer', default: 365, env: 'TRIBUTARY_DEVICE_CERT_DAYS', flag: 'device-cert-days', min: 1, max: 36_500, help: 'validity of the device certificates the relay signs' },
  httpHost: { type: 'string', default: '', env: 'TRIBUTARY_HTTP_HOST', flag: 'http-host', help: 'address the HTTP API binds; default 0.0.0.0 with access keys, 127.0.0.1 without' },
  httpPort: { type: 'integer', default: 4567, env: 'TRIBUTARY_HTTP_PORT', flag: 'http-port', min: 0, max: 65535, help: 'Kinesis API, admin, /metrics and /healthz' },
  allowAnonymous: { type: 'boolean', default: false, env: 'TRIBUTARY_ALLOW_ANONYMOUS', flag: 'allow-anonymous', help: 'accept MQTT clients without credentials' },
  console: { type: 'boolean', default: true, env: 'TRIBUTARY_CONSOLE', flag: 'console', help: 'serve the web console under /console/ (off: no console, and nothing of it runs)' },
  autoCreateStreams: { type: 'boolean', default: true, env: 'TRIBUTARY_AUTO_CREATE_STREAMS', flag: 'auto-create-streams', help: 'create a stream (data or video) a device names on first use' },
  autoCreateShardCount: { type: 'integer', default: 1, env: 'TRIBUTARY_AUTO_CREATE_SHARDS', flag: 'auto-create-shards', min: 1, max: 1000, help: 'shards of an auto-created stream' },
  retentionHours: { type: 'integer', default: 24, env: 'TRIBUTARY_RETENTION_HOURS', flag: 'retention-hours', min: 1, max: 8760, help: 'default retention of new streams (and of video streams devices create; CreateStream\'s video default is 0, the live buffer)' },
  segmentBytes: { type: 'integer', default: 64 * 1024 * 1024, env: 'TRIBUTARY_SEGMENT_BYTES', flag: 'segment-bytes', min: 4096, max: 1024 * 1024 * 1024, help: 'roll a shard segment at this size' },
  maxStreamBytes: { type: 'integer', default: 0, env: 'TRIBUTARY_MAX_STREAM_BYTES', flag: 'max-stream-bytes', min: 0, help: 'per-stream size cap, oldest segments go first (0: none)' },
  maxDataBytes: { type: 'integer', default: 0, env: 'TRIBUTARY_MAX_DATA_BYTES', flag: 'max-data-bytes', min: 0, help: 'disk cap on all shard logs and video fragments together; at the cap ingest stops acknowledging (0: none)' },
  groupCommitMs: { type: 'number', default: 2, env: 'TRIBUTARY_GROUP_COMMIT_MS', flag: 'group-commit-ms', min: 0, max: 1000, help: 'longest wait to gather appends into one fsync' },
  journal: { type: 'boolean', default: true, env: 'TRIBUTARY_JOURNAL', flag: 'journal', help: 'make each group commit durable with one fdatasync of a write-ahead journal, whatever the shards it touched (off: one fdatasync per touched segment)' },
  journalBytes: { type: 'integer', default: 16 * 1024 * 1024, env: 'TRIBUTARY_JOURNAL_BYTES', flag: 'journal-bytes', min: 1024 * 1024, max: 1024 * 1024 * 1024, help: 'size of each of the journal\'s two files: a checkpoint writes and syncs every segment written since the last each time one fills, so thousands of shards write faster with more, at the cost of memory (up to twice this kept behind) and a longer replay after a crash' },
  maxOpenSegments: { type: 'integer', default: 0, env: 'TRIBUTARY_MAX_OPEN_SEGMENTS', flag: 'max-open-segments', min: 0, max: 1_000_000, help: 'segment files kept open at most (least recently used closed first), so thousands of shards fit the process file limit; 0: half the open-file limit, 256 to 65,536' },
  maxBatchRecords: { type: 'integer', default: 500, env: 'TRIBUTARY_MAX_BATCH_RECORDS', flag: 'max-batch-records', min: 1, max: 10_000, help: 'records a device batch may hold' },
  maxPacketBytes: { type: 'integer', default: 4 * 1024 * 1024, env: 'TRIBUTARY_MAX_PACKET_BYTES', flag: 'max-packet-bytes', min: 65536, max: 256 * 1024 * 1024, help: 'largest MQTT packet the broker accepts' },
  region: { type: 'string', default: 'us-east-1', env: 'TRIBUTARY_REGION', flag: 'region', help: 'region used in ARNs and SigV4 scope' },
  accountId: { type: 'string', default: '000000000000', env: 'TRIBUTARY_ACCOUNT_ID', flag: 'account-id', help: 'account id used in ARNs' },
  accessKeys: { type: 'accessKeys', default: [], env: 'TRIBUTARY_ACCESS_KEYS', flag: 'access-keys', help: 'ID:SECRET[,ID:SECRET…]; when set, SigV4 is verified (visible in ps: prefer accessKeysFile)' },
  accessKeysFile: { type: 'string', default: '', env: 'TRIBUTARY_ACCESS_KEYS_FILE', flag: 'access-keys-file', help: 'a file of access keys, one ID:SECRET a line (# comments), mode 600; added to accessKeys, read again on SIGHUP' },
  subscriptionSeconds: { type: 'integer', default: 300, env: 'TRIBUTARY_SUBSCRIPTION_SECONDS', flag: 'subscription-seconds', min: 1, max: 300, help: 'how long one SubscribeToShard lasts before the consumer renews it (AWS: 300)' },
  shardLimit: { type: 'integer', default: 1000, env: 'TRIBUTARY_SHARD_LIMIT', flag: 'shard-limit', min: 1, max: 100_000, help: 'open shards the whole relay may hold (DescribeLimits ShardLimit); every path that creates shards is refused past it' },
  autoCreateMaxPerDevice: { type: 'integer', default: 100, env: 'TRIBUTARY_AUTO_CREATE_MAX_PER_DEVICE', flag: 'auto-create-max-per-device', min: 0, max: 100_000, help: 'streams one device may create by publishing to them (0: none)' },
  mqttMaxConnectBytes: { type: 'integer', default: 64 * 1024, env: 'TRIBUTARY_MQTT_MAX_CONNECT_BYTES', flag: 'mqtt-max-connect-bytes', min: 1024, max: 256 * 1024 * 1024, help: 'largest MQTT packet accepted before a client has authenticated (a CONNECT needs no more)' },
  mqttMaxPending: { type: 'integer', default: 1024, env: 'TRIBUTARY_MQTT_MAX_PENDING', flag: 'mqtt-max-pending', min: 1, max: 1_000_000, help: 'MQTT connections not yet authenticated, in all; more are closed at once' },
  mqttMaxPendingPerAddress: { type: 'integer', default: 32, env: 'TRIBUTARY_MQTT_MAX_PENDING_PER_ADDRESS', flag: 'mqtt-max-pending-per-address', min: 1, max: 1_000_000, help: 'MQTT connections not yet authenticated from one address; more are closed at once' },
  mqttMaxRefusals: { type: 'integer', default: 100, env: 'TRIBUTARY_MQTT_MAX_REFUSALS', flag: 'mqtt-max-refusals', min: 1, max: 1_000_000, help: 'refused subscriptions and publishes one MQTT connection may make before it is closed' },
  httpsCert: { type: 'string', default: '', env: 'TRIBUTARY_HTTPS_CERT', flag: 'https-cert', help: 'PEM certificate file: the HTTP port then speaks TLS only (HTTP/1.1 and HTTP/2 by ALPN)' },
  httpsKey: { type: 'string', default: '', env: 'TRIBUTARY_HTTPS_KEY', flag: 'https-key', help: 'PEM private key file for --https-cert' },
  httpIdleMs: { type: 'integer', default: 30_000, env: 'TRIBUTARY_HTTP_IDLE_MS', flag: 'http-idle-ms', min: 10, max: 3_600_000, help: 'an HTTP connection or HTTP/2 stream that moves no byte this long mid-request (or sends no request) is closed' },
  httpMinBodyRate: { type: 'integer', default: 4096, env: 'TRIBUTARY_HTTP_MIN_BODY_RATE', flag: 'http-min-body-rate', min: 0, max: 1024 * 1024 * 1024, help: 'bytes/s a request body must arrive at, judged over each --http-idle-ms; slower bodies are cut off' },
  httpMaxBodyBytesInFlight: { type: 'integer', default: 256 * 1024 * 1024, env: 'TRIBUTARY_HTTP_MAX_BODY_BYTES', flag: 'http-max-body-bytes', min: 65536, help: 'request body bytes held at once across the relay; past it requests get 503 with Retry-After' },
  httpMaxBodyBytesPerAddress: { type: 'integer', default: 64 * 1024 * 1024, env: 'TRIBUTARY_HTTP_MAX_BODY_BYTES_PER_ADDRESS', flag: 'http-max-body-bytes-per-address', min: 65536, help: 'request body bytes held at once for one client address (503 past it)' },
  httpMaxBodyBytesPerConnection: { type: 'integer', default: 32 * 1024 * 1024, env: 'TRIBUTARY_HTTP_MAX_BODY_BYTES_PER_CONNECTION', flag: 'http-max-body-bytes-per-connection', min: 65536, help: 'request body bytes held at once on one connection, all its HTTP/2 streams together (503 past it)' },
  httpMaxConnectionsPerAddress: { type: 'integer', default: 256, env: 'TRIBUTARY_HTTP_MAX_CONNECTIONS_PER_ADDRESS', flag: 'http-max-connections-per-address', min: 1, max: 1_000_000, help: 'HTTP connections one client address may hold open; more are closed at once' },
  videoLiveBufferSeconds: { type: 'integer', default: 300, env: 'TRIBUTARY_VIDEO_LIVE_BUFFER_SECONDS', flag: 'video-live-buffer-seconds', min: 10, max: 86_400, help: 'what a video stream with DataRetentionInHours 0 keeps: its fragments of the last this many seconds (the live buffer)' },
  videoMaxPendingFragments: { type: 'integer', default: 16, env: 'TRIBUTARY_VIDEO_MAX_PENDING_FRAGMENTS', flag: 'video-max-pending-fragments', min: 1, max: 100_000, help: 'incomplete video fragments (chunks still to come) one device may have in the relay\'s memory; past it: ERROR TOO_MANY_PENDING' },
  videoMaxPendingBytes: { type: 'integer', default: 64 * 1024 * 1024, env: 'TRIBUTARY_VIDEO_MAX_PENDING_BYTES', flag: 'video-max-pending-bytes', min: 1024 * 1024, help: 'bytes one device\'s incomplete video fragments may reserve (each its whole size); a larger fragment gets ERROR FRAGMENT_TOO_LARGE' },
  videoMaxPendingFragmentsTotal: { type: 'integer', default: 4096, env: 'TRIBUTARY_VIDEO_MAX_PENDING_FRAGMENTS_TOTAL', flag: 'video-max-pending-fragments-total', min: 1, max: 10_000_000, help: 'incomplete video fragments of all devices together' },
  videoMaxPendingBytesTotal: { type: 'integer', default: 256 * 1024 * 1024, env: 'TRIBUTARY_VIDEO_MAX_PENDING_BYTES_TOTAL', flag: 'video-max-pending-bytes-total', min: 1024 * 1024, help: 'bytes all incomplete video fragments together may reserve' },
  deliveryFile: { type: 'string', default: '', env: 'TRIBUTARY_DELIVERY_FILE', flag: 'delivery-file', help: 'JSON file of delivery streams (Firehose) the relay runs, the S3 buckets they write and the transform modules they call (docs/delivery.md)' },
  cluster: { type: 'string', default: '', env: 'TRIBUTARY_CLUSTER', flag: 'cluster', help: 'NATS servers with JetStream (nats://host:port[,nats://…]): shard logs and metadata are kept there, so several relays serve one fleet (docs/cluster.md); empty: the embedded segment files and SQLite' },
  clusterName: { type: 'string', default: 'tributary', env: 'TRIBUTARY_CLUSTER_NAME', flag: 'cluster-name', help: 'prefix of the JetStream streams, buckets and subjects of one cluster of relays (several clusters can share NATS servers)' },
  replicas: { type: 'integer', default: 1, env: 'TRIBUTARY_REPLICAS', flag: 'replicas', min: 1, max: 5, help: 'JetStream replicas of each shard log and of the metadata (R1, or R3 for a three-server cluster); with --cluster only' },
  mqttRedis: { type: 'string', default: '', env: 'TRIBUTARY_MQTT_REDIS', flag: 'mqtt-redis', help: 'Redis for the MQTT broker (redis://host:port[/db]): sessions, retained messages, wills, subscriptions and offline QoS 1 queues are shared by every relay using it (docs/cluster.md); empty: kept in this relay' },
  logLevel: { type: 'string', default: 'info', env: 'TRIBUTARY_LOG_LEVEL', flag: 'log-level', help: 'least level of the JSON lines logged on stderr: debug, info, warn or error (debug adds every connection\'s end)' },
  videoPendingTimeoutMs: { type: 'integer', default: 30_000, env: 'TRIBUTARY_VIDEO_PENDING_TIMEOUT_MS', flag: 'video-pending-timeout-ms', min: 100, max: 3_600_000, help: 'an incomplete video fragment that receives no chunk this long is dropped (the device sends it again)' },
}

function coerce(name: string, field: Field, raw: unknown): unknown {
  switch (field.type) {
    case 'string':
      if (typeof raw !== 'string') throw new ConfigError(name, `must be a string, got ${JSON.stringify(raw)}`)
      return raw
    case 'boolean':
      if (typeof raw === 'boolean') return raw
      if (raw === 'true' || raw === '1' || raw === '') return true
      if (raw === 'false' || raw === '0') return false
      throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`)
    case 'integer':
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
      if (!Number.isFinite(n) || (field.type === 'integer' && !Number.isInteger(n))) {
        throw new ConfigError(name, `must be ${field.type === 'integer' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`)
      }
      if (field.min !== undefined && n < field.min) throw new ConfigError(name, `must be at least ${field.min}, got ${n}`)
      if (field.max !== undefined && n > field.max) throw new ConfigError(name, `must be at most ${field.max}, got ${n}`)
      return n
    }
    case 'accessKeys': {
      const list = typeof raw === 'string' ? raw.split(',').filter(Boolean).map((pair) => {
        const i = pair.indexOf(':')
        return { accessKeyId: pair.slice(0, i), secretAccessKey: pair.slice(i + 1) }
      }) : raw
      if (!Array.isArray(list)) throw new ConfigError(name, 'must be a list of {accessKeyId, secretAccessKey}')
      return list.map((k: unknown, i: number) => {
        const key = k as Partial<AccessKey>
        if (typeof key?.accessKeyId !== 'string' || !/^[A-Za-z0-9]{1,128}$/.test(key.accessKeyId)) throw new ConfigError(`${name}[${i}].accessKeyId`, 'must be 1-128 letters and digits')
        if (typeof key.secretAccessKey !== 'string' || key.secretAccessKey.length < 1) throw new ConfigError(`${name}[${i}].secretAccessKey`, 'must be a non-empty string')
        return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey }
      })
    }
  }
}

/**
 * Resolves the relay's configuration: `flags` (already parsed, by flag name) over `env` over
 * `file` (an object, e.g. parsed YAML or JSON, by setting name) over the defaults.
 */
export function resolveRelayConfig(
  flags: Record<string, unknown> = {},
  env: Record<string, string | undefined> = {},
  file: Record<string, unknown> = {},
): RelayConfig {
  for (const key of Object.keys(file)) {
    if (!(key in relaySchema)) throw new ConfigError(key, 'is not a relay setting')
  }
  const out: Record<string, unknown> = {}
  for (const [name, field] of Object.entries(relaySchema)) {
    let raw: unknown = field.default
    let source = name
    if (file[name] !== undefined) raw = file[name]
    if (env[field.env] !== undefined) { raw = env[field.env]; source = field.env }
    if (flags[field.flag] !== undefined) { raw = flags[field.flag]; source = `--${field.flag}` }
    out[name] = coerce(source, field, raw)
  }
  const config = out as unknown as RelayConfig
  if ((config.tlsCert === '') !== (config.tlsKey === '')) throw new ConfigError(config.tlsCert ? 'tlsKey' : 'tlsCert', 'TLS needs both a certificate and a key')
  if (config.deviceCaKey !== '' && config.deviceCaCert === '') throw new ConfigError('deviceCaKey', 'needs deviceCaCert, the certificate of that key')
  if (config.deviceCaCert !== '' && config.tlsCert === '') throw new ConfigError('deviceCaCert', 'device certificates are presented over MQTT over TLS: set tlsCert and tlsKey too')
  if ((config.httpsCert === '') !== (config.httpsKey === '')) throw new ConfigError(config.httpsCert ? 'httpsKey' : 'httpsCert', 'HTTPS needs both a certificate and a key')
  if (config.httpHost === '') config.httpHost = config.accessKeys.length > 0 || config.accessKeysFile !== '' ? '0.0.0.0' : '127.0.0.1'
  if (config.mqttMaxConnectBytes > config.maxPacketBytes) throw new ConfigError('mqttMaxConnectBytes', `must be at most maxPacketBytes (${config.maxPacketBytes}), got ${config.mqttMaxConnectBytes}`)
  if (config.cluster !== '') {
    for (const url of config.cluster.split(',')) {
      if (!/^(nats|tls):\/\/[^\s/,]+$/.test(url.trim())) throw new ConfigError('cluster', `must be NATS server URLs (nats://host:port, comma-separated), got ${JSON.stringify(url)}`)
    }
  } else if (config.replicas !== 1) {
    throw new ConfigError('replicas', 'applies to JetStream: set cluster (NATS servers) too')
  }
  if (!/^[A-Za-z0-9-]{1,32}$/.test(config.clusterName)) throw new ConfigError('clusterName', `must be 1-32 letters, digits or -, got ${JSON.stringify(config.clusterName)}`)
  if (config.mqttRedis !== '' && !MQTT_REDIS_URL.test(config.mqttRedis)) throw new ConfigError('mqttRedis', `must be a Redis URL (redis://[user:password@]host:port[/db], or rediss:// for TLS), got ${JSON.stringify(config.mqttRedis.replace(/\/\/[^/]*@/, '//***@'))}`)
  if (!['debug', 'info', 'warn', 'error'].includes(config.logLevel)) throw new ConfigError('logLevel', `must be debug, info, warn or error, got ${JSON.stringify(config.logLevel)}`)
  if (!/^\d{12}$/.test(config.accountId)) throw new ConfigError('accountId', 'must be 12 digits')
  return config
}

/** The settings table for `--help` and the README. */
export function describeRelaySettings(): string {
  return Object.entries(relaySchema)
    .map(([name, f]) => `  --${f.flag.padEnd(22)} ${f.env.padEnd(32)} ${name}: ${f.help} (default ${JSON.stringify(f.default)})`)
    .join('\n')
}

/** Whether a host (as in a URL, IPv6 bracketed or not) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  return h === '::1'
}
