/**
 * PutResourcePolicy / GetResourcePolicy / DeleteResourcePolicy on streams and consumers. The
 * policies are validated as JSON documents, stored in the metadata store and returned; Tributary
 * does not enforce them (README.md says so): access is decided by SigV4 keys alone.
 */
import type { ApiContext } from '../context.js'
import { policyNotFound, policyNotJson, policyWithoutStatement } from '../errors.js'
import { ResourceARN, StreamId, validate } from '../validate.js'

/** The resource a policy is attached to must exist: a stream, or a consumer of one. */
function checkResource(arn: string, ctx: ApiContext): void {
  if (arn.includes('/consumer/')) {
    if (!ctx.consumers.byArn(arn)) throw ctx.errors.consumerNotFound(arn)
    return
  }
  const name = ctx.streams.nameFromArn(arn)
  const state = name === null ? undefined : ctx.streams.get(name)
  if (!state || state.meta.arn !== arn || state.meta.status === 'DELETING') {
    throw ctx.errors.streamArnNotFound(arn)
  }
}

export async function putResourcePolicy(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string; Policy: string }>(body, {
    ResourceARN, StreamId, Policy: { type: 'string', required: true },
  }, 'declared')
  checkResource(req.ResourceARN, ctx)
  let doc: unknown
  try {
    doc = JSON.parse(req.Policy)
  } catch (err) {
    throw policyNotJson((err as Error).message)
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !('Statement' in doc)) throw policyWithoutStatement()
  await ctx.meta.putResourcePolicy(req.ResourceARN, req.Policy)
  return {}
}

export async function getResourcePolicy(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string }>(body, { ResourceARN, StreamId }, 'declared')
  checkResource(req.ResourceARN, ctx)
  // No policy attached reads as an empty document, as AWS answers.
  return { Policy: (await ctx.meta.getResourcePolicy(req.ResourceARN)) ?? '{}' }
}

export async function deleteResourcePolicy(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string }>(body, { ResourceARN, StreamId }, 'declared')
  checkResource(req.ResourceARN, ctx)
  if (!(await ctx.meta.deleteResourcePolicy(req.ResourceARN))) throw policyNotFound(req.ResourceARN)
  return {}
}
