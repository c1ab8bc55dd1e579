/**
 * The Firehose endpoint: `POST /` with `X-Amz-Target: Firehose_20150804.<Action>`, AWS JSON 1.1
 * (Firehose has no CBOR), SigV4 verified with the signing name `firehose` when the relay has access
 * keys, dispatched through one table (actions/index.ts). The Kinesis layer's JSON protocol,
 * validation and SigV4 are reused, not copied; their errors are answered in Firehose's terms.
 */
import type { AccessKey } from '../../shared/config.js'
import type { DeliveryService } from '../delivery/types.js'
import { send, type AnyRequest, type AnyResponse } from '../http.js'
import { json } from '../kinesis/protocol.js'
import { verifySigV4, type VerifyOptions } from '../kinesis/sigv4.js'
import { ACTIONS } from './actions/index.js'
import type { FirehoseContext, Handler } from './context.js'
import { FirehoseWording, internalFailure, missingTarget, toFirehoseError, unknownOperation } from './errors.js'
import { FIREHOSE_TARGET_PREFIX } from './protocol.js'

export { FIREHOSE_TARGET_PREFIX }

/** Whether a request's X-Amz-Target is Firehose's (routes.ts sends those here, the rest to the Kinesis API). */
export function isFirehoseTarget(target: string | string[] | undefined): boolean {
  return String(Array.isArray(target) ? target[0] : target ?? '').startsWith(FIREHOSE_TARGET_PREFIX)
}

/** What the relay requires of a Firehose request, as of a Kinesis one but signed for `firehose`. */
export function firehosePolicy(region: string, now: number): VerifyOptions {
  return { service: 'firehose', now, region, requiredSignedHeaders: ['x-amz-target', 'x-amz-content-sha256'], refuseUnsignedPayload: true }
}

export interface FirehoseApiOptions {
  service: DeliveryService
  /** The relay's keys (the same array, replaced in place on reload); none: requests are not signed. */
  accessKeys: readonly AccessKey[]
  now: () => number
  log: (event: string, fields: Record<string, unknown>) => void
  /** Counts each request by action (only actions the API serves, else `unknown`) and outcome (`ok` or the error type). */
  onRequest?: (action: string, outcome: string) => void
}

/** An answer before it is written: status and JSON body. */
export interface FirehoseAnswer {
  status: number
  body: unknown
}

export class FirehoseApi {
  private readonly o: FirehoseApiOptions
  private readonly ctx: FirehoseContext
  private readonly table = new Map<string, Handler>(Object.entries(ACTIONS))

  constructor(options: FirehoseApiOptions) {
    this.o = options
    this.ctx = { service: options.service, errors: new FirehoseWording(options.service.accountId, options.service.region), now: options.now }
  }

  /** Serves a request whose body has been read: its signature checked, then `handle`. */
  async serve(req: AnyRequest, res: AnyResponse, body: Buffer): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '')
    let answer: FirehoseAnswer
    if (this.o.accessKeys.length) {
      try {
        verifySigV4({ method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body }, this.o.accessKeys, firehosePolicy(this.o.service.region, this.o.now()))
        answer = await this.handle(target, body)
      } catch (err) {
        const error = toFirehoseError(err) ?? internalFailure()
        // An unauthenticated caller is counted by error type only, never by the action it named.
        this.o.onRequest?.('unknown', error.type)
        answer = { status: error.status, body: error.toJSON() }
      }
    } else {
      answer = await this.handle(target, body)
    }
    send(res, answer.status, json.contentType, json.encode(answer.body))
  }

  /** One request, already authenticated: `target` is the X-Amz-Target header, `body` the JSON body. */
  async handle(target: string, body: Buffer): Promise<FirehoseAnswer> {
    const action = target.startsWith(FIREHOSE_TARGET_PREFIX) ? target.slice(FIREHOSE_TARGET_PREFIX.length) : ''
    const handler = this.table.get(action)
    // Only actions the API serves become labels: a header cannot mint metric series.
    const label = handler ? action : 'unknown'
    try {
      if (!handler) throw action ? unknownOperation(action) : missingTarget()
      const result = await handler(json.decode(body), this.ctx)
      this.o.onRequest?.(label, 'ok')
      return { status: 200, body: result }
    } catch (err) {
      let error = toFirehoseError(err)
      if (!error) {
        this.o.log('firehose_api_error', { action: label, error: (err as Error)?.stack ?? String(err) })
        error = internalFailure()
      }
      this.o.onRequest?.(label, error.type)
      return { status: error.status, body: error.toJSON() }
    }
  }
}
