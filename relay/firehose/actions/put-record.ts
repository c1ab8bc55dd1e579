/** PutRecord: one record (at most 1,000 KiB) stored durably in the delivery stream's backing stream; its RecordId is its sequence number there. */
import { validate } from '../../kinesis/validate.js'
import { directPutStream, type FirehoseContext } from '../context.js'
import { DeliveryStreamName, RecordShape } from '../validation.js'

export async function putRecord(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string; Record: { Data: Buffer } }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true }, Record: { ...RecordShape, required: true },
  })
  directPutStream(req.DeliveryStreamName, ctx)
  const [result] = await ctx.service.put(req.DeliveryStreamName, [req.Record.Data])
  return { RecordId: result!.recordId, Encrypted: false }
}
