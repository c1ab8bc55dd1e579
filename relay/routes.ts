/**
 * The HTTP port's routes: `/healthz`, `/metrics`, the admin API (`/admin/…`), server-side
 * checkpoints (`/checkpoints/…`) and the Kinesis API (`POST /` with X-Amz-Target). Request bodies
 * are read here, within one budget for the whole relay.
 */
import type { AccessKey } from '../shared/config.js'
import { ErrorCode } from '../shared/errors.js'
import { CONTENT_TYPE as METRICS_TYPE } from '../shared/metrics.js'
import { codec } from '../hardware/index.js'
import type { Checkpoints } from './checkpoints.js'
import { BodyBudgetError, readBody, send, sendJson, type AnyRequest, type AnyResponse, type RequestHandler } from './http.js'
import type { KinesisApi } from './kinesis/api.js'
import { KinesisError } from './kinesis/errors.js'
import { AMZ_JSON } from './kinesis/protocol.js'
import { verifySigV4 } from './kinesis/sigv4.js'
import type { LogStore } from './log/types.js'
import type { LogFn, RelayMetrics } from './observe.js'

const MAX_BODY = 12 * 1024 * 1024

export interface RoutesOptions {
  kinesis: KinesisApi
  admin: (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => Promise<void>
  checkpoints: Checkpoints
  logs: LogStore
  metrics: RelayMetrics
  accessKeys: readonly AccessKey[]
  log: LogFn
  /** The relay's clock (ms), against which signatures' times are checked. */
  now: () => number
}

export function routes(o: RoutesOptions): RequestHandler {
  const health = (res: AnyResponse) => {
    const failed = o.logs.failed
    sendJson(res, failed ? 503 : 200, { status: failed ? 'failing' : 'ok', storage: failed ? failed.message : 'ok', corruptions: o.logs.corruptions().length, native: codec.implementation })
  }

  /** Checkpoint requests are signed like the API's when the relay has access keys. */
  const checkpoints = async (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => {
    if (o.accessKeys.length) {
      try {
        verifySigV4({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body }, o.accessKeys, { service: 'kinesis', now: o.now() })
      } catch (err) {
        if (!(err instanceof KinesisError)) throw err
        return sendJson(res, err.status === 400 ? 403 : err.status, { code: ErrorCode.AUTH_FAILED, message: err.message })
      }
    }
    const out = await o.checkpoints.handle(req.method ?? 'GET', path, body)
    sendJson(res, out.status, out.json)
  }

  const route = async (req: AnyRequest, res: AnyResponse) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (req.method === 'GET' && path === '/healthz') return health(res)
    if (req.method === 'GET' && path === '/metrics') return send(res, 200, METRICS_TYPE, o.metrics.registry.render())
    let body: Buffer | null
    try {
      body = await readBody(req, MAX_BODY)
    } catch (err) {
      if (err instanceof BodyBudgetError) return sendJson(res, 503, { __type: 'ServiceUnavailable', message: 'the relay is holding too many request bytes; retry' }, AMZ_JSON)
      throw err
    }
    if (body === null) return sendJson(res, 413, { __type: 'SerializationException', message: `request body is over ${MAX_BODY} bytes` }, AMZ_JSON)
    if (path.startsWith('/admin/')) return o.admin(req, res, path, body)
    if (path.startsWith('/checkpoints/')) return checkpoints(req, res, path, body)
    if (req.method === 'POST' && (path === '/' || req.headers['x-amz-target'])) return o.kinesis.serve(req, res, body)
    sendJson(res, 404, { code: ErrorCode.NOT_FOUND, message: `no route ${req.method} ${path}` })
  }

  return (req, res) => {
    route(req, res).catch((err: Error) => {
      o.log('http_error', { error: err.stack ?? String(err) })
      if (!res.headersSent) sendJson(res, 500, { __type: 'InternalFailure', message: 'Internal service failure.' })
    })
  }
}
