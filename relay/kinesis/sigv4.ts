/** (Over 400 lines: verifying and signing share the canonical-request rules, kept together so they cannot drift.)
 *
 * AWS Signature Version 4 verification for an AWS JSON 1.1 service (Kinesis), with node:crypto only.
 *
 * Checks run in the order AWS runs them, and fail with AWS's error types and wording:
 *   1. is there any authentication at all (Authorization header or X-Amz-Algorithm query auth)
 *   2. are all parts present (Credential, SignedHeaders, Signature, a date)
 *   3. the date's format, then its skew against the clock (15 minutes by default)
 *   4. 'host' (and what the caller requires) among the signed headers, the algorithm, the
 *      credential's shape, its scope (and region, when the caller names one)
 *   5. the access key id — steps 1-5 need only the headers (checkSigV4Headers, run before a body
 *      is read) — then the signature, then x-amz-content-sha256 against the body
 *
 * The host header: over HTTP/1.1 clients sign `host`; over HTTP/2 the AWS JS SDK signs the
 * pseudo-header `:authority` itself (SignedHeaders=:authority;…). Either satisfies the "host must be
 * signed" rule, and each name reads its own header, falling back to the other.
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { KinesisError, KinesisErrorType } from './errors.js'

export interface SignedRequest {
  method: string
  /** The raw request target, query string included, e.g. '/' or '/?a=b'. */
  path: string
  /** Lower-case names, as node's http/http2 give them. */
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface Credentials {
  accessKeyId: string
  secretAccessKey: string
}

export interface VerifyOptions {
  /** The signing name the credential scope must carry, e.g. 'kinesis'. */
  service: string
  /** The clock, in ms since the epoch; defaults to Date.now(). */
  now?: number
  /** How far x-amz-date may be from the clock either way; defaults to 15 minutes. */
  maxSkewMs?: number
  /** The region the credential scope must name; any region when absent. */
  region?: string
  /** Headers that must be among the signed ones when the request carries them (e.g. x-amz-target, so a signature cannot be replayed against another action). */
  requiredSignedHeaders?: readonly string[]
  /** Refuse x-amz-content-sha256: UNSIGNED-PAYLOAD (the body is then not covered by the signature). */
  refuseUnsignedPayload?: boolean
}

/**
 * What the relay requires of a Kinesis request beyond SigV4 itself, as AWS does for this service:
 * its region, the action (x-amz-target) and the body's hash (x-amz-content-sha256, when sent)
 * signed, no unsigned payload.
 */
export function kinesisPolicy(region: string, now: number): VerifyOptions {
  return { service: 'kinesis', now, region, requiredSignedHeaders: ['x-amz-target', 'x-amz-content-sha256'], refuseUnsignedPayload: true }
}

export interface VerifiedCaller {
  accessKeyId: string
  region: string
}

const ALGORITHM = 'AWS4-HMAC-SHA256'
const TERMINATOR = 'aws4_request'
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000
const MAX_PRESIGNED_EXPIRES_S = 7 * 24 * 60 * 60
const ISO_BASIC = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/

const MSG_SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
const MSG_UNKNOWN_KEY = 'The security token included in the request is invalid.'
const MSG_CONTENT_SHA256 = "The provided 'x-amz-content-sha256' header does not match what was computed."

/** The parts of a signature, wherever they came from (header or query string). */
interface AuthParts {
  mode: 'header' | 'query'
  algorithm: string
  credential: string
  signedHeaders: string
  signature: string
  /** The request time in ISO-8601 basic format, as it enters the string to sign. */
  amzDate: string
  /** X-Amz-Expires of query auth, in seconds. */
  expiresS?: number
}

/**
 * Verifies the SigV4 signature of a request against a set of keys. Returns the access key id
 * that signed it and the region of its credential scope (any region, unless opts.region names
 * one). Throws a KinesisError otherwise.
 */
