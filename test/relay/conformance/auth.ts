/**
 * Class: authentication errors where access keys are configured. What a request without
 * credentials, with malformed ones, with both a header and a query signature, with a wrong secret,
 * an unknown key, another region or a clock off gets; and that AWS judges a request at its front
 * door (method, body, media type, target) before it looks at credentials at all.
 *
 * Every row goes to both relays; the one without access keys serves them all (it takes any
 * signature, or none), the one with keys answers `keyed`.
 *
 * Where the expectations come from:
 * - AWS's answers as kinesalite records them, in
 *   https://github.com/mhart/kinesalite/blob/master/test/connection.js (JSON: "should return
 *   MissingAuthenticationTokenException if no auth", "IncompleteSignatureException if invalid
 *   auth", "… if header is "AWS4- Signature=b Credential=a"", "… if empty X-Amz-Algorithm query",
 *   "InvalidSignatureException if both auth header and query", "UnknownOperationException if no
 *   target and no auth", "SerializationException if non-JSON body", and the deprecated
 *   application/json envelope to requests with no auth), and the order of its index.js: the front
 *   door, then credentials, each answered in the request's protocol with HTTP 400;
 * - the wording of a wrong secret, an unknown key, an expired or not yet current signature and a
 *   credential scoped to another region: AWS's answers as users of the SDKs report them from Kinesis
 *   (https://github.com/aws/aws-sdk-go/issues/2194, https://github.com/s12v/awsbeats/issues/48,
 *   https://github.com/aws/aws-sdk-js/issues/254,
 *   https://github.com/samcday/logstash-output-kinesis/issues/8) and from other AWS JSON services
 *   (https://github.com/cognitect-labs/aws-api/issues/27: the region message ends in ". ").
 *
 * Not recorded anywhere we could read, and following the closest documented behaviour
 * (docs/compatibility.md): the CBOR form of these errors (as the JSON's, in CBOR, as for every other
 * error); the window of a presigned request past its X-Amz-Expires (AWS's wording for the time
 * window, with the expiry's minutes).
 */
import { type Expectation, type Row, type Signing } from './rows.js'

const CLASS = 'auth'
const RECORDED = 'AWS answers recorded by kinesalite: https://github.com/mhart/kinesalite/blob/master/test/connection.js'
const REPORTED = "AWS's Kinesis answers as users report them: https://github.com/aws/aws-sdk-go/issues/2194, https://github.com/aws/aws-sdk-js/issues/254, https://github.com/samcday/logstash-output-kinesis/issues/8"
const JSON_11 = 'application/x-amz-json-1.1'
const CBOR_11 = 'application/x-amz-cbor-1.1'
const LIST_STREAMS = 'Kinesis_20131202.ListStreams'

const rows: Row[] = []

/** What the relay without access keys answers a ListStreams, whatever its credentials. */
const SERVED: Expectation = { status: 200 }
const error = (type: string, message: string): Expectation => ({ status: 400, body: { __type: type, message } })

const MISSING = error('MissingAuthenticationTokenException', 'Missing Authentication Token')
const incomplete = (message: string) => error('IncompleteSignatureException', message)
const ALL_HEADER_PARTS = "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
  "Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
const queryParts = (...names: string[]) => `${names.map((n) => `AWS query-string parameters must include '${n}'. `).join('')}Re-examine the query-string parameters.`

/** An unsigned ListStreams (JSON 1.1 and CBOR) with these headers and path: served without keys, `keyed` with them. */
const unsignedCall = (name: string, keyed: Expectation, extra: { headers?: Record<string, string>; path?: string } = {}, source = RECORDED) =>
  rows.push({ class: CLASS, name, request: { action: 'ListStreams', body: {}, ...extra }, expect: SERVED, source, unsigned: { keyed } })

