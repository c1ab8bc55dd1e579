/**
 * Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers,
 * DeregisterStreamConsumer, over the consumer registry (relay/consumers.ts).
 */
import type { ConsumerMeta } from '../../meta/types.js'
import type { StreamState } from '../../streams.js'
import { resolveStream, seconds, type ApiContext } from '../context.js'
import { consumerArnNotOfStream, consumerNameArnMismatch, consumerRefMissing, invalidNextToken, TagAttempt } from '../errors.js'
import { required, StreamARN, StreamId, TagMap, validate, type Shape } from '../validate.js'
import { checkTagCharacters } from './tags.js'

/** AWS's default quota of registered consumers per stream. */
export const MAX_CONSUMERS_PER_STREAM = 20

export const ConsumerName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const ConsumerARN: Shape = {
  type: 'string', min: 1, max: 2048,
  pattern: '^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+',
}

const consumerJson = (c: ConsumerMeta) => ({
  ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status, ConsumerCreationTimestamp: seconds(c.createdMs),
})

function streamByArn(arn: string, ctx: ApiContext): StreamState {
  return resolveStream({ StreamARN: arn }, ctx)
}

/** The consumer a request names: by ConsumerARN, or by StreamARN and ConsumerName together. */
function findConsumer(req: { StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }, ctx: ApiContext): { consumer: ConsumerMeta; stream: StreamState } {
  if (req.ConsumerARN !== undefined) {
    const found = ctx.consumers.byArn(req.ConsumerARN)
    if (!found) throw ctx.errors.consumerNotFound(req.ConsumerARN)
    if (req.StreamARN !== undefined && req.StreamARN !== found.stream.meta.arn) throw consumerArnNotOfStream(req.ConsumerARN, req.StreamARN)
    if (req.ConsumerName !== undefined && req.ConsumerName !== found.consumer.name) throw consumerNameArnMismatch(req.ConsumerName, req.ConsumerARN)
    return found
  }
  if (req.StreamARN === undefined || req.ConsumerName === undefined) throw consumerRefMissing()
  const stream = streamByArn(req.StreamARN, ctx)
  const consumer = ctx.consumers.get(stream.meta.id, req.ConsumerName)
  if (!consumer) throw ctx.errors.consumerOfStreamNotFound(req.ConsumerName, stream.meta.name)
  return { consumer, stream }
}

const CONSUMER_REF: Record<string, Shape> = { StreamARN, ConsumerName, ConsumerARN, StreamId }

export async function registerStreamConsumer(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN: string; ConsumerName: string; Tags?: Record<string, string> }>(body, {
    StreamARN: required(StreamARN), ConsumerName: required(ConsumerName), StreamId, Tags: TagMap,
  }, 'declared')
  if (req.Tags) checkTagCharacters(Object.entries(req.Tags).flat(), TagAttempt.registerConsumer(req.ConsumerName))
  const stream = streamByArn(req.StreamARN, ctx)
  if (ctx.consumers.get(stream.meta.id, req.ConsumerName)) throw ctx.errors.consumerExists(req.ConsumerName, stream.meta.name)
  if (ctx.consumers.count(stream.meta.id) >= MAX_CONSUMERS_PER_STREAM) throw ctx.errors.consumerLimitExceeded(stream.meta.name, MAX_CONSUMERS_PER_STREAM)
  const consumer = await ctx.consumers.register(stream, req.ConsumerName)
  if (req.Tags && Object.keys(req.Tags).length) await ctx.consumers.addTags(consumer, req.Tags)
  return { Consumer: consumerJson(consumer) }
}

export async function describeStreamConsumer(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }>(body, CONSUMER_REF, 'declared')
  const { consumer, stream } = findConsumer(req, ctx)
  return { ConsumerDescription: { ...consumerJson(consumer), StreamARN: stream.meta.arn } }
}

export async function deregisterStreamConsumer(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }>(body, CONSUMER_REF, 'declared')
  const { consumer } = findConsumer(req, ctx)
  await ctx.consumers.deregister(consumer)
  return {}
}

export async function listStreamConsumers(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN: string; NextToken?: string; MaxResults?: number; StreamCreationTimestamp?: number }>(body, {
    StreamARN: required(StreamARN),
    NextToken: { type: 'string', min: 1, max: 1048576 },
    MaxResults: { type: 'integer', min: 1, max: 10000 },
    StreamCreationTimestamp: { type: 'timestamp' },
    StreamId,
  }, 'declared')
  const stream = streamByArn(req.StreamARN, ctx)
  if (req.StreamCreationTimestamp !== undefined && Math.floor(req.StreamCreationTimestamp / 1000) !== Math.floor(stream.meta.createdMs / 1000)) {
    throw ctx.errors.streamCreatedAtNotFound(stream.meta.name, req.StreamCreationTimestamp)
  }
  let after: string | undefined
  if (req.NextToken !== undefined) {
    const token = ctx.tokens.decode<{ id: string; after: string }>(req.NextToken, 'ListStreamConsumers')
    if (token.id !== stream.meta.id) throw invalidNextToken()
    after = token.after
  }
  const all = ctx.consumers.list(stream.meta.id).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).filter((c) => after === undefined || c.name > after)
  // "If you specify a value greater than 100, at most 100 results are returned" (the model's documentation).
  const page = all.slice(0, Math.min(req.MaxResults ?? 100, 100))
  const more = all.length > page.length
  return {
    Consumers: page.map(consumerJson),
    ...(more ? { NextToken: ctx.tokens.encode({ id: stream.meta.id, after: page[page.length - 1]!.name }) } : {}),
  }
}
