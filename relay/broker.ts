/**
 * The MQTT side of the relay: aedes over TCP (and TLS when configured), device authentication,
 * the per-device ACL of DESIGN.md, and record batches handed to ingest from `authorizePublish`,
 * which aedes runs before it writes the PUBACK — so PUBACK means durable. Video chunks go to the
 * video ingest the same way (relay/video/ingest.ts says when their PUBACK comes).
 *
 * Before a client has authenticated it is held to a small packet limit and counted as pending
 * (relay/admission.ts); its live session is closed as soon as its credentials are revoked
 * (relay/sessions.ts); refused subscriptions and publishes are logged in summary and an abuser is
 * disconnected (relay/refusals.ts).
 *
 * With `mqttRedis` set, aedes keeps its sessions, subscriptions, retained messages, wills and
 * offline QoS 1 queues in Redis (aedes-persistence-redis) and passes messages between relays through
 * it (mqemitter-redis), so a device may connect to any relay of a cluster (docs/cluster.md).
 */
import net from 'node:net'
import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import type { Aedes, Client, PublishPacket, Subscription, AuthenticateError } from 'aedes'
import type { Clock } from '../hardware/index.js'
import type { Redis, RedisOptions } from 'ioredis'
import { ConfigError, ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN, parseTopic, TOPIC_ROOT, topics } from '../shared/topics.js'
import type { RelayToDeviceMessage } from '../shared/messages.js'
import { PendingConnections } from './admission.js'
import type { DeviceCertificates, TlsPeer } from './device-certs.js'
import type { Devices } from './devices.js'
import type { Ingest } from './ingest.js'
import { guardPacketSize, PacketSizeChecker } from './packet-guard.js'
import { LogLimiter } from './observe.js'
import { Refusals, type RefusalKind } from './refusals.js'
import type { TopicRules } from './rules.js'
import { DeviceSessions, type Credential } from './sessions.js'
import type { VideoIngest } from './video/index.js'

export interface BrokerOptions {
  host: string
  port: number
  tlsPort: number
  tlsCert: string
  tlsKey: string
  allowAnonymous: boolean
  maxPacketBytes: number
  /** The packet limit until a client has authenticated. */
  maxConnectBytes: number
  maxPending: number
  maxPendingPerAddress: number
  /** Refused subscriptions and publishes a connection may make before it is closed. */
  maxRefusals: number
  /** Redis shared by the relays' brokers (redis://host:port[/db]); '' keeps MQTT state in this process. */
  mqttRedis: string
  devices: Devices
  /** Device certificates over TLS: the client certificate is asked for and, when given, is the only credential looked at. */
  certificates?: DeviceCertificates
  ingest: Ingest
  /** Video chunks (relay/video/ingest.ts), answered on the device's video-acks topic. */
  video: VideoIngest
  /** Other topic layouts mapped into streams (relay/rules.ts); none: only Tributary's topics. */
  rules?: TopicRules
  clock: Clock
  log: (event: string, fields: Record<string, unknown>) => void
  onLatency?: (seconds: number) => void
  onRejected?: (code: string, count: number) => void
}

export interface Broker {
  aedes: Aedes
  port: number
  tlsPort: number | null
  connectedDevices(): number
  /** Connections accepted and not yet authenticated. */
  pendingConnections(): number
  /** Closes the device's connections (it keeps its data and reconnects). */
  disconnect(device: string): void
  close(): Promise<void>
}

/** The device id an authenticated client acts as. */
const DEVICE = Symbol('device')
/** The connection's admission: settled (no longer pending) once the client authenticates. */
const ADMISSION = Symbol('admission')
/** The certificate a TLS client presented, if any. */
const PEER = Symbol('peer')
/** Why the connection ended, when something other than the device's DISCONNECT ended it. */
const ENDING = Symbol('ending')
type DeviceClient = Client & {
  [DEVICE]?: string
  [ADMISSION]?: { checker: PacketSizeChecker; settle(): void; address: string }
  [PEER]?: TlsPeer
  [ENDING]?: { reason: string; logged: boolean }
}

