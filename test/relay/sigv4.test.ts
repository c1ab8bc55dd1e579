import t from 'tap'
import { createHash } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import { Hash } from '@smithy/core/serde'
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis'
import { checkSigV4Headers, kinesisPolicy, verifySigV4, type Credentials, type SignedRequest } from '../../relay/kinesis/sigv4.js'
import { KinesisError } from '../../relay/kinesis/errors.js'

const KEY: Credentials = { accessKeyId: 'AKIDTRIBUTARY0001', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
const OTHER_KEY: Credentials = { accessKeyId: 'AKIDTRIBUTARY0002', secretAccessKey: 'an0ther/secret+key' }
const KEYS = [OTHER_KEY, KEY]
const SIGNED_AT = new Date('2026-03-01T12:00:00Z')
const NOW = SIGNED_AT.getTime() + 30_000
const OPTS = { service: 'kinesis', now: NOW }
const BODY = JSON.stringify({ StreamName: 'telemetry', PartitionKey: 'dev-1', Data: Buffer.from('hello').toString('base64') })

const MSG_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

interface SignOpts {
  credentials?: Credentials
  region?: string
  service?: string
  signingDate?: Date
  /** Whether the signer adds x-amz-content-sha256 itself (the SDK does). */
  applyChecksum?: boolean
  body?: string
  query?: Record<string, string | string[]>
  extraHeaders?: Record<string, string>
  /** The request path as signed (the SDK normalizes it the way AWS does). */
  path?: string
  /** The query string as it reaches the relay, when it is not simply `query` encoded in order. */
  rawQuery?: string
  /** Leave out the host header, as an HTTP/2 request does. */
  noHost?: boolean
  /** Headers sent but not signed. */
  unsignable?: string[]
}

/** Builds and signs a PutRecord POST the way the AWS SDK does, then shapes it as node would hand it over. */
async function signPutRecord(o: SignOpts = {}): Promise<SignedRequest> {
  const body = o.body ?? BODY
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4567,
    path: o.path ?? '/',
    query: o.query ?? {},
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'Kinesis_20131202.PutRecord',
      'content-length': String(Buffer.byteLength(body)),
      'x-amz-user-agent': 'aws-sdk-js/3.1143.0',
      'user-agent': 'aws-sdk-js/3.1143.0 ua/2.1 lang/js md/nodejs#20',
      host: '127.0.0.1:4567',
      'amz-sdk-invocation-id': '0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9',
      'amz-sdk-request': 'attempt=1; max=3',
      ...o.extraHeaders,
    },
    body,
  })
  const signer = new SignatureV4({
    credentials: o.credentials ?? KEY,
    region: o.region ?? 'eu-west-1',
    service: o.service ?? 'kinesis',
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: o.applyChecksum ?? true,
  })
  if (o.noHost) delete request.headers.host
  const signed = toNodeShape(await signer.sign(request, { signingDate: o.signingDate ?? SIGNED_AT, unsignableHeaders: new Set(o.unsignable ?? []) }))
  return o.rawQuery === undefined ? signed : { ...signed, path: `${o.path ?? '/'}?${o.rawQuery}` }
}

function toNodeShape(r: { path: string; query?: Record<string, unknown>; headers: Record<string, string>; body?: unknown }): SignedRequest {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(r.headers)) headers[name.toLowerCase()] = value
  const body = r.body
  return {
    method: 'POST',
    path: r.path + queryString(r.query ?? {}),
    headers,
    // A view on the same bytes: Buffer.from(uint8array) would call valueOf(), which the SDK's JSON body
    // type answers with a string and a deprecation warning.
    body:
      typeof body === 'string'
        ? Buffer.from(body)
        : body instanceof Uint8Array
          ? Buffer.from(body.buffer, body.byteOffset, body.byteLength)
          : Buffer.alloc(0),
  }
}

function queryString(query: Record<string, unknown>): string {
  const pairs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
  return pairs.length > 0 ? `?${pairs.join('&')}` : ''
}

/** Runs fn, which must throw a KinesisError, and hands the error back. */
function failure(fn: () => unknown): KinesisError {
  try {
    fn()
  } catch (err) {
    if (err instanceof KinesisError) return err
    throw err
  }
  throw new Error('expected verifySigV4 to throw, but it accepted the request')
}

