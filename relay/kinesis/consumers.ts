/**
 * Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers,
 * DeregisterStreamConsumer. A consumer is CREATING when registered and ACTIVE a moment later (as
 * on AWS, clients poll for ACTIVE before they subscribe); deregistering marks it DELETING, ends its
 * subscriptions, and removes it shortly after. Consumers live in the metadata store, with an
 * in-memory copy for the paths that must not wait (describe, subscribe).
 *
 * ARNs have AWS's layout: `<stream ARN>/consumer/<name>:<creation epoch seconds>`, so a consumer
 * registered again under the same name gets a different ARN.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { ConsumerMeta, MetadataStore } from '../meta/types.js'
import type { StreamState, Streams } from '../streams.js'
import { resolveStream } from './actions.js'
import { checkTagCharacters } from './tags.js'
import { KinesisError } from './errors.js'
import type { ExtendedContext } from './extensions.js'
import { StreamARN, validate, type Shape } from './validate.js'

/** AWS's default quota of registered consumers per stream. */
export const MAX_CONSUMERS_PER_STREAM = 20

export const ConsumerName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const ConsumerARN: Shape = {
  type: 'string', min: 1, max: 2048,
  pattern: '^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+',
}

const ARN = /^(arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/([a-zA-Z0-9_.-]+))\/consumer\/([a-zA-Z0-9_.-]+):(\d+)$/

export interface ConsumersOptions {
  meta: MetadataStore
  streams: Streams
  now?: () => number
  /** How long a new consumer stays CREATING. */
  activationMs?: number
  /** How long a deregistered consumer stays DELETING before it is gone. */
  deletionMs?: number
  /** Told when a consumer is deregistered, so its subscriptions end. */
  onDeregister?: (consumer: ConsumerMeta) => void
}

export class Consumers {
  private readonly o: ConsumersOptions
  private readonly now: () => number
  /** By stream id, in registration order. */
  private readonly byStream = new Map<string, ConsumerMeta[]>()
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor(options: ConsumersOptions) {
    this.o = options
    this.now = options.now ?? Date.now
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

  private listOf(streamId: string): ConsumerMeta[] {
    let list = this.byStream.get(streamId)
    if (!list) { list = []; this.byStream.set(streamId, list) }
    return list
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      fn().catch(() => {})
    }, ms)
    timer.unref()
    this.timers.add(timer)
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
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }
}

// ---- actions ----

const seconds = (ms: number) => ms / 1000

const consumerJson = (c: ConsumerMeta) => ({
  ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status, ConsumerCreationTimestamp: seconds(c.createdMs),
})

function streamByArn(arn: string, ctx: ExtendedContext): StreamState {
  return resolveStream({ StreamARN: arn }, ctx)
}

/** The consumer a request names: by ConsumerARN, or by StreamARN and ConsumerName together. */
function findConsumer(req: { StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }, ctx: ExtendedContext): { consumer: ConsumerMeta; stream: StreamState } {
  if (req.ConsumerARN !== undefined) {
    const found = ctx.consumers.byArn(req.ConsumerARN)
    if (!found) throw new KinesisError('ResourceNotFoundException', `Consumer ${req.ConsumerARN} under account ${ctx.accountId} not found.`)
    if (req.StreamARN !== undefined && req.StreamARN !== found.stream.meta.arn) {
      throw new KinesisError('InvalidArgumentException', `ConsumerARN ${req.ConsumerARN} does not belong to stream ${req.StreamARN}.`)
    }
    if (req.ConsumerName !== undefined && req.ConsumerName !== found.consumer.name) {
      throw new KinesisError('InvalidArgumentException', `ConsumerName ${req.ConsumerName} and ConsumerARN ${req.ConsumerARN} do not refer to the same consumer.`)
    }
    return found
  }
  if (req.StreamARN === undefined || req.ConsumerName === undefined) {
    throw new KinesisError('InvalidArgumentException', 'Either ConsumerARN or both ConsumerName and StreamARN must be provided.')
  }
  const stream = streamByArn(req.StreamARN, ctx)
  const consumer = ctx.consumers.get(stream.meta.id, req.ConsumerName)
  if (!consumer) throw new KinesisError('ResourceNotFoundException', `Consumer ${req.ConsumerName} under stream ${stream.meta.name} under account ${ctx.accountId} not found.`)
  return { consumer, stream }
}

const CONSUMER_REF: Record<string, Shape> = { StreamARN, ConsumerName, ConsumerARN }

