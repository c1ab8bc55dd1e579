/**
 * Class: the front door. What AWS answers from the method, the Content-Type, the X-Amz-Target and
 * whether the body reads, before any action runs; CORS for browser pages; and the headers on every
 * answer (x-amzn-RequestId, x-amz-id-2, the Content-Type of the protocol, x-amzn-ErrorType on
 * errors).
 *
 * Where the expectations come from: the API reference's example answers for x-amzn-RequestId's
 * spelling (e.g. https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html#API_PutRecord_Examples);
 * AWS's answers as kinesalite records them in
 * https://github.com/mhart/kinesalite/blob/master/test/connection.js (the version with CBOR: "should
 * return CBOR UnknownOperationException if POST with no body", "AccessDeniedException if GET",
 * "set CORS if OPTIONS and Origin and Headers and Method", the CBOR bodies byte for byte, the
 * deprecated application/json envelope, x-amz-id-2 of 64–80 base64 bytes, no x-amz-id-2 and no
 * Content-Type on a preflight) and the order of checks in its index.js. Two answers are not
 * recorded and follow the closest documented behaviour (docs/compatibility.md): the
 * x-amzn-ErrorType header's value (the type alone, as the AWS JSON protocol documents the header,
 * https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html) and a CBOR body to an unknown
 * target (UnknownOperationException in CBOR, as JSON's).
 */
import { REQUEST_ID, ID_2, type Row } from './rows.js'

const CLASS = 'front-door'
const RECORDED = 'AWS answers recorded by kinesalite: https://github.com/mhart/kinesalite/blob/master/test/connection.js'
const ORDER = 'the order of checks in kinesalite index.js, which reproduces AWS: https://github.com/mhart/kinesalite/blob/master/index.js'

const JSON_11 = 'application/x-amz-json-1.1'
const CBOR_11 = 'application/x-amz-cbor-1.1'
const LIST_STREAMS = 'Kinesis_20131202.ListStreams'

const ACCESS_DENIED = '<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n'
/** `bf 66 "__type" 78 19 "UnknownOperationException" ff`: an indefinite-length CBOR map, as AWS writes it. */
const CBOR_UNKNOWN = Buffer.concat([Buffer.from('bf66', 'hex'), Buffer.from('__type'), Buffer.from('7819', 'hex'), Buffer.from('UnknownOperationException'), Buffer.from('ff', 'hex')])
const CBOR_SERIALIZATION = Buffer.concat([Buffer.from('bf66', 'hex'), Buffer.from('__type'), Buffer.from('76', 'hex'), Buffer.from('SerializationException'), Buffer.from('ff', 'hex')])
const JSON_UNKNOWN = '{"__type":"UnknownOperationException"}'
const JSON_SERIALIZATION = '{"__type":"SerializationException"}'
const EXPOSE = 'x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date'

/** The headers every answer but a preflight has. */
const AWS = { 'x-amzn-requestid': REQUEST_ID, 'x-amz-id-2': ID_2 }

const rows: Row[] = []
const row = (name: string, request: Row['request'], expect: Row['expect'], source = RECORDED, only?: Row['only'], unsigned?: Row['unsigned']) =>
  rows.push({ class: CLASS, name, request, expect, source, ...(only ? { only } : {}), ...(unsigned ? { unsigned } : {}) })
/** HTTP/2 forbids a field value that starts or ends with white space (RFC 9113 §8.2.1): such a header cannot be sent over it. */
const SPACES = { version: 'HTTP/1.1', why: 'a header value with surrounding white space is malformed in HTTP/2 (RFC 9113 §8.2.1)' } as const

// Methods other than POST.
for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
  row(`${method} / is 403 AccessDeniedException in XML, with no Content-Type`, { method, raw: method === 'PUT' || method === 'PATCH' ? '{}' : undefined },
    { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } }, method === 'PATCH' ? ORDER : RECORDED)
}
row('GET / with a query string is the same 403', { method: 'GET', path: '/?Action=ListStreams' }, { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } }, ORDER)
row('OPTIONS / without an Origin is the same 403', { method: 'OPTIONS' }, { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } }, ORDER)
row('GET / with an Origin is the 403, with CORS headers', { method: 'GET', headers: { origin: 'http://page.example' } },
  { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSE } })

