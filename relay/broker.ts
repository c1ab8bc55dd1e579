/**
 * The MQTT side of the relay: aedes over TCP (and TLS when configured), device authentication,
 * the per-device ACL of DESIGN.md, and record batches handed to ingest from `authorizePublish`,
 * which aedes runs before it writes the PUBACK — so PUBACK means durable.
 */
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import type { Aedes, Client, PublishPacket, Subscription, AuthenticateError } from 'aedes'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN, parseTopic, topics } from '../shared/topics.js'
import type { RelayToDeviceMessage } from '../shared/messages.js'
import type { Devices } from './devices.js'
import type { Ingest } from './ingest.js'
import { guardPacketSize } from './packet-guard.js'

export interface BrokerOptions {
  host: string
  port: number
  tlsPort: number
  tlsCert: string
  tlsKey: string
  allowAnonymous: boolean
  maxPacketBytes: number
  devices: Devices
  ingest: Ingest
  log: (event: string, fields: Record<string, unknown>) => void
  onLatency?: (seconds: number) => void
  onRejected?: (code: string, count: number) => void
}

export interface Broker {
  aedes: Aedes
  port: number
  tlsPort: number | null
  connectedDevices(): number
  close(): Promise<void>
}

/** The device id an authenticated client acts as. */
const DEVICE = Symbol('device')
type DeviceClient = Client & { [DEVICE]?: string }

function authError(code: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError
}

export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const { Aedes } = await import('aedes')
  const aedes = await Aedes.createBroker({ id: 'tributary-relay', connectTimeout: 30_000 })

  const publishToDevice = (device: string, message: RelayToDeviceMessage) =>
    new Promise<void>((resolve) => aedes.publish({ cmd: 'publish', topic: topics.rejects(device), payload: Buffer.from(JSON.stringify(message)), qos: 1, retain: false, dup: false } as PublishPacket, () => resolve()))

  aedes.authenticate = (client: DeviceClient, username, password, done) => {
    if (username === undefined || username === '') {
      if (!o.allowAnonymous) return done(authError(5, 'anonymous clients are not allowed'), false)
      if (!DEVICE_ID_PATTERN.test(client.id)) return done(authError(5, 'an anonymous client id must be a valid device id'), false)
      client[DEVICE] = client.id
      return done(null, true)
    }
    o.devices.verify(username, password?.toString('utf8') ?? '').then((ok) => {
      if (!ok) {
        o.log('auth_failed', { device: username, client: client.id })
        o.onRejected?.(ErrorCode.AUTH_FAILED, 1)
        return done(authError(4, 'bad device id or secret'), false)
      }
      client[DEVICE] = username
      done(null, true)
    }, (err) => done(authError(5, `authentication failed: ${(err as Error).message}`), false))
  }

  aedes.authorizeSubscribe = (client: DeviceClient, sub: Subscription, done) => {
    const device = client[DEVICE]
    const parsed = parseTopic(sub.topic)
    // A device may subscribe only to its own rejects and video-acks.
    if (device && parsed && parsed.device === device && (parsed.kind === 'rejects' || parsed.kind === 'video-acks')) return done(null, sub)
    o.log('subscribe_refused', { device, topic: sub.topic })
    o.onRejected?.(ErrorCode.NOT_AUTHORIZED, 1)
    done(null, null)
  }

  aedes.authorizePublish = (client: DeviceClient | null, packet, done) => {
    if (!client) return done(null) // the relay's own messages
    const device = client[DEVICE]
    const parsed = parseTopic(packet.topic)
    if (!device || !parsed || parsed.device !== device || (parsed.kind !== 'records' && parsed.kind !== 'status' && parsed.kind !== 'video')) {
      o.log('publish_refused', { device, topic: packet.topic })
      o.onRejected?.(ErrorCode.NOT_AUTHORIZED, 1)
      // MQTT 3.1.1 has no negative PUBACK: the connection is closed instead.
      return done(new TributaryError(ErrorCode.NOT_AUTHORIZED, `device ${device} may not publish to ${packet.topic}`))
    }
    if (parsed.kind === 'status') return done(null)
    if (parsed.kind === 'video') {
      void publishToDevice(device, { type: 'reject', stream: parsed.stream, epoch: '0', batchSequence: -1, code: ErrorCode.NOT_FOUND, message: 'video ingest is not available in this relay version', records: [] })
        .then(() => done(null))
      return
    }
    if (parsed.kind !== 'records') return done(null)
    const stream = parsed.stream
    const started = performance.now()
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const stored = async () => {
      const outcome = await o.ingest.ingestBatch(device, stream, payload)
      o.onLatency?.((performance.now() - started) / 1000)
      if (outcome.reject) {
        o.log('batch_rejected', { device, stream, code: outcome.reject.code, records: outcome.reject.records.length })
        await publishToDevice(device, outcome.reject)
      }
    }
    stored().then(() => done(null), async (err: Error) => {
      // Cannot store now: no PUBACK. Say why, then close the connection; the device keeps its data and retries.
      const code = err instanceof TributaryError ? err.code : ErrorCode.STORAGE_FAILED
      o.log('batch_not_stored', { device, stream, code, error: err.message })
      o.onRejected?.(code, 1)
      await publishToDevice(device, { type: 'unavailable', stream, epoch: '0', batchSequence: -1, code, message: err.message })
      // Give the message a moment to reach the socket before the connection is closed.
      setTimeout(() => done(err), 50)
    })
  }

  // Batches are not forwarded to subscribers: only the relay consumes them.
  aedes.authorizeForward = (_client, packet) => (parseTopic(packet.topic)?.kind === 'records' ? null : packet)

  aedes.on('clientError', (client: DeviceClient, err) => o.log('client_error', { device: client[DEVICE], client: client.id, error: err.message }))

  const onTooLarge = (err: Error) => {
    o.log('packet_too_large', { error: err.message })
    o.onRejected?.(ErrorCode.FRAME_TOO_LARGE, 1)
  }
  const accept = (socket: net.Socket) => aedes.handle(guardPacketSize(socket, o.maxPacketBytes, onTooLarge))
  const server = net.createServer(accept)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => resolve())
  })
  let tlsServer: tls.Server | null = null
  if (o.tlsCert && o.tlsKey) {
    tlsServer = tls.createServer({ cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) }, accept)
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
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
      if (tlsServer) await new Promise<void>((resolve) => tlsServer!.close(() => resolve()))
    },
  }
}
