/**
 * The HTTP port's routes: `/healthz`, `/metrics`, the admin API (`/admin/…`), server-side
 * checkpoints (`/checkpoints/…`), the Kinesis API and the Firehose API (`POST /`, told apart by
 * X-Amz-Target, behind AWS's front door: relay/kinesis/frontdoor.ts), the Kinesis Video API (`POST /createStream`, `/listFragments`, …: relay/video/api.ts; `POST /putMedia`, streamed:
 * relay/video/putmedia.ts; `GET /hls/v1/…`, authenticated by the HLS session token:
 * relay/video/playback/; `/console/…`, the web console with its session cookie: relay/console/). Request bodies
 * are read here, within the HTTP guard's caps, and only once the headers have passed what can be
 * checked without them (the admin token; SigV4's key id, scope and date): a caller without
 * credentials is answered at once and its body is never read — except a Kinesis request's first
 * 64 KiB, which AWS's front door judges before credentials (see `preflight`).
 */
import { timingSafeEqual } from 'node:crypto'
import type { AccessKey } from '../shared/config.js'
import { ErrorCode } from '../shared/errors.js'
import { CONTENT_TYPE as METRICS_TYPE } from '../shared/metrics.js'
import { codec } from '../hardware/index.js'
import type { Checkpoints } from './checkpoints.js'
import { BodyBudgetError, BodyTimeoutError, readBody, send, sendJson, stopBody, type AnyRequest, type AnyResponse, type HttpGuard, type RequestHandler } from './http.js'
import { firehosePolicy, isFirehoseTarget, type FirehoseApi } from './firehose/index.js'
import type { KinesisApi } from './kinesis/api.js'
import { KinesisError } from './kinesis/errors.js'
import { answerPreflight, answerWrongMethod, awsHeaders, carriesCredentials } from './kinesis/frontdoor.js'
import { AMZ_JSON, protocolOf } from './kinesis/protocol.js'
import { checkSigV4Headers, kinesisPolicy, verifySigV4 } from './kinesis/sigv4.js'
import type { LogStore } from './log/types.js'
import type { LogFn, RelayMetrics } from './observe.js'
import { ConsoleServer } from './console/index.js'
import { HLS_PREFIX, VIDEO_API_PATHS, VideoApiError, sendVideoError, videoPolicy, type PutMedia, type VideoApi, type VideoErrorType } from './video/index.js'

const MAX_BODY = 12 * 1024 * 1024
/**
 * The body read from a Kinesis request whose credentials failed, for AWS's front door to judge
 * before the credentials' error is answered: enough for any malformed request a client sends, small
 * enough that a caller without credentials cannot make the relay hold much.
 */
const UNAUTHENTICATED_BODY = 64 * 1024

/** A request the headers let through: how much body may be read, and a credentials' error answered once the front door has judged the body. */
interface Admission {
  bodyLimit: number
  deferred?: KinesisError
}
const ADMITTED: Admission = { bodyLimit: MAX_BODY }

