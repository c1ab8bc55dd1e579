/**
 * The uplink: mqtt.js as a pure transport (nothing queued while offline; the outbox is the only
 * queue). It forms batches from the outbox, keeps a bounded window of QoS 1 publishes in flight,
 * deletes records only on PUBACK, dead-letters what the relay rejects, reconnects with jittered
 * exponential backoff, and drains a backlog at a configurable rate cap.
 */
import { readFileSync } from 'node:fs'
import mqtt, { type MqttClient } from 'mqtt'
import { codec } from '../hardware/index.js'
import { topics } from '../shared/topics.js'
import type { RelayToDeviceMessage, DeviceStatus } from '../shared/messages.js'
import type { AgentConfig } from './config.js'
import type { Clock } from './clock.js'
import type { FormedBatch, Outbox } from './outbox/index.js'

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

export class Uplink {
  private readonly config: AgentConfig
  private readonly outbox: Outbox
  private readonly clock: Clock
  private readonly log: (event: string, fields?: Record<string, unknown>) => void
  private client: MqttClient | null = null
  private readonly inFlight = new Map<number, FormedBatch>()
  private attempt = 0
  private reconnectTimer: NodeJS.Timeout | null = null
  private stopped = false
  private tokens: number
  private lastRefill: number
  private pumpTimer: NodeJS.Timeout | null = null
  readonly stats: UplinkStats = { state: 'connecting', lastPubackWallMs: 0, lastError: null, inFlight: 0, batchesSent: 0, batchesAcked: 0, recordsAcked: 0, reconnects: 0 }
  /** Returns the status document published retained on the device's status topic. */
  statusDocument: () => DeviceStatus = () => ({ device: this.config.device, online: true, at: new Date(this.clock.wallMs()).toISOString() })

  constructor(config: AgentConfig, outbox: Outbox, clock: Clock, log: Uplink['log']) {
    this.config = config
    this.outbox = outbox
    this.clock = clock
    this.log = log
    this.tokens = config.uplink.batchRecords
    this.lastRefill = clock.monoMs()
    // Not inside the outbox's commit: the pump runs on its own turn, where its errors are its own.
    outbox.on('stored', () => setImmediate(() => this.pump()))
  }

  start(): void {
    this.connect()
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
    const client = mqtt.connect(r.url, {
      clientId: this.config.device,
      username: r.username || undefined,
      password: r.password || undefined,
      protocolVersion: 4,
      clean: true,
      keepalive: r.keepaliveSeconds,
      reconnectPeriod: 0, // reconnects are ours, with backoff and jitter
      connectTimeout: 10_000,
      queueQoSZero: false,
      ca: r.ca ? readFileSync(r.ca) : undefined,
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
      this.publishStatus()
      this.pump()
    })
    client.on('message', (_topic, payload) => this.onRelayMessage(payload))
    client.on('error', (err) => {
      this.stats.lastError = err.message
      this.log('uplink_error', { error: err.message })
    })
    client.on('close', () => {
      if (this.client !== client) return
      this.client = null
      // Whatever was in flight stays formed in the outbox and is resent, as the same batches, next time.
      this.inFlight.clear()
      this.stats.inFlight = 0
      client.removeAllListeners('connect')
      client.end(true)
      this.scheduleReconnect()
    })
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return
    this.stats.state = 'backoff'
    this.stats.reconnects++
    const base = Math.min(this.config.uplink.backoffMaxMs, this.config.uplink.backoffInitialMs * 2 ** Math.min(this.attempt, 20))
    const delay = base / 2 + Math.random() * (base / 2) // "equal jitter"
    this.attempt++
    this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect() }, delay)
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
      if (!this.pumpTimer) this.pumpTimer = setTimeout(() => { this.pumpTimer = null; this.pump() }, 1000)
    }
  }

  private fill(): void {
    const client = this.client
    if (!client || !client.connected || this.stopped) return
    const { maxInflight } = this.config.relay
    const { batchRecords, batchBytes, drainRatePerSecond } = this.config.uplink
    for (const batch of this.outbox.formedBatches()) {
      if (this.inFlight.size >= maxInflight) return
      if (!this.inFlight.has(batch.seq)) this.send(client, batch)
    }
    while (this.inFlight.size < maxInflight) {
      if (drainRatePerSecond > 0) {
        // A token bucket that may go into debt: batches stay whole, and the average rate holds.
        const now = this.clock.monoMs()
        this.tokens = Math.min(Math.max(batchRecords, drainRatePerSecond), this.tokens + ((now - this.lastRefill) / 1000) * drainRatePerSecond)
        this.lastRefill = now
        if (this.tokens <= 0) {
          const wait = Math.ceil((-this.tokens + 1) / drainRatePerSecond * 1000)
          if (!this.pumpTimer) this.pumpTimer = setTimeout(() => { this.pumpTimer = null; this.pump() }, wait)
          return
        }
      }
      const batch = this.outbox.formBatch(batchRecords, batchBytes)
      if (!batch) return
      if (drainRatePerSecond > 0) this.tokens -= batch.count
      this.send(client, batch)
    }
  }

  private send(client: MqttClient, batch: FormedBatch): void {
    const rows = this.outbox.rows(batch)
    const frame = codec.encodeBatch({
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
      this.attempt = 0
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
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    if (this.pumpTimer) clearTimeout(this.pumpTimer)
    const client = this.client
    this.client = null
    if (client) {
      // Say goodbye properly: the retained status marks the device offline. Unacknowledged batches
      // need no waiting for: they stay in the outbox and are resent next time.
      if (client.connected) client.publish(topics.status(this.config.device), JSON.stringify({ ...this.statusDocument(), online: false }), { qos: 1, retain: true })
      const ended = client.endAsync(false).catch(() => {})
      // A relay that is going away may never answer: wait a moment for the goodbye, no longer.
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, client.connected ? 500 : 0) })
      await Promise.race([ended, timeout])
      clearTimeout(timer)
      client.end(true)
    }
  }
}
