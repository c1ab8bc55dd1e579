/**
 * IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod: 24–8760 hours, and each only in
 * its own direction, with AWS's wording. Retention is enforced on whole sealed segments.
 */
import { Limits } from '../../../shared/limits.js'
import type { StreamState } from '../../streams.js'
import { resolveStream, type ApiContext } from '../context.js'
import { KinesisError } from '../errors.js'
import { StreamARN, StreamName, validate } from '../validate.js'

async function change(body: unknown, ctx: ApiContext, direction: 'increase' | 'decrease'): Promise<StreamState> {
  const req = validate<{ StreamName?: string; StreamARN?: string; RetentionPeriodHours: number }>(body, {
    StreamName, StreamARN, RetentionPeriodHours: { type: 'integer', required: true },
  })
  const hours = req.RetentionPeriodHours
  if (hours < Limits.minRetentionHours) {
    throw new KinesisError('InvalidArgumentException', `Minimum allowed retention period is ${Limits.minRetentionHours} hours. Requested retention period (${hours} hours) is too short.`)
  }
  if (hours > Limits.maxRetentionHours) {
    throw new KinesisError('InvalidArgumentException', `Maximum allowed retention period is ${Limits.maxRetentionHours} hours. Requested retention period (${hours} hours) is too long.`)
  }
  const state = resolveStream(req, ctx)
  if (state.meta.status !== 'ACTIVE') throw ctx.errors.notActive(state.meta.name, state.meta.status)
  const current = state.meta.retentionHours
  if (direction === 'increase' && hours < current) {
    throw new KinesisError('InvalidArgumentException',
      `Requested retention period (${hours} hours) for stream ${state.meta.name} can not be shorter than existing retention period (${current} hours). Use DecreaseRetentionPeriod API.`)
  }
  if (direction === 'decrease' && hours > current) {
    throw new KinesisError('InvalidArgumentException',
      `Requested retention period (${hours} hours) for stream ${state.meta.name} can not be longer than existing retention period (${current} hours). Use IncreaseRetentionPeriod API.`)
  }
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
