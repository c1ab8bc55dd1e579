/**
 * Splunk HTTP Event Collector, the HTTP endpoint's preset: one POST per batch part to
 *
 *   Event: <url>/services/collector/event   body: {"time":<arrival s>,"event":<record>,"source":…,"sourcetype":…,"index":…} concatenated
 *          (the record's JSON as it is when it parses, else its text as a JSON string)
 *   Raw:   <url>/services/collector/raw?source=…&sourcetype=…&index=…   body: each record's bytes, then a newline
 *
 * with `Authorization: Splunk <token>` and `X-Splunk-Request-Channel: <uuid>` (a name-based UUID of
 * the delivery stream: stable across restarts, as HEC's channels are meant to be). HEC answers
 * `{"text":"Success","code":0}`; any other code fails the batch with HEC's code and text. Indexer
 * acknowledgement (polling /services/collector/ack) is not used: a 200 with code 0 is the acknowledgement.
 *
 * HEC status codes → DeliveryError.code (retryable ones: HEC's own "try again" codes, 8, 9, 18, 19,
 * and any HTTP 5xx/429/408 without a known code):
 *   1 token disabled            Splunk.DisabledToken
 *   2, 3, 4 token required/invalid authorization/invalid token   Splunk.InvalidToken
 *   5, 6, 12, 13, 15 no data/invalid format/event field          Splunk.InvalidDataFormat
 *   7 incorrect index           Splunk.InvalidIndex
 *   8 internal error, 9 server busy, 18/19 unhealthy             Splunk.ServerError (retryable)
 *   10, 11 channel missing/invalid                               Splunk.InvalidChannel
 *   14 ACK disabled             Splunk.DisabledAck
 *   others                      Splunk.HecError (retryable by HTTP status)
 * Wire failures: Splunk.ConnectionTimeout, Splunk.ConnectionClosed, Splunk.ConnectionFailed
 * (retryable), Splunk.SSLUnverified (not retryable), Splunk.Aborted.
 */
import { isUtf8 } from 'node:buffer'
import { DeliveryError, type OutputRecord, type RecordBatch, type RecordSink, type SplunkTarget } from '../types.js'
import { DEFAULT_MAX_REQUEST_BYTES } from './http.js'
import { nameUuid } from './request-id.js'
import { HttpTransport, redact, retryableStatus, transportError, type PostResult } from './transport.js'

const HEC_CODES: Record<number, { code: string; retryable: boolean }> = {
  1: { code: 'Splunk.DisabledToken', retryable: false },
  2: { code: 'Splunk.InvalidToken', retryable: false },
  3: { code: 'Splunk.InvalidToken', retryable: false },
  4: { code: 'Splunk.InvalidToken', retryable: false },
  5: { code: 'Splunk.InvalidDataFormat', retryable: false },
  6: { code: 'Splunk.InvalidDataFormat', retryable: false },
  7: { code: 'Splunk.InvalidIndex', retryable: false },
  8: { code: 'Splunk.ServerError', retryable: true },
  9: { code: 'Splunk.ServerError', retryable: true },
  10: { code: 'Splunk.InvalidChannel', retryable: false },
  11: { code: 'Splunk.InvalidChannel', retryable: false },
  12: { code: 'Splunk.InvalidDataFormat', retryable: false },
  13: { code: 'Splunk.InvalidDataFormat', retryable: false },
  14: { code: 'Splunk.DisabledAck', retryable: false },
  15: { code: 'Splunk.InvalidDataFormat', retryable: false },
  18: { code: 'Splunk.ServerError', retryable: true },
  19: { code: 'Splunk.ServerError', retryable: true },
}

export interface SplunkSinkOptions {
  /** Names the HEC channel. */
  deliveryStream: string
  /** Cap on a request's body; larger batches go in several requests. */
  maxRequestBytes?: number
}

export class SplunkSink implements RecordSink {
  readonly description: string
  private readonly target: SplunkTarget
  private readonly transport: HttpTransport
  private readonly endpoint: URL
  private readonly channel: string
  private readonly maxRequestBytes: number
  /** `,"source":…,"sourcetype":…,"index":…}` closing every event object. */
  private readonly eventTail: string

