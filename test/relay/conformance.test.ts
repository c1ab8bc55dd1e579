/**
 * The conformance table (test/relay/conformance/): every row sent to a real relay on loopback, over
 * HTTP/1.1 and over HTTP/2 (h2c, as the AWS SDK for JavaScript speaks it on http:// endpoints), and
 * every row of an action in both of the API's protocols, JSON 1.1 and CBOR 1.1; then all of it again
 * to a relay with access keys, each request signed by the AWS SDK's own signer (AWS's recorded
 * answers are to signed requests). Each row is one
 * assertion naming the row, the HTTP version and the protocol, with every difference from AWS's
 * answer listed when it fails.
 */
import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import { isDeepStrictEqual } from 'node:util'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import { Hash } from '@smithy/core/serde'
import { Tagged, decodeCbor, encodeCbor } from '../../relay/kinesis/cbor.js'
import { testRelay } from '../helpers/relay.js'
import { rows as frontDoor } from './conformance/front-door.js'
import { ID_2, REQUEST_ID, valueOf, type Fixture, type HeaderExpectation, type Row, type Signing } from './conformance/rows.js'
import { rows as auth } from './conformance/auth.js'
import { rows as serialization } from './conformance/serialization.js'
import { rows as shardIds } from './conformance/shard-ids.js'
import { rows as validation } from './conformance/validation.js'
import { rows as responses } from './conformance/responses.js'

const CLASSES: [string, Row[]][] = [['serialization', serialization], ['shard-ids', shardIds], ['front-door', frontDoor], ['validation', validation], ['responses', responses], ['auth', auth]]
const JSON_11 = 'application/x-amz-json-1.1'
const CBOR_11 = 'application/x-amz-cbor-1.1'

interface Answer {
  status: number
  headers: Record<string, string | undefined>
  body: Buffer
  /** HTTP/1.1's header names as sent (HTTP/2 lower-cases every name). */
  rawNames?: string[]
}

interface Wire {
  send(method: string, path: string, headers: Record<string, string>, body: Buffer | null): Promise<Answer>
  close(): void
}

const flat = (headers: Record<string, string | string[] | number | undefined>): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v)]))

/** HTTP/1.1, a connection per request (a refused request's connection is closed by the relay). */
function http1(port: number): Wire {
  return {
    send: (method, path, headers, body) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: body ? { ...headers, 'content-length': String(body.length) } : headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        const rawNames = res.rawHeaders.filter((_, i) => i % 2 === 0)
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: flat(res.headers), body: Buffer.concat(chunks), rawNames }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body ?? undefined)
    }),
    close: () => {},
  }
}

/** HTTP/2 in cleartext, one session for every request, as the SDK keeps one. */
function http2Wire(port: number): Wire {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  return {
    send: (method, path, headers, body) => new Promise((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': path, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, { endStream: !body })
      const chunks: Buffer[] = []
      let head: Record<string, string | undefined> = {}
      stream.on('response', (h) => { head = flat(h as Record<string, string>) })
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }))
      stream.on('error', reject)
      if (body) stream.end(body)
    }),
    close: () => session.close(),
  }
}

/** A CBOR answer in the JSON shape the rows are written in. */
function jsonShape(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('base64')
  if (v instanceof Tagged) return typeof v.value === 'number' ? v.value / 1000 : v.value
  if (Array.isArray(v)) return v.map(jsonShape)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonShape(x)]))
  return v
}

function decode(answer: Answer): unknown {
  const type = answer.headers['content-type'] ?? ''
  if (type.startsWith(CBOR_11)) return jsonShape(decodeCbor(answer.body))
  return JSON.parse(answer.body.toString('utf8'))
}

const headerProblem = (name: string, want: HeaderExpectation, got: string | undefined): string | null => {
  if (want === null) return got === undefined ? null : `header ${name} should be absent, is ${JSON.stringify(got)}`
  if (got === undefined) return `header ${name} is missing`
  if (want instanceof RegExp) return want.test(got) ? null : `header ${name} ${JSON.stringify(got)} does not match ${want}`
  return want === got ? null : `header ${name} is ${JSON.stringify(got)}, not ${JSON.stringify(want)}`
}

/** A pattern: a RegExp a string must match, an object whose members each match, or an equal value. */
function matches(value: unknown, pattern: unknown): boolean {
  if (pattern instanceof RegExp) return typeof value === 'string' && pattern.test(value)
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object') return false
    return Object.entries(pattern).every(([k, p]) => matches((value as Record<string, unknown>)[k], p))
  }
  return isDeepStrictEqual(value, pattern)
}