unsignedCall('a request with no credentials at all is MissingAuthenticationTokenException, HTTP 400', MISSING)
unsignedCall('an Authorization header with none of its parts names each one missing, then the header', incomplete(`${ALL_HEADER_PARTS}Authorization=X`), { headers: { authorization: 'X' } })
unsignedCall('a query parameter that is not X-Amz-Algorithm is no query auth: the header is judged alone', incomplete(`${ALL_HEADER_PARTS}Authorization=X`), { headers: { authorization: 'X' }, path: '/?X-Amz-Algorith' })
for (const header of ['AWS4- Signature=b Credential=a', 'AWS4- Signature=b,Credential=a', 'AWS4- Signature=b, Credential=a']) {
  unsignedCall(`Authorization ${JSON.stringify(header)} with a Date lacks only SignedHeaders`, incomplete(`Authorization header requires 'SignedHeaders' parameter. Authorization=${header}`),
    { headers: { authorization: header, date: 'a' } })
}
unsignedCall('an Authorization header and X-Amz-Algorithm in the query both is InvalidSignatureException',
  error('InvalidSignatureException', "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."), { headers: { authorization: 'X' }, path: '/?X-Amz-Algorithm' })
unsignedCall('an empty X-Amz-Algorithm query names all five query parameters', incomplete(queryParts('X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-SignedHeaders', 'X-Amz-Date')), { path: '/?X-Amz-Algorithm' })
unsignedCall('a query missing X-Amz-SignedHeaders names it', incomplete(queryParts('X-Amz-SignedHeaders')), { path: '/?X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d' })
unsignedCall('every query parameter but X-Amz-Algorithm is no authentication at all', MISSING, { path: '/?X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d' })
unsignedCall('a Bearer token is not SigV4: its token is not a key=value pair', incomplete("'not-sigv4' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer not-sigv4'."),
  { headers: { authorization: 'Bearer not-sigv4' } },
  "AWS's answer as reported: https://github.com/AstronomyAPI/Samples/issues/20, and as IncompleteSignatureException: https://github.com/amazon-archives/aws-cognito-angular-quickstart/issues/50")

// The front door comes first: without credentials, or with broken ones, these get the door's answer.
const door = (name: string, request: Row['request'], expect: Expectation, source = RECORDED) => rows.push({ class: CLASS, name, request, expect, source, unsigned: {} })
const AWS_HEADERS = { 'x-amzn-requestid': /^[0-9a-f-]{36}$/, 'x-amz-id-2': /^[A-Za-z0-9+/=]+$/ }
door('JSON 1.1 with no target and no credentials is UnknownOperationException: the door before credentials', { method: 'POST', headers: { 'content-type': JSON_11 }, raw: '{}' },
  { status: 400, raw: '{"__type":"UnknownOperationException"}', headers: { ...AWS_HEADERS, 'content-type': JSON_11 } })
door('JSON 1.1 to a target not served, with a broken Authorization, is UnknownOperationException', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': 'Kinesis_20131202.Whatever', authorization: 'X' }, raw: '{}' },
  { status: 400, raw: '{"__type":"UnknownOperationException"}', headers: { ...AWS_HEADERS, 'content-type': JSON_11 } }, `the order of checks in kinesalite index.js; ${RECORDED}`)
door('a body that is not JSON, with no credentials, is SerializationException', { method: 'POST', headers: { 'content-type': JSON_11, 'x-amz-target': LIST_STREAMS }, raw: 'hello' },
  { status: 400, raw: '{"__type":"SerializationException"}', headers: { ...AWS_HEADERS, 'content-type': JSON_11 } })
door('CBOR to a target not served, with no credentials, is UnknownOperationException in CBOR', { method: 'POST', headers: { 'content-type': CBOR_11, 'x-amz-target': 'Kinesis_20131202.Whatever' }, raw: Buffer.from('a0', 'hex') },
  { status: 400, raw: Buffer.concat([Buffer.from('bf66', 'hex'), Buffer.from('__type'), Buffer.from('7819', 'hex'), Buffer.from('UnknownOperationException'), Buffer.from('ff', 'hex')]), headers: { ...AWS_HEADERS, 'content-type': CBOR_11 } },
  `the order of checks in kinesalite index.js; CBOR bytes: ${RECORDED}`)