// CORS preflights.
const PREFLIGHT = { 'x-amzn-requestid': REQUEST_ID, 'x-amz-id-2': null, 'content-type': null, 'content-length': '0', 'access-control-allow-origin': '*', 'access-control-max-age': '172800' }
row('OPTIONS with an Origin is a CORS preflight: 200, empty, no x-amz-id-2, no Content-Type', { method: 'OPTIONS', headers: { origin: 'whatever' } },
  { status: 200, raw: '', headers: { ...PREFLIGHT, 'access-control-allow-headers': null, 'access-control-allow-methods': null } })
row('a preflight echoes the requested headers', { method: 'OPTIONS', headers: { origin: 'whatever', 'access-control-request-headers': 'a, b, c' } },
  { status: 200, raw: '', headers: { ...PREFLIGHT, 'access-control-allow-headers': 'a, b, c' } })
row('a preflight echoes the requested headers and method', { method: 'OPTIONS', headers: { origin: 'whatever', 'access-control-request-headers': 'a, b, c', 'access-control-request-method': 'd' } },
  { status: 200, raw: '', headers: { ...PREFLIGHT, 'access-control-allow-headers': 'a, b, c', 'access-control-allow-methods': 'd' } })
row("a browser's preflight for the AWS SDK gets what it asked for", {
  method: 'OPTIONS',
  headers: { origin: 'http://localhost:8080', 'access-control-request-method': 'POST', 'access-control-request-headers': 'amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent' },
}, { status: 200, raw: '', headers: { ...PREFLIGHT, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent' } })

// POST with no body: CBOR unless the Content-Type is JSON 1.1.
const cborError = (bytes: Buffer, type: string) => ({ status: 400, raw: bytes, headers: { ...AWS, 'content-type': CBOR_11, 'x-amzn-errortype': type } })
const jsonError = (body: string, type: string) => ({ status: 400, raw: body, headers: { ...AWS, 'content-type': JSON_11, 'x-amzn-errortype': type } })
row('POST with no body and no headers is UnknownOperationException in CBOR', { method: 'POST' }, cborError(CBOR_UNKNOWN, 'UnknownOperationException'))
row('POST with no body and Content-Type x-amz-json-1.0 is UnknownOperationException in CBOR', { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.0' } }, cborError(CBOR_UNKNOWN, 'UnknownOperationException'))
row('POST with no body and a made-up Content-Type is UnknownOperationException in CBOR', { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1asdf' } }, cborError(CBOR_UNKNOWN, 'UnknownOperationException'))
for (const target of ['Whatever', 'Kinesis_20131202.', 'Kinesis_20131202.Whatever', 'Whatever.Whatever', 'Kinesis_20131202.ListStream', 'Firehose_2015.ListStreams']) {
  row(`POST with no body and X-Amz-Target ${target} is UnknownOperationException in CBOR`, { method: 'POST', headers: { 'x-amz-target': target } }, cborError(CBOR_UNKNOWN, 'UnknownOperationException'), target.startsWith('Firehose') ? ORDER : RECORDED)
}
row('POST with no body, a served target and no Content-Type is SerializationException in CBOR', { method: 'POST', headers: { 'x-amz-target': LIST_STREAMS } }, cborError(CBOR_SERIALIZATION, 'SerializationException'))
row('POST with no body, a served target and Content-Type CBOR is SerializationException in CBOR', { method: 'POST', headers: { 'x-amz-target': LIST_STREAMS, 'content-type': CBOR_11 } }, cborError(CBOR_SERIALIZATION, 'SerializationException'), ORDER)
row('POST with no body and an Origin is UnknownOperationException in CBOR with CORS headers', { method: 'POST', headers: { origin: 'whatever' } },
  { ...cborError(CBOR_UNKNOWN, 'UnknownOperationException'), headers: { ...cborError(CBOR_UNKNOWN, 'UnknownOperationException').headers, 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSE } })
row('POST with no body and JSON 1.1 but no target is UnknownOperationException in JSON, without a message', { method: 'POST', headers: { 'content-type': JSON_11 } }, jsonError(JSON_UNKNOWN, 'UnknownOperationException'))
row('POST with no body and JSON 1.1 to a served target is SerializationException in JSON, without a message', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS } }, jsonError(JSON_SERIALIZATION, 'SerializationException'))
row('POST with no body and application/json but no target is UnknownOperationException in CBOR', { method: 'POST', headers: { 'content-type': 'application/json' } }, cborError(CBOR_UNKNOWN, 'UnknownOperationException'))
row('POST with no body and application/json to a served target is SerializationException in CBOR', { method: 'POST', headers: { 'content-type': 'application/json', 'x-amz-target': LIST_STREAMS } }, cborError(CBOR_SERIALIZATION, 'SerializationException'))

// POST with a body.
for (const body of ['hello', 'true', 'null', '12', '"s"', '{"a":', '\u0000\u0001']) {
  row(`JSON 1.1 body ${JSON.stringify(body)} to a served target is SerializationException without a message`, { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS }, raw: body },
    jsonError(JSON_SERIALIZATION, 'SerializationException'), body === 'hello' ? RECORDED : ORDER)
}
row('a JSON 1.1 body that does not parse is a SerializationException even for an unknown target', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': 'Kinesis_20131202.Whatever' }, raw: 'hello' },
  jsonError(JSON_SERIALIZATION, 'SerializationException'), ORDER)
for (const target of [undefined, 'Kinesis_20131202.Whatever', 'Kinesis_20131202.ListStream', 'Whatever.ListStreams', 'Kinesis_20131202.']) {
  row(`JSON 1.1 body {} to ${target ?? 'no target'} is UnknownOperationException without a message`, { method: 'POST', headers: { 'content-type': JSON_11, ...(target ? { 'x-amz-target': target } : {}) }, raw: '{}' },
    jsonError(JSON_UNKNOWN, 'UnknownOperationException'), ORDER)
}
row('CBOR body {} to an unknown target is UnknownOperationException in CBOR', { method: 'POST', headers: { 'content-type': CBOR_11, 'x-amz-target': 'Kinesis_20131202.Whatever' }, raw: Buffer.from('a0', 'hex') },
  cborError(CBOR_UNKNOWN, 'UnknownOperationException'), ORDER)
row('a body with no Content-Type and no target is 403 AccessDeniedException in XML', { method: 'POST', raw: '{}' }, { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } })
row('a body in x-amz-json-1.0 with no target is 403 AccessDeniedException in XML', { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.0' }, raw: '{}' }, { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } }, ORDER)
for (const type of [undefined, 'text/plain', 'application/x-amz-json-1.0']) {
  row(`a body in ${type ?? 'no Content-Type'} to a service.operation target is 404 <UnknownOperationException/>`, { method: 'POST', headers: { ...(type ? { 'content-type': type } : {}), 'x-amz-target': LIST_STREAMS }, raw: '{}' },
    { status: 404, raw: '<UnknownOperationException/>\n', headers: { ...AWS, 'content-type': null } }, ORDER)
}

// The old JSON media type: HTTP 200 with Coral's envelope.
row('application/json with a JSON body is 200 with an UnknownOperationException envelope', { method: 'POST', headers: { 'content-type': 'application/json', 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 200, raw: '{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException","message":null},"Version":"1.0"}', headers: { ...AWS, 'content-type': 'application/json' } })
for (const type of ['application/json', '     application/json     ;']) {
  row(`${JSON.stringify(type)} with a body that is not JSON is 200 with a SerializationException envelope (Message)`, { method: 'POST', headers: { 'content-type': type, 'x-amz-target': LIST_STREAMS }, raw: 'hello' },
    { status: 200, raw: '{"Output":{"__type":"com.amazon.coral.service#SerializationException","Message":null},"Version":"1.0"}', headers: { ...AWS, 'content-type': 'application/json' } },
    RECORDED, type.startsWith(' ') ? SPACES : undefined)
}

// Answers that get through: AWS's headers, the protocol's Content-Type.
row('a Content-Type with spaces and parameters is JSON 1.1', { method: 'POST', headers: { 'content-type': '   application/x-amz-json-1.1   ;whatever', 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 200, headers: { ...AWS, 'content-type': JSON_11, 'x-amzn-errortype': null } }, RECORDED, SPACES)
row('ListStreams in JSON 1.1 is answered in JSON 1.1 with a request id and x-amz-id-2', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 200, headers: { ...AWS, 'content-type': JSON_11, 'x-amzn-errortype': null, 'access-control-allow-origin': null } })
row('ListStreams in CBOR is answered in CBOR with a request id and x-amz-id-2', { method: 'POST', headers: { 'content-type': CBOR_11, 'x-amz-target': LIST_STREAMS }, raw: Buffer.from('a0', 'hex') },
  { status: 200, headers: { ...AWS, 'content-type': CBOR_11, 'x-amzn-errortype': null } })
row("a page's POST (with Origin) is answered with CORS headers", { method: 'POST', headers: { origin: 'http://page.example', 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 200, headers: { ...AWS, 'content-type': JSON_11, 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSE } })
row('an error names its type in x-amzn-ErrorType', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': 'Kinesis_20131202.DescribeStream' }, raw: '{"StreamName":"no-such-stream"}' },
  { status: 400, raw: '{"__type":"ResourceNotFoundException","message":"Stream no-such-stream under account 000000000000 not found."}', headers: { ...AWS, 'content-type': JSON_11, 'x-amzn-errortype': 'ResourceNotFoundException' } },
  'AWS JSON 1.1 protocol, error responses: https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html; message: kinesalite test/describeStream.js')

// Without credentials: what AWS answers before it looks at them (recorded unsigned: "… with no auth").
const MISSING_TOKEN = '<MissingAuthenticationTokenException>\n  <Message>Missing Authentication Token</Message>\n</MissingAuthenticationTokenException>\n'
const OLDER = 'AWS answers recorded by kinesalite before CBOR (its earlier test/connection.js: "MissingAuthenticationTokenException if GET with no auth", "… if OPTIONS with no auth")'
row('POST with no body and no credentials is UnknownOperationException in CBOR, before credentials are looked at', { method: 'POST' },
  cborError(CBOR_UNKNOWN, 'UnknownOperationException'), RECORDED, undefined, {})
row('JSON 1.1 with no target, no body and no credentials is UnknownOperationException', { method: 'POST', headers: { 'content-type': JSON_11 } },
  jsonError(JSON_UNKNOWN, 'UnknownOperationException'), RECORDED, undefined, {})
row('JSON 1.1 to a served target with no body and no credentials is SerializationException', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS } },
  jsonError(JSON_SERIALIZATION, 'SerializationException'), RECORDED, undefined, {})
row('a preflight carries no credentials and is answered all the same', { method: 'OPTIONS', headers: { origin: 'whatever', 'access-control-request-method': 'POST' } },
  { status: 200, raw: '', headers: { ...PREFLIGHT, 'access-control-allow-methods': 'POST' } }, RECORDED, undefined, {})
for (const method of ['GET', 'PUT', 'OPTIONS']) {
  row(`${method} / with no credentials is AccessDenied XML, or MissingAuthenticationToken XML where keys are required`, { method },
    { status: 403, raw: ACCESS_DENIED, headers: { ...AWS, 'content-type': null } }, OLDER, undefined,
    { keyed: { status: 403, raw: MISSING_TOKEN, headers: { ...AWS, 'content-type': null } } })
}

// The relay's other routes stay as they were.
row('the Firehose API is still served at / by its own target, with AWS\'s headers', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': 'Firehose_20150804.ListDeliveryStreams' }, raw: '{}' },
  { status: 200, headers: { ...AWS, 'content-type': JSON_11 } }, "the relay's Firehose API (test/relay/firehose-api.test.ts), behind the same door as Kinesis's")
row('GET /healthz is still the health check', { method: 'GET', path: '/healthz' }, { status: 200, headers: { 'content-type': 'application/json', 'x-amz-id-2': null } }, "the relay's own route (test/relay/healthcheck.test.ts)")
row('GET /no-such-route is still the relay\'s 404', { method: 'GET', path: '/no-such-route' }, { status: 404, headers: { 'x-amz-id-2': null } }, "the relay's own routes (docs/compatibility.md: AWS's door is at / only)")

export { rows }
