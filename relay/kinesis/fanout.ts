/**
 * SubscribeToShard (enhanced fan-out): an HTTP 200 whose body is an `application/vnd.amazon.eventstream`
 * (eventstream.ts), over HTTP/2 or chunked HTTP/1.1. First an `initial-response` event, then
 * `SubscribeToShardEvent`s: records are pushed as soon as their group commit lands (the log's append
 * notification wakes the subscription; nothing polls), and an empty event goes out every few seconds
 * while the shard is quiet so the consumer sees it is alive and where it is. At the end of a closed
 * shard the last event carries ChildShards and no ContinuationSequenceNumber; after 5 minutes the
 * subscription ends and the consumer subscribes again from its ContinuationSequenceNumber.
 *
 * One subscription per (consumer, shard): a second within 5 s of the first is refused with
 * ResourceInUseException; a later one takes over and the earlier ends with that exception as an
 * in-stream event. Errors after the 200 (stream deleted, consumer deregistered, storage failing) are
 * sent as exception events, as AWS does.
 */
import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { AnyResponse } from '../http.js'
import type { LogStore, ShardLog } from '../log/types.js'
import type { ConsumerMeta } from '../meta/types.js'
import type { ShardState, StreamState, Streams } from '../streams.js'
import { findShard, offsetOfSequence, recordJson } from './actions.js'
import { ConsumerARN } from './consumers.js'
import { KinesisError } from './errors.js'
import { eventMessage, exceptionMessage } from './eventstream.js'
import type { ExtendedContext } from './extensions.js'
import type { Protocol } from './protocol.js'
import { encodeSequence } from './sequence.js'
import { SequenceNumber, ShardId, validate, type Shape } from './validate.js'

export const EVENTSTREAM_TYPE = 'application/vnd.amazon.eventstream'

/** An action's answer that is a stream rather than one body: relay.ts hands it the response. */
export class StreamingResult {
  readonly start: (res: AnyResponse, protocol: Protocol) => void
  constructor(start: (res: AnyResponse, protocol: Protocol) => void) {
    this.start = start
  }
}

export interface FanoutOptions {
  logs: LogStore
  streams: Streams
  now?: () => number
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

interface Subscription {
  key: string
  consumerArn: string
  streamId: string
  startedMs: number
  /** Ends the subscription; with an error, that is sent as an exception event first. */
  end(error?: KinesisError): void
  ended: boolean
}

/** How often a quiet subscription looks whether its shard was closed by a reshard. */
const CLOSE_CHECK_MS = 200

export class Fanout {
  private readonly o: FanoutOptions
  private readonly now: () => number
  private readonly subscriptions = new Map<string, Subscription>()
  /** Subscriptions waiting for records, by shard log key. */
  private readonly waiting = new Map<string, Set<() => void>>()
  private readonly unlisten: () => void