export function verifySigV4(req: SignedRequest, keys: readonly Credentials[], opts: VerifyOptions): VerifiedCaller {
  const { parts, query, rawPath, signedHeaders, accessKeyId, scopeDate, region, service, candidates } = checkHeaders(req, keys, opts)

  const bodyHash = sha256Hex(req.body)
  const declaredHash = headerValue(req.headers, 'x-amz-content-sha256')
  const payloadHash = declaredHash ?? bodyHash

  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(query, parts.mode === 'query'),
    signedHeaders.map((name) => `${name}:${canonicalHeaderValue(req.headers, name)}\n`).join(''),
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n')
  const scope = `${scopeDate}/${region}/${service}/${TERMINATOR}`
  const stringToSign = [ALGORITHM, parts.amzDate, scope, sha256Hex(canonicalRequest)].join('\n')

  const provided = Buffer.from(parts.signature, 'utf8')
  const matched = candidates.some((key) => {
    const kDate = hmac(`AWS4${key.secretAccessKey}`, scopeDate)
    const kRegion = hmac(kDate, region)
    const kService = hmac(kRegion, service)
    const kSigning = hmac(kService, TERMINATOR)
    const expected = Buffer.from(hmac(kSigning, stringToSign).toString('hex'), 'utf8')
    return expected.length === provided.length && timingSafeEqual(expected, provided)
  })
  if (!matched) throw invalid(MSG_SIGNATURE_MISMATCH)

  // A signed x-amz-content-sha256 vouches for the body only if it is the body's hash.
  if (declaredHash !== undefined && declaredHash !== UNSIGNED_PAYLOAD && declaredHash !== bodyHash) {
    throw invalid(MSG_CONTENT_SHA256)
  }

  return { accessKeyId, region }
}

/**
 * The checks a request's headers allow, before its body is read: authentication present and whole,
 * its time, the signed headers, the algorithm, the credential's scope and a known key id. Throws a
 * KinesisError; the relay runs it first so an unauthenticated body is never read.
 */
export function checkSigV4Headers(req: Omit<SignedRequest, 'body'>, keys: readonly Credentials[], opts: VerifyOptions): void {
  checkHeaders(req, keys, opts)
}

