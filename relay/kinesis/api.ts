/**
 * The Kinesis endpoint: `POST /` with `X-Amz-Target: Kinesis_20131202.<Action>`, JSON 1.1 or CBOR
 * 1.1 answered in kind (errors too). The front door (frontdoor.ts) judges the request as AWS does
 * first; then SigV4 is verified when the relay has access keys, and the action is dispatched
 * through one table (actions/index.ts) to which `register` can add.
 */
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { AccessKey } from '../../shared/config.js'
import { send, type AnyRequest, type AnyResponse } from '../http.js'
import type { LogFn, RelayMetrics } from '../observe.js'
import { ACTIONS } from './actions/index.js'
import { RenderedResult, StreamingResult, type ApiContext, type Handler } from './context.js'
import { internalFailure, toKinesisError } from './errors.js'
import { admit } from './frontdoor.js'
import { checkReservedMembers } from './reserved.js'
import { kinesisPolicy, verifySigV4 } from './sigv4.js'

const ACTION_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/


/**
 * The actions whose output is `smithy.api#Unit` in the service model (@aws-sdk/client-kinesis's
 * operation schemas): AWS answers them 200 with the protocol's Content-Type and an empty body
 * (kinesalite's tests: `res.body.should.equal('')`). test/relay/kinesis-units.test.ts checks the
 * list against the model.
 */
export const NO_OUTPUT: ReadonlySet<string> = new Set([
  'AddTagsToStream', 'CreateStream', 'DecreaseStreamRetentionPeriod', 'DeleteResourcePolicy', 'DeleteStream',
  'DeregisterStreamConsumer', 'IncreaseStreamRetentionPeriod', 'MergeShards', 'PutResourcePolicy', 'RemoveTagsFromStream',
  'SplitShard', 'StartStreamEncryption', 'StopStreamEncryption', 'TagResource', 'UntagResource', 'UpdateStreamMode',
])
const EMPTY = Buffer.alloc(0)
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

  async serve(req: AnyRequest, res: AnyResponse, body: Buffer): Promise<void> {
    const { metrics } = this.o
    const started = performance.now()
    const door = admit(req, body, (action) => this.table.has(action))
    if (door.kind === 'answer') {
      // Only a relay without access keys counts these by action: with keys, the caller is not authenticated yet.
      if (this.o.accessKeys.length === 0) metrics.apiRequests.inc({ action: door.action ?? 'unknown', outcome: door.errorType })
      metrics.rejections.inc({ code: door.errorType }, 1)
      return send(res, door.status, door.contentType, door.body, door.headers)
    }
    const { action, protocol, request } = door
    const handler = this.table.get(action)!
    let authenticated = this.o.accessKeys.length === 0
    try {
      if (!authenticated) {
        verifySigV4({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body }, this.o.accessKeys, kinesisPolicy(this.o.ctx.region, this.o.ctx.now()))
        authenticated = true
      }
      if (Object.hasOwn(ACTIONS, action)) checkReservedMembers(action, request)
      const result = await handler(request, this.o.ctx).catch((err: unknown) => this.againAfterSync(err, request, handler))
      if (action === 'PutRecord' || action === 'PutRecords') metrics.ingestLatency.observe((performance.now() - started) / 1000, { source: 'api' })
      metrics.apiRequests.inc({ action, outcome: 'ok' })
      // SubscribeToShard answers with an event stream that outlives this call.
      if (result instanceof StreamingResult) return result.start(res, protocol)
      // An action whose model has no output is answered with an empty body, as AWS answers it.
      const answer = NO_OUTPUT.has(action) ? EMPTY : result instanceof RenderedResult ? result.render(protocol) : protocol.encode(result)
      send(res, 200, protocol.contentType, answer)
    } catch (err) {
      let error = toKinesisError(err, 'response')
      if (!error) {
        this.o.log('api_error', { action, error: (err as Error).stack ?? String(err) })
        error = internalFailure()
      }
      // A caller that did not authenticate is counted by error code only (a fixed set), never by action.
      if (authenticated) metrics.apiRequests.inc({ action, outcome: error.type })
      metrics.rejections.inc({ code: error.type }, 1)
      send(res, error.status, protocol.contentType, protocol.encodeError(error), { 'x-amzn-ErrorType': error.type })
    }
  }
}