/** Every way the answer differs from the row's expectation (`keys`: the relay has access keys). */
function problems(row: Row, answer: Answer, f: Fixture, protocol: 'json' | 'cbor' | null, keys: boolean): string[] {
  const out: string[] = []
  const e = (keys && (row.keyed ?? row.unsigned?.keyed)) || row.expect
  const shown = answer.body.length > 400 ? `${answer.body.subarray(0, 400).toString()}…` : answer.body.toString()
  if (answer.status !== e.status) out.push(`status ${answer.status}, not ${e.status} (body ${JSON.stringify(shown)})`)
  for (const [name, want] of Object.entries(e.headers ?? {})) {
    const p = headerProblem(name, want, answer.headers[name])
    if (p) out.push(p)
  }
  if (e.raw !== undefined && !answer.body.equals(Buffer.from(e.raw))) out.push(`body ${JSON.stringify(shown)} (${answer.body.toString('hex').slice(0, 120)}), not ${JSON.stringify(e.raw.toString())}`)
  if (protocol) {
    const type = protocol === 'json' ? JSON_11 : CBOR_11
    if (!answer.headers['content-type']?.startsWith(type)) out.push(`content-type ${answer.headers['content-type']}, not ${type}`)
    // AWS writes a CBOR error as an indefinite-length map (bf … ff).
    if (protocol === 'cbor' && answer.status >= 400 && (answer.body[0] !== 0xbf || answer.body[answer.body.length - 1] !== 0xff)) out.push('a CBOR error body is not an indefinite-length map')
    let body: unknown
    // An empty body (an action without output) is no document to decode: `raw: ''` says so.
    if (e.raw === undefined || answer.body.length > 0) {
      try {
        body = decode(answer)
      } catch (err) {
        out.push(`body does not decode: ${(err as Error).message}: ${JSON.stringify(shown)}`)
        return out
      }
    }
    // AWS's headers on every answer of an action, and the error's type in x-amzn-ErrorType (front-door.ts says where from).
    for (const [name, want] of Object.entries({ 'x-amzn-requestid': REQUEST_ID, 'x-amz-id-2': ID_2 })) {
      const p = headerProblem(name, want, answer.headers[name])
      if (p) out.push(p)
    }
    // Spelled as AWS's API reference shows it, where the HTTP version keeps a name's case.
    if (answer.rawNames && !answer.rawNames.includes('x-amzn-RequestId')) out.push(`no header spelled x-amzn-RequestId among ${answer.rawNames.join(', ')}`)
    const errorType = answer.status >= 400 ? (body as { __type?: string } | null)?.__type ?? '(none)' : null
    const p = headerProblem('x-amzn-errortype', errorType, answer.headers['x-amzn-errortype'])
    if (p) out.push(p)
    if (e.body !== undefined && !isDeepStrictEqual(body, valueOf(e.body, f))) out.push(`body ${JSON.stringify(body)}, not ${JSON.stringify(valueOf(e.body, f))}`)
    if (e.match !== undefined && !matches(body, valueOf(e.match, f))) out.push(`body ${JSON.stringify(body).slice(0, 400)} does not match the pattern`)
    if (e.pick && !isDeepStrictEqual(e.pick.of(body), valueOf(e.pick.equals, f))) out.push(`picked ${JSON.stringify(e.pick.of(body))}, not ${JSON.stringify(valueOf(e.pick.equals, f))}`)
  }
  return out
}

/** Signs a request as the AWS SDK does (its own signer), for the relay with access keys: the path (a presigned one carries the signature) and headers to send. */
type Signer = (method: string, path: string, headers: Record<string, string>, body: Buffer | null) => Promise<{ path: string; headers: Record<string, string> }>

const KEY = { accessKeyId: 'AKIDCONFORMANCE', secretAccessKey: 'conformance-secret' }

function sdkSigner(port: number, version: 'HTTP/1.1' | 'HTTP/2', how: Signing = {}): Signer {
  const credentials = { accessKeyId: how.accessKeyId ?? KEY.accessKeyId, secretAccessKey: how.secretAccessKey ?? KEY.secretAccessKey }
  const signers = new Map(['kinesis', 'firehose'].map((service) => [service, new SignatureV4({ credentials, region: how.region ?? 'us-east-1', service, sha256: Hash.bind(null, 'sha256') })]))
  return async (method, path, headers, body) => {
    const host = `127.0.0.1:${port}`
    const [pathname, query] = path.split('?')
    const request = new HttpRequest({
      method, protocol: 'http:', hostname: '127.0.0.1', port, path: pathname!, headers: { ...headers, host },
      query: Object.fromEntries(new URLSearchParams(query ?? '')), ...(body ? { body } : {}),
    })
    const service = (headers['x-amz-target'] ?? '').startsWith('Firehose_20150804.') ? 'firehose' : 'kinesis'
    const signingDate = new Date(Date.now() + (how.skewMs ?? 0))
    const signer = signers.get(service)!
    const signed = how.presignExpiresS === undefined
      ? await signer.sign(request, { signingDate })
      // The target stays a header: AWS reads the action from X-Amz-Target only (the SDK's presigner would move every x-amz-* header into the query).
      : await signer.presign(request, { signingDate, expiresIn: how.presignExpiresS, unhoistableHeaders: new Set(['x-amz-target']) })
    const out = { ...(signed.headers as Record<string, string>) }
    // Over HTTP/2 the signed host travels as :authority (the session's), not as a host header.
    if (version === 'HTTP/2') delete out.host
    const q = new URLSearchParams(Object.entries(signed.query ?? {}).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : v === null ? [] : [[k, v]])) as [string, string][]).toString()
    return { path: q ? `${pathname}?${q}` : pathname!, headers: out }
  }
}

