import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { writeFileSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { HttpEndpointSink, openRecordSink } from '../../relay/delivery/sinks/index.js'
import type { HttpTarget, OutputRecord, RecordBatch } from '../../relay/delivery/types.js'
import { freePort } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const never = new AbortController().signal
const context = { deliveryStream: 'clicks', region: 'us-east-1', accountId: '000000000000' }
const SOURCE_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/clicks'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function records(n: number, from = 0): OutputRecord[] {
  return Array.from({ length: n }, (_, k) => ({
    shardId: 'shardId-000000000003', sequenceNumber: String(49_600_000_000n + BigInt(from + k)), partitionKey: 'p',
    arrivalMs: 1_700_000_000_000 + from + k, data: Buffer.from(JSON.stringify({ click: from + k })), partitionKeys: {},
  }))
}

function batch(recs: OutputRecord[]): RecordBatch {
  return { deliveryStream: 'clicks', shardId: recs[0]!.shardId, firstSequence: recs[0]!.sequenceNumber, lastSequence: recs.at(-1)!.sequenceNumber, records: recs, sourceArn: SOURCE_ARN }
}

interface Seen { headers: http.IncomingHttpHeaders; raw: Buffer; body: { requestId: string; timestamp: number; records: Array<{ data: string }> } }
type Answer = (seen: Seen, res: http.ServerResponse) => void

const ok: Answer = (seen, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: seen.body.requestId, timestamp: Date.now() }))

