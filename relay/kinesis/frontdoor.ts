/**
 * The Kinesis endpoint's front door: what AWS answers from the method, the headers and whether the
 * body reads, before any action runs, and the headers AWS puts on every answer (a request id, an
 * `x-amz-id-2`, CORS when the request has an Origin). The answers are AWS's as kinesalite's
 * test/connection.js records them:
 *
 * | request                                             | answer                                          |
 * |-----------------------------------------------------|-------------------------------------------------|
 * | OPTIONS with Origin                                 | 200, CORS preflight, no body, no x-amz-id-2      |
 * | any other method than POST                          | 403, AccessDeniedException as XML                |
 * | POST, no body                                       | SerializationException for a served target, else |
 * |                                                     | UnknownOperationException: JSON 1.1 when the     |
 * |                                                     | Content-Type is JSON 1.1, CBOR otherwise         |
 * | POST, a body in a media type the API does not speak | 403 AccessDenied XML when the target names no    |
 * |                                                     | service.operation, else 404 <UnknownOperation…/> |
 * | POST, `application/json` (the old media type)       | 200 with Coral's `Output` envelope               |
 * | POST, a body that does not read                     | SerializationException, no message               |
 * | POST, a target the relay does not serve             | UnknownOperationException, no message            |
 *
 * Everything else goes on to authentication and the action, with the request decoded.
 */
import { randomBytes } from 'node:crypto'
import { send, type AnyRequest, type AnyResponse } from '../http.js'
import { KinesisError, unknownOperation, unreadableBody } from './errors.js'
import { AMZ_CBOR, AMZ_JSON, cbor, json, mediaTypeOf, type Protocol } from './protocol.js'
import { fastPut, parsePutRecords } from './putrecords-parse.js'

export const TARGET_SERVICE = 'Kinesis_20131202'
/** The API's media type before JSON 1.1; AWS still answers it, in a Coral envelope and with HTTP 200. */
const OLD_JSON = 'application/json'

/** What the browser may read of an answer (AWS's list, as its endpoints send it). */
export const CORS_EXPOSE_HEADERS = 'x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date'
/** Seconds a browser may keep a preflight's answer (AWS's: two days). */
const CORS_MAX_AGE = '172800'
/** Random bytes in an x-amz-id-2 (AWS's decode to 64–80 bytes). */
const ID2_BYTES = 72

const xmlError = (type: string, message: string) => `<${type}>\n  <Message>${message}</Message>\n</${type}>\n`
const ACCESS_DENIED_XML = xmlError('AccessDeniedException', 'Unable to determine service/operation name to be authorized')
const MISSING_TOKEN_XML = xmlError('MissingAuthenticationTokenException', 'Missing Authentication Token')
const UNKNOWN_OPERATION_XML = '<UnknownOperationException/>\n'

