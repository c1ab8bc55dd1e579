/** DeleteDeliveryStream: those the relay config declares are the config's (refused); AllowForceDelete changes nothing without KMS. */
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { DeliveryStreamName } from '../validation.js'

export async function deleteDeliveryStream(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string }>(body, { DeliveryStreamName: { ...DeliveryStreamName, required: true }, AllowForceDelete: { type: 'boolean' } })
  const d = deliveryStream(req.DeliveryStreamName, ctx)
  if (d.declared) throw ctx.errors.declared(req.DeliveryStreamName)
  if (d.status === 'DELETING') return {}
  await ctx.service.delete(req.DeliveryStreamName)
  return {}
}