const authParts = (req: SignedRequest) => {
  const auth = req.headers.authorization as string
  return {
    auth,
    credential: /Credential=([^,]+)/.exec(auth)?.[1] ?? '',
    signedHeaders: /SignedHeaders=([^,]+)/.exec(auth)?.[1] ?? '',
    signature: /Signature=([0-9a-f]+)/.exec(auth)?.[1] ?? '',
  }
}

t.test('a PutRecord signed with x-amz-content-sha256 is accepted and names its key and region', async (t) => {
  const req = await signPutRecord()
  t.equal(req.headers['x-amz-content-sha256'], createHash('sha256').update(BODY).digest('hex'))
  t.match(authParts(req).signedHeaders, /(^|;)x-amz-content-sha256(;|$)/)
  t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })
})

t.test('a PutRecord signed without x-amz-content-sha256 is accepted, the verifier hashing the body itself', async (t) => {
  const req = await signPutRecord({ applyChecksum: false })
  t.equal(req.headers['x-amz-content-sha256'], undefined)
  t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })
})

t.test('a request signed by the real KinesisClient is accepted', async (t) => {
  let captured: SignedRequest | undefined
  const client = new KinesisClient({
    region: 'ap-southeast-2',
    endpoint: 'http://127.0.0.1:4567',
    credentials: KEY,
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: HttpRequest) => {
        captured = toNodeShape(request)
        throw new Error('captured')
      },
    },
  })
  await t.rejects(client.send(new PutRecordCommand({ StreamName: 'telemetry', PartitionKey: 'dev-1', Data: Buffer.from('hi') })), {
    message: 'captured',
  })
  client.destroy()
  if (!captured) throw new Error('the client sent nothing')
  t.equal(captured.headers['x-amz-target'], 'Kinesis_20131202.PutRecord')
  t.same(verifySigV4(captured, [KEY], { service: 'kinesis' }), { accessKeyId: KEY.accessKeyId, region: 'ap-southeast-2' })
})

t.test('a request signed with the wrong secret is an InvalidSignatureException', async (t) => {
  const req = await signPutRecord({ credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: 'not-the-secret' } })
  const err = failure(() => verifySigV4(req, KEYS, OPTS))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, MSG_MISMATCH)
  t.equal(err.status, 400)
})

