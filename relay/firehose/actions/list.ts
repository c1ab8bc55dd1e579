/** ListDeliveryStreams: names in order, after ExclusiveStartDeliveryStreamName, of one type when asked, Limit (default 10) at a time. */
import { validate } from '../../kinesis/validate.js'
import type { FirehoseContext } from '../context.js'
import { DeliveryStreamName } from '../validation.js'

const DEFAULT_LIMIT = 10

export async function listDeliveryStreams(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ Limit?: number; DeliveryStreamType?: string; ExclusiveStartDeliveryStreamName?: string }>(body, {
    Limit: { type: 'integer', min: 1, max: 10000 },
    DeliveryStreamType: { type: 'string', enum: ['DirectPut', 'KinesisStreamAsSource', 'MSKAsSource', 'DatabaseAsSource'] },
    ExclusiveStartDeliveryStreamName: DeliveryStreamName,
  })
  const after = req.ExclusiveStartDeliveryStreamName
  const names = ctx.service.list()
    .filter((d) => req.DeliveryStreamType === undefined || req.DeliveryStreamType === (d.config.source.type === 'stream' ? 'KinesisStreamAsSource' : 'DirectPut'))
    .map((d) => d.config.name)
    .filter((n) => after === undefined || n > after)
    .sort()
  const limit = req.Limit ?? DEFAULT_LIMIT
  return { DeliveryStreamNames: names.slice(0, limit), HasMoreDeliveryStreams: names.length > limit }
}
