/**
 * Data transformation, Firehose's Lambda contract run in the relay's process: the module the relay's
 * delivery file names (`transforms: { name: "./enrich.mjs" }`) exports a handler (`default` or
 * `handler`), called with the event a Firehose transformation Lambda receives and answering what it
 * answers, so the same function runs on AWS and here:
 *
 *   event:  { invocationId, deliveryStreamArn, region, sourceKinesisStreamArn?,
 *             records: [{ recordId, approximateArrivalTimestamp, data (base64),
 *                         kinesisRecordMetadata: { shardId, partitionKey, approximateArrivalTimestamp, sequenceNumber, subsequenceNumber } }] }
 *   answer: { records: [{ recordId, result: 'Ok' | 'Dropped' | 'ProcessingFailed', data (base64), metadata?: { partitionKeys } }] }
 *
 * A record's id is its sequence number. An answer that leaves a record out, names one twice or gives
 * an unknown result fails those records; a handler that throws or runs past its timeout is called
 * again (three attempts, as Firehose's NumberOfRetries defaults to 3), then the whole call fails.
 */
import { createHash } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import type { OutputRecord, SourceRecord } from './types.js'

export interface TransformEvent {
  invocationId: string
  deliveryStreamArn: string
  region: string
  sourceKinesisStreamArn?: string
  records: {
    recordId: string
    approximateArrivalTimestamp: number
    data: string
    kinesisRecordMetadata: { shardId: string; partitionKey: string; approximateArrivalTimestamp: number; sequenceNumber: string; subsequenceNumber: string }
  }[]
}

export type TransformHandler = (event: TransformEvent, context: { invocationId: string; deadlineMs: number }) => unknown

export interface TransformFailure { record: SourceRecord; code: string; message: string; attempts: number }

export interface TransformResult {
  ok: OutputRecord[]
  dropped: number
  failed: TransformFailure[]
}

const ATTEMPTS = 3

/** Loads a transform module; throws naming the file when it has no handler. */
export async function loadTransform(path: string): Promise<TransformHandler> {
  const mod = await import(pathToFileURL(path).href) as { default?: unknown; handler?: unknown }
  const fn = typeof mod.handler === 'function' ? mod.handler : mod.default
  if (typeof fn !== 'function') throw new TypeError(`transform ${path} exports no handler (export default or export const handler)`)
  return fn as TransformHandler
}

function invoke(handler: TransformHandler, event: TransformEvent, timeoutMs: number, now: () => number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`the transform did not answer within ${timeoutMs} ms`), { code: 'Lambda.FunctionTimeout' })), timeoutMs)
    Promise.resolve()
      .then(() => handler(event, { invocationId: event.invocationId, deadlineMs: now() + timeoutMs }))
      .then(resolve, reject)
      .finally(() => clearTimeout(timer))
  })
}

export interface TransformCall {
  handler: TransformHandler
  deliveryStreamArn: string
  sourceArn?: string
  region: string
  timeoutMs: number
  batchRecords: number
  now: () => number
}

/** Runs one batch of one shard through the transform, in calls of at most `batchRecords` records. */
export async function runTransform(records: SourceRecord[], call: TransformCall): Promise<TransformResult> {
  const out: TransformResult = { ok: [], dropped: 0, failed: [] }
  for (let i = 0; i < records.length; i += call.batchRecords) {
    const chunk = records.slice(i, i + call.batchRecords)
    await runChunk(chunk, call, out)
  }
  // Keep the shard's order for the delivered records (answers may come in any order).
  out.ok.sort((a, b) => (a.sequenceNumber.length - b.sequenceNumber.length) || (a.sequenceNumber < b.sequenceNumber ? -1 : a.sequenceNumber > b.sequenceNumber ? 1 : 0))
  return out
}