  constructor(options: FanoutOptions) {
    this.o = options
    this.now = options.now ?? Date.now
    this.unlisten = options.logs.onAppend((log) => this.wake(log))
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
  private waitForRecords(log: ShardLog, offset: number, ms: number, sub: { ended: boolean; onEnd?: () => void }, closed: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(log.key)
      if (!set) { set = new Set(); this.waiting.set(log.key, set) }
      const done = () => {
        clearTimeout(timer)
        clearInterval(watch)
        this.waiting.get(log.key)?.delete(done)
        sub.onEnd = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      const watch = setInterval(() => { if (closed()) done() }, CLOSE_CHECK_MS)
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
      if (sub.consumerArn === consumer.arn) sub.end(new KinesisError('ResourceNotFoundException', `Consumer ${consumer.arn} was deregistered.`))
    }
  }

  close(): void {
    this.unlisten()
    for (const sub of [...this.subscriptions.values()]) sub.end()
  }

  async subscribe(body: unknown, ctx: ExtendedContext): Promise<StreamingResult> {
    const req = validate<{ ConsumerARN: string; ShardId: string; StartingPosition: { Type: StartingType; SequenceNumber?: string; Timestamp?: number } }>(body, {
      ConsumerARN: { ...ConsumerARN, required: true } as Shape,
      ShardId: { ...ShardId, required: true } as Shape,
      StartingPosition: {
        type: 'structure', required: true,
        fields: { Type: { type: 'string', required: true, enum: STARTING_TYPES }, SequenceNumber, Timestamp: { type: 'timestamp' } },
      },
    })
    const found = ctx.consumers.byArn(req.ConsumerARN)
    if (!found) throw new KinesisError('ResourceNotFoundException', `Consumer ${req.ConsumerARN} under account ${ctx.accountId} not found.`)
    const { consumer, stream } = found
    if (consumer.status !== 'ACTIVE') {
      throw new KinesisError('ResourceInUseException', `Consumer ${consumer.arn} is not in ACTIVE state (it is ${consumer.status}).`)
    }
    const shard = findShard(stream, req.ShardId, ctx)
    const offset = await startingOffset(req.StartingPosition, stream, shard, ctx)

    const key = `${consumer.arn}|${shard.meta.shardId}`
    const now = this.now()
    const previous = this.subscriptions.get(key)
    if (previous && now - previous.startedMs < (this.o.takeoverMs ?? 5000)) {
      throw new KinesisError('ResourceInUseException', `Another active subscription exists for this consumer: ${consumer.arn} on shard ${shard.meta.shardId}.`)
    }
    previous?.end(new KinesisError('ResourceInUseException', `A newer subscription for consumer ${consumer.arn} on shard ${shard.meta.shardId} took over.`))

    // Registered before the answer starts, so a second call arriving meanwhile is refused.
    let output: ((error?: KinesisError) => void) | null = null
    const sub: Subscription & { onEnd?: () => void } = {
      key, consumerArn: consumer.arn, streamId: stream.meta.id, startedMs: now, ended: false,
      end: (error) => {
        if (sub.ended) return
        sub.ended = true
        if (this.subscriptions.get(key) === sub) this.subscriptions.delete(key)
        output?.(error)
        sub.onEnd?.()
      },
    }
    this.subscriptions.set(key, sub)
    return new StreamingResult((res, protocol) => {
      output = (error) => {
        if (res.writableEnded || res.destroyed) return
        if (error) (res as ServerResponse).write(exceptionMessage(error, protocol.encode({ message: error.message }), protocol.contentType))
        res.end()
      }
      res.on('close', () => sub.end())
      // The client may have gone while the subscription was being set up: then 'close' has fired already.
      if (res.destroyed) { sub.end(); return }
      if (sub.ended) { output(); return }
      void this.run(sub, res, protocol, stream.meta.id, shard.meta.shardId, offset, ctx)
    })
  }

  private async run(sub: Subscription & { onEnd?: () => void }, res: AnyResponse, protocol: Protocol, streamId: string, shardId: string, start: number, ctx: ExtendedContext): Promise<void> {
    const lifetime = this.o.lifetimeMs ?? 300_000
    const heartbeat = this.o.heartbeatMs ?? 5_000
    const maxBytes = this.o.maxEventBytes ?? 1024 * 1024
    const deadline = sub.startedMs + lifetime
    res.writeHead(200, { 'content-type': EVENTSTREAM_TYPE, 'x-amzn-requestid': randomUUID() })
    const write = (chunk: Buffer) => new Promise<void>((resolve) => {
      if (sub.ended || res.writableEnded || res.destroyed) return resolve()
      if ((res as ServerResponse).write(chunk)) return resolve()
      // Backpressure: a slow consumer holds its own subscription back, nothing piles up in memory.
      const go = () => { res.off('drain', go); res.off('close', go); resolve() }
      res.on('drain', go)
      res.on('close', go)
    })
    const event = (payload: object) => write(eventMessage('SubscribeToShardEvent', protocol.encode(payload), protocol.contentType))
    await write(eventMessage('initial-response', protocol.encode({}), protocol.contentType))

    let offset = start
    let continuation: string | null = null
    let lastEventMs = 0
    try {
      while (!sub.ended) {
        const now = this.now()
        if (now >= deadline) break
        const state = this.o.streams.getById(streamId)
        const shard = state?.shards.find((s) => s.meta.shardId === shardId)
        if (!state || !shard || shard.log.dropped) {
          throw new KinesisError('ResourceNotFoundException', `Shard ${shardId} in stream ${streamId.replace(/\.[0-9a-f]{12}$/, '')} under account ${ctx.accountId} does not exist`)
        }
        continuation ??= await positionBefore(shard, offset, ctx)
        const { records, nextOffset } = await shard.log.read(offset, 10_000, maxBytes)
        const end = shard.meta.endOffset
        const atShardEnd = end !== null && nextOffset >= end
        if (records.length || atShardEnd || now - lastEventMs >= heartbeat) {
          let bytes = 0
          const out = records.map((r) => {
            bytes += r.data.length
            return recordJson(r, shard, ctx)
          })
          const last = records[records.length - 1]
          if (last) continuation = out[out.length - 1]!.SequenceNumber
          const caughtUp = nextOffset >= shard.log.endOffset()
          await event({
            Records: out,
            ...(atShardEnd ? { ChildShards: childShards(state, shardId) } : { ContinuationSequenceNumber: continuation }),
            MillisBehindLatest: caughtUp ? 0 : Math.max(0, now - (last?.arrivalMs ?? now)),
          })
          lastEventMs = now
          if (records.length) this.o.onRead?.(state.meta.name, records.length, bytes)
        }
        offset = nextOffset
        if (atShardEnd) break
        if (records.length && offset < shard.log.endOffset()) continue
        await this.waitForRecords(shard.log, offset, Math.max(1, Math.min(heartbeat - (this.now() - lastEventMs), deadline - this.now())), sub,
          () => shard.log.dropped || (shard.meta.endOffset !== null && shard.log.endOffset() >= shard.meta.endOffset))
      }
      sub.end()
    } catch (err) {
      sub.end(asKinesisError(err))
    }
  }
}

function asKinesisError(err: unknown): KinesisError {
  if (err instanceof KinesisError) return err
  if (err instanceof TributaryError && err.code === ErrorCode.STREAM_NOT_FOUND) return new KinesisError('ResourceNotFoundException', err.message)
  // Mid-stream, only the event stream's modelled exceptions reach an SDK as themselves: storage trouble is an internal failure.
  if (err instanceof StorageError) return new KinesisError('InternalFailureException', err.message)
  if (err instanceof TributaryError && err.code === ErrorCode.DECRYPT_FAILED) return new KinesisError('KMSAccessDeniedException', err.message)
  // The event stream's modelled failure (the SDKs know it by this name).
  return new KinesisError('InternalFailureException', (err as Error).message ?? 'Internal service failure.')
}

/** The shards whose parent or adjacent parent is `shardId`: where a reader goes after it. */
export function childShards(state: StreamState, shardId: string) {
  return state.shards
    .filter((s) => s.meta.parentShardId === shardId || s.meta.adjacentParentShardId === shardId)
    .map((s) => ({
      ShardId: s.meta.shardId,
      ParentShards: [s.meta.parentShardId, s.meta.adjacentParentShardId].filter((p): p is string => p !== null),
      HashKeyRange: { StartingHashKey: s.meta.hashStart, EndingHashKey: s.meta.hashEnd },
    }))
}

/**
 * A ContinuationSequenceNumber for "everything before `offset` was seen" when no record has been
 * sent yet: the previous record's own number when it is still there. Before the first record of a
 * shard there is none, so a number that sorts below every real one (record time 0) stands for it;
 * AFTER_SEQUENCE_NUMBER with it starts at the shard's beginning.
 */
async function positionBefore(shard: ShardState, offset: number, ctx: ExtendedContext): Promise<string> {
  if (offset <= 0) return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset: 0, recordSec: 0 })
  const { records } = await shard.log.read(offset - 1, 1, 16 * 1024 * 1024)
  const previous = records[0]
  if (previous && previous.offset === offset - 1) return ctx.streams.sequenceOf(shard, previous.offset, previous.arrivalMs)
  // Trimmed by retention: the counter alone locates it.
  return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset: offset - 1, recordSec: 1 })
}