async function registerStreamConsumer(body: unknown, ctx: ExtendedContext) {
  const req = validate<{ StreamARN: string; ConsumerName: string; Tags?: Record<string, string> }>(body, {
    StreamARN: { ...StreamARN, required: true } as Shape,
    ConsumerName: { ...ConsumerName, required: true } as Shape,
    Tags: { type: 'map', value: { type: 'string', max: 256 }, max: 50 },
  })
  if (req.Tags) checkTagCharacters(Object.entries(req.Tags).flat(), `register consumer ${req.ConsumerName} with tags`)
  const stream = streamByArn(req.StreamARN, ctx)
  if (ctx.consumers.get(stream.meta.id, req.ConsumerName)) {
    throw new KinesisError('ResourceInUseException', `Consumer ${req.ConsumerName} under stream ${stream.meta.name} under account ${ctx.accountId} already exists.`)
  }
  if (ctx.consumers.count(stream.meta.id) >= MAX_CONSUMERS_PER_STREAM) {
    throw new KinesisError('LimitExceededException',
      `Stream ${stream.meta.name} under account ${ctx.accountId} already has the maximum of ${MAX_CONSUMERS_PER_STREAM} registered consumers.`)
  }
  const consumer = await ctx.consumers.register(stream, req.ConsumerName)
  if (req.Tags && Object.keys(req.Tags).length) await ctx.consumers.addTags(consumer, req.Tags)
  return { Consumer: consumerJson(consumer) }
}

async function describeStreamConsumer(body: unknown, ctx: ExtendedContext) {
  const req = validate<{ StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }>(body, CONSUMER_REF)
  const { consumer, stream } = findConsumer(req, ctx)
  return { ConsumerDescription: { ...consumerJson(consumer), StreamARN: stream.meta.arn } }
}

async function deregisterStreamConsumer(body: unknown, ctx: ExtendedContext) {
  const req = validate<{ StreamARN?: string; ConsumerName?: string; ConsumerARN?: string }>(body, CONSUMER_REF)
  const { consumer } = findConsumer(req, ctx)
  await ctx.consumers.deregister(consumer)
  return {}
}

/** ListStreamConsumers paging: which stream incarnation, the last name shown, when; authenticated so it cannot be edited. */
interface PageToken { id: string; after: string; t: number }

function encodePage(token: PageToken, key: Buffer): string {
  const body = Buffer.from(JSON.stringify(token))
  return Buffer.concat([createHmac('sha256', key).update(body).digest().subarray(0, 16), body]).toString('base64')
}

function decodePage(text: string, ctx: ExtendedContext): PageToken {
  const raw = Buffer.from(text, 'base64')
  const invalid = () => new KinesisError('InvalidArgumentException', 'Invalid NextToken.')
  if (raw.length < 17) throw invalid()
  const body = raw.subarray(16)
  if (!timingSafeEqual(raw.subarray(0, 16), createHmac('sha256', ctx.tokenKey).update(body).digest().subarray(0, 16))) throw invalid()
  const token = JSON.parse(body.toString()) as PageToken
  if (ctx.now() - token.t > 300_000) throw new KinesisError('ExpiredNextTokenException', 'The timestamp of the ListStreamConsumers NextToken is expired.')
  return token
}

async function listStreamConsumers(body: unknown, ctx: ExtendedContext) {
  const req = validate<{ StreamARN: string; NextToken?: string; MaxResults?: number; StreamCreationTimestamp?: number }>(body, {
    StreamARN: { ...StreamARN, required: true } as Shape,
    NextToken: { type: 'string', min: 1, max: 1048576 },
    MaxResults: { type: 'integer', min: 1, max: 10000 },
    StreamCreationTimestamp: { type: 'timestamp' },
  })
  const stream = streamByArn(req.StreamARN, ctx)
  if (req.StreamCreationTimestamp !== undefined && Math.floor(req.StreamCreationTimestamp / 1000) !== Math.floor(stream.meta.createdMs / 1000)) {
    throw new KinesisError('ResourceNotFoundException', `Stream ${stream.meta.name} created at ${req.StreamCreationTimestamp} under account ${ctx.accountId} not found.`)
  }
  let after: string | undefined
  if (req.NextToken !== undefined) {
    const token = decodePage(req.NextToken, ctx)
    if (token.id !== stream.meta.id) throw new KinesisError('InvalidArgumentException', 'Invalid NextToken.')
    after = token.after
  }
  const all = ctx.consumers.list(stream.meta.id).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).filter((c) => after === undefined || c.name > after)
  const page = all.slice(0, req.MaxResults ?? 100)
  const more = all.length > page.length
  return {
    Consumers: page.map(consumerJson),
    ...(more ? { NextToken: encodePage({ id: stream.meta.id, after: page[page.length - 1]!.name, t: ctx.now() }, ctx.tokenKey) } : {}),
  }
}

export const consumerActions = {
  RegisterStreamConsumer: registerStreamConsumer,
  DescribeStreamConsumer: describeStreamConsumer,
  ListStreamConsumers: listStreamConsumers,
  DeregisterStreamConsumer: deregisterStreamConsumer,
}
