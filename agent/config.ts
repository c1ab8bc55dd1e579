/**
 * The agent's configuration: one YAML file naming the device, the relay, the outbox, the streams
 * with their policies, and the sources. Validated at start; every error names its field
 * (`streams.sensors.onFull: must be one of drop-oldest, reject-new`).
 */
import { readFileSync } from 'node:fs'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN, STREAM_NAME_PATTERN } from '../shared/topics.js'
import { Limits, partitionKeyProblem } from '../shared/limits.js'
import type { ParserConfig } from './sources/parsers/index.js'
import type { SerialLinkOptions } from '../hardware/serial/link.js'
import type { CameraInput } from '../hardware/video/types.js'
import { MAX_CHUNK_PAYLOAD } from '../shared/video.js'

export type OnFull = 'drop-oldest' | 'reject-new'

export interface StreamPolicy {
  name: string
  /** Higher drains first after an outage. */
  priority: number
  /** Bytes of this stream's records the outbox may hold (0: only the outbox's own cap). */
  maxBytes: number
  /** Records older than this (agent running time, seconds) are dropped (0: no limit). */
  maxAgeSeconds: number
  onFull: OnFull
}

export interface SimulatedSource {
  type: 'simulated'
  stream: string
  /** Readings per second per sensor. */
  rateHz: number
  sensors: { id: string; kind: 'temperature' | 'humidity' | 'vibration' }[]
}

export interface PutApiSource {
  type: 'put-api'
  host: string
  port: number
  /** A bearer token every put must carry (from `token` or `tokenFile`), or null. */
  token: string | null
  /** Where the token was read from ('' when inline or none), for the file-mode warning. */
  tokenFile: string
  /** Host names accepted besides loopback and the bind address. */
  allowedHosts: string[]
}

/** A serial sensor: the port's settings (path, framing, health timings) as the link takes them, then what to make of its bytes. */
export interface SerialSource extends SerialLinkOptions {
  type: 'serial'
  /** Names the source in logs, metrics and status; defaults to the port's file name. */
  name: string
  stream: string
  parser: ParserConfig
  /** Every reading's partition key, unless partitionKeyField names a field the reading has. */
  partitionKey: string
  partitionKeyField: string | null
}

/** What a camera's offline buffer does when it is at maxBytes. */
export type CameraOnFull = 'drop-oldest' | 'pause-capture'

/**
 * A camera: where its video comes from and how it is encoded (CameraInput, as hardware/video takes
 * it), and the caps of its own offline buffer, apart from the records' outbox.
 */
export interface CameraSource extends CameraInput {
  type: 'camera'
  /** Names the camera in logs, metrics, status and its buffer directory; defaults to the stream. */
  name: string
  /** The video stream (Kinesis Video) its fragments go to. */
  stream: string
  /** ffmpeg writing no bytes for this long is a hung capture: it is killed and restarted. */
  stallMs: number
  /** Bytes of fragments (and init segments) this camera's buffer may hold. */
  maxBytes: number
  /** Fragments older than this (agent running time, seconds) are dropped (0: no limit). */
  maxAgeSeconds: number
  /** At maxBytes: drop the oldest fragments (never the newest), or drop new fragments while capture keeps running. */
  onFull: CameraOnFull
  /** After an outage the backlog is sent at most this fast, behind the live fragment (0: no cap). */
  backfillBytesPerSecond: number
}

export type SourceConfig = SimulatedSource | PutApiSource | SerialSource | CameraSource