/** How often refusals are logged per connection, at most (one line per kind with a count). */
const REFUSAL_LOG_WINDOW_MS = 10_000
/** Lines one device (or address) may log per kind per minute: lost connections, failed logins, rejected batches. */
const DEVICE_LOG_BURST = 5
const DEVICE_LOG_WINDOW_MS = 60_000

/** A publish's payload as a Buffer (aedes may hand over a string). */
const payloadOf = (packet: PublishPacket): Buffer => (Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload))

/** The code a device is told when what it sent cannot be stored now. */
const storageCode = (err: Error): ErrorCode => (err instanceof TributaryError ? err.code : ErrorCode.STORAGE_FAILED)

function authError(code: 2 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError
}

/** The connection options of a Redis URL (validated by shared/config.ts). */
function redisOptions(url: string): RedisOptions {
  const u = new URL(url)
  const db = u.pathname.replace(/\//g, '')
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? 6379 : Number(u.port),
    db: db === '' ? 0 : Number(db),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

/** What mqemitter-redis is beyond its declared type: its two connections and where their errors go. */
interface RedisEmitter {
  pubConn: Redis
  subConn: Redis
  state: EventEmitter
  emit(packet: { topic: string }, cb?: (err?: Error) => void): void
  close(cb: () => void): void
}
interface RedisPersistence {
  destroy(): Promise<void>
}

/** The emitter and persistence of a broker that shares its MQTT state through Redis. */
interface SharedMqttState {
  mq: RedisEmitter
  persistence: RedisPersistence
}

/**
 * Connects to the Redis of `mqttRedis`; throws, naming the setting, when it cannot be reached. The
 * packages are loaded here, so a relay without the setting never loads them.
 */
async function connectSharedState(url: string, log: BrokerOptions['log']): Promise<SharedMqttState> {
  const options = redisOptions(url)
  const shown = url.replace(/\/\/[^/]*@/, '//***@')
  const { default: MQEmitterRedis } = await import('mqemitter-redis')
  // Redis pub/sub ignores database numbers: channels carry the database, so that relays on another
  // database of the same Redis (another cluster, or another test) never see these messages.
  const Prefixed = (MQEmitterRedis as unknown as { MQEmitterRedisPrefix: new (prefix: string, opts: RedisOptions) => RedisEmitter }).MQEmitterRedisPrefix
  const mq = new Prefixed(`db${options.db}/`, options)
  // Without a listener the emitter's errors would be thrown; ioredis reconnects by itself.
  let failed: (err: Error) => void = () => {}
  mq.state.on('error', (err: Error) => {
    failed(err)
    log('mqtt_redis_error', { redis: shown, error: err.message })
  })
  try {
    await new Promise<void>((resolve, reject) => {
      failed = reject
      mq.pubConn.ping().then(() => resolve(), reject)
    })
  } catch (err) {
    mq.pubConn.disconnect()
    mq.subConn.disconnect()
    throw new ConfigError('mqttRedis', `cannot reach Redis at ${shown} (--mqtt-redis, TRIBUTARY_MQTT_REDIS): ${(err as Error).message}`)
  } finally {
    failed = () => {}
  }
  // Batches and video chunks have no subscribers (authorizeForward below keeps them from any): they
  // are not sent through Redis, which would otherwise carry every byte devices upload.
  const emit = mq.emit.bind(mq)
  mq.emit = (packet, cb) => {
    const kind = parseTopic(packet.topic)?.kind
    if (kind === 'records' || kind === 'video') return void (cb && queueMicrotask(() => cb()))
    emit(packet, cb)
  }
  // @ts-expect-error: aedes-persistence-redis ships no type declarations
  const { default: persistenceRedis } = (await import('aedes-persistence-redis')) as { default: (opts: RedisOptions) => RedisPersistence }
  return { mq, persistence: persistenceRedis(options) }
}

export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const { Aedes } = await import('aedes')
  const shared = o.mqttRedis === '' ? null : await connectSharedState(o.mqttRedis, o.log)
  // Brokers that share Redis tell each other apart by id: which one holds a client (a takeover
  // closes the old connection), whose wills to publish when one stops beating, and duplicates.
  const aedes = shared
    ? await Aedes.createBroker({ id: `tributary-relay-${randomUUID()}`, connectTimeout: 30_000, mq: shared.mq, persistence: shared.persistence }).catch(async (err: Error) => {
      await new Promise<void>((resolve) => shared.mq.close(resolve))
      await shared.persistence.destroy().catch(() => {})
      throw new ConfigError('mqttRedis', `the MQTT broker could not load its state from Redis: ${err.message}`)
    })
    : await Aedes.createBroker({ id: 'tributary-relay', connectTimeout: 30_000 })

  const publishToDevice = (device: string, message: RelayToDeviceMessage) =>
    new Promise<void>((resolve) => aedes.publish({ cmd: 'publish', topic: topics.rejects(device), payload: Buffer.from(JSON.stringify(message)), qos: 1, retain: false, dup: false } as PublishPacket, () => resolve()))

  const sessions = new DeviceSessions({ devices: o.devices, certificates: o.certificates, clock: o.clock, log: o.log })
  const refusals = new Refusals({ clock: o.clock, windowMs: REFUSAL_LOG_WINDOW_MS, maxRefusals: o.maxRefusals, log: o.log })
  // A device (or an address) that fails in a loop logs a few lines a minute, not one per try.
  const limiter = new LogLimiter({ now: () => o.clock.monoMs(), windowMs: DEVICE_LOG_WINDOW_MS, burst: DEVICE_LOG_BURST })
  const logFor = (source: string, event: string, fields: Record<string, unknown>) => limiter.log(o.log, source, event, fields)
  /** Marks why the relay is ending a client's connection, so that its close is not logged as lost; `logged`: its reason is logged already. */
  const ending = (client: DeviceClient, reason: string, logged: boolean) => { client[ENDING] ??= { reason, logged } }

  /** Which device a CONNECT would act as, with what credential; an AuthenticateError when none. */
  const identify = async (client: DeviceClient, username: string | undefined, password: Buffer | undefined): Promise<{ device: string; credential: Credential }> => {
    const peer = client[PEER]
    if (peer) return identifyByCertificate(client, username, peer)
    if (username === undefined || username === '') {
      if (!o.allowAnonymous) throw authError(5, 'anonymous clients are not allowed')
      if (!DEVICE_ID_PATTERN.test(client.id)) throw authError(5, 'an anonymous client id must be a valid device id')
      // Else anyone could act as a registered device: publish as it, read its rejects.
      if (await o.devices.isRegistered(client.id)) throw authError(5, `client id ${client.id} is a registered device: it must authenticate`)
      return { device: client.id, credential: { kind: 'anonymous' } }
    }
    // The client id is the session (and its queued rejects): one device may not take another's.
    if (client.id !== username) throw authError(2, `a device's client id must be its device id (${username}), got ${client.id}`)
    const proof = await o.devices.verify(username, password?.toString('utf8') ?? '')
    if (!proof) {
      logFor(client[ADMISSION]?.address ?? '', 'auth_failed', { device: username, client: client.id })
      o.onRejected?.(ErrorCode.AUTH_FAILED, 1)
      throw authError(4, 'bad device id or secret')
    }
    return { device: username, credential: { kind: 'secret', proof } }
  }

  /** A client that presented a certificate is the device it names, or nobody: a password beside a bad certificate does not count. */
  const identifyByCertificate = async (client: DeviceClient, username: string | undefined, peer: TlsPeer): Promise<{ device: string; credential: Credential }> => {
    const outcome = o.certificates ? await o.certificates.identify(peer) : { ok: false as const, reason: 'device certificates are not accepted here' }
    if (!outcome.ok) {
      logFor(client[ADMISSION]?.address ?? '', 'auth_failed', { client: client.id, credential: 'certificate', reason: outcome.reason })
      o.onRejected?.(ErrorCode.AUTH_FAILED, 1)
      throw authError(5, outcome.reason)
    }
    const { device, serial, untilMs } = outcome
    if (client.id !== device) throw authError(2, `a device's client id must be its certificate's CN (${device}), got ${client.id}`)
    if (username && username !== device) throw authError(5, `username ${username} is not the device of the certificate (${device})`)
    return { device, credential: { kind: 'certificate', serial, untilMs } }
  }

  aedes.authenticate = (client: DeviceClient, username, password, done) => {
    const stamp = sessions.stamp(username || client.id)
    identify(client, username, password)
      .then(async ({ device, credential }) => {
        if (!(await sessions.admit(device, client, credential, stamp))) throw authError(4, `the credentials of ${device} changed while it connected`)
        // Gone while it authenticated: nothing will close it again, so it must not stay recorded.
        if (client.closed || client.conn.destroyed) return sessions.forget(device, client)
        client[DEVICE] = device
        client.conn.once('close', () => sessions.forget(device, client))
        // [MQTT-3.1.4-2] aedes closes the connection this one replaces: that one did not break.
        const replaced = (aedes as unknown as { clients: Record<string, DeviceClient | undefined> }).clients[client.id]
        if (replaced && replaced !== client && !replaced.closed) {
          ending(replaced, 'taken_over', true)
          o.log('session_taken_over', { device, client: client.id })
        }
        // Authenticated: no longer pending, and held to the full packet limit.
        const admission = client[ADMISSION]
        if (admission) {
          admission.checker.limit = o.maxPacketBytes
          admission.settle()
        }
        done(null, true)
      })
      .catch((err: Error) => done('returnCode' in err ? err as AuthenticateError : authError(5, `authentication failed: ${err.message}`), false))
  }

  /** Counts a refusal; closes a client whose refusals pass the limit. */
  const refused = (client: DeviceClient, kind: RefusalKind, topic: string) => {
    o.onRejected?.(ErrorCode.NOT_AUTHORIZED, 1)
    if (client.closed) return
    if (refusals.note(client, { device: client[DEVICE], client: client.id }, kind, topic)) {
      o.log('client_closed', { device: client[DEVICE], client: client.id, reason: 'too_many_refusals', refusals: refusals.count(client) })
      ending(client, 'too_many_refusals', true)
      client.close()
    }
  }

  aedes.authorizeSubscribe = (client: DeviceClient, sub: Subscription, done) => {
    const device = client[DEVICE]
    const parsed = parseTopic(sub.topic)
    // A device may subscribe only to its own rejects and video-acks.
    if (device && parsed && parsed.device === device && (parsed.kind === 'rejects' || parsed.kind === 'video-acks')) return done(null, sub)
    refused(client, 'subscribe_refused', sub.topic)
    done(null, null)
  }

  aedes.authorizePublish = (client: DeviceClient | null, packet, done) => {
    if (!client) return done(null) // the relay's own messages
    const device = client[DEVICE]
    const parsed = parseTopic(packet.topic)
    // Another layout an existing device publishes to: a rule that grants this device maps it to a stream.
    if (device && !parsed && o.rules && !packet.topic.startsWith(`${TOPIC_ROOT}/`)) {
      const ruled = o.rules.route(device, packet.topic, payloadOf(packet))
      if (ruled) return putRecord(client, device, ruled, packet, done)
    }
    if (!device || !parsed || parsed.device !== device || (parsed.kind !== 'records' && parsed.kind !== 'put' && parsed.kind !== 'status' && parsed.kind !== 'video')) {
      refused(client, 'publish_refused', packet.topic)
      ending(client, 'publish_refused', true)
      // MQTT 3.1.1 has no negative PUBACK: the connection is closed instead.
      return done(new TributaryError(ErrorCode.NOT_AUTHORIZED, `device ${device} may not publish to ${packet.topic}`))
    }
    if (parsed.kind === 'status') return done(null)
    if (parsed.kind === 'video') {
      const payload = payloadOf(packet)
      o.video.take(device, parsed.stream, payload).then((outcome) => {
        if (outcome.ack) return done(null)
        // Cannot store now: the device has been told on its video-acks topic; no PUBACK, the connection is closed.
        o.onRejected?.(outcome.error.code, 1)
        ending(client, outcome.error.code, true)
        setTimeout(() => done(outcome.error), 50)
      }, (err: Error) => {
        o.log('video_ingest_error', { device, stream: parsed.stream, error: err.stack ?? String(err) })
        ending(client, 'video_ingest_error', true)
        done(err)
      })
      return
    }
    if (parsed.kind === 'put') return putRecord(client, device, parsed, packet, done)
    if (parsed.kind !== 'records') return done(null)
    const stream = parsed.stream
    const started = performance.now()
    const payload = payloadOf(packet)
    const stored = async () => {
      const outcome = await o.ingest.ingestBatch(device, stream, payload)
      o.onLatency?.((performance.now() - started) / 1000)
      if (outcome.reject) {
        logFor(device, 'batch_rejected', { device, stream, code: outcome.reject.code, records: outcome.reject.records.length })
        await publishToDevice(device, outcome.reject)
      }
    }
    stored().then(() => done(null), (err: Error) => notStored(client, device, stream, 'batch_not_stored', err, done))
  }

  /**
   * What a device sent cannot be stored now: no PUBACK. Say why on its rejects topic, then close the
   * connection; the device keeps its data and retries.
   */
  const notStored = async (client: DeviceClient, device: string, stream: string, event: 'batch_not_stored' | 'record_not_stored', err: Error, done: (err?: Error | null) => void) => {
    const code = storageCode(err)
    logFor(device, event, { device, stream, code, error: err.message })
    ending(client, event, true)
    o.onRejected?.(code, 1)
    await publishToDevice(device, { type: 'unavailable', stream, epoch: '0', batchSequence: -1, code, message: err.message })
    // Give the message a moment to reach the socket before the connection is closed.
    setTimeout(() => done(err), 50)
  }

  /**
   * One plain record (`…/put/{stream}[/{key}]`). QoS 1: acknowledged once durable, or once refused
   * (the reject is said on the device's rejects topic first); storage that cannot take it now gets no
   * PUBACK and the connection closed, as for a batch. QoS 0: let through at once and stored best
   * effort (a failure is counted and logged, the device is not told).
   */
  const putRecord = (client: DeviceClient, device: string, parsed: { stream: string; partitionKey: string } | { stream?: undefined; rule: { stream: string }; code: ErrorCode; message: string }, packet: PublishPacket, done: (err?: Error | null) => void) => {
    const started = performance.now()
    if (parsed.stream === undefined) {
      // A rule matched but gave no key (a payload without its field): refused, acknowledged, said.
      o.onRejected?.(parsed.code, 1)
      logFor(device, 'record_rejected', { device, topic: packet.topic, code: parsed.code })
      publishToDevice(device, { type: 'reject', stream: parsed.rule.stream, epoch: '0', batchSequence: -1, code: parsed.code, message: parsed.message, records: [], topic: packet.topic }).then(() => done(null), () => done(null))
      return
    }
    const stream = parsed.stream
    const stored = o.ingest.ingestRecord(device, stream, parsed.partitionKey, payloadOf(packet), packet.topic).then(async (outcome) => {
      o.onLatency?.((performance.now() - started) / 1000)
      if (outcome.reject) {
        logFor(device, 'record_rejected', { device, stream, code: outcome.reject.code })
        await publishToDevice(device, outcome.reject)
      }
    })
    if (packet.qos === 0) {
      done(null)
      stored.catch((err: Error) => {
        const code = storageCode(err)
        o.onRejected?.(code, 1)
        logFor(device, 'record_not_stored', { device, stream, code, qos: 0, error: err.message })
      })
      return
    }
    stored.then(() => done(null), (err: Error) => notStored(client, device, stream, 'record_not_stored', err, done))
  }

  // Batches, plain records and video chunks are not forwarded to subscribers: only the relay consumes them.
  aedes.authorizeForward = (_client, packet) => {
    const kind = parseTopic(packet.topic)?.kind
    return kind === 'records' || kind === 'put' || kind === 'video' ? null : packet
  }

  // A client's error ends its connection: the reason is logged once, when the connection is gone.
  aedes.on('clientError', (client: DeviceClient, err) => ending(client, err.message, false))
  let closing: Promise<void> | undefined

  /**
   * One line per connection end (docs/relay-settings.md, "Logs"): a device's DISCONNECT is routine (`debug`); a
   * connection that broke (reset, keep-alive timeout, closed without DISCONNECT) is one `warn` with
   * its reason; one the relay ended for a cause it logged already adds nothing.
   */
  const connectionEnded = (client: DeviceClient, checker: PacketSizeChecker) => {
    const device = client[DEVICE]
    if (device === undefined || closing) return
    const end = client[ENDING]
    if (checker.disconnected) o.log('client_disconnected', { device, client: client.id })
    else if (!end) logFor(device, 'connection_lost', { device, client: client.id, reason: 'closed without DISCONNECT' })
    else if (!end.logged) logFor(device, 'connection_lost', { device, client: client.id, reason: end.reason })
  }

  const onTooLarge = (address: string) => (err: Error) => {
    logFor(address, 'packet_too_large', { address, error: err.message })
    o.onRejected?.(ErrorCode.FRAME_TOO_LARGE, 1)
  }
  const pending = new PendingConnections({ maxPending: o.maxPending, maxPendingPerAddress: o.maxPendingPerAddress })
  let refusedConnections = 0
  const accept = (socket: net.Socket) => {
    const address = socket.remoteAddress ?? ''
    const admission = pending.admit(address)
    if (!admission.ok) {
      // Logged once per 100, not per connection: refusing is what a flood gets.
      if (refusedConnections++ % 100 === 0) o.log('connection_refused', { address, reason: admission.reason, refused: refusedConnections })
      o.onRejected?.(ErrorCode.LIMIT_EXCEEDED, 1)
      socket.destroy()
      return
    }
    socket.once('close', admission.settle)
    // PUBACKs are small and a device waits on each: Nagle's algorithm would hold them for the peer's
    // delayed ACK (bench/video-relay.ts: 59 fragments/s with it, 219 without).
    socket.setNoDelay(true)
    const checker = new PacketSizeChecker(o.maxConnectBytes)
    const tooLarge = onTooLarge(address)
    const client = aedes.handle(guardPacketSize(socket, checker, (err) => {
      tooLarge(err)
      ending(client, 'packet_too_large', true)
    })) as DeviceClient
    client[ADMISSION] = { checker, settle: admission.settle, address }
    socket.once('close', () => connectionEnded(client, checker))
    if (socket instanceof tls.TLSSocket) {
      const certificate = socket.getPeerX509Certificate()
      // node gives OpenSSL's code as a string here, though typed as an Error.
      const why = socket.authorizationError as unknown
      if (certificate) client[PEER] = { authorized: socket.authorized, error: why == null ? null : String((why as Error).message ?? why), certificate, commonName: socket.getPeerCertificate().subject?.CN }
    }
    client.conn.once('close', () => refusals.closed(client))
  }
  const server = net.createServer(accept)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => resolve())
  })
  let tlsServer: tls.Server | null = null
  if (o.tlsCert && o.tlsKey) {
    const ca = o.certificates?.caCertificatePem
    // A client certificate is asked for but not required (password devices use TLS too); only the device CA is trusted for one.
    const clientCerts: tls.TlsOptions = ca ? { requestCert: true, rejectUnauthorized: false, ca: [ca] } : {}
    tlsServer = tls.createServer({ cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey), ...clientCerts }, accept)
    await new Promise<void>((resolve, reject) => {
      tlsServer!.once('error', reject)
      tlsServer!.listen(o.tlsPort, o.host, () => resolve())
    })
  }
  return {
    aedes,
    port: (server.address() as net.AddressInfo).port,
    tlsPort: tlsServer ? (tlsServer.address() as net.AddressInfo).port : null,
    connectedDevices: () => aedes.connectedClients,
    pendingConnections: () => pending.pending(),
    disconnect: (device) => sessions.closeAll(device),
    close: () => closing ??= (async () => {
      // aedes closes its clients (publishing their wills), then the emitter; the persistence is ours to close.
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await shared?.persistence.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      if (tlsServer) await new Promise<void>((resolve) => tlsServer!.close(() => resolve()))
    })(),
  }
}
