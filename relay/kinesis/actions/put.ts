/**
 * PutRecord and PutRecords. With a stream's throughput limits on, each record is routed once and
 * metered against its shard's budget; records over it fail one by one (PutRecords) or whole
 * (PutRecord), as in Kinesis, and the same routes go to the append.
 */
import { Limits, MAX_HASH_KEY } from '../../../shared/limits.js'
import type { IngestRecord } from '../../ingest.js'
import { sequenceOf } from '../../sequence.js'
import type { ShardState, StreamState } from '../../streams.js'
import { throughputOf } from '../../throughput.js'
import { RenderedResult, resolveStream, streamExtras, type ApiContext } from '../context.js'
import { hashKeyOutOfRange, recordsTooLarge, type KinesisError } from '../errors.js'
import { ValidPutRecords } from '../putrecords-parse.js'
import { renderPut, type PutPage } from '../render.js'
import { Data, ExplicitHashKey, PartitionKey, SequenceNumber, validate, type Shape } from '../validate.js'
import { STREAM_REF } from './streams.js'

function hashKeyOf(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined
  const value = BigInt(text)
  if (value > MAX_HASH_KEY) throw hashKeyOutOfRange(text)
  return value
}

function recordOf(r: { Data: Buffer; PartitionKey: string; ExplicitHashKey?: string }): IngestRecord {
  return { partitionKey: r.PartitionKey, data: r.Data, explicitHashKey: hashKeyOf(r.ExplicitHashKey), producerTimeMs: 0, clockSynced: false }
}

/**
 * With the stream's limits on: the records' shards, and which records their shards' budgets refuse
 * (by index, with the error). Null when the limits are off: the append routes by itself.
 */
function meter(state: StreamState, records: IngestRecord[], ctx: ApiContext, routed?: ShardState[]): { shards: ShardState[]; refused: Map<number, KinesisError> } | null {
  const budget = throughputOf(state)
  if (!budget) return null
  const shards = routed ?? ctx.router.routeRecords(state, records)
  const refused = new Map<number, KinesisError>()
  const now = ctx.now()
  records.forEach((r, i) => {
    const shard = shards[i]!
    if (!budget.write(shard, r.data.length + Buffer.byteLength(r.partitionKey), now)) refused.set(i, ctx.errors.rateExceeded(shard.meta.shardId, state.meta.name))
  })
  return { shards, refused }
}

/** The most open shards the codec's router takes at once (its slots are 16-bit). */
const MAX_ROUTED_SHARDS = 65_535

/** kinesalite's validations/putRecords.js: AWS's order, and the class AWS names the entries by. */
const RequestEntry: Shape = { type: 'structure', fields: { PartitionKey, ExplicitHashKey, Data }, javaName: 'com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry' }

/**
 * EncryptionType as AWS answers a put: "KMS" for an encrypted stream, and left out for one that is
 * not (kinesalite's test/putRecord.js records AWS's answer as exactly {ShardId, SequenceNumber}).
 */
function encryptionOf(state: StreamState, ctx: ApiContext): { EncryptionType?: 'KMS' } {
  return streamExtras(state, ctx).EncryptionType === 'KMS' ? { EncryptionType: 'KMS' } : {}
}

export async function putRecord(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; Data: Buffer; PartitionKey: string; ExplicitHashKey?: string; SequenceNumberForOrdering?: string }>(body, {
    // kinesalite's validations/putRecord.js records AWS's order.
    SequenceNumberForOrdering: SequenceNumber, PartitionKey, ExplicitHashKey, Data, ...STREAM_REF,
  }, 'declared')
  const state = resolveStream(req, ctx)
  const records = [recordOf(req)]
  const metered = meter(state, records, ctx)
  const refused = metered?.refused.get(0)
  if (refused) throw refused
  const [stored] = await ctx.ingest.putRecords(state, records, metered?.shards)
  return { ShardId: stored!.shard.meta.shardId, SequenceNumber: sequenceOf(stored!.shard, stored!.offset, stored!.arrivalMs), ...encryptionOf(state, ctx) }
}

/** PutRecords' input as validate() checks it; putrecords-parse.ts checks the same for the bodies it reads. */
export const PUT_RECORDS_FIELDS: Record<string, Shape> = {
  Records: { type: 'list', required: true, min: 1, max: Limits.maxPutRecordsCount, member: RequestEntry },
  ...STREAM_REF,
}

export async function putRecords(body: unknown, ctx: ApiContext) {
  // A body the front door read in one pass is validated already (putrecords-parse.ts).
  const req = body instanceof ValidPutRecords ? body
    : validate<{ StreamName?: string; StreamARN?: string; Records: { Data: Buffer; PartitionKey: string; ExplicitHashKey?: string }[] }>(body, PUT_RECORDS_FIELDS, 'declared')
  const state = resolveStream(req, ctx)
  let total = 0
  const records = req.Records.map((r) => {
    total += r.Data.length + Buffer.byteLength(r.PartitionKey)
    return recordOf(r)
  })
  if (total > Limits.maxPutRecordsBytes) throw recordsTooLarge()
  // A body read in one pass says where its keys lie: they are hashed there, in one call.
  const keyTable = req instanceof ValidPutRecords ? req.keyTable : null
  const routed = keyTable && state.open.length <= MAX_ROUTED_SHARDS ? ctx.router.routeKeys(state, keyTable.body, keyTable.fields) : undefined
  const metered = meter(state, records, ctx, routed)
  const refused = metered?.refused ?? new Map<number, KinesisError>()
  const kept = <T>(list: T[]) => (refused.size ? list.filter((_, i) => !refused.has(i)) : list)
  const shards = metered?.shards ?? routed
  const stored = await ctx.ingest.putRecords(state, kept(records), shards ? kept(shards) : undefined)
  let k = 0
  const page: PutPage = {
    failed: refused.size,
    results: refused.size
      ? records.map((_, i) => {
        const failed = refused.get(i)
        return failed ? { errorCode: failed.type, errorMessage: failed.message } : stored[k++]!
      })
      : stored,
    encrypted: encryptionOf(state, ctx).EncryptionType === 'KMS',
  }
  return new RenderedResult((protocol) => renderPut(page, protocol))
}
