/**
 * Objects in a bucket of any S3-compatible server, with @aws-sdk/client-s3. Small objects go up in
 * one PutObject; from `multipartThresholdBytes` on, in parts of `partBytes` (aborted on failure, so no
 * orphan parts are left to pay for). Each body carries its Content-MD5, so the server refuses a body
 * damaged on the way. The SDK retries little and times out: the delivery loop retries with backoff.
 *
 * Failures are DeliveryErrors coded `S3.<S3 error code>` (S3.NoSuchBucket, S3.SignatureDoesNotMatch,
 * S3.SlowDown, …), `S3.ConnectionFailed` when the server cannot be reached and `S3.RequestTimeout`
 * when it does not answer. Retryable, as Firehose retries S3 for its whole retry duration: network
 * failures, timeouts, throttling and 5xx, and also a missing bucket and refused credentials — an
 * operator can fix those while the batch is retried. Not retryable: what the same request can never
 * make succeed (an invalid key, a malformed request, a too large entity).
 */
import { createHash } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import type { ObjectStore, S3Target } from '../types.js'
import { DeliveryError } from '../types.js'
import { checkKey, checkPrefix, compareKeys } from './key.js'

/** S3's limits on multipart uploads. */
const MIN_PART_BYTES = 5 * 1024 * 1024
const MAX_PARTS = 10_000

/** Errors that the same request can never get past: retrying them only delays the error target. */
const PERMANENT = new Set([
  'InvalidArgument', 'InvalidRequest', 'MalformedXML', 'EntityTooLarge', 'EntityTooSmall', 'KeyTooLongError',
  'InvalidPart', 'InvalidPartOrder', 'InvalidDigest', 'BadDigest', 'InvalidBucketName', 'MethodNotAllowed', 'NotImplemented',
])

export interface S3StoreOptions {
  /** Attempts per request inside the SDK (the delivery loop retries whole puts); default 2. */
  maxAttempts?: number
  /** Time to open a connection; default 5 s. */
  connectionTimeoutMs?: number
  /** Time a request may stay silent (no bytes either way); default 30 s. */
  requestTimeoutMs?: number
  /** Keys per ListObjectsV2 page (S3's most and default: 1000); smaller in tests of pagination. */
  listPageSize?: number
}

export class S3ObjectStore implements ObjectStore {
  readonly description: string
  readonly #target: S3Target
  readonly #client: S3Client
  readonly #listPageSize: number

