/**
 * One batch through a delivery stream: transform, partition, convert and compress, load into the
 * sink with retries, and write whatever failed to the error target. Everything a batch writes is
 * named by the batch (shard, first and last sequence number), so the same batch delivered again after
 * a crash overwrites the same objects and rows instead of adding copies.
 */
import type { Clock } from '../../hardware/index.js'
import { encodeObjectAsync, JqTimeoutError, objectKey, objectPrefix, prefixUses, type JqPartitioner } from './format/index.js'
import { asDeliveryError, sleep, withRetries } from './retry.js'
import { runTransform, type TransformHandler } from './transform.js'
import {
  ErrorOutputType, type BatchId, type DeliveryError, type DeliveryStreamConfig, type ErrorRecord, type ObjectStore,
  type OutputRecord, type RecordSink, type SourceRecord,
} from './types.js'

export interface PipelineDeps {
  config: DeliveryStreamConfig
  arn: string
  sourceArn: string
  region: string
  clock: Clock
  /** The sink: objects (files, S3) or records (PostgreSQL, HTTP, Splunk). */
  sink: { objects: ObjectStore } | { records: RecordSink }
  /** Where failed records go; it is retried until it takes them, as nothing may be dropped. */
  errors: ObjectStore
  transform: TransformHandler | null
  partitioner: JqPartitioner | null
  onFailure: (error: DeliveryError) => void
}

export interface BatchOutcome {
  delivered: number
  deliveredBytes: number
  dropped: number
  /** Records written to the error target, by error output type. */
  failed: Record<string, number>
}

interface Failure { record: SourceRecord; type: string; code: string; message: string; attempts: number }

/** Firehose's error output type of a sink that failed to load. */
function sinkErrorType(config: DeliveryStreamConfig): string {
  switch (config.sink.type) {
    case 's3': return ErrorOutputType.s3
    case 'files': return ErrorOutputType.files
    case 'postgres': return ErrorOutputType.postgres
    case 'http': return ErrorOutputType.http
    case 'splunk': return ErrorOutputType.splunk
  }
}

/** The same record with other data or partition keys (a plain object: records may compute fields lazily). */
export function derived(r: SourceRecord, data: Buffer, partitionKeys: Record<string, string>): OutputRecord {
  return { shardId: r.shardId, sequenceNumber: r.sequenceNumber, partitionKey: r.partitionKey, arrivalMs: r.arrivalMs, data, partitionKeys }
}

/** Records as read; those not read from a shard get no partition keys. */
function asOutputs(records: readonly SourceRecord[]): OutputRecord[] {
  return records.map((r) => ('partitionKeys' in r ? r as OutputRecord : derived(r, r.data, {})))
}