t.test('only the whole signature, exactly, is accepted: cut, lengthened, upper-cased or one digit changed, it is refused', async (t) => {
  const req = await signPutRecord()
  const { auth, signature } = authParts(req)
  t.equal(signature.length, 64, 'the signature is 64 hex digits')
  const withSignature = (sig: string): SignedRequest => ({ ...req, headers: { ...req.headers, authorization: auth.replace(`Signature=${signature}`, `Signature=${sig}`) } })
  t.same(verifySigV4(withSignature(signature), KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' }, 'the signature as signed passes')
  const refused = (sig: string) => {
    const err = failure(() => verifySigV4(withSignature(sig), KEYS, OPTS))
    return err.type === 'InvalidSignatureException' && err.message === MSG_MISMATCH
  }
  // A comparison that accepted a prefix would let 16 guesses of one digit through.
  const forgeries: [string, string][] = [
    [signature.slice(0, 1), 'its first digit'],
    [signature.slice(0, 32), 'its first half'],
    [signature.slice(0, 63), 'all but its last digit'],
    [signature + '0', 'one digit more'],
    [signature + signature, 'itself twice'],
    [signature.toUpperCase(), 'upper-cased'],
  ]
  for (const [sig, what] of forgeries) t.ok(refused(sig), `${what} is refused`)
  let everyDigit = true
  for (let i = 0; i < signature.length; i++) {
    const changed = signature.slice(0, i) + (signature[i] === '0' ? '1' : '0') + signature.slice(i + 1)
    if (!refused(changed)) { everyDigit = false; t.fail(`digit ${i} changed was accepted`) }
  }
  t.ok(everyDigit, 'a change of any one of the 64 digits is refused')
})

t.test('an access key id the relay does not know is an UnrecognizedClientException', async (t) => {
  const req = await signPutRecord({ credentials: { accessKeyId: 'AKIDSTRANGER', secretAccessKey: KEY.secretAccessKey } })
  const err = failure(() => verifySigV4(req, KEYS, OPTS))
  t.equal(err.type, 'UnrecognizedClientException')
  t.equal(err.message, 'The security token included in the request is invalid.')
})

t.test('a body changed after signing is an InvalidSignatureException, with or without x-amz-content-sha256', async (t) => {
  const tampered = Buffer.from(BODY.replace('dev-1', 'dev-2'))

  const withHash = await signPutRecord()
  const err1 = failure(() => verifySigV4({ ...withHash, body: tampered }, KEYS, OPTS))
  t.equal(err1.type, 'InvalidSignatureException')
  t.equal(err1.message, "The provided 'x-amz-content-sha256' header does not match what was computed.")

  const withoutHash = await signPutRecord({ applyChecksum: false })
  const err2 = failure(() => verifySigV4({ ...withoutHash, body: tampered }, KEYS, OPTS))
  t.equal(err2.type, 'InvalidSignatureException')
  t.equal(err2.message, MSG_MISMATCH)
})

t.test('a signed header changed after signing is an InvalidSignatureException', async (t) => {
  const req = await signPutRecord()
  const err = failure(() =>
    verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-target': 'Kinesis_20131202.DeleteStream' } }, KEYS, OPTS),
  )
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, MSG_MISMATCH)
})

t.test('a request without an Authorization header is a MissingAuthenticationTokenException', async (t) => {
  const req = await signPutRecord()
  const { authorization: _, ...headers } = req.headers
  const err = failure(() => verifySigV4({ ...req, headers }, KEYS, OPTS))
  t.equal(err.type, 'MissingAuthenticationTokenException')
  t.equal(err.message, 'Missing Authentication Token')
  t.equal(err.status, 400, 'HTTP 400 in JSON and CBOR, as AWS answers it')
})

t.test('an Authorization header lacking its parts is an IncompleteSignatureException in AWS words', async (t) => {
  const req = await signPutRecord()
  const { signedHeaders } = authParts(req)
  const auth = `AWS4-HMAC-SHA256 SignedHeaders=${signedHeaders}`
  const err = failure(() => verifySigV4({ ...req, headers: { ...req.headers, authorization: auth } }, KEYS, OPTS))
  t.equal(err.type, 'IncompleteSignatureException')
  t.equal(
    err.message,
    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
      `Authorization=${auth}`,
  )

  const noDate = { ...req.headers }
  delete noDate['x-amz-date']
  const err2 = failure(() => verifySigV4({ ...req, headers: noDate }, KEYS, OPTS))
  t.equal(err2.type, 'IncompleteSignatureException')
  t.match(err2.message, /^Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header\. Authorization=AWS4-HMAC-SHA256 /)

  const garbled = 'AWS4-HMAC-SHA256 Credential, Signature=abc, SignedHeaders=host'
  const err3 = failure(() => verifySigV4({ ...req, headers: { ...req.headers, authorization: garbled } }, KEYS, OPTS))
  t.equal(err3.type, 'IncompleteSignatureException')
  t.equal(err3.message, `'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: '${garbled}'.`)
})

t.test('a credential without five parts is an IncompleteSignatureException', async (t) => {
  const req = await signPutRecord()
  const { auth, credential } = authParts(req)
  const short = credential.split('/').slice(0, 4).join('/')
  const err = failure(() =>
    verifySigV4({ ...req, headers: { ...req.headers, authorization: auth.replace(credential, short) } }, KEYS, OPTS),
  )
  t.equal(err.type, 'IncompleteSignatureException')
  t.equal(err.message, `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${short}'`)
})

t.test('an algorithm other than AWS4-HMAC-SHA256 is an IncompleteSignatureException', async (t) => {
  const req = await signPutRecord()
  const auth = authParts(req).auth.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA1')
  const err = failure(() => verifySigV4({ ...req, headers: { ...req.headers, authorization: auth } }, KEYS, OPTS))
  t.equal(err.type, 'IncompleteSignatureException')
  t.equal(err.message, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). ")
})

t.test('a signature over a date 20 minutes old is an InvalidSignatureException saying it expired', async (t) => {
  const req = await signPutRecord()
  const err = failure(() => verifySigV4(req, KEYS, { service: 'kinesis', now: SIGNED_AT.getTime() + 20 * 60_000 }))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, 'Signature expired: 20260301T120000Z is now earlier than 20260301T120500Z (20260301T122000Z - 15 min.)')

  // ...while 14 minutes is still within AWS's window.
  t.same(verifySigV4(req, KEYS, { service: 'kinesis', now: SIGNED_AT.getTime() + 14 * 60_000 }), {
    accessKeyId: KEY.accessKeyId,
    region: 'eu-west-1',
  })
})

