/** UntagDeliveryStream: removes tags by key; a key the stream does not have is no error. */
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { DeliveryStreamName, TagKeyList } from '../validation.js'

export async function untagDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string; TagKeys: string[] }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true }, TagKeys: { ...TagKeyList, required: true },
  })
  deliveryStream(req.DeliveryStreamName, ctx)
  await ctx.service.removeTags(req.DeliveryStreamName, req.TagKeys)
  return {}
}
