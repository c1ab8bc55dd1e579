/**
 * The local put API: other processes on the device write records with PutRecord/PutRecords-shaped
 * JSON over HTTP on loopback, and are answered only after the outbox has committed them.
 *
 *   POST /  X-Amz-Target: Kinesis_20131202.PutRecord   {"StreamName","PartitionKey","Data"(base64),"ExplicitHashKey"?}
 *   POST /  X-Amz-Target: Kinesis_20131202.PutRecords  {"StreamName","Records":[{"PartitionKey","Data","ExplicitHashKey"?}]}
 *   (also POST /PutRecord and POST /PutRecords without the header)
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Limits, parseExplicitHashKey, partitionKeyProblem } from '../../shared/limits.js'
import { STREAM_NAME_PATTERN } from '../../shared/topics.js'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { Clock } from '../../hardware/index.js'
import { OutboxFullError, frameBytes, type OutboxInput } from '../outbox/index.js'
import { HEADER_SIZE } from '../../shared/frame.js'
import type { PutApiSource } from '../config.js'
import { localGuard } from '../local-guard.js'

const MAX_BODY = 12 * 1024 * 1024
/**
 * Body bytes held at once across all requests (declared or received, whichever is more): two
 * bodies of the largest size. Past it a put is answered 503 with Retry-After before its body is
 * read, so a flood of large bodies from one process cannot run the agent out of memory.
 */
export const MAX_INFLIGHT_BYTES = 2 * MAX_BODY
/** A request must arrive whole within this (loopback is fast; a trickle must not hold its share). */
const REQUEST_TIMEOUT_MS = 30_000

export interface PutApi {
  port: number
  close(): Promise<void>
}

class BadRequest extends Error {
  readonly type: string
  constructor(type: string, message: string) {
    super(message)
    this.type = type
  }
}

interface RecordJson { PartitionKey?: unknown; Data?: unknown; ExplicitHashKey?: unknown }

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

function toInput(stream: string, r: RecordJson, where: string, now: number, synced: boolean, maxFrameBytes: number): OutboxInput {
  if (typeof r.PartitionKey !== 'string') throw new BadRequest('ValidationException', `${where}PartitionKey must be a string`)
  const keyProblem = partitionKeyProblem(r.PartitionKey)
  if (keyProblem) throw new BadRequest('ValidationException', `${where}${keyProblem}`)
  // A lone surrogate has no UTF-8 form: it would silently become U+FFFD and merge distinct keys.
  if (LONE_SURROGATE.test(r.PartitionKey)) throw new BadRequest('ValidationException', `${where}PartitionKey is not valid Unicode`)
  if (typeof r.Data !== 'string') throw new BadRequest('ValidationException', `${where}Data must be a base64 string`)
  const data = Buffer.from(r.Data, 'base64')
  if (data.toString('base64') !== r.Data) throw new BadRequest('SerializationException', `${where}Data is not valid base64`)
  if (data.length + Buffer.byteLength(r.PartitionKey) > Limits.maxRecordBytes) throw new BadRequest('ValidationException', `${where}record is over ${Limits.maxRecordBytes} bytes`)
  let explicitHashKey: string | undefined
  if (r.ExplicitHashKey !== undefined) {
    if (typeof r.ExplicitHashKey !== 'string' || parseExplicitHashKey(r.ExplicitHashKey) === null) {
      throw new BadRequest('InvalidArgumentException', `${where}ExplicitHashKey must be a decimal in [0, 2^128-1]`)
    }
    explicitHashKey = r.ExplicitHashKey
  }
  if (frameBytes(r.PartitionKey, data, explicitHashKey) + HEADER_SIZE > maxFrameBytes) {
    throw new BadRequest('ValidationException', `${where}record is too large for a batch of at most ${maxFrameBytes} bytes (uplink.batchBytes)`)
  }
  return { stream, partitionKey: r.PartitionKey, data, explicitHashKey, capturedMs: now, clockSynced: synced }
}