t.test('a signature dated 20 minutes ahead is an InvalidSignatureException saying it is not yet current', async (t) => {
  const req = await signPutRecord()
  const err = failure(() => verifySigV4(req, KEYS, { service: 'kinesis', now: SIGNED_AT.getTime() - 20 * 60_000 }))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, 'Signature not yet current: 20260301T120000Z is still later than 20260301T115500Z (20260301T114000Z + 15 min.)')
})

t.test('maxSkewMs narrows the window', async (t) => {
  const req = await signPutRecord()
  const err = failure(() => verifySigV4(req, KEYS, { service: 'kinesis', now: SIGNED_AT.getTime() + 6 * 60_000, maxSkewMs: 5 * 60_000 }))
  t.equal(err.message, 'Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120600Z - 5 min.)')
})

t.test('an x-amz-date not in ISO-8601 basic format is an IncompleteSignatureException', async (t) => {
  const req = await signPutRecord()
  const err = failure(() => verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-date': '2026-03-01T12:00:00Z' } }, KEYS, OPTS))
  t.equal(err.type, 'IncompleteSignatureException')
  t.equal(err.message, "Date must be in ISO-8601 'basic format'. Got '2026-03-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")
})

t.test('a query string in the path is part of the canonical request', async (t) => {
  const req = await signPutRecord({ query: { b: '2', a: 'x y/z*' } })
  t.equal(req.path, '/?b=2&a=x%20y%2Fz*')
  t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })

  for (const path of ['/', '/?b=2&a=x%20y%2Fz', '/?b=2&a=x%20y%2Fz*&c=3']) {
    const err = failure(() => verifySigV4({ ...req, path }, KEYS, OPTS))
    t.equal(err.message, MSG_MISMATCH, `path ${path} is refused`)
  }
})

t.test('a path other than the one signed is an InvalidSignatureException', async (t) => {
  const req = await signPutRecord()
  const err = failure(() => verifySigV4({ ...req, path: '/other' }, KEYS, OPTS))
  t.equal(err.message, MSG_MISMATCH)
})

t.test('over HTTP/2 the signed host is read from :authority when host is absent', async (t) => {
  const req = await signPutRecord()
  const { host, ...rest } = req.headers
  const h2 = { ...req, headers: { ...rest, ':authority': host } }
  t.same(verifySigV4(h2, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })

  const wrongAuthority = { ...req, headers: { ...rest, ':authority': '127.0.0.1:4568' } }
  t.equal(failure(() => verifySigV4(wrongAuthority, KEYS, OPTS)).message, MSG_MISMATCH)
})

t.test('a credential scoped to another service is an InvalidSignatureException naming the right one', async (t) => {
  const req = await signPutRecord({ service: 'dynamodb' })
  const err = failure(() => verifySigV4(req, KEYS, OPTS))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, "Credential should be scoped to correct service: 'kinesis'. ")
})

t.test('a credential scope dated other than x-amz-date is an InvalidSignatureException', async (t) => {
  const req = await signPutRecord()
  const { auth, credential } = authParts(req)
  const shifted = credential.replace('/20260301/', '/20260228/')
  const err = failure(() =>
    verifySigV4({ ...req, headers: { ...req.headers, authorization: auth.replace(credential, shifted) } }, KEYS, OPTS),
  )
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(
    err.message,
    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260228' != '20260301', from '20260301T120000Z'. ",
  )
})

t.test('any region in the credential scope is accepted and handed back', async (t) => {
  for (const region of ['us-east-1', 'local', 'edge-site-7']) {
    const req = await signPutRecord({ region })
    t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region })
  }
})

t.test("'host' left out of SignedHeaders is an InvalidSignatureException", async (t) => {
  const req = await signPutRecord()
  const { auth, signedHeaders } = authParts(req)
  const withoutHost = signedHeaders.split(';').filter((h) => h !== 'host').join(';')
  const err = failure(() =>
    verifySigV4({ ...req, headers: { ...req.headers, authorization: auth.replace(signedHeaders, withoutHost) } }, KEYS, OPTS),
  )
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
})

