/**
 * HTTP endpoint sink, after Firehose's HTTP endpoint delivery request and response specification
 * (protocol version 1.0):
 *
 *   POST <url>
 *   X-Amz-Firehose-Protocol-Version: 1.0
 *   X-Amz-Firehose-Request-Id: <uuid>            same on every attempt of the same request, even after a restart
 *   X-Amz-Firehose-Source-Arn: <arn>
 *   X-Amz-Firehose-Access-Key: <key>             when configured
 *   X-Amz-Firehose-Common-Attributes: {"commonAttributes": {...}}   when configured
 *   Content-Type: application/json
 *   Content-Encoding: gzip                       when GZIP (absent otherwise)
 *   {"requestId": "<uuid>", "timestamp": <ms>, "records": [{"data": "<base64>"}, ...]}
 *
 * The endpoint answers 200 with a JSON body whose requestId is the request's; anything else fails
 * the request. Differences from Firehose, on purpose: `http://` URLs and any port are allowed
 * (self-hosted networks); the request id is a name-based UUID of (delivery stream, shard, first and
 * last sequence number, part) rather than a random one kept across retries, so it survives restarts.
 *
 * A batch whose body would exceed `maxRequestBytes` (default 64 MiB, Firehose's largest buffer for
 * HTTP endpoints) is sent as several requests, in order, each with its own request id; the batch is
 * delivered when all are acknowledged, and a retry resends all of them (the ids let the endpoint
 * deduplicate the parts it already has).
 *
 * Error codes (DeliveryError.code), with whether the caller should retry:
 *   HttpEndpoint.DestinationException           any status but 200; retryable for 5xx, 429, 408
 *   HttpEndpoint.InvalidResponseFromDestination 200 but not JSON, a different requestId, or over 1 MiB; not retryable
 *   HttpEndpoint.RequestTimeout                 no complete response within timeoutMs; retryable
 *   HttpEndpoint.ConnectionFailed / ConnectionReset   retryable
 *   HttpEndpoint.SSLHandshakeFailure            the certificate does not verify; not retryable
 *   HttpEndpoint.Aborted                        the caller's signal fired; retryable
 */
import { gzipSync } from 'node:zlib'
import { DeliveryError, type HttpTarget, type OutputRecord, type RecordBatch, type RecordSink } from '../types.js'
import { batchRequestId } from './request-id.js'
import { HttpTransport, MAX_RESPONSE_BYTES, redact, retryableStatus, transportError, type PostResult } from './transport.js'

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
const PROTOCOL_VERSION = '1.0'
// `{"requestId":"<36>","timestamp":<13+>,"records":[` … `]}` with room to spare.
const ENVELOPE_BYTES = 128
// `{"data":""},` around each record's base64.
const RECORD_OVERHEAD = 12

export interface HttpSinkOptions {
  /** Cap on a request's JSON body before compression; larger batches go in several requests. */
  maxRequestBytes?: number
  /** Clock of the body's `timestamp`. */
  now?: () => number
}

export class HttpEndpointSink implements RecordSink {
  readonly description: string
  private readonly target: HttpTarget
  private readonly transport: HttpTransport
  private readonly maxRequestBytes: number
  private readonly now: () => number

  constructor(target: HttpTarget, options: HttpSinkOptions = {}) {
    this.target = target
    this.transport = new HttpTransport({ url: target.url, caFile: target.caFile, timeoutMs: target.timeoutMs })
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
    if (!(this.maxRequestBytes > ENVELOPE_BYTES)) throw new TypeError(`maxRequestBytes must exceed ${ENVELOPE_BYTES}, got ${this.maxRequestBytes}`)
    this.now = options.now ?? Date.now
    this.description = `HTTP endpoint ${target.name ? `${target.name} ` : ''}${redact(this.transport.url)}`
  }

  async deliver(batch: RecordBatch, signal: AbortSignal): Promise<void> {
    if (batch.records.length === 0) return
    const parts = splitRecords(batch.records, this.maxRequestBytes)
    for (let part = 0; part < parts.length; part++) {
      await this.send(batch, batchRequestId(batch, part), parts[part]!, signal)
    }
  }

  private async send(batch: RecordBatch, requestId: string, records: OutputRecord[], signal: AbortSignal): Promise<void> {
    let json = `{"requestId":"${requestId}","timestamp":${Math.round(this.now())},"records":[`
    for (let i = 0; i < records.length; i++) json += `${i ? ',' : ''}{"data":"${records[i]!.data.toString('base64')}"}`
    json += ']}'
    const headers: Record<string, string> = {
      'X-Amz-Firehose-Protocol-Version': PROTOCOL_VERSION,
      'X-Amz-Firehose-Request-Id': requestId,
      'X-Amz-Firehose-Source-Arn': batch.sourceArn,
      'Content-Type': 'application/json',
    }
    if (this.target.accessKey !== undefined) headers['X-Amz-Firehose-Access-Key'] = this.target.accessKey
    if (Object.keys(this.target.commonAttributes).length > 0) headers['X-Amz-Firehose-Common-Attributes'] = JSON.stringify({ commonAttributes: this.target.commonAttributes })
    let body = Buffer.from(json, 'utf8')
    if (this.target.contentEncoding === 'GZIP') {
      body = gzipSync(body, { level: 1 })
      headers['Content-Encoding'] = 'gzip'
    }

    let result: PostResult
    try {
      result = await this.transport.post(body, headers, signal)
    } catch (err) {
      throw transportError('HttpEndpoint', err)
    }
    checkResponse(result, requestId)
  }

  async close(): Promise<void> {
    this.transport.close()
  }
}

/** Records cut into consecutive groups whose request body stays within `maxBytes` (a larger record goes alone). */
export function splitRecords(records: OutputRecord[], maxBytes: number): OutputRecord[][] {
  const parts: OutputRecord[][] = []
  let current: OutputRecord[] = []
  let size = ENVELOPE_BYTES
  for (const record of records) {
    const bytes = Math.ceil(record.data.length / 3) * 4 + RECORD_OVERHEAD
    if (current.length > 0 && size + bytes > maxBytes) {
      parts.push(current)
      current = []
      size = ENVELOPE_BYTES
    }
    current.push(record)
    size += bytes
  }
  if (current.length > 0) parts.push(current)
  return parts
}

function checkResponse(result: PostResult, requestId: string): void {
  const excerpt = result.body.subarray(0, 512).toString('utf8')
  if (result.status !== 200) {
    throw new DeliveryError('HttpEndpoint.DestinationException', `the endpoint answered ${result.status}: ${excerpt}`, { retryable: retryableStatus(result.status) })
  }
  if (result.truncated) {
    throw new DeliveryError('HttpEndpoint.InvalidResponseFromDestination', `the endpoint's response is longer than ${MAX_RESPONSE_BYTES} bytes`, { retryable: false })
  }
  let answered: unknown
  try {
    answered = JSON.parse(result.body.toString('utf8'))
  } catch (err) {
    throw new DeliveryError('HttpEndpoint.InvalidResponseFromDestination', `the endpoint's 200 response is not JSON: ${excerpt}`, { retryable: false, cause: err })
  }
  const answeredId = typeof answered === 'object' && answered !== null ? (answered as { requestId?: unknown }).requestId : undefined
  if (answeredId !== requestId) {
    throw new DeliveryError('HttpEndpoint.InvalidResponseFromDestination', `the endpoint's response names requestId ${JSON.stringify(answeredId)}, not ${requestId}`, { retryable: false })
  }
}