async function sendRow(wire: Wire, row: Row, f: Fixture, protocol: 'json' | 'cbor' | null, sign: Signer | null): Promise<Answer> {
  const r = row.request
  let method: string, path: string, headers: Record<string, string>, body: Buffer | null
  if ('action' in r) {
    const value = valueOf(r.body, f)
    ;[method, path, body] = ['POST', r.path ?? '/', protocol === 'cbor' ? encodeCbor(value) : Buffer.from(JSON.stringify(value))]
    headers = { 'content-type': protocol === 'cbor' ? CBOR_11 : JSON_11, 'x-amz-target': `Kinesis_20131202.${r.action}`, ...r.headers }
  } else {
    ;[method, path, headers, body] = [r.method, r.path ?? '/', r.headers ?? {}, r.raw === undefined ? null : Buffer.from(r.raw)]
  }
  if (!sign) return wire.send(method, path, headers, body)
  const signed = await sign(method, path, headers, body)
  return wire.send(method, signed.path, signed.headers, body)
}

// A relay for the table without access keys (the default), and one with them, to which every row is signed.
const open = await testRelay(t)
const keyed = await testRelay(t, { accessKeys: [KEY] })

async function fixtureOf(port: number, sign: Signer | null): Promise<Fixture> {
  const setup = http1(port)
  const call = async (action: string, body: unknown): Promise<any> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const payload = Buffer.from(JSON.stringify(body))
    const headers = { 'content-type': JSON_11, 'x-amz-target': `Kinesis_20131202.${action}` }
    const answer = await setup.send('POST', '/', sign ? (await sign('POST', '/', headers, payload)).headers : headers, payload)
    if (answer.status !== 200) throw new Error(`${action} failed in setup: ${answer.status} ${answer.body.toString()}`)
    // An action without output answers with an empty body.
    return answer.body.length ? JSON.parse(answer.body.toString()) : {}
  }
  const stream = 'conformance'
  await call('CreateStream', { StreamName: stream, ShardCount: 3 })
  const put = await call('PutRecord', { StreamName: stream, PartitionKey: 'k', ExplicitHashKey: '0', Data: Buffer.from('first').toString('base64') })
  const { Shards } = await call('ListShards', { StreamName: stream })
  const summary = await call('DescribeStreamSummary', { StreamName: stream })
  const registered = await call('RegisterStreamConsumer', { StreamARN: summary.StreamDescriptionSummary.StreamARN, ConsumerName: 'conformance' })
  // A consumer is CREATING a moment, as on AWS; clients poll until it is ACTIVE.
  while ((await call('DescribeStreamConsumer', { ConsumerARN: registered.Consumer.ConsumerARN })).ConsumerDescription.ConsumerStatus !== 'ACTIVE') {
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    stream,
    streamArn: summary.StreamDescriptionSummary.StreamARN,
    account: '000000000000',
    seq0: put.SequenceNumber,
    shard0: { start: Shards[0].HashKeyRange.StartingHashKey, end: Shards[0].HashKeyRange.EndingHashKey },
    consumerArn: registered.Consumer.ConsumerARN,
  }
}

const passes = [
  { relay: open, version: 'HTTP/1.1', keys: false },
  { relay: open, version: 'HTTP/2', keys: false },
  { relay: keyed, version: 'HTTP/1.1', keys: true },
  { relay: keyed, version: 'HTTP/2', keys: true },
] as const
const fixtures = new Map([[open, await fixtureOf(open.httpPort, null)], [keyed, await fixtureOf(keyed.httpPort, sdkSigner(keyed.httpPort, 'HTTP/1.1'))]])

for (const { relay, version, keys } of passes) {
  t.test(`over ${version}${keys ? ', with access keys, every request signed by the AWS SDK\'s signer' : ''}`, async (t) => {
    const wire = version === 'HTTP/1.1' ? http1(relay.httpPort) : http2Wire(relay.httpPort)
    const sign = keys ? sdkSigner(relay.httpPort, version) : null
    const fixture = fixtures.get(relay)!
    t.teardown(() => wire.close())
    for (const [name, rows] of CLASSES.filter(([, r]) => r.length > 0)) {
      await t.test(`class ${name}: ${rows.length} rows`, async (t) => {
        for (const row of rows) {
          if (row.only && row.only.version !== version) {
            t.pass(`${row.name} [only over ${row.only.version}: ${row.only.why}]`, { skip: true } as never)
            continue
          }
          for (const protocol of 'action' in row.request ? (['json', 'cbor'] as const) : [null]) {
            const answer = await sendRow(wire, row, fixture, protocol, row.signing ? sdkSigner(relay.httpPort, version, row.signing) : row.unsigned ? null : sign)
            const found = problems(row, answer, fixture, protocol, keys)
            const label = `${row.name}${protocol ? ` [${protocol === 'json' ? 'JSON 1.1' : 'CBOR 1.1'}]` : ''}`
            if (found.length) t.fail(label, { problems: found, source: row.source })
            else t.pass(label)
          }
        }
      })
    }
  })
}