t.test('header values are canonicalized with runs of spaces collapsed, as the signer does', async (t) => {
  const req = await signPutRecord({ extraHeaders: { 'x-amz-meta-note': 'a   b \t c' } })
  t.match(authParts(req).signedHeaders, /x-amz-meta-note/)
  t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })
  const changed = { ...req, headers: { ...req.headers, 'x-amz-meta-note': 'a b c d' } }
  t.equal(failure(() => verifySigV4(changed, KEYS, OPTS)).message, MSG_MISMATCH)
})

t.test('x-amz-content-sha256 of UNSIGNED-PAYLOAD is signed as that literal, as SigV4 defines', async (t) => {
  const req = await signPutRecord({ extraHeaders: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })
  t.same(verifySigV4(req, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })
})

t.test('a request presigned with X-Amz-Algorithm in the query string is verified too', async (t) => {
  const signer = new SignatureV4({ credentials: KEY, region: 'eu-west-1', service: 'kinesis', sha256: Hash.bind(null, 'sha256') })
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4567,
    path: '/',
    headers: { host: '127.0.0.1:4567', 'content-type': 'application/x-amz-json-1.1' },
    body: BODY,
  })
  const presigned = toNodeShape(await signer.presign(request, { signingDate: SIGNED_AT, expiresIn: 300 }))
  t.match(presigned.path, /X-Amz-Algorithm=AWS4-HMAC-SHA256/)
  t.equal(presigned.headers.authorization, undefined)
  t.same(verifySigV4(presigned, KEYS, OPTS), { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' })

  const late = failure(() => verifySigV4(presigned, KEYS, { service: 'kinesis', now: SIGNED_AT.getTime() + 301_000 }))
  t.equal(late.type, 'InvalidSignatureException')
  t.match(late.message, /^Signature expired: 20260301T120000Z is now earlier than/)

  const both = failure(() => verifySigV4({ ...presigned, headers: { ...presigned.headers, authorization: 'AWS4-HMAC-SHA256 x=y' } }, KEYS, OPTS))
  t.equal(both.message, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")

  const partial = failure(() => verifySigV4({ ...presigned, path: presigned.path.replace(/&?X-Amz-Signature=[0-9a-f]+/, '') }, KEYS, OPTS))
  t.equal(partial.type, 'IncompleteSignatureException')
  t.equal(partial.message, "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.")
})

const ACCEPTED = { accessKeyId: KEY.accessKeyId, region: 'eu-west-1' }
const withAuth = (req: SignedRequest, authorization: string): SignedRequest => ({ ...req, headers: { ...req.headers, authorization } })

t.test('a credential scoped to no region and to another terminator is refused, each fault named', async (t) => {
  const req = await signPutRecord()
  const { auth, credential } = authParts(req)
  const bad = `${KEY.accessKeyId}/20260301//kinesis/aws5_request`
  const err = failure(() => verifySigV4(withAuth(req, auth.replace(credential, bad)), KEYS, OPTS))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, "Credential should be scoped to a valid region, not ''. " +
    "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ")
})

t.test('slashes after the credential scope are ignored, as AWS ignores them', async (t) => {
  const req = await signPutRecord()
  const { auth, credential } = authParts(req)
  t.same(verifySigV4(withAuth(req, auth.replace(credential, `${credential}//`)), KEYS, OPTS), ACCEPTED)
})

t.test('an Authorization header without SignedHeaders is an IncompleteSignatureException naming it', async (t) => {
  const req = await signPutRecord()
  const { auth, signedHeaders } = authParts(req)
  const without = auth.replace(`SignedHeaders=${signedHeaders}, `, '')
  const err = failure(() => verifySigV4(withAuth(req, without), KEYS, OPTS))
  t.equal(err.type, 'IncompleteSignatureException')
  t.equal(err.message, `Authorization header requires 'SignedHeaders' parameter. Authorization=${without}`)
})

t.test('a blank Authorization header counts as none: the request is unauthenticated, or authenticated by its query string', async (t) => {
  const req = await signPutRecord()
  for (const blank of ['', '   ']) {
    const err = failure(() => verifySigV4(withAuth(req, blank), KEYS, OPTS))
    t.equal(err.type, 'MissingAuthenticationTokenException', `Authorization '${blank}' is no authentication`)
  }
  const presigned = await presignPutRecord(300)
  t.same(verifySigV4(withAuth(presigned, ' '), KEYS, OPTS), ACCEPTED, 'a presigned request with a blank Authorization header is verified by its query')
})