door('application/json with no credentials is 200 with the UnknownOperationException envelope', { method: 'POST', headers: { 'content-type': 'application/json', 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 200, raw: '{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException","message":null},"Version":"1.0"}', headers: { ...AWS_HEADERS, 'content-type': 'application/json' } })
door('application/json with a body that is not JSON and no credentials is 200 with the SerializationException envelope', { method: 'POST', headers: { 'content-type': 'application/json', 'x-amz-target': LIST_STREAMS }, raw: 'hello' },
  { status: 200, raw: '{"Output":{"__type":"com.amazon.coral.service#SerializationException","Message":null},"Version":"1.0"}', headers: { ...AWS_HEADERS, 'content-type': 'application/json' } })
door('a body in text/plain to a served target, with no credentials, is 404 <UnknownOperationException/>', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-amz-target': LIST_STREAMS }, raw: '{}' },
  { status: 404, raw: '<UnknownOperationException/>\n', headers: { ...AWS_HEADERS, 'content-type': null } }, `the order of checks in kinesalite index.js; ${RECORDED}`)
door('a body with no Content-Type and no target, with no credentials, is 403 AccessDenied XML', { method: 'POST', raw: '{}' },
  { status: 403, raw: '<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n', headers: { ...AWS_HEADERS, 'content-type': null } },
  `the order of checks in kinesalite index.js; ${RECORDED}`)

// Signed, but not as the relay's keys allow (the relay without keys serves them).
const signedCall = (name: string, signing: Signing, keyed: Expectation, source = REPORTED) =>
  rows.push({ class: CLASS, name, request: { action: 'ListStreams', body: {} }, expect: SERVED, source, signing, keyed })
const ISO = '\\d{8}T\\d{6}Z'
signedCall('a wrong secret for a known key is InvalidSignatureException',
  { secretAccessKey: 'not-the-secret' },
  error('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'))
signedCall('an access key the relay does not know is UnrecognizedClientException', { accessKeyId: 'AKIDNOBODY' },
  error('UnrecognizedClientException', 'The security token included in the request is invalid.'), 'Kinesis\'s answer as reported (HTTP 400): https://github.com/awslabs/amazon-kinesis-scaling-utils/issues/46; the body as AWS JSON services send it: https://github.com/aws/aws-sdk-php/issues/2444')
signedCall('a signature 20 minutes old is expired, in AWS\'s words with the window', { skewMs: -20 * 60_000 },
  { status: 400, match: { __type: 'InvalidSignatureException', message: new RegExp(`^Signature expired: ${ISO} is now earlier than ${ISO} \\(${ISO} - 15 min\\.\\)$`) } })
signedCall('a signature 20 minutes ahead is not yet current', { skewMs: 20 * 60_000 },
  { status: 400, match: { __type: 'InvalidSignatureException', message: new RegExp(`^Signature not yet current: ${ISO} is still later than ${ISO} \\(${ISO} \\+ 15 min\\.\\)$`) } },
  "AWS's Kinesis answer as reported: https://github.com/s12v/awsbeats/issues/48, https://github.com/aws/aws-sdk-go/issues/2194")
signedCall('a signature 10 minutes off is within the window', { skewMs: -10 * 60_000 }, SERVED)
signedCall('a credential scoped to another region is InvalidSignatureException naming it', { region: 'eu-west-1' },
  error('InvalidSignatureException', "Credential should be scoped to a valid region, not 'eu-west-1'. "),
  "AWS's answer as reported: https://github.com/cognitect-labs/aws-api/issues/27 (the message ends in \". \"), https://github.com/aws/aws-sdk-ruby/issues/508")
signedCall('a presigned request (query-string auth) is served', { presignExpiresS: 300 }, SERVED,
  'SigV4 query-string authentication: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html')
signedCall('a presigned request past its X-Amz-Expires is expired', { presignExpiresS: 60, skewMs: -10 * 60_000 },
  { status: 400, match: { __type: 'InvalidSignatureException', message: new RegExp(`^Signature expired: ${ISO} is now earlier than ${ISO} \\(${ISO} - 1 min\\.\\)$`) } },
  'not recorded: AWS\'s "Signature expired" wording, with the expiry\'s window (docs/compatibility.md)')
signedCall('a presigned request with a wrong secret is InvalidSignatureException', { presignExpiresS: 300, secretAccessKey: 'not-the-secret' },
  error('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'))

export { rows }