const header = (req: AnyRequest, name: string): string | undefined => {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** The headers every answer of the front door's routes carries: x-amz-id-2, and CORS for a request with an Origin. */
export function awsHeaders(req: AnyRequest): Record<string, string> {
  const out: Record<string, string> = { 'x-amz-id-2': randomBytes(ID2_BYTES).toString('base64') }
  if (header(req, 'origin') !== undefined) {
    out['Access-Control-Allow-Origin'] = '*'
    out['Access-Control-Expose-Headers'] = CORS_EXPOSE_HEADERS
  }
  return out
}

/** A CORS preflight (OPTIONS with Origin): what the browser asked for is allowed, for two days. */
export function answerPreflight(req: AnyRequest, res: AnyResponse): void {
  const headers: Record<string, string> = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Max-Age': CORS_MAX_AGE }
  const method = header(req, 'access-control-request-method')
  const asked = header(req, 'access-control-request-headers')
  if (asked !== undefined) headers['Access-Control-Allow-Headers'] = asked
  if (method !== undefined) headers['Access-Control-Allow-Methods'] = method
  send(res, 200, null, Buffer.alloc(0), headers)
}

/**
 * A method the API does not take (anything but POST; OPTIONS without Origin): AWS cannot tell the
 * operation and says so in XML, or, to a caller that sent no credentials where they are required,
 * that the token is missing.
 */
export function answerWrongMethod(res: AnyResponse, unsigned: boolean, headers: Record<string, string>): void {
  send(res, 403, null, unsigned ? MISSING_TOKEN_XML : ACCESS_DENIED_XML, headers)
}

/** Whether a request carries SigV4 credentials at all (an Authorization header or a presigned query). */
export function carriesCredentials(req: AnyRequest): boolean {
  return header(req, 'authorization') !== undefined || /[?&]X-Amz-Algorithm(=|&|$)/.test(req.url ?? '')
}

/** A request past the front door: the action it names, its protocol and its decoded body. */
export interface Admitted {
  kind: 'action'
  action: string
  protocol: Protocol
  request: Record<string, unknown>
}

/** An answer the front door gives itself. */
export interface Refused {
  kind: 'answer'
  status: number
  contentType: string | null
  body: Buffer
  /** The error's type, for metrics and x-amzn-ErrorType (JSON and CBOR answers only). */
  errorType: string
  headers: Record<string, string>
  /** The served action the request named, if any (a metric label: a header cannot mint one). */
  action: string | null
}

function refusal(protocol: Protocol, error: KinesisError, action: string | null): Refused {
  return { kind: 'answer', status: error.status, contentType: protocol.contentType, body: protocol.encodeError(error), errorType: error.type, headers: { 'x-amzn-ErrorType': error.type }, action }
}

/** AWS's old JSON envelope: `{"Output":{"__type":"com.amazon.coral.service#…","message":null},"Version":"1.0"}`, HTTP 200. */
function oldJsonRefusal(type: 'SerializationException' | 'UnknownOperationException', action: string | null): Refused {
  // Coral spells the member Message in a SerializationException here too.
  const output = { __type: `com.amazon.coral.service#${type}`, [type === 'SerializationException' ? 'Message' : 'message']: null }
  return { kind: 'answer', status: 200, contentType: OLD_JSON, body: Buffer.from(JSON.stringify({ Output: output, Version: '1.0' })), errorType: type, headers: {}, action }
}

/**
 * A POST to the endpoint, judged as AWS judges it before authentication: `served` says whether the
 * relay has an action of that name.
 */
export function admit(req: AnyRequest, body: Buffer, served: (action: string) => boolean): Admitted | Refused {
  const type = mediaTypeOf(req.headers['content-type'])
  const [service, operation] = String(header(req, 'x-amz-target') ?? '').split('.')
  const known = service === TARGET_SERVICE && operation !== undefined && served(operation)
  const action = known ? operation : null
  if (body.length === 0) {
    const error = known ? unreadableBody() : unknownOperation()
    return refusal(type === AMZ_JSON ? json : cbor, error, action)
  }
  if (type !== AMZ_JSON && type !== AMZ_CBOR && type !== OLD_JSON) {
    const xml = service && operation
      ? { status: 404, body: UNKNOWN_OPERATION_XML, errorType: 'UnknownOperationException' }
      : { status: 403, body: ACCESS_DENIED_XML, errorType: 'AccessDeniedException' }
    return { kind: 'answer', status: xml.status, contentType: null, body: Buffer.from(xml.body), errorType: xml.errorType, headers: {}, action }
  }
  if (type === OLD_JSON) return oldJsonRefusal(readsAsJsonObject(body) ? 'UnknownOperationException' : 'SerializationException', action)
  const protocol = type === AMZ_CBOR ? cbor : json
  // PutRecords' common shape is read and validated in one pass (putrecords-parse.ts); anything else,
  // or a body it declines, is decoded and validated as every other request is.
  if (protocol === json && known && operation === 'PutRecords' && fastPut.enabled) {
    const valid = parsePutRecords(body)
    if (valid) return { kind: 'action', action: operation, protocol, request: valid as unknown as Record<string, unknown> }
  }
  let request: Record<string, unknown>
  try {
    request = protocol.decode(body)
  } catch (err) {
    if (err instanceof KinesisError) return refusal(protocol, err, action)
    throw err
  }
  if (!known) return refusal(protocol, unknownOperation(), null)
  return { kind: 'action', action: operation, protocol, request }
}

function readsAsJsonObject(body: Buffer): boolean {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'))
    return v !== null && typeof v === 'object'
  } catch {
    return false
  }
}