export interface AgentConfig {
  device: string
  relay: {
    url: string
    username: string
    password: string
    /** Where the password was read from ('' when inline or none), for the file-mode warning. */
    passwordFile: string
    /** PEM file of the CA that signed the relay's certificate, for mqtts:// */
    ca: string
    /** PEM files of this device's client certificate (CN = the device id, signed by the relay's device CA) and its key, for mqtts:// ('' for none). */
    cert: string
    key: string
    keepaliveSeconds: number
    /** Largest MQTT packet the broker accepts: batches are sized to stay under it. */
    maxPacketBytes: number
    /** QoS 1 publishes unacknowledged at once (keep at or below the broker's limit). */
    maxInflight: number
  }
  outbox: {
    path: string
    /** Hard cap on the database file (max_page_count); the WAL is bounded separately. */
    maxBytes: number
    synchronous: 'FULL' | 'NORMAL'
    commitIntervalMs: number
    commitRows: number
    /**
     * Storage writes the agent may cause per day, in MB, before `tributary agent status` warns (0:
     * no budget). An SD card's endurance is what it can be written in total.
     */
    writeBudgetMBPerDay: number
  }
  uplink: {
    batchRecords: number
    batchBytes: number
    /** Records per second while draining a backlog (0: as fast as the relay acknowledges). */
    drainRatePerSecond: number
    backoffInitialMs: number
    backoffMaxMs: number
  }
  status: {
    host: string
    /** Loopback HTTP port for `tributary agent status` and /metrics (0 picks a free one). */
    port: number
    publishIntervalMs: number
    /** Host names accepted besides loopback and the bind address (a status server scraped by name). */
    allowedHosts: string[]
  }
  streams: Record<string, StreamPolicy>
  sources: SourceConfig[]
  serial: {
    /** Serial readings wait up to this long and go to the outbox together (one commit for every sensor). */
    flushMs: number
  }
}

/**
 * Serial readings gather 5 s by default: each commit writes whole flash pages however few bytes it
 * holds, so three 10 Hz sensors cost 8.8× their data at one commit a second and 2.5× at one every
 * five (bench/wear.ts). A power cut can take the last flush's readings; SIGTERM takes none.
 */
export const SERIAL_FLUSH_MS = 5000

type Obj = Record<string, unknown>

function object(value: unknown, field: string): Obj {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(field, 'must be a mapping')
  return value as Obj
}

function only(obj: Obj, field: string, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) throw new ConfigError(field ? `${field}.${k}` : k, `is not a setting (known: ${keys.join(', ')})`)
}

function str(obj: Obj, key: string, field: string, fallback?: string): string {
  const v = obj[key]
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${field}${key}`, 'is required')
    return fallback
  }
  if (typeof v !== 'string') throw new ConfigError(`${field}${key}`, `must be a string, got ${JSON.stringify(v)}`)
  return v
}

function num(obj: Obj, key: string, field: string, fallback: number, min: number, max: number, integer = true): number {
  const v = obj[key] ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new ConfigError(`${field}${key}`, `must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`)
  }
  if (v < min || v > max) throw new ConfigError(`${field}${key}`, `must be between ${min} and ${max}, got ${v}`)
  return v
}

function oneOf<T extends string>(obj: Obj, key: string, field: string, fallback: T, values: readonly T[]): T {
  const v = obj[key] ?? fallback
  if (typeof v !== 'string' || !values.includes(v as T)) throw new ConfigError(`${field}${key}`, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`)
  return v as T
}

const MiB = 1024 * 1024

/**
 * relay.cert and relay.key: both or neither, over mqtts:// only; unless `skipFiles`, the certificate
 * must be this device's (its CN) and the key its key, so a mix-up is found at start, not as a refused
 * connection later.
 */
function clientCertificate(r: Obj, url: string, device: string, skipFiles: boolean): { cert: string; key: string } {
  const cert = str(r, 'cert', 'relay.', '')
  const key = str(r, 'key', 'relay.', '')
  if (!cert && !key) return { cert, key }
  if (!key) throw new ConfigError('relay.key', 'is required with relay.cert: the private key of that certificate (PEM)')
  if (!cert) throw new ConfigError('relay.cert', 'is required with relay.key: the device certificate (PEM) from tributary devices add --cert')
  if (!url.startsWith('mqtts://')) throw new ConfigError('relay.cert', `a client certificate is presented over TLS: relay.url must be mqtts://, got ${JSON.stringify(url)}`)
  if (skipFiles) return { cert, key }
  const read = (path: string, field: string) => {
    try { return readFileSync(path) } catch (err) { throw new ConfigError(field, `cannot be read: ${(err as Error).message}`) }
  }
  let certificate: X509Certificate
  try { certificate = new X509Certificate(read(cert, 'relay.cert')) } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError('relay.cert', `${cert} is not a PEM certificate: ${(err as Error).message}`)
  }
  const cn = /^CN=(.*)$/m.exec(certificate.subject)?.[1]
  if (cn !== device) throw new ConfigError('relay.cert', `${cert} is the certificate of ${JSON.stringify(cn ?? certificate.subject)} (its CN), not of this device ${JSON.stringify(device)}`)
  let privateKey: ReturnType<typeof createPrivateKey>
  try { privateKey = createPrivateKey(read(key, 'relay.key')) } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError('relay.key', `${key} is not a PEM private key: ${(err as Error).message}`)
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new ConfigError('relay.key', `${key} is not the private key of ${cert}`)
  return { cert, key }
}

