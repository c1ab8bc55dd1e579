/**
 * The Kinesis endpoint: `POST /` with `X-Amz-Target: Kinesis_20131202.<Action>`, JSON 1.1 or CBOR
 * 1.1 answered in kind (errors too), SigV4 verified when the relay has access keys, dispatched
 * through one table (actions/index.ts) to which `register` can add.
 */
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { AccessKey } from '../../shared/config.js'
import { send, type AnyRequest, type AnyResponse } from '../http.js'
import type { LogFn, RelayMetrics } from '../observe.js'
import { ACTIONS } from './actions/index.js'
import { StreamingResult, type ApiContext, type Handler } from './context.js'
import { internalFailure, missingTarget, toKinesisError, unsupportedOperation } from './errors.js'
import { protocolOf } from './protocol.js'
import { kinesisPolicy, verifySigV4 } from './sigv4.js'

const TARGET_PREFIX = 'Kinesis_20131202.'
const ACTION_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/

export interface KinesisApiOptions {
  ctx: ApiContext
  accessKeys: readonly AccessKey[]
  metrics: RelayMetrics
  log: LogFn
}

export class KinesisApi {
  private readonly o: KinesisApiOptions
  private readonly table = new Map<string, Handler>(Object.entries(ACTIONS))

  constructor(options: KinesisApiOptions) {
    this.o = options
  }

  /**
   * In a cluster, a stream created on another relay a moment ago may not be loaded here yet: a
   * request naming a stream this relay does not know reads it from the cluster and runs once more,
   * so a client that created a stream through one relay can use it through any other at once.
   */
  private async againAfterSync(err: unknown, request: unknown, handler: Handler): Promise<unknown> {
    const streams = this.o.ctx.streams
    if (!streams.shared || toKinesisError(err, 'response')?.type !== 'ResourceNotFoundException') throw err
    const req = request as { StreamName?: unknown; StreamARN?: unknown }
    const name = typeof req?.StreamName === 'string' ? req.StreamName : typeof req?.StreamARN === 'string' ? streams.nameFromArn(req.StreamARN) : null
    if (!name || streams.get(name)) throw err
    await streams.sync(name)
    if (!streams.get(name)) throw err
    return handler(request, this.o.ctx)
  }

  /** Adds an action (an extension of the relay's, or a test's). An action that exists is not replaced. */
  register(action: string, handler: Handler): void {
    if (!ACTION_NAME.test(action)) throw new TributaryError(ErrorCode.REQUEST_INVALID, `action name ${JSON.stringify(action)} must be a capitalised word of letters and digits`)
    if (this.table.has(action)) throw new TributaryError(ErrorCode.CONFLICT, `action ${action} is already registered`)
    this.table.set(action, handler)
  }

  private handlerOf(action: string): Handler {
    const handler = this.table.get(action)
    if (!handler) throw action ? unsupportedOperation(action) : missingTarget()
    return handler
  }

  async serve(req: AnyRequest, res: AnyResponse, body: Buffer): Promise<void> {
    const { metrics } = this.o
    const target = String(req.headers['x-amz-target'] ?? '')
    const action = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : ''
    // Only actions the relay serves become metric labels: a header cannot mint series.
    const label = this.table.has(action) ? action : 'unknown'
    const started = performance.now()
    const protocol = protocolOf(req.headers['content-type'])
    let authenticated = this.o.accessKeys.length === 0
    try {
      if (!authenticated) {
        verifySigV4({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body }, this.o.accessKeys, kinesisPolicy(this.o.ctx.region, this.o.ctx.now()))
        authenticated = true
      }
      const handler = this.handlerOf(action)
      const request = protocol.decode(body)
      const result = await handler(request, this.o.ctx).catch((err: unknown) => this.againAfterSync(err, request, handler))
      if (action === 'PutRecord' || action === 'PutRecords') metrics.ingestLatency.observe((performance.now() - started) / 1000, { source: 'api' })
      metrics.apiRequests.inc({ action: label, outcome: 'ok' })
      // SubscribeToShard answers with an event stream that outlives this call.
      if (result instanceof StreamingResult) return result.start(res, protocol)
      send(res, 200, protocol.contentType, protocol.encode(result))
    } catch (err) {
      let error = toKinesisError(err, 'response')
      if (!error) {
        this.o.log('api_error', { action: label, error: (err as Error).stack ?? String(err) })
        error = internalFailure()
      }
      // A caller that did not authenticate is counted by error code only (a fixed set), never by action.
      if (authenticated) metrics.apiRequests.inc({ action: label, outcome: error.type })
      metrics.rejections.inc({ code: error.type }, 1)
      send(res, error.status, protocol.contentType, protocol.encode(error.toJSON()))
    }
  }
}