export async function deliverBatch(id: BatchId, records: SourceRecord[], d: PipelineDeps, signal: AbortSignal): Promise<BatchOutcome> {
  const outcome: BatchOutcome = { delivered: 0, deliveredBytes: 0, dropped: 0, failed: {} }
  const failures: Failure[] = []
  const { config } = d

  // 1. The transform (Firehose's Lambda contract).
  let outputs: OutputRecord[]
  if (d.transform && config.processing.transform) {
    const result = await runTransform(records, {
      handler: d.transform, deliveryStreamArn: d.arn, sourceArn: d.sourceArn, region: d.region,
      timeoutMs: config.processing.transform.timeoutMs, batchRecords: config.processing.transform.batchRecords, now: () => d.clock.wallMs(),
    })
    outputs = result.ok
    outcome.dropped = result.dropped
    for (const f of result.failed) failures.push({ ...f, type: ErrorOutputType.processing })
  } else {
    outputs = asOutputs(records)
  }

  // 2. Dynamic partitioning keys from jq (the transform may have given its own).
  if (d.partitioner && outputs.length) {
    let keys: Awaited<ReturnType<JqPartitioner['keys']>>
    try {
      keys = await d.partitioner.keys(outputs)
    } catch (err) {
      // A query that runs away on these records: they fail (jq was killed), and the shard moves on
      // rather than running them into the same wall again. jq missing or dying is retried instead.
      if (!(err instanceof JqTimeoutError)) throw err
      keys = outputs.map(() => ({ error: err.message }))
    }
    const kept: OutputRecord[] = []
    outputs.forEach((r, i) => {
      const k = keys[i]!
      if ('error' in k && typeof k.error === 'string') failures.push({ record: r, type: ErrorOutputType.partitioning, code: 'DynamicPartitioning.MetadataExtractionFailed', message: k.error, attempts: 1 })
      else kept.push(derived(r, r.data, { ...r.partitionKeys, ...(k as Record<string, string>) }))
    })
    outputs = kept
  }

  // 3. Load.
  const retry = { clock: d.clock, durationMs: config.retryDurationMs, signal, onFailure: d.onFailure }
  if ('objects' in d.sink) {
    const store = d.sink.objects
    const groups = new Map<string, OutputRecord[]>()
    // Neighbours mostly share their arrival time (a commit group) and keys: the prefix is worked out once for them.
    let last: { arrivalMs: number; keys: Record<string, string>; prefix: string } | null = null
    for (const r of outputs) {
      let prefix: string
      try {
        if (last && last.arrivalMs === r.arrivalMs && last.keys === r.partitionKeys) prefix = last.prefix
        else {
          prefix = objectPrefix(config.prefix, { arrivalMs: r.arrivalMs, partitionKeys: r.partitionKeys, batch: id }, !!config.processing.partitioning)
          last = { arrivalMs: r.arrivalMs, keys: r.partitionKeys, prefix }
        }
      } catch (err) {
        failures.push({ record: r, type: ErrorOutputType.partitioning, code: 'DynamicPartitioning.MissingPartitionKey', message: (err as Error).message, attempts: 1 })
        continue
      }
      let g = groups.get(prefix)
      if (!g) {
        const cap = config.processing.partitioning?.maxActivePartitions
        if (cap !== undefined && groups.size >= cap) {
          failures.push({ record: r, type: ErrorOutputType.partitioning, code: 'DynamicPartitioning.ActivePartitionsLimitExceeded', message: `more than ${cap} active partitions in one batch`, attempts: 1 })
          continue
        }
        groups.set(prefix, g = [])
      }
      g.push(r)
    }
    for (const [prefix, group] of groups) {
      const encoded = await encodeObjectAsync(group, config.processing)
      for (const f of encoded.failed) failures.push({ record: f.record, type: ErrorOutputType.conversion, code: f.code, message: f.message, attempts: 1 })
      const failedSet = new Set(encoded.failed.map((f) => f.record))
      const written = group.filter((r) => !failedSet.has(r))
      if (!written.length) continue
      const key = objectKey(prefix, id, encoded.extension)
      const result = await withRetries(() => store.put(key, encoded.body, { contentType: encoded.contentType }), `${config.sink.type === 's3' ? 'S3' : 'Files'}.WriteFailed`, retry)
      if (result.ok) {
        outcome.delivered += written.length
        outcome.deliveredBytes += encoded.body.length
      } else {
        for (const r of written) failures.push({ record: r, type: sinkErrorType(config), code: result.error.code, message: result.error.message, attempts: result.attempts })
      }
    }
  } else if (outputs.length) {
    const sink = d.sink.records
    const result = await withRetries(() => sink.deliver({ ...id, records: outputs, sourceArn: d.sourceArn }, signal), 'Sink.DeliveryFailed', retry)
    if (result.ok) {
      outcome.delivered += outputs.length
      outcome.deliveredBytes += outputs.reduce((n, r) => n + r.data.length, 0)
    } else {
      for (const r of outputs) failures.push({ record: r, type: sinkErrorType(config), code: result.error.code, message: result.error.message, attempts: result.attempts })
    }
  }

  // 4. What failed goes to the error target, one object per error output type; retried until it is taken.
  if (failures.length) await writeFailures(id, failures, d, signal, outcome)
  return outcome
}

async function writeFailures(id: BatchId, failures: Failure[], d: PipelineDeps, signal: AbortSignal, outcome: BatchOutcome): Promise<void> {
  const byType = new Map<string, Failure[]>()
  for (const f of failures) {
    let list = byType.get(f.type)
    if (!list) byType.set(f.type, list = [])
    list.push(f)
  }
  const endedMs = d.clock.wallMs()
  for (const [type, list] of byType) {
    const lines = list.map((f): ErrorRecord => ({
      attemptsMade: f.attempts, arrivalTimestamp: f.record.arrivalMs, errorCode: f.code, errorMessage: f.message, attemptEndingTimestamp: endedMs,
      rawData: f.record.data.toString('base64'), shardId: f.record.shardId, sequenceNumber: f.record.sequenceNumber, partitionKey: f.record.partitionKey,
    }))
    const body = Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    // Each kind of failure gets its own place (and key), as Firehose's default error prefix does.
    const template = prefixUses(d.config.errorPrefix).errorOutputType ? d.config.errorPrefix : `${d.config.errorPrefix}!{firehose:error-output-type}/`
    const prefix = objectPrefix(template, { arrivalMs: list[0]!.record.arrivalMs, partitionKeys: {}, errorOutputType: type, batch: id }, false)
    let key = objectKey(prefix, id, '')
    // Never given up: a day of retries, then again. A key the error target refuses outright falls
    // back to one made of the type and the batch alone.
    for (;;) {
      const result = await withRetries(() => d.errors.put(key, body, { contentType: 'application/x-ndjson' }), 'ErrorOutput.WriteFailed', { clock: d.clock, durationMs: 86_400_000, signal, onFailure: d.onFailure })
      if (result.ok) break
      if (!result.error.retryable) key = objectKey(`${type}/`, id, '')
      d.onFailure(asDeliveryError(result.error, 'ErrorOutput.WriteFailed'))
      await sleep(d.clock, 5000, signal)
    }
    outcome.failed[type] = (outcome.failed[type] ?? 0) + list.length
  }
}