function checkHeaders(req: Omit<SignedRequest, 'body'>, keys: readonly Credentials[], opts: VerifyOptions) {
  const now = opts.now ?? Date.now()
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS
  const qIndex = req.path.indexOf('?')
  const rawPath = qIndex === -1 ? req.path : req.path.slice(0, qIndex)
  const query = parseQuery(qIndex === -1 ? '' : req.path.slice(qIndex + 1))

  const parts = readAuthParts(req, query)

  checkSkew(parts, now, maxSkewMs)

  const signedHeaders = parts.signedHeaders.split(';').map((h) => h.trim().toLowerCase())
  if (!signedHeaders.includes('host') && !signedHeaders.includes(':authority')) {
    throw invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.")
  }
  for (const name of opts.requiredSignedHeaders ?? []) {
    if (headerValue(req.headers, name) !== undefined && !signedHeaders.includes(name)) {
      throw invalid(`'${name}' must be a 'SignedHeader' in the AWS Authorization.`)
    }
  }
  if (opts.refuseUnsignedPayload && headerValue(req.headers, 'x-amz-content-sha256') === UNSIGNED_PAYLOAD) {
    throw invalid(`x-amz-content-sha256 '${UNSIGNED_PAYLOAD}' is not accepted: the body must be signed.`)
  }
  if (parts.algorithm !== ALGORITHM) {
    throw incomplete(`Unsupported AWS 'algorithm': '${parts.algorithm}' (only ${ALGORITHM} for now). `)
  }

  // keyid/date/region/service/aws4_request; trailing slashes are ignored, as AWS does.
  const credential = parts.credential.replace(/\/+$/, '')
  const scopeParts = credential.split('/')
  if (scopeParts.length !== 5) {
    throw incomplete(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`,
    )
  }
  const [accessKeyId, scopeDate, region, service, terminator] = scopeParts as [string, string, string, string, string]
  const scopeErrors: string[] = []
  if (region === '') scopeErrors.push(`Credential should be scoped to a valid region, not '${region}'.`)
  else if (opts.region !== undefined && region !== opts.region) scopeErrors.push(`Credential should be scoped to a valid region, not '${region}'.`)
  if (service !== opts.service) scopeErrors.push(`Credential should be scoped to correct service: '${opts.service}'.`)
  if (terminator !== TERMINATOR) {
    scopeErrors.push(`Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${terminator}'.`)
  }
  if (scopeDate !== parts.amzDate.slice(0, 8)) {
    scopeErrors.push(
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ' +
        `'${scopeDate}' != '${parts.amzDate.slice(0, 8)}', from '${parts.amzDate}'.`,
    )
  }
  // Each fault's sentence ends in '. ', the last one too, as AWS's answers show ("… not 'eu-west-1'. ").
  if (scopeErrors.length > 0) throw invalid(scopeErrors.map((e) => `${e} `).join(''))

  const candidates = keys.filter((k) => k.accessKeyId === accessKeyId)
  if (candidates.length === 0) {
    throw new KinesisError(KinesisErrorType.UnrecognizedClientException, MSG_UNKNOWN_KEY)
  }
  return { parts, query, rawPath, signedHeaders, accessKeyId, scopeDate, region, service, candidates }
}

function readAuthParts(req: Omit<SignedRequest, 'body'>, query: ReadonlyArray<[string, string]>): AuthParts {
  const rawAuth = headerValue(req.headers, 'authorization')
  const authHeader = rawAuth === undefined || rawAuth.trim() === '' ? undefined : rawAuth
  const queryAuth = query.some(([k]) => k === 'X-Amz-Algorithm')

  if (authHeader !== undefined && queryAuth) {
    throw invalid("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
  }
  if (authHeader === undefined && !queryAuth) {
    throw new KinesisError(KinesisErrorType.MissingAuthenticationTokenException, 'Missing Authentication Token')
  }
  return authHeader !== undefined ? readHeaderAuth(req, authHeader) : readQueryAuth(query)
}

/** `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` */
function readHeaderAuth(req: Omit<SignedRequest, 'body'>, auth: string): AuthParts {
  const tokens = auth.trim().split(/[, ]+/).filter(Boolean)
  const algorithm = tokens[0] ?? ''
  const params = new Map<string, string>()
  for (const token of tokens.slice(1)) {
    const eq = token.indexOf('=')
    if (eq === -1) {
      throw incomplete(`'${token}' not a valid key=value pair (missing equal-sign) in Authorization header: '${auth}'.`)
    }
    params.set(token.slice(0, eq), token.slice(eq + 1))
  }

  const amzDate = headerValue(req.headers, 'x-amz-date')
  const date = headerValue(req.headers, 'date')
  let msg = ''
  if (!params.get('Credential')) msg += "Authorization header requires 'Credential' parameter. "
  if (!params.get('Signature')) msg += "Authorization header requires 'Signature' parameter. "
  // An empty SignedHeaders passes here and fails the 'Host' check later, as with AWS.
  if (!params.has('SignedHeaders')) msg += "Authorization header requires 'SignedHeaders' parameter. "
  if (amzDate === undefined && date === undefined) {
    msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
  }
  if (msg) throw incomplete(`${msg}Authorization=${auth}`)

  return {
    mode: 'header',
    algorithm,
    credential: params.get('Credential') ?? '',
    signedHeaders: params.get('SignedHeaders') ?? '',
    signature: params.get('Signature') ?? '',
    amzDate: amzDate !== undefined ? checkIsoBasic(amzDate) : httpDateToIsoBasic(date ?? ''),
  }
}

function readQueryAuth(query: ReadonlyArray<[string, string]>): AuthParts {
  const get = (name: string): string | undefined => query.find(([k]) => k === name)?.[1]
  let msg = ''
  for (const name of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-SignedHeaders', 'X-Amz-Date']) {
    if (!get(name)) msg += `AWS query-string parameters must include '${name}'. `
  }
  if (msg) throw incomplete(`${msg}Re-examine the query-string parameters.`)

  const expires = get('X-Amz-Expires')
  let expiresS: number | undefined
  if (expires !== undefined) {
    if (!/^-?\d+$/.test(expires)) throw incomplete('X-Amz-Expires should be a number')
    expiresS = Number(expires)
    if (expiresS < 0) throw incomplete('X-Amz-Expires must be non-negative')
    if (expiresS > MAX_PRESIGNED_EXPIRES_S) {
      throw incomplete(`X-Amz-Expires must be less than a week (in seconds) that is ${MAX_PRESIGNED_EXPIRES_S}`)
    }
  }
  return {
    mode: 'query',
    algorithm: get('X-Amz-Algorithm') ?? '',
    credential: get('X-Amz-Credential') ?? '',
    signedHeaders: get('X-Amz-SignedHeaders') ?? '',
    signature: get('X-Amz-Signature') ?? '',
    amzDate: checkIsoBasic(get('X-Amz-Date') ?? ''),
    ...(expiresS !== undefined ? { expiresS } : {}),
  }
}

function checkSkew(parts: AuthParts, now: number, maxSkewMs: number): void {
  const signedAt = isoBasicToMs(parts.amzDate)
  const skewMin = maxSkewMs / 60_000
  if (signedAt < now - maxSkewMs && parts.expiresS === undefined) {
    throw invalid(
      `Signature expired: ${parts.amzDate} is now earlier than ${toIsoBasic(now - maxSkewMs)} ` +
        `(${toIsoBasic(now)} - ${skewMin} min.)`,
    )
  }
  if (parts.expiresS !== undefined && signedAt + parts.expiresS * 1000 < now) {
    const expiresMs = parts.expiresS * 1000
    throw invalid(
      `Signature expired: ${parts.amzDate} is now earlier than ${toIsoBasic(now - expiresMs)} ` +
        `(${toIsoBasic(now)} - ${expiresMs / 60_000} min.)`,
    )
  }
  if (signedAt > now + maxSkewMs) {
    throw invalid(
      `Signature not yet current: ${parts.amzDate} is still later than ${toIsoBasic(now + maxSkewMs)} ` +
        `(${toIsoBasic(now)} + ${skewMin} min.)`,
    )
  }
}

// ---- canonical request --------------------------------------------------------------------------

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded, hex upper-case. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/**
 * The path as received (already percent-encoded by the client), normalized ('.', '..' and empty
 * segments removed) and encoded once more per segment, as AWS does for every service but S3.
 */
function canonicalUri(rawPath: string): string {
  const segments: string[] = []
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : ''
  return `/${segments.map(uriEncode).join('/')}${trailing}`
}

function parseQuery(qs: string): Array<[string, string]> {
  if (qs === '') return []
  return qs
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const key = eq === -1 ? pair : pair.slice(0, eq)
      const value = eq === -1 ? '' : pair.slice(eq + 1)
      return [percentDecode(key), percentDecode(value)]
    })
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Pairs RFC 3986-encoded, sorted by name then value; query auth leaves out X-Amz-Signature. */
function canonicalQuery(query: ReadonlyArray<[string, string]>, queryAuth: boolean): string {
  return query
    .filter(([k]) => !(queryAuth && k === 'X-Amz-Signature'))
    .map(([k, v]): [string, string] => [uriEncode(k), uriEncode(v)])
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
}

/** Values trimmed with runs of spaces collapsed; a repeated header's values joined with ','. */
function canonicalHeaderValue(headers: SignedRequest['headers'], name: string): string {
  let raw = headers[name]
  if (name === 'host' && raw === undefined) raw = headers[':authority']
  if (name === ':authority' && raw === undefined) raw = headers.host
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  return values.map((v) => v.replace(/[ \t]+/g, ' ').trim()).join(',')
}

function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const raw = headers[name]
  return Array.isArray(raw) ? raw[0] : raw
}

