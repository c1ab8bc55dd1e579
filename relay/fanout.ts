/**
 * Enhanced fan-out subscriptions, the domain side of SubscribeToShard: one subscription per
 * (consumer, shard), each a loop that reads its shard through the shard reader and hands pages to a
 * sink (the API layer's event stream). Records are pushed as soon as their group commit lands (the
 * log's append notification wakes the subscription; nothing polls), and an empty page goes out every
 * few seconds while the shard is quiet so the consumer sees it is alive and where it is. At the end
 * of a closed shard the last page names the children; after the lifetime (AWS: 5 minutes) the
 * subscription ends and the consumer subscribes again from its continuation.
 *
 * A second subscription for the same (consumer, shard) within `takeoverMs` of the first is refused
 * (SubscriptionBusyError); a later one takes over and the earlier ends, saying why.
 */
import { every, systemClock, type Clock } from '../hardware/index.js'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import type { LogRecord } from '../shared/logframe.js'
import type { LogStore, ShardLog } from './log/types.js'
import type { ConsumerMeta } from './meta/types.js'
import type { ShardReader } from './reader.js'
import { sequenceOf } from './sequence.js'
import { streamNameOf, type ShardState, type StreamState, type Streams } from './streams.js'

/** One page as the sink sends it. */
export interface FanoutEvent {
  shard: ShardState
  records: LogRecord[]
  millisBehindLatest: number
  /** Where a new subscription continues from; absent at the end of a closed shard. */
  continuation?: string
  /** At the end of a closed shard: the shards to go on with. */
  children?: ShardState[]
}

/** Why a subscription ended before its lifetime was up. */
export type EndReason =
  | { kind: 'taken-over'; consumerArn: string; shardId: string }
  | { kind: 'deregistered'; consumerArn: string }
  | { kind: 'shard-gone'; shardId: string; stream: string }
  | { kind: 'failed'; error: unknown }

/** Where a subscription's pages go: the API layer writes them to the HTTP response as events. */
export interface FanoutSink {
  /** Resolves when the consumer can take more (backpressure holds only this subscription back). */
  send(event: FanoutEvent): Promise<void>
  /** Ends the output; with a reason, the consumer is told it first. */
  close(reason?: EndReason): void
}

export class SubscriptionBusyError extends TributaryError {
  constructor(consumerArn: string, shardId: string) {
    super(ErrorCode.CONFLICT, `another subscription of consumer ${consumerArn} on shard ${shardId} started less than the takeover time ago`)
    this.name = 'SubscriptionBusyError'
  }
}

export interface FanoutOptions {
  logs: LogStore
  streams: Streams
  reader: ShardReader
  /** The clock subscriptions' lease, lifetime, heartbeat and waits run on. */
  clock?: Clock
  /** How long one subscription lasts (AWS: 5 minutes). */
  lifetimeMs?: number
  /** An empty event after this long without one. */
  heartbeatMs?: number
  /** A second subscription for the same (consumer, shard) sooner than this is refused. */
  takeoverMs?: number
  /** Most bytes of record data per event. */
  maxEventBytes?: number
  onRead?: (stream: string, records: number, bytes: number) => void
}

/** A registered subscription; its pages flow once a sink is attached. */
export interface Subscription {
  attach(sink: FanoutSink): void
  /** Ends it (the consumer hung up, or the relay closes). */
  end(reason?: EndReason): void
}

interface Running extends Subscription {
  key: string
  consumerArn: string
  shardId: string
  /** Where the subscription reads next (the console's lag). */
  offset: number
  startedMs: number
  ended: boolean
  /** Wakes the loop's wait early. */
  onEnd?: () => void
}

/** How often a quiet subscription looks whether its shard was closed by a reshard. */
const CLOSE_CHECK_MS = 200

export class Fanout {
  private readonly o: FanoutOptions
  private readonly clock: Clock
  private readonly subscriptions = new Map<string, Running>()
  /** Subscriptions waiting for records, by shard log key. */
  private readonly waiting = new Map<string, Set<() => void>>()
  private readonly unlisten: () => void

  constructor(options: FanoutOptions) {
    this.o = options
    this.clock = options.clock ?? systemClock
    this.unlisten = options.logs.onAppend((log) => this.wake(log))
  }

  private now(): number {
    return this.clock.wallMs()
  }

  private wake(log: ShardLog): void {
    const set = this.waiting.get(log.key)
    if (!set) return
    this.waiting.delete(log.key)
    for (const w of set) w()
  }

