/**
 * IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod: 24–8760 hours, and each only in
 * its own direction, with AWS's wording. Retention is enforced on whole sealed segments.
 */
import { Limits } from '../../../shared/limits.js'
import type { StreamState } from '../../streams.js'
import { resolveStream, type ApiContext } from '../context.js'
import { retentionAboveCurrent, retentionBelowCurrent, retentionTooLong, retentionTooShort } from '../errors.js'
import { StreamARN, StreamId, StreamName, validate } from '../validate.js'

async function change(body: unknown, ctx: ApiContext, direction: 'increase' | 'decrease'): Promise<StreamState> {
  const req = validate<{ StreamName?: string; StreamARN?: string; RetentionPeriodHours: number }>(body, {
    // kinesalite's validations/*StreamRetentionPeriod.js: RetentionPeriodHours, StreamName.
    RetentionPeriodHours: { type: 'integer', required: true }, StreamName, StreamARN, StreamId,
  }, 'declared')
  const hours = req.RetentionPeriodHours
  if (hours < Limits.minRetentionHours) throw retentionTooShort(hours, Limits.minRetentionHours)
  if (hours > Limits.maxRetentionHours) throw retentionTooLong(hours, Limits.maxRetentionHours)
  const state = resolveStream(req, ctx)
  if (state.meta.status !== 'ACTIVE') throw ctx.errors.notActive(state.meta.name, state.meta.status)
  const current = state.meta.retentionHours
  if (direction === 'increase' && hours < current) throw retentionBelowCurrent(hours, state.meta.name, current)
  if (direction === 'decrease' && hours > current) throw retentionAboveCurrent(hours, state.meta.name, current)
  await ctx.streams.setRetention(state, hours)
  return state
}

export async function increaseStreamRetentionPeriod(body: unknown, ctx: ApiContext) {
  await change(body, ctx, 'increase')
  return {}
}

export async function decreaseStreamRetentionPeriod(body: unknown, ctx: ApiContext) {
  await change(body, ctx, 'decrease')
  return {}
}