// ---- dates --------------------------------------------------------------------------------------

function checkIsoBasic(value: string): string {
  const ms = isoBasicToMs(value)
  if (Number.isNaN(ms)) {
    throw incomplete(`Date must be in ISO-8601 'basic format'. Got '${value}'. See http://en.wikipedia.org/wiki/ISO_8601`)
  }
  return value
}

function httpDateToIsoBasic(value: string): string {
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) {
    throw incomplete(`Date must be in ISO-8601 'basic format'. Got '${value}'. See http://en.wikipedia.org/wiki/ISO_8601`)
  }
  return toIsoBasic(ms)
}

/** NaN unless `value` is a real instant written as YYYYMMDD'T'HHMMSS'Z'. */
function isoBasicToMs(value: string): number {
  const m = ISO_BASIC.exec(value)
  if (!m) return NaN
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number]
  const ms = Date.UTC(y, mo - 1, d, h, mi, s)
  return toIsoBasic(ms) === value ? ms : NaN
}

function toIsoBasic(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

// ---- crypto and errors --------------------------------------------------------------------------

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}

function invalid(message: string): KinesisError {
  return new KinesisError(KinesisErrorType.InvalidSignatureException, message)
}

function incomplete(message: string): KinesisError {
  return new KinesisError(KinesisErrorType.IncompleteSignatureException, message)
}

/**
 * Signs a request (header auth) the way the AWS SDK does; used by Tributary's own CLI client.
 * Adds `x-amz-date`, `x-amz-content-sha256` and `authorization` to `headers` (lower-case names).
 */
export function signSigV4(
  req: { method: string; path: string; headers: Record<string, string>; body: Buffer },
  key: Credentials,
  region: string,
  service: string,
  now = Date.now(),
): void {
  const amzDate = toIsoBasic(now)
  const scopeDate = amzDate.slice(0, 8)
  req.headers['x-amz-date'] = amzDate
  req.headers['x-amz-content-sha256'] = sha256Hex(req.body)
  const qIndex = req.path.indexOf('?')
  const rawPath = qIndex === -1 ? req.path : req.path.slice(0, qIndex)
  const query = parseQuery(qIndex === -1 ? '' : req.path.slice(qIndex + 1))
  const signedHeaders = Object.keys(req.headers).map((h) => h.toLowerCase()).filter((h) => h !== 'authorization').sort()
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(query, false),
    signedHeaders.map((name) => `${name}:${canonicalHeaderValue(req.headers, name)}\n`).join(''),
    signedHeaders.join(';'),
    req.headers['x-amz-content-sha256'],
  ].join('\n')
  const scope = `${scopeDate}/${region}/${service}/${TERMINATOR}`
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n')
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, scopeDate), region), service), TERMINATOR)
  req.headers.authorization = `${ALGORITHM} Credential=${key.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${hmac(kSigning, stringToSign).toString('hex')}`
}
