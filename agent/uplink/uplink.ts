/**
 * The uplink: an MQTT connection as a pure transport (nothing queued while offline; the outbox is
 * the only queue). It forms batches from the outbox, keeps a bounded window of QoS 1 publishes in
 * flight, deletes records only on PUBACK, dead-letters what the relay rejects, reconnects with
 * jittered exponential backoff, and drains a backlog at a configurable rate cap.
 */
import type { Codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import type { RelayToDeviceMessage, DeviceStatus } from '../../shared/messages.js'
import type { AgentConfig } from '../config.js'
import type { Clock } from '../../hardware/index.js'
import type { LogFn } from '../log.js'
import type { FormedBatch, Outbox } from '../outbox/index.js'
import { Backoff } from './backoff.js'
import { DrainBudget } from './drain-budget.js'
import type { Transport, UplinkClient } from './transport.js'

export type LinkState = 'connecting' | 'connected' | 'backoff' | 'stopped'

export interface UplinkStats {
  state: LinkState
  lastPubackWallMs: number
  lastError: string | null
  inFlight: number
  batchesSent: number
  batchesAcked: number
  recordsAcked: number
  reconnects: number
}

/**
 * Something else that travels on the uplink's one MQTT connection (the video sender): told of each
 * connection once the relay accepted it and of its end, and handed the messages on its topics,
 * which the uplink subscribes to on every connection.
 */
export interface UplinkAttachment {
  readonly topics: readonly string[]
  connected(client: UplinkClient): void
  disconnected(): void
  message(topic: string, payload: Buffer): void
}

export interface UplinkDeps {
  config: AgentConfig
  outbox: Outbox
  clock: Clock
  log: LogFn
  /** Opens each connection to the relay. */
  transport: Transport
  /** The status document published retained on the device's status topic. */
  status: () => DeviceStatus
  codec: Pick<Codec, 'encodeBatch'>
  /** The jitter's source (0 ≤ x < 1). */
  random?: () => number
}

/** How long a batch that could not be formed waits before the next try. */
const PUMP_RETRY_MS = 1000
/** How long a stop waits for the goodbye to reach a connected relay (real time: it bounds socket I/O). */
const GOODBYE_MS = 500

export class Uplink {
  private readonly config: AgentConfig
  private readonly outbox: Outbox
  private readonly clock: Clock
  private readonly log: LogFn
  private readonly transport: Transport
  private readonly statusDocument: () => DeviceStatus
  private readonly codec: Pick<Codec, 'encodeBatch'>
  private readonly backoff: Backoff
  private readonly budget: DrainBudget
  private client: UplinkClient | null = null
  private readonly inFlight = new Map<number, FormedBatch>()
  private cancelReconnect: (() => void) | null = null
  private cancelPump: (() => void) | null = null
  private stopped = false
  private readonly attachments: UplinkAttachment[] = []
  readonly stats: UplinkStats = { state: 'connecting', lastPubackWallMs: 0, lastError: null, inFlight: 0, batchesSent: 0, batchesAcked: 0, recordsAcked: 0, reconnects: 0 }

  constructor(deps: UplinkDeps) {
    const { config, outbox, clock } = deps
    this.config = config
    this.outbox = outbox
    this.clock = clock
    this.log = deps.log
    this.transport = deps.transport
    this.statusDocument = deps.status
    this.codec = deps.codec
    this.backoff = new Backoff(config.uplink.backoffInitialMs, config.uplink.backoffMaxMs, deps.random)
    this.budget = new DrainBudget(config.uplink.drainRatePerSecond, config.uplink.batchRecords, clock)
    // Not inside the outbox's commit: the pump runs on its own turn, where its errors are its own.
    outbox.on('stored', () => setImmediate(() => this.pump()))
    outbox.on('formed', () => setImmediate(() => this.pump()))
    // Batches formed inside the outbox's group commits are on disk with the records' own sync, not
    // a transaction of their own. Under a drain rate cap the pump forms them, where the cap is spent.
    if (config.uplink.drainRatePerSecond === 0) {
      outbox.formInCommits({ maxRecords: config.uplink.batchRecords, maxBytes: config.uplink.batchBytes, slots: () => this.slots() })
    }
  }

  /** How many more batches the uplink would send now, beyond those formed and not yet sent: none while not connected. */
  private slots(): number {
    if (this.stopped || !this.client?.connected) return 0
    let unsent = 0
    for (const b of this.outbox.formedBatches()) if (!this.inFlight.has(b.seq)) unsent++
    return Math.max(0, this.config.relay.maxInflight - this.inFlight.size - unsent)
  }

  start(): void {
    this.connect()
  }

  /** Shares the connection with `a` from the next CONNACK on (attach before start()). */
  attach(a: UplinkAttachment): void {
    this.attachments.push(a)
  }

  private connect(): void {
    if (this.stopped) return
    this.stats.state = 'connecting'
    try {
      this.open()
    } catch (err) {
      // e.g. the CA file vanished: say so and try again later, never crash.
      this.stats.lastError = (err as Error).message
      this.log('uplink_error', { error: (err as Error).message })
      this.scheduleReconnect()
    }
  }

  private open(): void {
    const r = this.config.relay
    const client = this.transport({
      clientId: this.config.device,
      protocolVersion: 4,
      clean: true,
      keepalive: r.keepaliveSeconds,
      reconnectPeriod: 0, // reconnects are ours, with backoff and jitter
      connectTimeout: 10_000,
      queueQoSZero: false,
      will: { topic: topics.status(this.config.device), payload: Buffer.from(JSON.stringify({ device: this.config.device, online: false, at: new Date(this.clock.wallMs()).toISOString() })), qos: 1, retain: true },
    })
    this.client = client
    client.on('connect', () => {
      if (this.client !== client) return
      // The backoff is reset by progress (a PUBACK), not by a mere CONNACK: a relay that accepts the
      // connection and then refuses to store must not pull the agent into a reconnect loop.
      this.stats.state = 'connected'
      this.stats.lastError = null
      this.log('uplink_connected', { url: r.url })
      client.subscribe(topics.rejects(this.config.device), { qos: 1 })
      for (const a of this.attachments) for (const topic of a.topics) client.subscribe(topic, { qos: 1 })
      this.publishStatus()
      this.pump()
      for (const a of this.attachments) a.connected(client)
    })
    client.on('message', (topic: string, payload: Buffer) => {
      const a = this.attachments.find((x) => x.topics.includes(topic))
      if (!a) this.onRelayMessage(payload)
      else if (this.client === client) a.message(topic, payload)
    })
    client.on('error', (err: Error) => {
      this.stats.lastError = err.message
      this.log('uplink_error', { error: err.message })
    })
    client.on('close', () => {
      if (this.client !== client) return
      this.client = null
      // Whatever was in flight stays formed in the outbox and is resent, as the same batches, next time.
      this.inFlight.clear()
      this.stats.inFlight = 0
      for (const a of this.attachments) a.disconnected()
      client.removeAllListeners('connect')
      client.end(true)
      this.scheduleReconnect()
    })
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.cancelReconnect) return
    this.stats.state = 'backoff'
    this.stats.reconnects++
    this.cancelReconnect = this.clock.after(this.backoff.next(), () => { this.cancelReconnect = null; this.connect() })
  }

  private onRelayMessage(payload: Buffer): void {
    try {
      this.handleRelayMessage(payload)
    } catch (err) {
      // An outbox error here must not take the agent down (it would loop on the same message).
      this.stats.lastError = `could not record a rejection: ${(err as Error).message}`
      this.log('reject_handling_failed', { error: (err as Error).message })
    }
  }

  private handleRelayMessage(payload: Buffer): void {
    let message: RelayToDeviceMessage
    try {
      message = JSON.parse(payload.toString('utf8')) as RelayToDeviceMessage
    } catch {
      this.log('relay_message_unreadable', { bytes: payload.length })
      return
    }
    if (message.type === 'unavailable') {
      // The relay cannot store now and will close the connection: keep the data, back off, retry.
      this.stats.lastError = `relay unavailable: ${message.code}: ${message.message}`
      this.log('relay_unavailable', { code: message.code, message: message.message })
      return
    }
    if (message.type === 'reject') {
      if (message.epoch !== this.outbox.epoch.toString() || message.batchSequence < 0) {
        this.log('relay_reject', { ...message })
        return
      }
      this.log('relay_reject', { batch: message.batchSequence, code: message.code, records: message.records.length })
      if (message.code) this.outbox.deadLetter(message.batchSequence, null, { code: message.code, message: message.message ?? '' })
      else this.outbox.deadLetter(message.batchSequence, message.records)
    }
  }

  /** Fills the send window: first the batches formed earlier (resends), then new ones, within the rate cap. */
  pump(): void {
    try {
      this.fill()
    } catch (err) {
      // The outbox could not form or read a batch (full, failing disk): report it, retry soon.
      this.stats.lastError = `could not form a batch: ${(err as Error).message}`
      this.log('pump_failed', { error: (err as Error).message })
      this.pumpLater(PUMP_RETRY_MS)
    }
  }

  private pumpLater(ms: number): void {
    if (!this.cancelPump) this.cancelPump = this.clock.after(ms, () => { this.cancelPump = null; this.pump() })
  }

  private fill(): void {
    const client = this.client
    if (!client || !client.connected || this.stopped) return
    const { maxInflight } = this.config.relay
    const { batchRecords, batchBytes } = this.config.uplink
    for (const batch of this.outbox.formedBatches()) {
      if (this.inFlight.size >= maxInflight) return
      if (!this.inFlight.has(batch.seq)) this.send(client, batch)
    }
    while (this.inFlight.size < maxInflight) {
      const wait = this.budget.waitMs()
      if (wait > 0) {
        this.pumpLater(wait)
        return
      }
      const batch = this.outbox.formBatch(batchRecords, batchBytes)
      if (!batch) return
      this.budget.spend(batch.count)
      this.send(client, batch)
    }
  }

  private send(client: UplinkClient, batch: FormedBatch): void {
    const rows = this.outbox.rows(batch)
    // Every record of it was in damaged chunks (dropped and counted): nothing to send, and it leaves.
    if (!rows.length) {
      this.outbox.ack(batch.seq)
      return
    }
    const frame = this.codec.encodeBatch({
      epoch: this.outbox.epoch,
      sequence: batch.seq,
      records: rows.map((r) => ({
        partitionKey: r.partitionKey, data: r.data, producerTimeMs: r.capturedMs, clockSynced: r.clockSynced,
        ...(r.explicitHashKey ? { explicitHashKey: BigInt(r.explicitHashKey) } : {}),
      })),
    })
    this.inFlight.set(batch.seq, batch)
    this.stats.inFlight = this.inFlight.size
    this.stats.batchesSent++
    client.publish(topics.records(this.config.device, batch.stream), frame, { qos: 1 }, (err) => {
      if (this.client !== client || !this.inFlight.has(batch.seq)) return
      if (err) return // the connection is going; the batch is resent after reconnecting
      this.inFlight.delete(batch.seq)
      this.backoff.reset()
      this.stats.inFlight = this.inFlight.size
      this.stats.batchesAcked++
      this.stats.recordsAcked += batch.count
      this.stats.lastPubackWallMs = this.clock.wallMs()
      this.outbox.ack(batch.seq)
      this.pump()
    })
  }

  publishStatus(): void {
    const client = this.client
    if (!client?.connected) return
    client.publish(topics.status(this.config.device), JSON.stringify(this.statusDocument()), { qos: 0, retain: true })
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stats.state = 'stopped'
    this.cancelReconnect?.()
    this.cancelPump?.()
    const client = this.client
    this.client = null
    if (client) {
      for (const a of this.attachments) a.disconnected()
      // Say goodbye properly: the retained status marks the device offline. Unacknowledged batches
      // need no waiting for: they stay in the outbox and are resent next time.
      if (client.connected) client.publish(topics.status(this.config.device), JSON.stringify({ ...this.statusDocument(), online: false }), { qos: 1, retain: true })
      const ended = client.endAsync(false).catch(() => {})
      // A relay that is going away may never answer: wait a moment for the goodbye, no longer.
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, client.connected ? GOODBYE_MS : 0) })
      await Promise.race([ended, timeout])
      clearTimeout(timer)
      client.end(true)
    }
  }
}