t.test('without x-amz-date the time is read from the HTTP Date header', async (t) => {
  const req = await signPutRecord()
  const { 'x-amz-date': _, ...headers } = req.headers
  const dated = (date: string): SignedRequest => ({ ...req, headers: { ...headers, date } })
  const old = failure(() => verifySigV4(dated('Sun, 01 Mar 2026 11:40:00 GMT'), KEYS, OPTS))
  t.equal(old.type, 'InvalidSignatureException')
  t.equal(old.message, 'Signature expired: 20260301T114000Z is now earlier than 20260301T114530Z (20260301T120030Z - 15 min.)')
  // Within the window it is checked like any other: here the signature covered x-amz-date, now gone.
  t.equal(failure(() => verifySigV4(dated('Sun, 01 Mar 2026 12:00:00 GMT'), KEYS, OPTS)).message, MSG_MISMATCH)
  const garbled = failure(() => verifySigV4(dated('yesterday'), KEYS, OPTS))
  t.equal(garbled.type, 'IncompleteSignatureException')
  t.equal(garbled.message, "Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601")
})

t.test('an x-amz-date that names no real instant is an IncompleteSignatureException, not a date rolled over', async (t) => {
  const req = await signPutRecord()
  for (const date of ['20260230T120000Z', '20260301T240000Z', '20260301T120000', '20260301T120000Z0']) {
    const err = failure(() => verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-date': date } }, KEYS, OPTS))
    t.equal(err.type, 'IncompleteSignatureException', `${date} is refused as a date`)
  }
})

t.test('a signature is good for exactly 15 minutes either side of the clock', async (t) => {
  const req = await signPutRecord()
  const at = (now: number) => verifySigV4(req, KEYS, { service: 'kinesis', now })
  const signed = SIGNED_AT.getTime()
  t.same(at(signed + 15 * 60_000), ACCEPTED, '15 minutes old')
  t.same(at(signed - 15 * 60_000), ACCEPTED, '15 minutes ahead')
  t.match(failure(() => at(signed + 15 * 60_000 + 1)).message, /^Signature expired: /, '1 ms more is too old')
  t.match(failure(() => at(signed - 15 * 60_000 - 1)).message, /^Signature not yet current: /, '1 ms more is too far ahead')
})

t.test('a path other than / is verified as AWS normalizes it: dot segments resolved, each segment encoded again', async (t) => {
  for (const path of ['/prefix/kinesis', '/prefix/kinesis/', '/a/./b/../c/', '/a%20b/c']) {
    const req = await signPutRecord({ path })
    t.equal(req.path, path)
    t.same(verifySigV4(req, KEYS, OPTS), ACCEPTED, `${path} as signed passes`)
  }
  const req = await signPutRecord({ path: '/prefix/kinesis' })
  for (const other of ['/prefix/kinesis/', '/prefix', '/kinesis/prefix', '/prefix/kinesi']) {
    t.equal(failure(() => verifySigV4({ ...req, path: other }, KEYS, OPTS)).message, MSG_MISMATCH, `${other} is not /prefix/kinesis`)
  }
})

t.test('query strings are canonicalized as the signer does: repeated names by value, a bare name as empty, stray escapes and empty pairs', async (t) => {
  const cases: [string, SignOpts][] = [
    ['a repeated name in any order', { query: { a: ['2', '1'] }, rawQuery: 'a=2&a=1' }],
    ['a name without =', { query: { flag: '' }, rawQuery: 'flag' }],
    ['a malformed escape, taken literally', { query: { a: '%zz' }, rawQuery: 'a=%zz' }],
    ['an empty pair', { query: { a: '1', b: '2' }, rawQuery: 'b=2&&a=1' }],
  ]
  for (const [what, o] of cases) t.same(verifySigV4(await signPutRecord(o), KEYS, OPTS), ACCEPTED, `${what} passes`)
  const repeated = await signPutRecord({ query: { a: ['2', '1'] }, rawQuery: 'a=2&a=1' })
  t.equal(failure(() => verifySigV4({ ...repeated, path: '/?a=2&a=3' }, KEYS, OPTS)).message, MSG_MISMATCH, 'another value is refused')
  const bare = await signPutRecord({ query: { flag: '' }, rawQuery: 'flag' })
  t.equal(failure(() => verifySigV4({ ...bare, path: '/?flag=1' }, KEYS, OPTS)).message, MSG_MISMATCH, 'a value given to a bare name is refused')
})

t.test('over HTTP/2 a signature over :authority stands for host, read from either header', async (t) => {
  const req = await signPutRecord({ noHost: true, extraHeaders: { ':authority': '127.0.0.1:4567' } })
  t.match(authParts(req).signedHeaders, /^:authority;/)
  t.notMatch(authParts(req).signedHeaders, /(^|;)host(;|$)/)
  t.same(verifySigV4(req, KEYS, OPTS), ACCEPTED)
  const { ':authority': authority, ...rest } = req.headers
  t.same(verifySigV4({ ...req, headers: { ...rest, host: authority } }, KEYS, OPTS), ACCEPTED, 'the host header stands in when :authority is absent')
  t.equal(failure(() => verifySigV4({ ...req, headers: rest }, KEYS, OPTS)).message, MSG_MISMATCH, 'with neither, the signature does not hold')
})

t.test('header values are trimmed, and a header given twice is signed as its values joined with commas', async (t) => {
  const padded = await signPutRecord({ extraHeaders: { 'x-amz-meta-note': '  a b  ' } })
  t.same(verifySigV4(padded, KEYS, OPTS), ACCEPTED)
  const joined = await signPutRecord({ extraHeaders: { 'x-amz-meta-note': 'a,b' } })
  t.same(verifySigV4({ ...joined, headers: { ...joined.headers, 'x-amz-meta-note': ['a', 'b'] } }, KEYS, OPTS), ACCEPTED)
  t.equal(failure(() => verifySigV4({ ...joined, headers: { ...joined.headers, 'x-amz-meta-note': ['b', 'a'] } }, KEYS, OPTS)).message,
    MSG_MISMATCH, 'the values in another order are refused')
})

t.test('while a secret is rotated, either secret of one access key id is accepted, and no other', async (t) => {
  const rotating = [{ ...KEY, secretAccessKey: 'the-old-secret' }, KEY]
  t.same(verifySigV4(await signPutRecord(), rotating, OPTS), ACCEPTED, 'signed with the new secret')
  t.same(verifySigV4(await signPutRecord({ credentials: rotating[0] }), rotating, OPTS), ACCEPTED, 'signed with the old secret')
  const stranger = await signPutRecord({ credentials: { ...KEY, secretAccessKey: 'neither' } })
  t.equal(failure(() => verifySigV4(stranger, rotating, OPTS)).message, MSG_MISMATCH)
})

async function presignPutRecord(expiresIn: number): Promise<SignedRequest> {
  const signer = new SignatureV4({ credentials: KEY, region: 'eu-west-1', service: 'kinesis', sha256: Hash.bind(null, 'sha256') })
  const request = new HttpRequest({
    method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4567, path: '/',
    headers: { host: '127.0.0.1:4567', 'content-type': 'application/x-amz-json-1.1' },
    body: BODY,
  })
  return toNodeShape(await signer.presign(request, { signingDate: SIGNED_AT, expiresIn }))
}

t.test('a presigned request lives for its X-Amz-Expires, past the 15-minute window and to the millisecond', async (t) => {
  const signed = SIGNED_AT.getTime()
  const hour = await presignPutRecord(3600)
  t.same(verifySigV4(hour, KEYS, { service: 'kinesis', now: signed + 20 * 60_000 }), ACCEPTED, 'an hour-long one is good after 20 minutes')
  t.same(verifySigV4(hour, KEYS, { service: 'kinesis', now: signed + 3_600_000 }), ACCEPTED, 'and at exactly an hour')
  const late = failure(() => verifySigV4(hour, KEYS, { service: 'kinesis', now: signed + 3_600_001 }))
  t.equal(late.type, 'InvalidSignatureException')
  t.equal(late.message, 'Signature expired: 20260301T120000Z is now earlier than 20260301T120000Z (20260301T130000Z - 60 min.)')
  const week = await presignPutRecord(7 * 24 * 3600)
  t.same(verifySigV4(week, KEYS, { service: 'kinesis', now: signed + 7 * 24 * 3_600_000 }), ACCEPTED, 'a week, the longest allowed, is allowed')
})

t.test('an X-Amz-Expires that is not a whole number of seconds up to a week is an IncompleteSignatureException', async (t) => {
  const req = await presignPutRecord(300)
  const withExpires = (value: string) => ({ ...req, path: req.path.replace('X-Amz-Expires=300', `X-Amz-Expires=${value}`) })
  const cases: [string, string][] = [
    ['soon', 'X-Amz-Expires should be a number'],
    ['300s', 'X-Amz-Expires should be a number'],
    ['+300', 'X-Amz-Expires should be a number'],
    ['-1', 'X-Amz-Expires must be non-negative'],
    ['604801', 'X-Amz-Expires must be less than a week (in seconds) that is 604800'],
  ]
  for (const [value, message] of cases) {
    const err = failure(() => verifySigV4(withExpires(value), KEYS, OPTS))
    t.equal(err.type, 'IncompleteSignatureException', `${value} is refused`)
    t.equal(err.message, message)
  }
  // In range, they are read: zero has expired 30 s after signing, a week reaches the signature (which covered 300).
  t.match(failure(() => verifySigV4(withExpires('0'), KEYS, OPTS)).message, /^Signature expired: 20260301T120000Z is now earlier than 20260301T120030Z /)
  t.equal(failure(() => verifySigV4(withExpires('604800'), KEYS, OPTS)).message, MSG_MISMATCH)
  const without = { ...req, path: req.path.replace(/&?X-Amz-Expires=300/, '') }
  t.equal(failure(() => verifySigV4(without, KEYS, OPTS)).message, MSG_MISMATCH, 'without one, the request reaches the signature check')
})

t.test("under the Kinesis policy a credential scoped to a region other than the relay's is refused", async (t) => {
  const req = await signPutRecord({ region: 'eu-west-1' })
  t.same(verifySigV4(req, KEYS, kinesisPolicy('eu-west-1', NOW)), ACCEPTED, "the relay's own region passes")
  const err = failure(() => verifySigV4(req, KEYS, kinesisPolicy('us-east-1', NOW)))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, "Credential should be scoped to a valid region, not 'eu-west-1'. ")
})

