/**
 * PutRecordBatch: up to 500 records and 4 MiB, stored together. When storage refuses, every record
 * of the batch is answered as failed (ServiceUnavailableException), as Firehose answers records it
 * could not take, so that SDK retry loops send them again.
 */
import { StorageError } from '../../../shared/errors.js'
import { validate } from '../../kinesis/validate.js'
import { directPutStream, type FirehoseContext } from '../context.js'
import { batchTooLarge } from '../errors.js'
import { DeliveryStreamName, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, RecordShape } from '../validation.js'

export async function putRecordBatch(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName: string; Records: { Data: Buffer }[] }>(body, {
    DeliveryStreamName: { ...DeliveryStreamName, required: true },
    Records: { type: 'list', required: true, min: 1, max: MAX_BATCH_RECORDS, member: RecordShape },
  })
  directPutStream(req.DeliveryStreamName, ctx)
  const data = req.Records.map((r) => r.Data)
  const bytes = data.reduce((n, d) => n + d.length, 0)
  if (bytes > MAX_BATCH_BYTES) throw batchTooLarge(bytes, MAX_BATCH_BYTES)
  try {
    const results = await ctx.service.put(req.DeliveryStreamName, data)
    return { FailedPutCount: 0, Encrypted: false, RequestResponses: results.map((r) => ({ RecordId: r.recordId })) }
  } catch (err) {
    if (!(err instanceof StorageError)) throw err
    const failed = { ErrorCode: 'ServiceUnavailableException', ErrorMessage: err.message }
    return { FailedPutCount: data.length, Encrypted: false, RequestResponses: data.map(() => failed) }
  }
}
