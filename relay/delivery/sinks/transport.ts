/**
 * The HTTP transport the HTTP endpoint and Splunk sinks share: one POST at a time over kept-alive
 * connections (node:http / node:https agents), a per-request timeout, a cap on how much of the
 * response is read, and `https://` verified against the system CAs plus an optional CA file.
 * It answers what came back (status, headers, body) or throws a TransportFailure naming what went
 * wrong on the wire; each sink turns those into its own DeliveryError codes.
 */
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { rootCertificates } from 'node:tls'
import { DeliveryError } from '../types.js'

/** Firehose reads at most 1 MiB of an endpoint's response. */
export const MAX_RESPONSE_BYTES = 1024 * 1024

export interface TransportOptions {
  url: string
  /** PEM file of a CA to trust besides the system's (https only). */
  caFile?: string
  timeoutMs: number
  maxResponseBytes?: number
}

export interface PostResult {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** The response was longer than the cap: `body` holds its first bytes only. */
  truncated: boolean
}

/** What failed on the wire, before any response could be judged. */
export type TransportFailureKind = 'timeout' | 'connection' | 'reset' | 'tls' | 'aborted'

export class TransportFailure extends Error {
  readonly kind: TransportFailureKind
  constructor(kind: TransportFailureKind, message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'TransportFailure'
    this.kind = kind
  }
}

// OpenSSL's verification failures as Node reports them: the endpoint is reachable but not trusted.
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE',
])

export class HttpTransport {
  readonly url: URL
  private readonly agent: http.Agent
  private readonly timeoutMs: number
  private readonly maxResponseBytes: number

  constructor(options: TransportOptions) {
    this.url = new URL(options.url)
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new TypeError(`the endpoint URL must be http:// or https://, got ${options.url}`)
    if (!(options.timeoutMs > 0)) throw new TypeError(`timeoutMs must be positive, got ${options.timeoutMs}`)
    this.timeoutMs = options.timeoutMs
    this.maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES
    if (this.url.protocol === 'https:') {
      // Passing `ca` replaces Node's trust store, so the system's roots go in with the extra CA.
      const ca = options.caFile ? [...rootCertificates, readFileSync(options.caFile, 'utf8')] : undefined
      this.agent = new https.Agent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) })
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
    }
  }

  /** POST `body` to `url` (default: the transport's URL). */
  post(body: Buffer, headers: Record<string, string>, signal: AbortSignal, url: URL = this.url): Promise<PostResult> {
    if (signal.aborted) return Promise.reject(new TransportFailure('aborted', 'the delivery was aborted before the request was sent', signal.reason))
    const request = url.protocol === 'https:' ? https.request : http.request
    return new Promise<PostResult>((resolve, reject) => {
      let settled = false
      const fail = (failure: TransportFailure) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        req.destroy()
        reject(failure)
      }
      const onAbort = () => fail(new TransportFailure('aborted', 'the delivery was aborted', signal.reason))
      const timer = setTimeout(() => fail(new TransportFailure('timeout', `no complete response within ${this.timeoutMs} ms`)), this.timeoutMs)
      signal.addEventListener('abort', onAbort, { once: true })

      const req = request(url, { method: 'POST', agent: this.agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = []
        let length = 0
        let truncated = false
        res.on('data', (chunk: Buffer) => {
          if (truncated) return
          const room = this.maxResponseBytes - length
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room))
            length += room
            truncated = true
            // Not read past the cap: answer now and drop the connection rather than drain it.
            finish()
            res.destroy()
            return
          }
          chunks.push(chunk)
          length += chunk.length
        })
        const finish = () => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, length), truncated })
        }
        res.on('end', finish)
        res.on('error', (err) => fail(classify(err)))
      })
      req.on('error', (err) => fail(classify(err)))
      req.end(body)
    })
  }

  close(): void {
    this.agent.destroy()
  }
}

function classify(err: Error & { code?: string }): TransportFailure {
  const code = err.code ?? ''
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) return new TransportFailure('tls', `TLS verification failed: ${err.message}`, err)
  if (code === 'ECONNRESET' || code === 'EPIPE') return new TransportFailure('reset', `the connection was reset: ${err.message}`, err)
  return new TransportFailure('connection', `cannot reach the endpoint: ${err.message}`, err)
}

/** Whether an HTTP status says "try again later" (server errors, throttling, request timeout). */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408
}

/** A wire failure as a DeliveryError under `prefix` (HttpEndpoint, Splunk). */
export function transportError(prefix: string, err: unknown): DeliveryError {
  if (!(err instanceof TransportFailure)) return new DeliveryError(`${prefix}.ConnectionFailed`, `the request failed: ${String(err)}`, { retryable: true, cause: err })
  switch (err.kind) {
    case 'timeout': return new DeliveryError(prefix === 'Splunk' ? 'Splunk.ConnectionTimeout' : `${prefix}.RequestTimeout`, err.message, { retryable: true, cause: err })
    case 'reset': return new DeliveryError(prefix === 'Splunk' ? 'Splunk.ConnectionClosed' : `${prefix}.ConnectionReset`, err.message, { retryable: true, cause: err })
    case 'tls': return new DeliveryError(prefix === 'Splunk' ? 'Splunk.SSLUnverified' : `${prefix}.SSLHandshakeFailure`, err.message, { retryable: false, cause: err })
    case 'aborted': return new DeliveryError(`${prefix}.Aborted`, err.message, { retryable: true, cause: err })
    case 'connection': return new DeliveryError(`${prefix}.ConnectionFailed`, err.message, { retryable: true, cause: err })
  }
}

/** The URL without credentials or query (which may hold tokens), for descriptions and messages. */
export function redact(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`
}