/** `skipFiles`: do not read relay.passwordFile (for checking a config on another machine or before its credential exists). */
export function validateAgentConfig(raw: unknown, options: { skipFiles?: boolean } = {}): AgentConfig {
  const root = object(raw, 'config')
  only(root, '', ['device', 'relay', 'outbox', 'uplink', 'status', 'streams', 'sources', 'serial'])
  const device = str(root, 'device', '')
  if (!DEVICE_ID_PATTERN.test(device)) throw new ConfigError('device', `must match ${DEVICE_ID_PATTERN}, got ${JSON.stringify(device)}`)

  const r = object(root.relay, 'relay')
  only(r, 'relay', ['url', 'username', 'password', 'passwordFile', 'ca', 'cert', 'key', 'keepaliveSeconds', 'maxPacketBytes', 'maxInflight'])
  const url = str(r, 'url', 'relay.')
  if (!/^mqtts?:\/\/[^/]+(:\d+)?\/?$/.test(url)) throw new ConfigError('relay.url', `must be mqtt://host:port or mqtts://host:port, got ${JSON.stringify(url)}`)
  let password = str(r, 'password', 'relay.', '')
  let passwordFile = ''
  if (r.passwordFile !== undefined) {
    passwordFile = str(r, 'passwordFile', 'relay.')
    if (options.skipFiles) password = '(from passwordFile)'
    else try { password = readFileSync(passwordFile, 'utf8').trim() } catch (err) { throw new ConfigError('relay.passwordFile', `cannot be read: ${(err as Error).message}`) }
  }
  const relay = {
    url, password, passwordFile,
    username: str(r, 'username', 'relay.', password ? device : ''),
    ca: str(r, 'ca', 'relay.', ''),
    ...clientCertificate(r, url, device, options.skipFiles ?? false),
    keepaliveSeconds: num(r, 'keepaliveSeconds', 'relay.', 30, 5, 3600),
    maxPacketBytes: num(r, 'maxPacketBytes', 'relay.', 4 * MiB, 64 * 1024, 256 * MiB),
    maxInflight: num(r, 'maxInflight', 'relay.', 8, 1, 1000),
  }

  const o = object(root.outbox, 'outbox')
  only(o, 'outbox', ['path', 'maxBytes', 'synchronous', 'commitIntervalMs', 'commitRows', 'writeBudgetMBPerDay'])
  const outbox = {
    path: str(o, 'path', 'outbox.', './outbox.db'),
    maxBytes: num(o, 'maxBytes', 'outbox.', 256 * MiB, MiB, 1024 * 1024 * MiB),
    synchronous: oneOf(o, 'synchronous', 'outbox.', 'FULL', ['FULL', 'NORMAL'] as const),
    commitIntervalMs: num(o, 'commitIntervalMs', 'outbox.', 100, 1, 1000),
    commitRows: num(o, 'commitRows', 'outbox.', 1000, 1, 100_000),
    // A 32 GB consumer card rated for ~1,500 program/erase cycles takes ~48 TB of writes: at 4 GB a
    // day, with the card's own write amplification of up to ~8×, that lasts some four years.
    writeBudgetMBPerDay: num(o, 'writeBudgetMBPerDay', 'outbox.', 4096, 0, 10_000_000),
  }

  const u = object(root.uplink, 'uplink')
  only(u, 'uplink', ['batchRecords', 'batchBytes', 'drainRatePerSecond', 'backoffInitialMs', 'backoffMaxMs'])
  const uplink = {
    batchRecords: num(u, 'batchRecords', 'uplink.', Limits.defaultBatchRecords, 1, 10_000),
    batchBytes: num(u, 'batchBytes', 'uplink.', Limits.defaultBatchBytes, 1024, 64 * MiB),
    drainRatePerSecond: num(u, 'drainRatePerSecond', 'uplink.', 0, 0, 10_000_000),
    backoffInitialMs: num(u, 'backoffInitialMs', 'uplink.', 500, 10, 60_000),
    backoffMaxMs: num(u, 'backoffMaxMs', 'uplink.', 30_000, 10, 3_600_000),
  }
  if (uplink.batchBytes > relay.maxPacketBytes - 1024) {
    throw new ConfigError('uplink.batchBytes', `must leave room under relay.maxPacketBytes (${relay.maxPacketBytes}) for the MQTT and frame headers`)
  }

  const s = object(root.status, 'status')
  only(s, 'status', ['host', 'port', 'publishIntervalMs', 'allowedHosts'])
  const status = {
    host: str(s, 'host', 'status.', '127.0.0.1'),
    port: num(s, 'port', 'status.', 4568, 0, 65535),
    publishIntervalMs: num(s, 'publishIntervalMs', 'status.', 5000, 100, 3_600_000),
    allowedHosts: hostList(s, 'status.'),
  }

  const streams: Record<string, StreamPolicy> = {}
  const st = object(root.streams, 'streams')
  for (const [name, value] of Object.entries(st)) {
    const field = `streams.${name}.`
    if (!STREAM_NAME_PATTERN.test(name)) throw new ConfigError(`streams.${name}`, `stream names must match ${STREAM_NAME_PATTERN}`)
    const p = object(value, `streams.${name}`)
    only(p, `streams.${name}`, ['priority', 'maxBytes', 'maxAgeSeconds', 'onFull'])
    streams[name] = {
      name,
      priority: num(p, 'priority', field, 0, -1000, 1000),
      maxBytes: num(p, 'maxBytes', field, 0, 0, 1024 * 1024 * MiB),
      maxAgeSeconds: num(p, 'maxAgeSeconds', field, 0, 0, 10 * 365 * 86400),
      onFull: oneOf(p, 'onFull', field, 'drop-oldest', ['drop-oldest', 'reject-new'] as const),
    }
  }

  const sources: SourceConfig[] = []
  const list = root.sources ?? []
  if (!Array.isArray(list)) throw new ConfigError('sources', 'must be a list')
  list.forEach((value, i) => {
    const field = `sources[${i}].`
    const src = object(value, `sources[${i}]`)
    const type = oneOf(src, 'type', field, 'simulated' as const, ['simulated', 'put-api', 'serial', 'camera'] as const)
    if (type === 'serial') {
      sources.push(serialSource(src, i, streams, uplink.batchBytes))
    } else if (type === 'camera') {
      sources.push(cameraSource(src, i))
    } else if (type === 'simulated') {
      only(src, `sources[${i}]`, ['type', 'stream', 'rateHz', 'sensors'])
      const stream = str(src, 'stream', field)
      if (!streams[stream]) throw new ConfigError(`${field}stream`, `names ${JSON.stringify(stream)}, which is not under streams:`)
      const sensorsRaw = src.sensors ?? [{ id: 'temp-1', kind: 'temperature' }, { id: 'humidity-1', kind: 'humidity' }, { id: 'vibration-1', kind: 'vibration' }]
      if (!Array.isArray(sensorsRaw) || sensorsRaw.length === 0) throw new ConfigError(`${field}sensors`, 'must be a non-empty list')
      const sensors = sensorsRaw.map((sv, j) => {
        const so = object(sv, `${field}sensors[${j}]`)
        only(so, `${field}sensors[${j}]`, ['id', 'kind'])
        return { id: str(so, 'id', `${field}sensors[${j}].`), kind: oneOf(so, 'kind', `${field}sensors[${j}].`, 'temperature', ['temperature', 'humidity', 'vibration'] as const) }
      })
      sources.push({ type, stream, rateHz: num(src, 'rateHz', field, 1, 0.001, 10_000, false), sensors })
    } else {
      only(src, `sources[${i}]`, ['type', 'host', 'port', 'token', 'tokenFile', 'allowedHosts'])
      sources.push({ type, host: str(src, 'host', field, '127.0.0.1'), port: num(src, 'port', field, 4569, 0, 65535), ...putApiToken(src, field, options), allowedHosts: hostList(src, field) })
    }
  })
  const se = object(root.serial, 'serial')
  only(se, 'serial', ['flushMs'])
  const serial = { flushMs: num(se, 'flushMs', 'serial.', SERIAL_FLUSH_MS, 0, 60_000) }
  const seen = new Map<string, number>()
  sources.forEach((src, i) => {
    const keys = src.type === 'serial' ? [`name ${src.name}`, `path ${src.path}`]
      : src.type === 'camera' ? [`camera name ${src.name}`, `video stream ${src.stream}`, ...(src.kind === 'synthetic' ? [] : [`device ${src.device}`])]
        : []
    for (const key of keys) {
      if (seen.has(key)) throw new ConfigError(`sources[${i}]`, `has the same ${key} as sources[${seen.get(key)}]`)
      seen.set(key, i)
    }
  })
  // A video chunk is one MQTT packet of up to MAX_CHUNK_PAYLOAD bytes, plus the topic and the MQTT header.
  const cameraAt = sources.findIndex((src) => src.type === 'camera')
  if (cameraAt >= 0 && relay.maxPacketBytes < MAX_CHUNK_PAYLOAD + VIDEO_PACKET_OVERHEAD) {
    throw new ConfigError('relay.maxPacketBytes', `must be at least ${MAX_CHUNK_PAYLOAD + VIDEO_PACKET_OVERHEAD} with a camera (sources[${cameraAt}]): video travels in chunks of up to ${MAX_CHUNK_PAYLOAD} bytes`)
  }
  return { device, relay, outbox, uplink, status, streams, sources, serial }
}

