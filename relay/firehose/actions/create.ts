/** CreateDeliveryStream: the request's Firehose shapes become a DeliveryStreamConfig (shapes.ts), which the service checks and starts. */
import { ErrorCode, TributaryError } from '../../../shared/errors.js'
import type { FirehoseContext } from '../context.js'
import { configOf, type CreateRequest } from '../shapes.js'
import { checkTags, CreateDeliveryStreamInput } from '../validation.js'
import { validate } from '../../kinesis/validate.js'

export async function createDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<CreateRequest>(body, CreateDeliveryStreamInput)
  const name = req.DeliveryStreamName
  if (ctx.service.describe(name)) throw ctx.errors.exists(name)
  const config = configOf(req, ctx.service)
  const tags = Object.fromEntries((req.Tags ?? []).map((t) => [t.Key, t.Value ?? '']))
  checkTags(tags)
  try {
    const created = await ctx.service.create(config, tags)
    return { DeliveryStreamARN: created.arn }
  } catch (err) {
    // Two creates of one name at once: the second loses in the service, in AWS's wording here.
    if (err instanceof TributaryError && err.code === ErrorCode.CONFLICT) throw ctx.errors.exists(name)
    throw err
  }
}
