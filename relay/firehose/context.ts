/**
 * What every Firehose action works with, below the actions: the delivery service, AWS's wording
 * and the clock, and the helper each action needs (the delivery stream a request names). Actions
 * import this; it imports no action.
 */
import type { DeliveryService, DeliveryStreamDescription } from '../delivery/types.js'
import type { FirehoseWording } from './errors.js'

export interface FirehoseContext {
  service: DeliveryService
  errors: FirehoseWording
  now: () => number
}

/** One action: its request body (JSON-shaped) in, its answer out. */
export type Handler = (body: unknown, ctx: FirehoseContext) => Promise<unknown>

/** The delivery stream a request names, or ResourceNotFoundException in AWS's wording. */
export function deliveryStream(name: string, ctx: FirehoseContext): DeliveryStreamDescription {
  const found = ctx.service.describe(name)
  if (!found) throw ctx.errors.notFound(name)
  return found
}

/** A delivery stream that PutRecord(Batch) may write to: direct put, and active. */
export function directPutStream(name: string, ctx: FirehoseContext): DeliveryStreamDescription {
  const d = deliveryStream(name, ctx)
  if (d.config.source.type !== 'direct') throw ctx.errors.notDirectPut(name)
  if (d.status !== 'ACTIVE') throw ctx.errors.putNotActive(name, d.status)
  return d
}