const STARTING_TYPES = ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'] as const
type StartingType = (typeof STARTING_TYPES)[number]

/** Where a subscription starts, by GetShardIterator's rules (and its wording). */
async function startingOffset(p: { Type: StartingType; SequenceNumber?: string; Timestamp?: number }, stream: StreamState, shard: ShardState, ctx: ExtendedContext): Promise<number> {
  const bySequence = p.Type === 'AT_SEQUENCE_NUMBER' || p.Type === 'AFTER_SEQUENCE_NUMBER'
  if (bySequence && p.SequenceNumber === undefined) {
    throw new KinesisError('InvalidArgumentException', `StartingPosition of type ${p.Type} requires a SequenceNumber.`)
  }
  if (!bySequence && p.SequenceNumber !== undefined) {
    throw new KinesisError('InvalidArgumentException', `StartingPosition of type ${p.Type} must not have a SequenceNumber.`)
  }
  switch (p.Type) {
    case 'TRIM_HORIZON':
      return shard.log.startOffset()
    case 'LATEST':
      return shard.log.nextOffset()
    case 'AT_TIMESTAMP': {
      if (p.Timestamp === undefined) throw new KinesisError('InvalidArgumentException', 'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.')
      const now = ctx.now()
      if (p.Timestamp > now) {
        throw new KinesisError('InvalidArgumentException', `The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ${p.Timestamp}, currentTimestampInMillis: ${now}`)
      }
      return shard.log.offsetAtTime(p.Timestamp)
    }
    default:
      return offsetOfSequence(p.Type, p.SequenceNumber!, 'SubscribeToShard', stream, shard, ctx)
  }
}

export const fanoutActions = {
  SubscribeToShard: (body: unknown, ctx: ExtendedContext) => ctx.fanout.subscribe(body, ctx),
}