  constructor(target: S3Target, options: S3StoreOptions = {}) {
    if (!(target.partBytes >= MIN_PART_BYTES)) throw new TypeError(`S3ObjectStore: partBytes must be at least ${MIN_PART_BYTES} (S3's smallest part), got ${target.partBytes}`)
    if (!(target.multipartThresholdBytes >= 0)) throw new TypeError(`S3ObjectStore: invalid multipartThresholdBytes ${target.multipartThresholdBytes}`)
    this.#target = target
    this.#listPageSize = options.listPageSize ?? 1000
    this.description = `s3://${target.bucket}${target.endpoint !== undefined ? ` at ${target.endpoint}` : ''}`
    this.#client = new S3Client({
      region: target.region,
      ...(target.endpoint !== undefined ? { endpoint: target.endpoint } : {}),
      ...(target.credentials !== undefined ? { credentials: target.credentials } : {}),
      forcePathStyle: target.forcePathStyle,
      maxAttempts: options.maxAttempts ?? 2,
      // socketTimeout is the SDK's idle timer; its requestTimeout only warns unless told to throw.
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5_000, socketTimeout: options.requestTimeoutMs ?? 30_000 },
      // The SDK's default CRC32 checksum headers are unknown to many S3-compatible servers (Swift's
      // s3api among them); Content-MD5, which every one checks, guards the bodies instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  async put(key: string, body: Buffer, info: { contentType: string; contentEncoding?: string }): Promise<void> {
    checkKey(key, 'S3')
    const headers = { ContentType: info.contentType, ...(info.contentEncoding !== undefined ? { ContentEncoding: info.contentEncoding } : {}) }
    if (body.length < this.#target.multipartThresholdBytes) {
      await this.#call(`putting ${key}`, () => this.#client.send(new PutObjectCommand({ Bucket: this.#target.bucket, Key: key, Body: body, ContentMD5: md5(body), ...headers })))
      return
    }
    await this.#putMultipart(key, body, headers)
  }

  async #putMultipart(key: string, body: Buffer, headers: { ContentType: string; ContentEncoding?: string }): Promise<void> {
    const Bucket = this.#target.bucket
    const created = await this.#call(`starting the multipart upload of ${key}`, () => this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key: key, ...headers })))
    const UploadId = created.UploadId
    if (UploadId === undefined) throw new DeliveryError('S3.InvalidResponse', `starting the multipart upload of ${key}: the server gave no UploadId`, { retryable: true })
    // Parts grow past partBytes only where S3's 10,000-part cap requires it.
    const partBytes = Math.max(this.#target.partBytes, Math.ceil(body.length / MAX_PARTS))
    try {
      const parts: { ETag: string; PartNumber: number }[] = []
      for (let offset = 0, PartNumber = 1; offset < body.length || PartNumber === 1; offset += partBytes, PartNumber++) {
        const Body = body.subarray(offset, offset + partBytes)
        const uploaded = await this.#call(`uploading part ${PartNumber} of ${key}`, () => this.#client.send(new UploadPartCommand({ Bucket, Key: key, UploadId, PartNumber, Body, ContentMD5: md5(Body) })))
        if (uploaded.ETag === undefined) throw new DeliveryError('S3.InvalidResponse', `uploading part ${PartNumber} of ${key}: the server gave no ETag`, { retryable: true })
        parts.push({ ETag: uploaded.ETag, PartNumber })
      }
      await this.#call(`completing the multipart upload of ${key}`, () => this.#client.send(new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } })))
    } catch (err) {
      // Best effort: the upload's failure is what the caller must see, not the abort's.
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {})
      throw err
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    checkKey(key, 'S3')
    try {
      const got = await this.#client.send(new GetObjectCommand({ Bucket: this.#target.bucket, Key: key }))
      if (got.Body === undefined) return Buffer.alloc(0)
      return Buffer.from(await got.Body.transformToByteArray())
    } catch (err) {
      if (errorName(err) === 'NoSuchKey') return undefined
      throw s3Error(`getting ${key}`, this.description, err)
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(prefix, 'S3')
    const keys: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.#call(`listing ${JSON.stringify(prefix)}`, () => this.#client.send(new ListObjectsV2Command({ Bucket: this.#target.bucket, Prefix: prefix, MaxKeys: this.#listPageSize, ...(ContinuationToken !== undefined ? { ContinuationToken } : {}) })))
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key)
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (ContinuationToken !== undefined)
    return keys.sort(compareKeys)
  }

  async close(): Promise<void> {
    this.#client.destroy()
  }

  async #call<T>(doing: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request()
    } catch (err) {
      throw s3Error(doing, this.description, err)
    }
  }
}

function md5(body: Buffer): string {
  return createHash('md5').update(body).digest('base64')
}

function errorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as { Code?: unknown; name?: unknown }
  if (typeof e.Code === 'string') return e.Code
  return typeof e.name === 'string' ? e.name : undefined
}

/** Network errno codes: the server is not there (yet, or any more). */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'ETIMEDOUT'])

/** An SDK or network failure as a DeliveryError (see the header for what is retryable). */
export function s3Error(doing: string, where: string, err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } }
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err)
  const errno = typeof e.code === 'string' ? e.code : undefined
  if (errno !== undefined && NETWORK.has(errno)) {
    return new DeliveryError('S3.ConnectionFailed', `${doing} at ${where}: cannot reach the server (${errno}): ${message}`, { retryable: true, cause: err })
  }
  const name = errorName(err)
  if (name === 'TimeoutError' || name === 'RequestTimeout' || name === 'RequestTimeTooSkewed') {
    return new DeliveryError(`S3.${name === 'TimeoutError' ? 'RequestTimeout' : name}`, `${doing} at ${where}: ${message}`, { retryable: true, cause: err })
  }
  const status = e.$metadata?.httpStatusCode
  // Without an S3 error code (e.g. a proxy's HTML page), name the HTTP status.
  const code = name !== undefined && /^[A-Za-z][A-Za-z0-9]*$/.test(name) && name !== 'Error' && name !== 'Unknown' && name !== 'S3ServiceException'
    ? name
    : status !== undefined ? `HttpStatus${status}` : 'UnknownError'
  const hint = code === 'NoSuchBucket' ? ' (does the bucket exist?)'
    : code === 'SignatureDoesNotMatch' || code === 'InvalidAccessKeyId' || code === 'AccessDenied' ? ' (check the credentials and the bucket\'s permissions)'
      : ''
  return new DeliveryError(`S3.${code}`, `${doing} at ${where}: ${code}${status !== undefined ? ` (HTTP ${status})` : ''}: ${message}${hint}`, { retryable: !PERMANENT.has(code), cause: err })
}
