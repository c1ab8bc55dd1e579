/**
 * Enhanced fan-out consumers, the registry (the API's actions are in kinesis/actions/consumers.ts).
 * A consumer is CREATING when registered and ACTIVE a moment later (as
 * on AWS, clients poll for ACTIVE before they subscribe); deregistering marks it DELETING, ends its
 * subscriptions, and removes it shortly after. Consumers live in the metadata store, with an
 * in-memory copy for the paths that must not wait (describe, subscribe).
 *
 * ARNs have AWS's layout: `<stream ARN>/consumer/<name>:<creation epoch seconds>`, so a consumer
 * registered again under the same name gets a different ARN.
 */
import { systemClock, type Clock } from '../hardware/index.js'
import type { ConsumerMeta, MetadataStore } from './meta/types.js'
import type { StreamState, Streams } from './streams.js'

const ARN = /^(arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/([a-zA-Z0-9_.-]+))\/consumer\/([a-zA-Z0-9_.-]+):(\d+)$/

export interface ConsumersOptions {
  meta: MetadataStore
  streams: Streams
  clock?: Clock
  /** How long a new consumer stays CREATING. */
  activationMs?: number
  /** How long a deregistered consumer stays DELETING before it is gone. */
  deletionMs?: number
  /** Told when a consumer is deregistered, so its subscriptions end. */
  onDeregister?: (consumer: ConsumerMeta) => void
}

export class Consumers {
  private readonly o: ConsumersOptions
  private readonly clock: Clock
  /** By stream id, in registration order. */
  private readonly byStream = new Map<string, ConsumerMeta[]>()
  /** Cancels the pending status changes. */
  private readonly timers = new Set<() => void>()
  private closed = false

  constructor(options: ConsumersOptions) {
    this.o = options
    this.clock = options.clock ?? systemClock
  }

  private now(): number {
    return this.clock.wallMs()
  }

  /** Loads consumers; finishes what a restart interrupted (CREATING becomes ACTIVE, DELETING goes) and drops those of streams that are gone. */
  async init(): Promise<void> {
    for (const c of await this.o.meta.listConsumers()) {
      if (c.status === 'DELETING' || !this.o.streams.getById(c.streamId)) {
        await this.o.meta.deleteConsumer(c.streamId, c.name)
        continue
      }
      if (c.status === 'CREATING') {
        c.status = 'ACTIVE'
        await this.o.meta.putConsumer(c)
      }
      this.listOf(c.streamId).push(c)
    }
  }

  /**
   * Reads a stream's consumers again from the metadata store, after another relay of a cluster
   * registered, activated or removed one. Timers stay with the relay that started them.
   */
  async refresh(streamId: string): Promise<void> {
    const stored = await this.o.meta.listConsumers(streamId)
    if (stored.length) this.byStream.set(streamId, stored)
    else this.byStream.delete(streamId)
  }

  private listOf(streamId: string): ConsumerMeta[] {
    let list = this.byStream.get(streamId)
    if (!list) { list = []; this.byStream.set(streamId, list) }
    return list
  }

  private later(ms: number, fn: () => Promise<void>): void {
    // After close, the metadata store is going: a request that raced the shutdown changes nothing later.
    if (this.closed) return
    const cancel = this.clock.after(ms, () => {
      this.timers.delete(cancel)
      fn().catch(() => {})
    })
    this.timers.add(cancel)
  }

  /** Consumers of a live stream (a stream deleted and created again starts with none). */
  list(streamId: string): ConsumerMeta[] {
    return this.o.streams.getById(streamId) ? [...(this.byStream.get(streamId) ?? [])] : []
  }

  count(streamId: string): number {
    return this.o.streams.getById(streamId) ? this.byStream.get(streamId)?.length ?? 0 : 0
  }

  get(streamId: string, name: string): ConsumerMeta | undefined {
    return this.list(streamId).find((c) => c.name === name)
  }

  byArn(arn: string): { consumer: ConsumerMeta; stream: StreamState } | undefined {
    const m = ARN.exec(arn)
    if (!m) return undefined
    const stream = this.o.streams.get(m[2]!)
    if (!stream || stream.meta.arn !== m[1]) return undefined
    const consumer = this.list(stream.meta.id).find((c) => c.arn === arn)
    return consumer && { consumer, stream }
  }

  async register(stream: StreamState, name: string): Promise<ConsumerMeta> {
    const now = this.now()
    const consumer: ConsumerMeta = {
      streamId: stream.meta.id, name, status: 'CREATING', createdMs: now,
      arn: `${stream.meta.arn}/consumer/${name}:${Math.floor(now / 1000)}`,
    }
    await this.o.meta.putConsumer(consumer)
    this.listOf(stream.meta.id).push(consumer)
    this.later(this.o.activationMs ?? 1000, async () => {
      if (consumer.status !== 'CREATING') return
      consumer.status = 'ACTIVE'
      await this.o.meta.putConsumer(consumer)
    })
    return { ...consumer }
  }

  /** A consumer's tags, kept in the metadata store under its ARN (TagResource and its kin). */
  tags(consumer: ConsumerMeta): Promise<Record<string, string>> {
    return this.o.meta.getTags(consumer.arn)
  }
  addTags(consumer: ConsumerMeta, tags: Record<string, string>): Promise<void> {
    return this.o.meta.putTags(consumer.arn, tags)
  }
  removeTags(consumer: ConsumerMeta, keys: string[]): Promise<void> {
    return this.o.meta.removeTags(consumer.arn, keys)
  }

  async deregister(consumer: ConsumerMeta): Promise<void> {
    if (consumer.status === 'DELETING') return
    consumer.status = 'DELETING'
    await this.o.meta.putConsumer(consumer)
    this.o.onDeregister?.(consumer)
    this.later(this.o.deletionMs ?? 1000, async () => {
      const list = this.byStream.get(consumer.streamId)
      if (list) list.splice(list.indexOf(consumer) >>> 0, 1)
      await this.o.meta.deleteConsumer(consumer.streamId, consumer.name)
      await this.o.meta.deleteResourcePolicy(consumer.arn)
      const tags = await this.o.meta.getTags(consumer.arn)
      if (Object.keys(tags).length) await this.o.meta.removeTags(consumer.arn, Object.keys(tags))
    })
  }

  close(): void {
    this.closed = true
    for (const cancel of this.timers) cancel()
    this.timers.clear()
  }
}