export async function startPutApi(source: PutApiSource, clock: Clock, store: (rows: OutboxInput[]) => Promise<number[]>, maxFrameBytes: number): Promise<PutApi> {
  const guard = localGuard({ bindHost: source.host, allowedHosts: source.allowedHosts, token: source.token, json: true }, () => (server.address() as AddressInfo).port)
  let held = 0
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: 10_000 }, (req, res) => {
    const answer = (status: number, body: unknown, close = false) => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}) })
      res.end(text)
    }
    // A client that hangs up mid-body: nothing to answer, and no unhandled 'error'.
    req.on('error', () => {})
    // Refused on the headers alone: the body is never read, and the connection is closed.
    const refusal = guard(req)
    if (refusal) return answer(refusal.status, { __type: refusal.type, code: refusal.code, message: refusal.message }, true)
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > MAX_BODY) return answer(413, { __type: 'ValidationException', message: `request body is over ${MAX_BODY} bytes` }, true)
    const busy = () => {
      res.setHeader('retry-after', '1')
      answer(503, { __type: 'ServiceUnavailable', code: ErrorCode.LIMIT_EXCEEDED, message: `the put API holds ${MAX_INFLIGHT_BYTES} bytes of request bodies already; retry shortly` }, true)
    }
    if (held + declared > MAX_INFLIGHT_BYTES) return busy()
    // This request's share of the budget, given back when its answer is done or its connection gone.
    let reserved = declared
    held += reserved
    res.on('close', () => { held -= reserved; reserved = 0 })
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > reserved) {
        if (held + (size - reserved) > MAX_INFLIGHT_BYTES) { busy(); req.destroy(); return }
        held += size - reserved
        reserved = size
      }
      if (size <= MAX_BODY) chunks.push(c)
      else { answer(413, { __type: 'ValidationException', message: `request body is over ${MAX_BODY} bytes` }, true); req.destroy() }
    })
    req.on('end', () => {
      void (async () => {
        try {
          if (req.method !== 'POST') throw new BadRequest('UnknownOperationException', 'use POST')
          if (size > MAX_BODY) return
          const target = String(req.headers['x-amz-target'] ?? '').replace('Kinesis_20131202.', '') || (req.url ?? '').split('?')[0]!.replace(/^\//, '')
          if (target !== 'PutRecord' && target !== 'PutRecords') throw new BadRequest('UnknownOperationException', `the local put API serves PutRecord and PutRecords, not ${JSON.stringify(target)}`)
          let body: Record<string, unknown>
          try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch (err) { throw new BadRequest('SerializationException', `body is not JSON: ${(err as Error).message}`) }
          if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('SerializationException', 'body must be a JSON object')
          const stream = body.StreamName
          if (typeof stream !== 'string' || !STREAM_NAME_PATTERN.test(stream)) throw new BadRequest('ValidationException', `StreamName must match ${STREAM_NAME_PATTERN}`)
          const now = clock.wallMs()
          if (target === 'PutRecord') {
            const [id] = await store([toInput(stream, body as RecordJson, '', now, clock.synced(), maxFrameBytes)])
            return answer(200, { RecordId: id, Stored: true })
          }
          const records = body.Records
          if (!Array.isArray(records) || records.length < 1 || records.length > Limits.maxPutRecordsCount) {
            throw new BadRequest('ValidationException', `Records must be a list of 1 to ${Limits.maxPutRecordsCount} records`)
          }
          const inputs = records.map((r, i) => toInput(stream, (r ?? {}) as RecordJson, `Records[${i}].`, now, clock.synced(), maxFrameBytes))
          const total = inputs.reduce((n, r) => n + r.data.length + Buffer.byteLength(r.partitionKey), 0)
          if (total > Limits.maxPutRecordsBytes) throw new BadRequest('InvalidArgumentException', `Records size exceeds ${Limits.maxPutRecordsBytes / 1048576} MB limit`)
          const ids = await store(inputs)
          answer(200, { FailedRecordCount: 0, Records: ids.map((id) => ({ RecordId: id })) })
        } catch (err) {
          if (err instanceof BadRequest) return answer(400, { __type: err.type, message: err.message })
          if (err instanceof OutboxFullError) return answer(503, { __type: 'OutboxFullException', code: err.code, message: err.message })
          if (err instanceof TributaryError) return answer(503, { __type: 'ServiceUnavailable', code: err.code, message: err.message })
          answer(500, { __type: 'InternalFailure', code: ErrorCode.STORAGE_FAILED, message: (err as Error).message })
        }
      })()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(source.port, source.host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}
