/**
 * SubscribeToShard (enhanced fan-out): an HTTP 200 whose body is an `application/vnd.amazon.eventstream`
 * (eventstream.ts), over HTTP/2 or chunked HTTP/1.1. First an `initial-response` event, then a
 * `SubscribeToShardEvent` per page the domain's subscription (relay/fanout.ts) hands over. Errors
 * after the 200 (stream deleted, consumer deregistered, a newer subscription, storage failing) are
 * sent as exception events, as AWS does.
 */
import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { SubscriptionBusyError, type EndReason, type FanoutEvent, type FanoutSink, type Subscription } from '../../fanout.js'
import type { AnyResponse } from '../../http.js'
import type { StartType } from '../../reader.js'
import { childShardsJson, findShard, positionOf, recordJson, startOffset, StreamingResult, type ApiContext } from '../context.js'
import {
  consumerDeregistered, consumerNotActive, positionTypeForbidsSequence, positionTypeNeedsSequence, subscriptionBusy, subscriptionTakenOver,
  toKinesisError, type KinesisError,
} from '../errors.js'
import { eventMessage, exceptionMessage } from '../eventstream.js'
import type { Protocol } from '../protocol.js'
import { required, SequenceNumber, SHARD_ITERATOR_TYPES, ShardId, StreamId, validate } from '../validate.js'
import { ConsumerARN } from './consumers.js'

const EVENTSTREAM_TYPE = 'application/vnd.amazon.eventstream'

export async function subscribeToShard(body: unknown, ctx: ApiContext): Promise<StreamingResult> {
  const req = validate<{ ConsumerARN: string; ShardId: string; StartingPosition: { Type: StartType; SequenceNumber?: string; Timestamp?: number } }>(body, {
    // The service model's order (kinesalite predates the action); Type is AWS's ShardIteratorType.
    ConsumerARN: required(ConsumerARN),
    StreamId,
    ShardId: required(ShardId),
    StartingPosition: {
      type: 'structure', required: true,
      fields: { Type: { type: 'string', required: true, enum: SHARD_ITERATOR_TYPES }, SequenceNumber, Timestamp: { type: 'timestamp' } },
    },
  }, 'declared')
  const found = ctx.consumers.byArn(req.ConsumerARN)
  if (!found) throw ctx.errors.consumerNotFound(req.ConsumerARN)
  const { consumer, stream } = found
  if (consumer.status !== 'ACTIVE') throw consumerNotActive(consumer.arn, consumer.status)
  const shard = findShard(stream, req.ShardId, ctx)
  const p = req.StartingPosition
  const bySequence = p.Type === 'AT_SEQUENCE_NUMBER' || p.Type === 'AFTER_SEQUENCE_NUMBER'
  if (bySequence && p.SequenceNumber === undefined) throw positionTypeNeedsSequence(p.Type)
  if (!bySequence && p.SequenceNumber !== undefined) throw positionTypeForbidsSequence(p.Type)
  const offset = await startOffset(positionOf(p.Type, p.SequenceNumber, p.Timestamp), stream, shard, 'SubscribeToShard', ctx)
  let subscription: Subscription
  try {
    subscription = ctx.fanout.subscribe(consumer, stream, shard, offset)
  } catch (err) {
    if (err instanceof SubscriptionBusyError) throw subscriptionBusy(consumer.arn, shard.meta.shardId)
    throw err
  }
  return new StreamingResult((res, protocol) => {
    res.on('close', () => subscription.end())
    // The client may have gone while the subscription was being set up: then 'close' has fired already.
    if (res.destroyed) return subscription.end()
    subscription.attach(new EventStreamSink(res, protocol, ctx))
  })
}

/** AWS's wording for why a subscription ended early, as the exception event the consumer gets. */
function endError(reason: EndReason, ctx: ApiContext): KinesisError {
  switch (reason.kind) {
    case 'taken-over':
      return subscriptionTakenOver(reason.consumerArn, reason.shardId)
    case 'deregistered':
      return consumerDeregistered(reason.consumerArn)
    case 'shard-gone':
      return ctx.errors.shardNotFound(reason.shardId, reason.stream)
    case 'failed':
      return toKinesisError(reason.error, 'event')!
  }
}

/** Writes a subscription's pages to the response as events; a slow consumer holds back only its own subscription. */
class EventStreamSink implements FanoutSink {
  private readonly res: AnyResponse
  private readonly protocol: Protocol
  private readonly ctx: ApiContext

  constructor(res: AnyResponse, protocol: Protocol, ctx: ApiContext) {
    this.res = res
    this.protocol = protocol
    this.ctx = ctx
    res.writeHead(200, { 'content-type': EVENTSTREAM_TYPE, 'x-amzn-RequestId': randomUUID() })
    void this.write(eventMessage('initial-response', protocol.encode({}), protocol.contentType))
  }

  private get gone(): boolean {
    return this.res.writableEnded || this.res.destroyed
  }

  private write(chunk: Buffer): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.gone) return resolve()
      if ((this.res as ServerResponse).write(chunk)) return resolve()
      const go = () => { this.res.off('drain', go); this.res.off('close', go); resolve() }
      this.res.on('drain', go)
      this.res.on('close', go)
    })
  }

  send(event: FanoutEvent): Promise<void> {
    const payload = {
      Records: event.records.map((r) => recordJson(r, event.shard)),
      ...(event.children ? { ChildShards: childShardsJson(event.children) } : { ContinuationSequenceNumber: event.continuation }),
      MillisBehindLatest: event.millisBehindLatest,
    }
    return this.write(eventMessage('SubscribeToShardEvent', this.protocol.encode(payload), this.protocol.contentType))
  }

  close(reason?: EndReason): void {
    if (this.gone) return
    if (reason) {
      const error = endError(reason, this.ctx)
      ;(this.res as ServerResponse).write(exceptionMessage(error, this.protocol.encode({ message: error.message }), this.protocol.contentType))
    }
    this.res.end()
  }
}