async function runChunk(chunk: SourceRecord[], call: TransformCall, out: TransformResult): Promise<void> {
  // The same records get the same invocation id, across retries and restarts.
  const invocationId = uuidOf(`${chunk[0]!.shardId}/${chunk[0]!.sequenceNumber}/${chunk.at(-1)!.sequenceNumber}`)
  const event: TransformEvent = {
    invocationId, deliveryStreamArn: call.deliveryStreamArn, region: call.region,
    ...(call.sourceArn ? { sourceKinesisStreamArn: call.sourceArn } : {}),
    records: chunk.map((r) => ({
      recordId: r.sequenceNumber, approximateArrivalTimestamp: r.arrivalMs, data: r.data.toString('base64'),
      kinesisRecordMetadata: { shardId: r.shardId, partitionKey: r.partitionKey, approximateArrivalTimestamp: r.arrivalMs, sequenceNumber: r.sequenceNumber, subsequenceNumber: '' },
    })),
  }
  let answer: unknown
  let lastError: { code: string; message: string } | null = null
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      answer = await invoke(call.handler, event, call.timeoutMs, call.now)
      lastError = null
      break
    } catch (err) {
      const e = err as { code?: unknown; message?: string }
      lastError = { code: e.code === 'Lambda.FunctionTimeout' ? 'Lambda.FunctionTimeout' : 'Lambda.FunctionError', message: String(e.message ?? err) }
    }
  }
  if (lastError) {
    for (const record of chunk) out.failed.push({ record, ...lastError, attempts: ATTEMPTS })
    return
  }
  const answered = (answer as { records?: unknown })?.records
  if (!Array.isArray(answered)) {
    for (const record of chunk) out.failed.push({ record, code: 'Lambda.InvalidReturnedDataFormat', message: 'the transform answered without a records list', attempts: 1 })
    return
  }
  const byId = new Map(chunk.map((r) => [r.sequenceNumber, r]))
  const seen = new Set<string>()
  for (const a of answered as { recordId?: unknown; result?: unknown; data?: unknown; metadata?: { partitionKeys?: unknown } }[]) {
    const id = typeof a?.recordId === 'string' ? a.recordId : ''
    const record = byId.get(id)
    if (!record) continue // an id the call never sent: nothing to deliver for it
    if (seen.has(id)) {
      out.failed.push({ record, code: 'Lambda.DuplicatedRecordId', message: `the transform answered record ${id} more than once`, attempts: 1 })
      continue
    }
    seen.add(id)
    if (a.result === 'Dropped') { out.dropped++; continue }
    if (a.result === 'ProcessingFailed') {
      out.failed.push({ record, code: 'Lambda.ProcessingFailed', message: 'the transform answered ProcessingFailed', attempts: 1 })
      continue
    }
    if (a.result !== 'Ok' || typeof a.data !== 'string') {
      out.failed.push({ record, code: 'Lambda.InvalidReturnedDataFormat', message: `record ${id}: result must be Ok, Dropped or ProcessingFailed, and Ok needs base64 data`, attempts: 1 })
      continue
    }
    const keys = a.metadata?.partitionKeys
    const partitionKeys: Record<string, string> = {}
    if (keys && typeof keys === 'object') for (const [k, v] of Object.entries(keys)) if (typeof v === 'string' || typeof v === 'number') partitionKeys[k] = String(v)
    out.ok.push({ shardId: record.shardId, sequenceNumber: record.sequenceNumber, partitionKey: record.partitionKey, arrivalMs: record.arrivalMs, data: Buffer.from(a.data, 'base64'), partitionKeys })
  }
  // What the answer left out fails.
  for (const record of chunk) {
    if (!seen.has(record.sequenceNumber)) out.failed.push({ record, code: 'Lambda.MissingRecordId', message: `the transform did not answer record ${record.sequenceNumber}`, attempts: 1 })
  }
}

/** A name-based UUID (version 5 layout over SHA-1), stable for the same text. */
export function uuidOf(text: string): string {
  const h = createHash('sha1').update(text).digest()
  h[6] = (h[6]! & 0x0f) | 0x50
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`
}