/** A bearer token must be long enough not to be guessed over a local socket. */
export const MIN_TOKEN_LENGTH = 16

function putApiToken(src: Obj, field: string, options: { skipFiles?: boolean }): { token: string | null; tokenFile: string } {
  if (src.token !== undefined && src.tokenFile !== undefined) throw new ConfigError(`${field}token`, 'give token or tokenFile, not both')
  let token: string
  let tokenFile = ''
  if (src.tokenFile !== undefined) {
    tokenFile = str(src, 'tokenFile', field)
    if (options.skipFiles) return { token: 'x'.repeat(MIN_TOKEN_LENGTH), tokenFile }
    try { token = readFileSync(tokenFile, 'utf8').trim() } catch (err) { throw new ConfigError(`${field}tokenFile`, `cannot be read: ${(err as Error).message}`) }
  } else if (src.token !== undefined) token = str(src, 'token', field)
  else return { token: null, tokenFile }
  const where = tokenFile ? `${field}tokenFile` : `${field}token`
  if (token.length < MIN_TOKEN_LENGTH) throw new ConfigError(where, `the token must be at least ${MIN_TOKEN_LENGTH} characters (got ${token.length}); make one with: openssl rand -hex 32`)
  if (!/^[\x21-\x7e]+$/.test(token)) throw new ConfigError(where, 'the token must be printable ASCII without spaces (it travels in an Authorization header)')
  return { token, tokenFile }
}