/** A Firehose-style endpoint on a free loopback port: records what it was sent, answers with `answers` in turn (the last one repeats). */
async function endpoint(t: Test, answers: Answer[], tls?: { key: Buffer; cert: Buffer }): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
      const s: Seen = { headers: req.headers, raw, body: JSON.parse(text.toString('utf8')) }
      seen.push(s)
      answers[Math.min(seen.length - 1, answers.length - 1)]!(s, res)
    })
  }
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler)
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}/ingest?tenant=a`, seen }
}

function target(url: string, extra: Partial<HttpTarget> = {}): HttpTarget {
  return { type: 'http', url, name: 'collector', contentEncoding: 'NONE', commonAttributes: {}, timeoutMs: 5_000, ...extra }
}

function sink(t: Test, tgt: HttpTarget, options = {}): HttpEndpointSink {
  const s = new HttpEndpointSink(tgt, options)
  t.teardown(() => s.close())
  return s
}

t.test('a batch is POSTed with every Firehose header and the records base64 in the JSON body', async (t) => {
  const ep = await endpoint(t, [ok])
  const s = sink(t, target(ep.url, { accessKey: 'secret-key', commonAttributes: { env: 'test', team: 'data' } }), { now: () => 1_712_345_678_901 })
  const recs = records(3)
  await s.deliver(batch(recs), never)

  t.equal(ep.seen.length, 1)
  const { headers, body } = ep.seen[0]!
  t.equal(headers['x-amz-firehose-protocol-version'], '1.0')
  t.match(headers['x-amz-firehose-request-id'], UUID, 'the request id is a (name-based) UUID')
  t.equal(body.requestId, headers['x-amz-firehose-request-id'], 'the body names the same request id')
  t.equal(headers['x-amz-firehose-source-arn'], SOURCE_ARN)
  t.equal(headers['x-amz-firehose-access-key'], 'secret-key')
  t.same(JSON.parse(String(headers['x-amz-firehose-common-attributes'])), { commonAttributes: { env: 'test', team: 'data' } })
  t.equal(headers['content-type'], 'application/json')
  t.equal(headers['content-encoding'], undefined, 'no Content-Encoding without compression')
  t.equal(Number(headers['content-length']), ep.seen[0]!.raw.length)
  t.equal(body.timestamp, 1_712_345_678_901)
  t.same(body.records.map((r) => Buffer.from(r.data, 'base64').toString()), recs.map((r) => r.data.toString()))
})

t.test('without an access key or common attributes those headers are absent', async (t) => {
  const ep = await endpoint(t, [ok])
  await sink(t, target(ep.url)).deliver(batch(records(1)), never)
  t.equal(ep.seen[0]!.headers['x-amz-firehose-access-key'], undefined)
  t.equal(ep.seen[0]!.headers['x-amz-firehose-common-attributes'], undefined)
})

t.test('a 500 is a retryable failure, and the retry (even from a restarted relay) carries the same request id', async (t) => {
  const fail: Answer = (_, res) => res.writeHead(500).end('{"errorMessage":"down for a moment"}')
  const ep = await endpoint(t, [fail, ok])
  const b = batch(records(4))
  const first = await sink(t, target(ep.url)).deliver(b, never).catch((e: unknown) => e)
  t.match(first, { name: 'DeliveryError', code: 'HttpEndpoint.DestinationException', retryable: true, message: /500.*down for a moment/ })
  await sink(t, target(ep.url)).deliver(b, never)
  t.equal(ep.seen.length, 2)
  t.equal(ep.seen[1]!.headers['x-amz-firehose-request-id'], ep.seen[0]!.headers['x-amz-firehose-request-id'])
  await sink(t, target(ep.url)).deliver(batch(records(4, 4)), never)
  t.not(ep.seen[2]!.headers['x-amz-firehose-request-id'], ep.seen[0]!.headers['x-amz-firehose-request-id'], 'another batch has another id')
})

t.test('statuses other than 200 fail; only 5xx, 429 and 408 are worth retrying', async (t) => {
  for (const [status, retryable] of [[400, false], [401, false], [413, false], [202, false], [429, true], [408, true], [503, true]] as const) {
    const ep = await endpoint(t, [(_, res) => res.writeHead(status).end()])
    const err = await sink(t, target(ep.url)).deliver(batch(records(1)), never).catch((e: unknown) => e)
    t.match(err, { code: 'HttpEndpoint.DestinationException', retryable }, `${status}`)
  }
})

t.test('a 200 whose body does not name the request id is an invalid response', async (t) => {
  const cases: Array<[string, Answer]> = [
    ['another request id', (_, res) => res.writeHead(200).end(JSON.stringify({ requestId: '00000000-0000-5000-8000-000000000000', timestamp: 1 }))],
    ['no request id', (_, res) => res.writeHead(200).end('{}')],
    ['not JSON', (_, res) => res.writeHead(200).end('OK')],
  ]
  for (const [name, answer] of cases) {
    const ep = await endpoint(t, [answer])
    const err = await sink(t, target(ep.url)).deliver(batch(records(1)), never).catch((e: unknown) => e)
    t.match(err, { code: 'HttpEndpoint.InvalidResponseFromDestination', retryable: false }, name)
  }
})

t.test('a response is not read past 1 MiB', async (t) => {
  // Two MiB and never ended: the sink answers from the first MiB rather than waiting for a timeout.
  const ep = await endpoint(t, [(_, res) => { res.writeHead(200); res.write(Buffer.alloc(2 * 1024 * 1024, 0x20)) }])
  const err = await sink(t, target(ep.url, { timeoutMs: 20_000 })).deliver(batch(records(1)), never).catch((e: unknown) => e)
  t.match(err, { code: 'HttpEndpoint.InvalidResponseFromDestination', message: /longer than 1048576/ })
})

t.test('GZIP sends a gzip body with Content-Encoding: gzip', async (t) => {
  const ep = await endpoint(t, [ok])
  const recs = records(50)
  await sink(t, target(ep.url, { contentEncoding: 'GZIP' })).deliver(batch(recs), never)
  const seen = ep.seen[0]!
  t.equal(seen.headers['content-encoding'], 'gzip')
  t.equal(seen.raw[0], 0x1f, 'the bytes on the wire are gzip')
  t.equal(seen.body.records.length, 50)
  t.equal(Buffer.from(seen.body.records[49]!.data, 'base64').toString(), '{"click":49}')
})

t.test('a batch over the request size cap goes in several requests, in order, each with its own stable id', async (t) => {
  const ep = await endpoint(t, [ok])
  const recs = records(100)
  const cap = 1_000
  await sink(t, target(ep.url), { maxRequestBytes: cap }).deliver(batch(recs), never)
  t.ok(ep.seen.length > 1, `${ep.seen.length} requests`)
  for (const s of ep.seen) t.ok(s.raw.length <= cap, `a body of ${s.raw.length} bytes`)
  t.same(ep.seen.flatMap((s) => s.body.records.map((r) => Buffer.from(r.data, 'base64').toString())), recs.map((r) => r.data.toString()))
  const ids = ep.seen.map((s) => s.body.requestId)
  t.equal(new Set(ids).size, ids.length, 'the ids differ')
  const again = ep.seen.length
  await sink(t, target(ep.url), { maxRequestBytes: cap }).deliver(batch(recs), never)
  t.same(ep.seen.slice(again).map((s) => s.body.requestId), ids, 'a redelivery repeats them')
})

t.test('an endpoint that does not answer in time, or is not there, is a retryable failure', async (t) => {
  const ep = await endpoint(t, [() => { /* never answers */ }])
  const slow = await sink(t, target(ep.url, { timeoutMs: 300 })).deliver(batch(records(1)), never).catch((e: unknown) => e)
  t.match(slow, { code: 'HttpEndpoint.RequestTimeout', retryable: true })
  const port = await freePort()
  const gone = await openRecordSink(target(`http://127.0.0.1:${port}/`), context).deliver(batch(records(1)), never).catch((e: unknown) => e)
  t.match(gone, { code: 'HttpEndpoint.ConnectionFailed', retryable: true })
})

t.test('an abort stops the request', async (t) => {
  const ep = await endpoint(t, [() => { /* never answers */ }])
  const controller = new AbortController()
  const pending = sink(t, target(ep.url, { timeoutMs: 30_000 })).deliver(batch(records(1)), controller.signal).catch((e: unknown) => e)
  setTimeout(() => controller.abort(), 50)
  t.match(await pending, { code: 'HttpEndpoint.Aborted', retryable: true })
})

t.test('https:// is verified: a private CA works when named in caFile, and fails verification otherwise', async (t) => {
  const dir = tempDir(t)
  const file = (name: string) => join(dir, name)
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=Tributary Test CA'])
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  run(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'), '-days', '1', '-extfile', file('ext.cnf')])
  const ep = await endpoint(t, [ok], { key: readFileSync(file('server.key')), cert: readFileSync(file('server.pem')) })

  await sink(t, target(ep.url, { caFile: file('ca.pem') })).deliver(batch(records(2)), never)
  t.equal(ep.seen.length, 1, 'delivered over TLS with the CA file')
  const err = await sink(t, target(ep.url)).deliver(batch(records(2)), never).catch((e: unknown) => e)
  t.match(err, { code: 'HttpEndpoint.SSLHandshakeFailure', retryable: false }, 'without it the certificate does not verify')
  t.equal(ep.seen.length, 1, 'and nothing was sent')
})