export interface RoutesOptions {
  kinesis: KinesisApi
  /** The Firehose API: `POST /` with X-Amz-Target Firehose_20150804.*, on the same port as Kinesis's. */
  firehose?: FirehoseApi
  video: VideoApi
  /** Kinesis Video PutMedia: its body is streamed, never read whole. */
  putMedia: PutMedia
  admin: (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => Promise<void>
  checkpoints: Checkpoints
  logs: LogStore
  metrics: RelayMetrics
  accessKeys: readonly AccessKey[]
  log: LogFn
  /** The relay's clock (ms), against which signatures' times are checked. */
  now: () => number
  /** The region SigV4 credential scopes must name. */
  region: string
  /** The admin API's bearer token, checked here before a body is read (and again by the admin routes). */
  adminToken: string
  guard: HttpGuard
  /** The web console (`/console/…`: its pages, assets and cookie-authenticated API); absent with --console false. */
  console?: ConsoleServer
}

/** Seconds a client is told to wait when a cap on held body bytes refuses it. */
const RETRY_AFTER_S = '1'

export function routes(o: RoutesOptions): RequestHandler {
  const adminToken = Buffer.from(o.adminToken)

  const health = (res: AnyResponse) => {
    const failed = o.logs.failed
    const http = o.guard.status()
    const status = failed ? 'failing' : http.saturated ? 'saturated' : 'ok'
    sendJson(res, status === 'ok' ? 200 : 503, { status, storage: failed ? failed.message : 'ok', corruptions: o.logs.corruptions().length, native: codec.implementation, http })
  }

  /**
   * Answers a request that may not send its body, before a byte of it is read; the connection
   * (HTTP/1.1) or stream (HTTP/2) ends after the answer, so the body is never taken in.
   */
  const refuse = (req: AnyRequest, res: AnyResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
    const close: Record<string, string> = 'stream' in req ? {} : { connection: 'close' }
    stopBody(req, res)
    // The Kinesis Video API answers in REST-JSON: the type in x-amzn-errortype, {message} in the body.
    if (isVideo(req, (req.url ?? '/').split('?')[0]!)) {
      const v = value instanceof KinesisError ? { __type: value.type, message: value.message } : value as { __type?: string; message?: string }
      const error = value instanceof VideoApiError ? value : new VideoApiError((v.__type ?? 'InternalFailure') as VideoApiError['type'], v.message ?? '', { status })
      return sendVideoError(res, error, { ...close, ...headers })
    }
    // The Kinesis API answers in the request's protocol (JSON or CBOR); the other routes in JSON.
    const protocol = isKinesis(req, (req.url ?? '/').split('?')[0]!) ? protocolOf(req.headers['content-type']) : null
    if (protocol && value instanceof KinesisError) send(res, status, protocol.contentType, protocol.encodeError(value), { ...close, 'x-amzn-ErrorType': value.type, ...headers })
    else if (protocol) send(res, status, protocol.contentType, protocol.encode(value), { ...close, ...headers })
    else sendJson(res, status, value, 'application/json', { ...close, ...headers })
  }

  /**
   * What the headers alone can refuse, and how much body may then be read; null when the request
   * has been answered. A Kinesis request whose credentials fail is still judged at AWS's front door
   * first (no body, an unknown target, a body that is not JSON: frontdoor.ts), as AWS judges it, so
   * up to UNAUTHENTICATED_BODY of its body is read for that and the credentials' error waits
   * (`deferred`); a body declared or streamed past that is refused with the error at once.
   */
  const preflight = (req: AnyRequest, res: AnyResponse, path: string): Admission | null => {
    if (path.startsWith('/admin/')) {
      const auth = String(req.headers.authorization ?? '')
      const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '')
      if (adminToken.length > 0 && given.length === adminToken.length && timingSafeEqual(given, adminToken)) return ADMITTED
      o.metrics.rejections.inc({ code: ErrorCode.AUTH_FAILED })
      refuse(req, res, 401, { code: ErrorCode.AUTH_FAILED, message: 'admin token missing or wrong' })
      return null
    }
    if (isVideo(req, path)) {
      if (!o.accessKeys.length) return ADMITTED
      try {
        checkSigV4Headers({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers }, o.accessKeys, videoPolicy(o.region, o.now()))
        return ADMITTED
      } catch (err) {
        const error = toVideoError(err)
        o.metrics.rejections.inc({ code: error.type })
        refuse(req, res, error.status, error)
        return null
      }
    }
    const kinesis = isKinesis(req, path)
    if (!kinesis && !path.startsWith('/checkpoints/')) {
      refuse(req, res, 404, { code: ErrorCode.NOT_FOUND, message: `no route ${req.method} ${path}` })
      return null
    }
    if (!o.accessKeys.length) return ADMITTED
    const firehose = kinesis && isFirehoseTarget(req.headers['x-amz-target'])
    try {
      checkSigV4Headers({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers }, o.accessKeys, (firehose ? firehosePolicy : kinesisPolicy)(o.region, o.now()))
      return ADMITTED
    } catch (err) {
      if (!(err instanceof KinesisError)) throw err
      // Counted where it is answered: here, or by the API once the front door has judged the body.
      if (kinesis && !firehose && !(Number(req.headers['content-length']) > UNAUTHENTICATED_BODY)) return { bodyLimit: UNAUTHENTICATED_BODY, deferred: err }
      o.metrics.rejections.inc({ code: err.type })
      if (kinesis) refuse(req, res, err.status, err)
      else refuse(req, res, err.status === 400 ? 403 : err.status, { code: ErrorCode.AUTH_FAILED, message: err.message })
      return null
    }
  }

