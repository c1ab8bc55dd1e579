/** ListTagsForDeliveryStream: tags in key order, after ExclusiveStartTagKey, Limit (default 50) at a time. */
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { DeliveryStreamName, TagKey } from '../validation.js'

export async function listTagsForDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string; ExclusiveStartTagKey?: string; Limit?: number }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true }, ExclusiveStartTagKey: TagKey, Limit: { type: 'integer', min: 1, max: 50 },
  })
  const { tags } = deliveryStream(req.DeliveryStreamName, ctx)
  const keys = Object.keys(tags).sort().filter((k) => req.ExclusiveStartTagKey === undefined || k > req.ExclusiveStartTagKey)
  const limit = req.Limit ?? 50
  return { Tags: keys.slice(0, limit).map((Key) => ({ Key, Value: tags[Key]! })), HasMoreTags: keys.length > limit }
}
