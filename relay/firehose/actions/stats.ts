/**
 * DescribeDeliveryStreamStats, Tributary's own action (AWS has CloudWatch for this): what each
 * delivery stream has done — records and bytes delivered, failures, backlog, freshness — for
 * `tributary delivery list|describe`. With DeliveryStreamName, that one; without, all in name order.
 */
import type { DeliveryStreamDescription } from '../../delivery/types.js'
import { validate } from '../../kinesis/validate.js'
import { deliveryStream, type FirehoseContext } from '../context.js'
import { DeliveryStreamName } from '../validation.js'

export interface DeliveryStreamStatsJson {
  DeliveryStreamName: string
  DeliveryStreamStatus: string
  DeliveryStreamType: 'DirectPut' | 'KinesisStreamAsSource'
  Source: string
  Sink: string
  Declared: boolean
  RecordsDelivered: number
  BytesDelivered: number
  BatchesDelivered: number
  RecordsFailed: Record<string, number>
  FailuresByCode: Record<string, number>
  BacklogRecords: number
  FreshnessSeconds: number
  /** Epoch seconds, as AWS's timestamps. */
  LastDeliveryTimestamp: number | null
  LastError: { Code: string; Message: string; Timestamp: number } | null
}

function sinkOf(d: DeliveryStreamDescription): string {
  const s = d.config.sink
  switch (s.type) {
    case 'files': return `files ${s.directory}`
    case 's3': return `s3 ${s.bucket}${s.endpoint ? ` at ${s.endpoint}` : ''}`
    case 'postgres': return `postgres table ${s.table}`
    case 'http': return `http ${s.url}`
    case 'splunk': return `splunk ${s.url}`
  }
}

export function statsOf(d: DeliveryStreamDescription): DeliveryStreamStatsJson {
  const s = d.stats
  const src = d.config.source
  return {
    DeliveryStreamName: d.config.name,
    DeliveryStreamStatus: d.status,
    DeliveryStreamType: src.type === 'stream' ? 'KinesisStreamAsSource' : 'DirectPut',
    Source: src.type === 'stream' ? `stream ${src.stream}` : `direct put (${src.shards} shard${src.shards === 1 ? '' : 's'})`,
    Sink: sinkOf(d),
    Declared: d.declared,
    RecordsDelivered: s.recordsDelivered,
    BytesDelivered: s.bytesDelivered,
    BatchesDelivered: s.batchesDelivered,
    RecordsFailed: s.recordsFailed,
    FailuresByCode: s.failuresByCode,
    BacklogRecords: s.backlogRecords,
    FreshnessSeconds: s.freshnessSeconds,
    LastDeliveryTimestamp: s.lastDeliveryMs === null ? null : s.lastDeliveryMs / 1000,
    LastError: s.lastError ? { Code: s.lastError.code, Message: s.lastError.message, Timestamp: s.lastError.atMs / 1000 } : null,
  }
}

export async function describeDeliveryStreamStats(body: unknown, ctx: FirehoseContext) {
  const req = validate<{ DeliveryStreamName?: string }>(body, { DeliveryStreamName })
  const list = req.DeliveryStreamName !== undefined
    ? [deliveryStream(req.DeliveryStreamName, ctx)]
    : ctx.service.list().sort((a, b) => (a.config.name < b.config.name ? -1 : a.config.name > b.config.name ? 1 : 0))
  return { DeliveryStreams: list.map(statsOf) }
}
