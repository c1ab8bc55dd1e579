/** TagDeliveryStream: adds or replaces tags, at most 50 on a delivery stream. */
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { checkTags, DeliveryStreamName, MAX_TAGS, TagList } from '../validation.js'

export async function tagDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string; Tags: { Key: string; Value?: string }[] }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true }, Tags: { ...TagList, required: true },
  })
  const d = deliveryStream(req.DeliveryStreamName, ctx)
  const tags = Object.fromEntries(req.Tags.map((t) => [t.Key, t.Value ?? '']))
  checkTags(tags)
  if (new Set([...Object.keys(d.tags), ...Object.keys(tags)]).size > MAX_TAGS) throw ctx.errors.tooManyTags(req.DeliveryStreamName, MAX_TAGS)
  await ctx.service.putTags(req.DeliveryStreamName, tags)
  return {}
}