  /** Checkpoint requests are signed like the API's when the relay has access keys. */
  const checkpoints = async (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => {
    if (o.accessKeys.length) {
      try {
        verifySigV4({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body }, o.accessKeys, kinesisPolicy(o.region, o.now()))
      } catch (err) {
        if (!(err instanceof KinesisError)) throw err
        return sendJson(res, err.status === 400 ? 403 : err.status, { code: ErrorCode.AUTH_FAILED, message: err.message })
      }
    }
    const out = await o.checkpoints.handle(req.method ?? 'GET', path, body)
    sendJson(res, out.status, out.json)
  }

  /** Kinesis Video requests are signed with the signing name kinesisvideo when the relay has access keys. */
  const video = async (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => {
    if (o.accessKeys.length) {
      try {
        verifySigV4({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body }, o.accessKeys, videoPolicy(o.region, o.now()))
      } catch (err) {
        const error = toVideoError(err)
        o.metrics.rejections.inc({ code: error.type })
        return sendVideoError(res, error)
      }
    }
    return o.video.serve(req, res, path, body)
  }

  /**
   * PutMedia streams its body through ffmpeg as it arrives: the signature is checked on the headers
   * (a streamed body is signed UNSIGNED-PAYLOAD), then the headers, then the stream is served.
   */
  const putMedia = async (req: AnyRequest, res: AnyResponse) => {
    if (o.accessKeys.length) {
      try {
        verifySigV4({ method: 'POST', path: req.url ?? '/', headers: req.headers, body: Buffer.alloc(0) }, o.accessKeys, { ...videoPolicy(o.region, o.now()), refuseUnsignedPayload: false })
      } catch (err) {
        const error = toVideoError(err)
        o.metrics.rejections.inc({ code: error.type })
        return refuse(req, res, error.status, error)
      }
    }
    const plan = o.putMedia.check(req.headers)
    if (plan instanceof VideoApiError) return refuse(req, res, plan.status, plan)
    return o.putMedia.serve(plan, req, res)
  }

  /**
   * `/` is AWS's endpoint: every answer carries AWS's headers (and CORS for a page's request), and a
   * method other than POST gets AWS's answer (relay/kinesis/frontdoor.ts), its body never read.
   */
  const frontDoor = (req: AnyRequest, res: AnyResponse): boolean => {
    if (req.method === 'OPTIONS' && req.headers.origin !== undefined) {
      answerPreflight(req, res)
      return false
    }
    const headers = awsHeaders(req)
    if (req.method === 'POST') {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
      return true
    }
    stopBody(req, res)
    const close: Record<string, string> = 'stream' in req ? {} : { connection: 'close' }
    answerWrongMethod(res, o.accessKeys.length > 0 && !carriesCredentials(req), { ...close, ...headers })
    return false
  }

  const route = async (req: AnyRequest, res: AnyResponse) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (path === '/' && !frontDoor(req, res)) return
    if (req.method === 'GET' && path === '/healthz') return health(res)
    if (req.method === 'GET' && path === '/metrics') return send(res, 200, METRICS_TYPE, o.metrics.registry.render())
    if (!wellEncoded(path)) return refuse(req, res, 400, { code: ErrorCode.REQUEST_INVALID, message: `path ${JSON.stringify(path.slice(0, 200))} has broken percent-encoding` })
    if (req.method === 'POST' && path === PUT_MEDIA) return putMedia(req, res)
    // HLS playlists and media: their session token is the credential (as AWS's), not SigV4.
    if (path.startsWith(HLS_PREFIX)) return o.video.serveHls(req, res)
    // The console: its own auth (the admin token once, then a session cookie), never SigV4.
    if (ConsoleServer.owns(path)) {
      if (o.console) return o.console.serve(req, res, path)
      return sendJson(res, 404, { code: ErrorCode.NOT_FOUND, message: 'this relay serves no console (it runs with --console false)' })
    }
    const admission = preflight(req, res, path)
    if (!admission) return
    const kinesis = isKinesis(req, path)
    // A body declared too large is refused before it is read, not read to be thrown away.
    if (Number(req.headers['content-length']) > MAX_BODY) return refuse(req, res, 413, tooLarge())
    const { bodyLimit, deferred } = admission
    let body: Buffer | null
    try {
      body = await readBody(req, bodyLimit, o.guard, { stopWhenOver: deferred !== undefined })
    } catch (err) {
      if (err instanceof BodyTimeoutError) return
      if (err instanceof BodyBudgetError) {
        o.metrics.rejections.inc({ code: 'ServiceUnavailable' })
        const message = `the relay is holding too many request bytes (${err.limit} limit); retry`
        const value = kinesis || isVideo(req, path) ? new KinesisError('ServiceUnavailable', message) : { code: 'SERVICE_UNAVAILABLE', message }
        return refuse(req, res, 503, value, { 'retry-after': RETRY_AFTER_S })
      }
      throw err
    }
    if (body === null && deferred) {
      o.metrics.rejections.inc({ code: deferred.type })
      return refuse(req, res, deferred.status, deferred)
    }
    if (body === null) return sendJson(res, 413, tooLarge().toJSON(), AMZ_JSON)
    if (path.startsWith('/admin/')) return o.admin(req, res, path, body)
    if (path.startsWith('/checkpoints/')) return checkpoints(req, res, path, body)
    if (isVideo(req, path)) return video(req, res, path, body)
    if (o.firehose && isFirehoseTarget(req.headers['x-amz-target'])) return o.firehose.serve(req, res, body)
    return o.kinesis.serve(req, res, body)
  }

  return (req, res) => {
    route(req, res).catch((err: Error) => {
      o.log('http_error', { error: err.stack ?? String(err) })
      if (!res.headersSent) sendJson(res, 500, { __type: 'InternalFailure', message: 'Internal service failure.' })
    })
  }
}

/** Whether every %XX of the path decodes (the admin routes decode ids; a broken one is the caller's error, not a 500). */
function wellEncoded(path: string): boolean {
  try {
    decodeURIComponent(path)
    return true
  } catch {
    return false
  }
}

/** A SigV4 failure (a KinesisError named by AWS's common error types) as the Kinesis Video API answers it, with its statuses (a missing token is 403 there). */
function toVideoError(err: unknown): VideoApiError {
  if (!(err instanceof KinesisError)) throw err
  return new VideoApiError(err.type as VideoErrorType, err.message)
}

const PUT_MEDIA = '/putMedia'

const tooLarge = () => new KinesisError('SerializationException', `request body is over ${MAX_BODY} bytes`)

function isVideo(req: AnyRequest, path: string): boolean {
  return req.method === 'POST' && (VIDEO_API_PATHS.has(path) || path === PUT_MEDIA)
}

function isKinesis(req: AnyRequest, path: string): boolean {
  return req.method === 'POST' && (path === '/' || Boolean(req.headers['x-amz-target']))
}