  constructor(target: SplunkTarget, options: SplunkSinkOptions) {
    this.target = target
    this.transport = new HttpTransport({ url: target.url, caFile: target.caFile, timeoutMs: target.timeoutMs })
    const base = this.transport.url.href.replace(/\/+$/, '')
    this.endpoint = new URL(`${base}/services/collector/${target.endpointType === 'Event' ? 'event' : 'raw'}`)
    if (target.endpointType === 'Raw') {
      for (const key of ['source', 'sourcetype', 'index'] as const) {
        const value = target[key]
        if (value !== undefined) this.endpoint.searchParams.set(key, value)
      }
    }
    this.channel = nameUuid(`splunk-channel/${options.deliveryStream}`)
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
    let tail = ''
    for (const key of ['source', 'sourcetype', 'index'] as const) {
      const value = target[key]
      if (value !== undefined) tail += `,${JSON.stringify(key)}:${JSON.stringify(value)}`
    }
    this.eventTail = tail + '}'
    this.description = `Splunk HEC ${redact(this.endpoint)}`
  }

  async deliver(batch: RecordBatch, signal: AbortSignal): Promise<void> {
    const encode = this.target.endpointType === 'Event' ? (r: OutputRecord) => this.event(r) : raw
    let chunks: Buffer[] = []
    let size = 0
    for (const record of batch.records) {
      const piece = encode(record)
      if (chunks.length > 0 && size + piece.length > this.maxRequestBytes) {
        await this.send(Buffer.concat(chunks, size), signal)
        chunks = []
        size = 0
      }
      chunks.push(piece)
      size += piece.length
    }
    if (chunks.length > 0) await this.send(Buffer.concat(chunks, size), signal)
  }

  private event(record: OutputRecord): Buffer {
    const text = record.data.toString('utf8')
    const event = isUtf8(record.data) && parsesAsJson(text) ? text.trim() : JSON.stringify(text)
    return Buffer.from(`{"time":${(record.arrivalMs / 1000).toFixed(3)},"event":${event}${this.eventTail}`, 'utf8')
  }

  private async send(body: Buffer, signal: AbortSignal): Promise<void> {
    const headers = {
      Authorization: `Splunk ${this.target.token}`,
      'X-Splunk-Request-Channel': this.channel,
      'Content-Type': this.target.endpointType === 'Event' ? 'application/json' : 'text/plain',
    }
    let result: PostResult
    try {
      result = await this.transport.post(body, headers, signal, this.endpoint)
    } catch (err) {
      throw transportError('Splunk', err)
    }
    checkResponse(result)
  }

  async close(): Promise<void> {
    this.transport.close()
  }
}

function raw(record: OutputRecord): Buffer {
  const data = record.data
  return data.length > 0 && data[data.length - 1] === 0x0a ? data : Buffer.concat([data, NEWLINE])
}
const NEWLINE = Buffer.from('\n')

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

function checkResponse(result: PostResult): void {
  const excerpt = result.body.subarray(0, 512).toString('utf8')
  let answer: { text?: unknown; code?: unknown } | undefined
  try {
    const parsed: unknown = JSON.parse(result.body.toString('utf8'))
    if (typeof parsed === 'object' && parsed !== null) answer = parsed as { text?: unknown; code?: unknown }
  } catch {
    answer = undefined
  }
  if (answer && typeof answer.code === 'number') {
    if (answer.code === 0 && result.status === 200) return
    const known = HEC_CODES[answer.code]
    const text = typeof answer.text === 'string' ? answer.text : excerpt
    throw new DeliveryError(known?.code ?? 'Splunk.HecError', `HEC answered ${result.status} code ${answer.code}: ${text}`, {
      retryable: known ? known.retryable : retryableStatus(result.status),
    })
  }
  if (result.status !== 200) {
    throw new DeliveryError(retryableStatus(result.status) ? 'Splunk.ServerError' : 'Splunk.HecError', `HEC answered ${result.status}: ${excerpt}`, { retryable: retryableStatus(result.status) })
  }
  throw new DeliveryError('Splunk.InvalidResponse', `HEC answered 200 without a status code: ${excerpt}`, { retryable: false })
}
