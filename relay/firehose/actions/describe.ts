/** DescribeDeliveryStream: one destination always (destinationId-000000000001), so Limit and ExclusiveStartDestinationId change nothing. */
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { describeStream } from '../shapes.js'
import { DeliveryStreamName } from '../validation.js'

export async function describeDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true },
    Limit: { type: 'integer', min: 1, max: 10000 },
    ExclusiveStartDestinationId: { type: 'string', min: 1, max: 100, pattern: '[a-zA-Z0-9-]+' },
  })
  const d = deliveryStream(req.DeliveryStreamName, ctx)
  return { DeliveryStreamDescription: describeStream(d, ctx.service.region, ctx.service.accountId) }
}