t.test('under the Kinesis policy x-amz-target and x-amz-content-sha256 must be signed when sent, and UNSIGNED-PAYLOAD is refused', async (t) => {
  const policy = kinesisPolicy('eu-west-1', NOW)
  for (const name of ['x-amz-target', 'x-amz-content-sha256']) {
    const req = await signPutRecord({ unsignable: [name] })
    t.notMatch(authParts(req).signedHeaders, new RegExp(`(^|;)${name}(;|$)`), `${name} is sent unsigned`)
    t.same(verifySigV4(req, KEYS, OPTS), ACCEPTED, 'which plain SigV4 allows')
    const err = failure(() => verifySigV4(req, KEYS, policy))
    t.equal(err.type, 'InvalidSignatureException')
    t.equal(err.message, `'${name}' must be a 'SignedHeader' in the AWS Authorization.`)
  }
  t.same(verifySigV4(await signPutRecord({ applyChecksum: false }), KEYS, policy), ACCEPTED, 'a request that sends no x-amz-content-sha256 passes')
  const unsigned = await signPutRecord({ extraHeaders: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })
  const err = failure(() => verifySigV4(unsigned, KEYS, policy))
  t.equal(err.type, 'InvalidSignatureException')
  t.equal(err.message, "x-amz-content-sha256 'UNSIGNED-PAYLOAD' is not accepted: the body must be signed.")
})

t.test('the header checks run without the body: they pass a well-signed request and refuse an unknown key, a stale date or a missing signature', async (t) => {
  const req = await signPutRecord()
  const { body: _, ...headersOnly } = req
  t.equal(checkSigV4Headers(headersOnly, KEYS, OPTS), undefined)
  const stranger = await signPutRecord({ credentials: { accessKeyId: 'AKIDSTRANGER', secretAccessKey: KEY.secretAccessKey } })
  t.throws(() => checkSigV4Headers(stranger, KEYS, OPTS), { type: 'UnrecognizedClientException' })
  t.throws(() => checkSigV4Headers(headersOnly, KEYS, { service: 'kinesis', now: NOW + 20 * 60_000 }), { type: 'InvalidSignatureException', message: /^Signature expired/ })
  const { authorization: __, ...unsigned } = req.headers
  t.throws(() => checkSigV4Headers({ ...headersOnly, headers: unsigned }, KEYS, OPTS), { type: 'MissingAuthenticationTokenException' })
})