function hostList(obj: Obj, field: string): string[] {
  const v = obj.allowedHosts ?? []
  const host = (h: unknown) => typeof h === 'string' && (/^[A-Za-z0-9._-]+$/.test(h) || isIP(h.replace(/^\[(.*)\]$/, '$1')) === 6)
  if (!Array.isArray(v) || !v.every(host)) throw new ConfigError(`${field}allowedHosts`, 'must be a list of host names or addresses (without ports)')
  return (v as string[]).map((h) => h.replace(/^\[(.*)\]$/, '$1'))
}

function bytesOption(obj: Obj, key: string, field: string): Buffer {
  const v = obj[key]
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${field}${key}`, 'must be a non-empty string: text ("\\r\\n" escapes allowed) or hex as "0x7e7e"')
  if (/^0x([0-9a-fA-F]{2})+$/.test(v)) return Buffer.from(v.slice(2), 'hex')
  return Buffer.from(v.replace(/\\(r|n|t|0)/g, (_, c: string) => ({ r: '\r', n: '\n', t: '\t', '0': '\0' })[c]!), 'latin1')
}

const PARSERS = ['lines', 'nmea', 'json', 'csv', 'kv', 'delimiter', 'fixed', 'length-prefixed'] as const

function parserConfig(value: unknown, field: string, maxBytes: number): ParserConfig {
  const p = typeof value === 'string' ? { type: value } : object(value ?? { type: 'lines' }, field.slice(0, -1))
  const type = oneOf(p, 'type', field, 'lines', PARSERS)
  const at = field.slice(0, -1)
  const line = () => num(p, 'maxLineBytes', field, Math.min(4096, maxBytes), 1, maxBytes)
  switch (type) {
    case 'lines':
    case 'json':
    case 'kv':
      only(p, at, ['type', 'maxLineBytes'])
      return { type, maxLineBytes: line() }
    case 'nmea':
      only(p, at, ['type', 'maxLineBytes', 'requireChecksum'])
      if (p.requireChecksum !== undefined && typeof p.requireChecksum !== 'boolean') throw new ConfigError(`${field}requireChecksum`, 'must be true or false')
      return { type, maxLineBytes: line(), requireChecksum: p.requireChecksum !== false }
    case 'csv': {
      only(p, at, ['type', 'maxLineBytes', 'columns', 'separator'])
      let columns: string[] | null = null
      if (p.columns !== undefined) {
        if (!Array.isArray(p.columns) || !p.columns.length || !p.columns.every((c) => typeof c === 'string' && c !== '')) throw new ConfigError(`${field}columns`, 'must be a list of column names (or leave it out: the first line is the header)')
        columns = p.columns as string[]
      }
      const separator = str(p, 'separator', field, ',')
      if (!separator || separator.includes('"') || separator.includes('\n')) throw new ConfigError(`${field}separator`, 'must be non-empty, without quotes or newlines')
      return { type, maxLineBytes: line(), columns, separator }
    }
    case 'delimiter':
      only(p, at, ['type', 'delimiter', 'maxFrameBytes', 'includeDelimiter'])
      return { type, delimiter: bytesOption(p, 'delimiter', field), maxFrameBytes: num(p, 'maxFrameBytes', field, Math.min(4096, maxBytes), 1, maxBytes), includeDelimiter: p.includeDelimiter === true }
    case 'fixed':
      only(p, at, ['type', 'frameBytes', 'sync'])
      return { type, frameBytes: num(p, 'frameBytes', field, 0, 1, maxBytes), sync: p.sync === undefined ? null : bytesOption(p, 'sync', field) }
    case 'length-prefixed': {
      only(p, at, ['type', 'sync', 'lengthOffset', 'lengthBytes', 'lengthEndian', 'lengthAdjust', 'maxFrameBytes'])
      const lengthBytes = num(p, 'lengthBytes', field, 1, 1, 4)
      if (lengthBytes === 3) throw new ConfigError(`${field}lengthBytes`, 'must be 1, 2 or 4')
      const sync = p.sync === undefined ? null : bytesOption(p, 'sync', field)
      return {
        type, sync, lengthBytes: lengthBytes as 1 | 2 | 4,
        lengthOffset: num(p, 'lengthOffset', field, sync?.length ?? 0, 0, 1024),
        lengthEndian: oneOf(p, 'lengthEndian', field, 'big', ['big', 'little'] as const),
        lengthAdjust: num(p, 'lengthAdjust', field, 0, -1024, 1024),
        maxFrameBytes: num(p, 'maxFrameBytes', field, Math.min(4096, maxBytes), 1, maxBytes),
      }
    }
  }
}

function serialSource(src: Obj, i: number, streams: Record<string, StreamPolicy>, batchBytes: number): SerialSource {
  const field = `sources[${i}].`
  only(src, `sources[${i}]`, ['type', 'name', 'stream', 'path', 'baudRate', 'dataBits', 'stopBits', 'parity', 'rtscts', 'parser', 'partitionKey', 'partitionKeyField', 'silenceMs', 'checkIntervalMs', 'reopenInitialMs', 'reopenMaxMs'])
  const stream = str(src, 'stream', field)
  if (!streams[stream]) throw new ConfigError(`${field}stream`, `names ${JSON.stringify(stream)}, which is not under streams:`)
  const path = str(src, 'path', field)
  if (!path.startsWith('/')) throw new ConfigError(`${field}path`, `must be an absolute device path (prefer /dev/serial/by-id/...), got ${JSON.stringify(path)}`)
  const name = str(src, 'name', field, path.split('/').pop()!)
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(name)) throw new ConfigError(`${field}name`, `must be 1-64 letters, digits or . _ : -, got ${JSON.stringify(name)}`)
  const partitionKey = str(src, 'partitionKey', field, name)
  const keyProblem = partitionKeyProblem(partitionKey)
  if (keyProblem) throw new ConfigError(`${field}partitionKey`, keyProblem)
  const keyField = src.partitionKeyField === undefined || src.partitionKeyField === null ? null : str(src, 'partitionKeyField', field)
  // A reading must fit in one batch with room for its key and the frame's headers.
  const maxBytes = Math.min(Limits.maxRecordBytes - 256, batchBytes - 1024)
  const parser = parserConfig(src.parser, `${field}parser.`, maxBytes)
  if (keyField !== null && !['nmea', 'json', 'csv', 'kv'].includes(parser.type)) throw new ConfigError(`${field}partitionKeyField`, `needs a parser with fields (nmea, json, csv, kv), not ${parser.type}`)
  const stopBits = num(src, 'stopBits', field, 1, 1, 2, false)
  if (![1, 1.5, 2].includes(stopBits)) throw new ConfigError(`${field}stopBits`, 'must be 1, 1.5 or 2')
  const dataBits = num(src, 'dataBits', field, 8, 5, 8)
  if (src.rtscts !== undefined && typeof src.rtscts !== 'boolean') throw new ConfigError(`${field}rtscts`, 'must be true or false')
  const reopenInitialMs = num(src, 'reopenInitialMs', field, 250, 10, 60_000)
  return {
    type: 'serial', name, stream, path, parser, partitionKey, partitionKeyField: keyField,
    baudRate: num(src, 'baudRate', field, 9600, 50, 4_000_000),
    dataBits: dataBits as 5 | 6 | 7 | 8,
    stopBits: stopBits as 1 | 1.5 | 2,
    parity: oneOf(src, 'parity', field, 'none', ['none', 'even', 'odd', 'mark', 'space'] as const),
    rtscts: src.rtscts === true,
    silenceMs: num(src, 'silenceMs', field, 0, 0, 3_600_000),
    checkIntervalMs: num(src, 'checkIntervalMs', field, 1000, 50, 60_000),
    reopenInitialMs,
    reopenMaxMs: num(src, 'reopenMaxMs', field, 5000, reopenInitialMs, 600_000),
  }
}

/** Room for the MQTT fixed header, the topic and the packet id beside a video chunk. */
const VIDEO_PACKET_OVERHEAD = 512

const CAMERA_KEYS = ['type', 'name', 'stream', 'input', 'device', 'url', 'width', 'height', 'fps', 'bitrateKbps', 'fragmentMs', 'codec', 'inputFormat', 'stallMs', 'maxBytes', 'maxAgeSeconds', 'onFull', 'backfillBytesPerSecond'] as const

function cameraSource(src: Obj, i: number): CameraSource {
  const field = `sources[${i}].`
  only(src, `sources[${i}]`, CAMERA_KEYS)
  const stream = str(src, 'stream', field)
  // A video stream is the relay's (Kinesis Video), not one of the record streams under streams:.
  if (!STREAM_NAME_PATTERN.test(stream)) throw new ConfigError(`${field}stream`, `must match ${STREAM_NAME_PATTERN}, got ${JSON.stringify(stream)}`)
  const name = str(src, 'name', field, stream)
  // It names a directory too: no dot first (so never . or ..), no slash.
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(name)) throw new ConfigError(`${field}name`, `must be 1-64 letters, digits or . _ -, not starting with a dot, got ${JSON.stringify(name)}`)
  const kind = oneOf(src, 'input', field, 'synthetic', ['synthetic', 'v4l2', 'rtsp'] as const)
  let device = ''
  if (kind === 'v4l2') {
    if (src.url !== undefined) throw new ConfigError(`${field}url`, 'is for input: rtsp; a v4l2 camera is named by device')
    device = str(src, 'device', field)
    if (!/^\/dev\/\S+$/.test(device)) throw new ConfigError(`${field}device`, `must be a V4L2 device path (/dev/video0, or /dev/v4l/by-id/...), got ${JSON.stringify(device)}`)
  } else if (kind === 'rtsp') {
    if (src.device !== undefined) throw new ConfigError(`${field}device`, 'is for input: v4l2; an rtsp camera is named by url')
    device = str(src, 'url', field)
    let parsed: URL | null = null
    try { parsed = new URL(device) } catch { /* named below */ }
    if (!parsed || (parsed.protocol !== 'rtsp:' && parsed.protocol !== 'rtsps:') || !parsed.hostname) throw new ConfigError(`${field}url`, `must be an rtsp://host[:port]/path URL, got ${JSON.stringify(device)}`)
  } else {
    for (const key of ['device', 'url'] as const) if (src[key] !== undefined) throw new ConfigError(`${field}${key}`, 'is not used by input: synthetic (ffmpeg draws its own test pattern)')
  }
  const even = (key: string, fallback: number, max: number) => {
    const v = num(src, key, field, fallback, 16, max)
    if (v % 2 !== 0) throw new ConfigError(`${field}${key}`, `must be even (H.264 in 4:2:0), got ${v}`)
    return v
  }
  const width = even('width', 640, 7680)
  const height = even('height', 480, 4320)
  const fps = num(src, 'fps', field, 15, 1, 120)
  const bitrateKbps = num(src, 'bitrateKbps', field, 600, 16, 100_000)
  const fragmentMs = num(src, 'fragmentMs', field, 2000, 1000, 10_000)
  const codec = oneOf(src, 'codec', field, kind === 'rtsp' ? 'copy' : 'encode', ['encode', 'copy', 'v4l2m2m'] as const)
  const inputFormat = src.inputFormat === undefined ? '' : oneOf(src, 'inputFormat', field, '', ['mjpeg', 'yuyv422', 'h264'] as const)
  if (inputFormat && kind !== 'v4l2') throw new ConfigError(`${field}inputFormat`, `is the pixel format asked of a v4l2 camera; input: ${kind} has none`)
  if (codec === 'copy' && kind === 'synthetic') throw new ConfigError(`${field}codec`, 'copy needs H.264 from the input; input: synthetic is raw video: use encode or v4l2m2m')
  if (codec === 'copy' && kind === 'v4l2' && inputFormat !== 'h264') throw new ConfigError(`${field}codec`, 'copy needs H.264 from the camera: set inputFormat: h264 (or codec: encode for mjpeg/yuyv422)')
  if (inputFormat === 'h264' && codec !== 'copy') throw new ConfigError(`${field}inputFormat`, `h264 from the camera is copied, not decoded and encoded again: set codec: copy, got ${codec}`)
  // ffmpeg writes to its pipe once per fragment: a capture is hung only after several fragments' time of silence.
  const stallMs = num(src, 'stallMs', field, Math.max(10_000, 3 * fragmentMs), 2 * fragmentMs, 600_000)
  const backfillBytesPerSecond = num(src, 'backfillBytesPerSecond', field, MiB, 0, 1024 * MiB)
  if (backfillBytesPerSecond > 0 && backfillBytesPerSecond < 1024) throw new ConfigError(`${field}backfillBytesPerSecond`, `must be 0 (no cap) or at least 1024, got ${backfillBytesPerSecond}`)
  return {
    type: 'camera', name, stream, kind, device, width, height, fps, bitrateKbps, fragmentMs, codec, inputFormat, stallMs,
    maxBytes: num(src, 'maxBytes', field, 256 * MiB, 4 * MiB, 1024 * 1024 * MiB),
    maxAgeSeconds: num(src, 'maxAgeSeconds', field, 0, 0, 10 * 365 * 86400),
    onFull: oneOf(src, 'onFull', field, 'drop-oldest', ['drop-oldest', 'pause-capture'] as const),
    backfillBytesPerSecond,
  }
}

export function loadAgentConfig(path: string, options: { skipFiles?: boolean } = {}): AgentConfig {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (err) { throw new ConfigError('config', `cannot read ${path}: ${(err as Error).message}`) }
  let raw: unknown
  try { raw = parseYaml(text) } catch (err) { throw new ConfigError('config', `${path} is not valid YAML: ${(err as Error).message}`) }
  return validateAgentConfig(raw, options)
}