  /**
   * Resolves when `log` gets a record past `offset`, when the shard closes or its stream is deleted
   * (neither appends anything, so they are checked on a short timer: flags, no read), after `ms`, or
   * when `sub` ends.
   */
  private waitForRecords(log: ShardLog, offset: number, ms: number, sub: Running, closed: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(log.key)
      if (!set) { set = new Set(); this.waiting.set(log.key, set) }
      const done = () => {
        cancelTimer()
        cancelWatch()
        this.waiting.get(log.key)?.delete(done)
        sub.onEnd = undefined
        resolve()
      }
      const cancelTimer = this.clock.after(ms, done)
      const cancelWatch = every(this.clock, CLOSE_CHECK_MS, () => { if (closed()) done() })
      set.add(done)
      sub.onEnd = done
      // A commit that landed between the read and now would otherwise wait for the heartbeat.
      if (log.endOffset() > offset || sub.ended || closed()) done()
    })
  }

  active(): number {
    return this.subscriptions.size
  }

  /** Ends the subscriptions of a consumer being deregistered. */
  endConsumer(consumer: ConsumerMeta): void {
    for (const sub of [...this.subscriptions.values()]) {
      if (sub.consumerArn === consumer.arn) sub.end({ kind: 'deregistered', consumerArn: consumer.arn })
    }
  }

  close(): void {
    this.unlisten()
    for (const sub of [...this.subscriptions.values()]) sub.end()
  }

  /**
   * Registers a subscription of `consumer` to `shard` from `offset`, before its answer starts, so a
   * second call arriving meanwhile is refused. Throws SubscriptionBusyError within the takeover time.
   */
  subscribe(consumer: ConsumerMeta, stream: StreamState, shard: ShardState, offset: number): Subscription {
    const shardId = shard.meta.shardId
    const key = `${consumer.arn}|${shardId}`
    const now = this.now()
    const previous = this.subscriptions.get(key)
    if (previous && now - previous.startedMs < (this.o.takeoverMs ?? 5000)) throw new SubscriptionBusyError(consumer.arn, shardId)
    previous?.end({ kind: 'taken-over', consumerArn: consumer.arn, shardId })

    let sink: FanoutSink | null = null
    let reason: EndReason | undefined
    const sub: Running = {
      key, consumerArn: consumer.arn, shardId, offset, startedMs: now, ended: false,
      end: (why) => {
        if (sub.ended) return
        sub.ended = true
        reason = why
        if (this.subscriptions.get(key) === sub) this.subscriptions.delete(key)
        sink?.close(why)
        sub.onEnd?.()
      },
      attach: (s) => {
        sink = s
        if (sub.ended) return s.close(reason)
        void this.run(sub, s, stream.meta.id, shardId, offset)
      },
    }
    this.subscriptions.set(key, sub)
    return sub
  }

  /** Where each open subscription of a consumer reads next, by shard. */
  positions(consumerArn: string): { shardId: string; offset: number }[] {
    const out: { shardId: string; offset: number }[] = []
    for (const sub of this.subscriptions.values()) if (sub.consumerArn === consumerArn) out.push({ shardId: sub.shardId, offset: sub.offset })
    return out
  }

  private async run(sub: Running, sink: FanoutSink, streamId: string, shardId: string, start: number): Promise<void> {
    const lifetime = this.o.lifetimeMs ?? 300_000
    const heartbeat = this.o.heartbeatMs ?? 5_000
    const maxBytes = this.o.maxEventBytes ?? 1024 * 1024
    const deadline = sub.startedMs + lifetime
    let offset = start
    let continuation: string | null = null
    let lastEventMs = 0
    try {
      while (!sub.ended) {
        const now = this.now()
        if (now >= deadline) break
        const state = this.o.streams.getById(streamId)
        const shard = state?.shards.find((s) => s.meta.shardId === shardId)
        if (!state || !shard || shard.log.dropped) return sub.end({ kind: 'shard-gone', shardId, stream: streamNameOf(streamId) })
        continuation ??= await this.o.reader.sequenceBefore(shard, offset)
        const page = await this.o.reader.page(state, shard, offset, 10_000, maxBytes, () => now)
        const { records } = page
        if (records.length || page.shardEnded || now - lastEventMs >= heartbeat) {
          const last = records[records.length - 1]
          if (last) continuation = sequenceOf(shard, last.offset, last.arrivalMs)
          await sink.send({
            shard, records, millisBehindLatest: page.millisBehindLatest,
            ...(page.shardEnded ? { children: page.children } : { continuation }),
          })
          lastEventMs = now
          if (records.length) this.o.onRead?.(state.meta.name, records.length, records.reduce((n, r) => n + r.data.length, 0))
        }
        offset = page.nextOffset
        sub.offset = offset
        if (page.shardEnded) break
        if (records.length && offset < shard.log.endOffset()) continue
        await this.waitForRecords(shard.log, offset, Math.max(1, Math.min(heartbeat - (this.now() - lastEventMs), deadline - this.now())), sub,
          () => shard.log.dropped || (shard.meta.endOffset !== null && shard.log.endOffset() >= shard.meta.endOffset))
      }
      sub.end()
    } catch (err) {
      sub.end({ kind: 'failed', error: err })
    }
  }
}
