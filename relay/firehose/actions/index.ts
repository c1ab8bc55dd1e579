/**
 * The Firehose actions: one row per action, each in its own file. DescribeDeliveryStreamStats is
 * Tributary's own (the CLI's status view); the rest are AWS's.
 */
import type { Handler } from '../context.js'
import { createDeliveryStream } from './create.js'
import { deleteDeliveryStream } from './delete.js'
import { describeDeliveryStream } from './describe.js'
import { listDeliveryStreams } from './list.js'
import { listTagsForDeliveryStream } from './list-tags.js'
import { putRecord } from './put-record.js'
import { putRecordBatch } from './put-record-batch.js'
import { describeDeliveryStreamStats } from './stats.js'
import { tagDeliveryStream } from './tag.js'
import { untagDeliveryStream } from './untag.js'

export const ACTIONS: Readonly<Record<string, Handler>> = {
  CreateDeliveryStream: createDeliveryStream,
  DescribeDeliveryStream: describeDeliveryStream,
  ListDeliveryStreams: listDeliveryStreams,
  DeleteDeliveryStream: deleteDeliveryStream,
  PutRecord: putRecord,
  PutRecordBatch: putRecordBatch,
  TagDeliveryStream: tagDeliveryStream,
  UntagDeliveryStream: untagDeliveryStream,
  ListTagsForDeliveryStream: listTagsForDeliveryStream,
  DescribeDeliveryStreamStats: describeDeliveryStreamStats,
}
