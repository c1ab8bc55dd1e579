import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { openRecordSink, SplunkSink } from '../../relay/delivery/sinks/index.js'
import type { OutputRecord, RecordBatch, SplunkTarget } from '../../relay/delivery/types.js'
import { freePort } from '../helpers/relay.js'

const never = new AbortController().signal
const TOKEN = '11111111-2222-3333-4444-555555555555'

function record(i: number, data: string): OutputRecord {
  return { shardId: 'shardId-000000000000', sequenceNumber: String(1000 + i), partitionKey: 'p', arrivalMs: 1_700_000_000_000 + i * 1_500, data: Buffer.from(data), partitionKeys: {} }
}

function batch(recs: OutputRecord[], deliveryStream = 'logs'): RecordBatch {
  return { deliveryStream, shardId: recs[0]!.shardId, firstSequence: recs[0]!.sequenceNumber, lastSequence: recs.at(-1)!.sequenceNumber, records: recs, sourceArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/logs' }
}

interface Seen { url: string; headers: http.IncomingHttpHeaders; body: string }

/** A HEC stand-in on a free port: checks the token, then answers HEC's `{"text","code"}` with `answers` in turn. */
async function hec(t: Test, answers: Array<[status: number, code: number, text: string]>): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      if (req.headers.authorization !== `Splunk ${TOKEN}`) return res.writeHead(403).end(JSON.stringify({ text: 'Invalid token', code: 4 }))
      const [status, code, text] = answers[Math.min(seen.length - 1, answers.length - 1)]!
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ text, code }))
    })
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

function target(url: string, extra: Partial<SplunkTarget> = {}): SplunkTarget {
  return { type: 'splunk', url, token: TOKEN, endpointType: 'Event', source: 'tributary', sourcetype: '_json', index: 'main', timeoutMs: 5_000, ...extra }
}

function sink(t: Test, tgt: SplunkTarget, deliveryStream = 'logs'): SplunkSink {
  const s = new SplunkSink(tgt, { deliveryStream })
  t.teardown(() => s.close())
  return s
}

/** HEC's event endpoint takes JSON objects one after another: split them back. */
function events(body: string): unknown[] {
  const out: unknown[] = []
  let depth = 0, start = 0, inString = false
  for (let i = 0; i < body.length; i++) {
    const c = body[i]
    if (inString) { if (c === '\\') i++; else if (c === '"') inString = false; continue }
    if (c === '"') inString = true
    else if (c === '{') { if (depth++ === 0) start = i }
    else if (c === '}' && --depth === 0) out.push(JSON.parse(body.slice(start, i + 1)))
  }
  return out
}

t.test('Event: records go to /services/collector/event as concatenated event objects with the token and a channel', async (t) => {
  const server = await hec(t, [[200, 0, 'Success']])
  await sink(t, target(server.url)).deliver(batch([record(0, '{"user":"ann","n":1}'), record(1, 'a plain log line'), record(2, '[1,2]')]), never)
  const seen = server.seen[0]!
  t.equal(seen.url, '/services/collector/event')
  t.equal(seen.headers.authorization, `Splunk ${TOKEN}`)
  t.match(seen.headers['x-splunk-request-channel'], /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.same(events(seen.body), [
    { time: 1_700_000_000, event: { user: 'ann', n: 1 }, source: 'tributary', sourcetype: '_json', index: 'main' },
    { time: 1_700_000_001.5, event: 'a plain log line', source: 'tributary', sourcetype: '_json', index: 'main' },
    { time: 1_700_000_003, event: [1, 2], source: 'tributary', sourcetype: '_json', index: 'main' },
  ], 'JSON records are events as they are; other records are their text')
})

t.test('the channel is the same for a delivery stream across sinks (restarts) and differs between delivery streams', async (t) => {
  const server = await hec(t, [[200, 0, 'Success']])
  await sink(t, target(server.url), 'logs').deliver(batch([record(0, 'x')]), never)
  await sink(t, target(server.url), 'logs').deliver(batch([record(1, 'y')]), never)
  await sink(t, target(server.url), 'audit').deliver(batch([record(2, 'z')]), never)
  const channels = server.seen.map((s) => s.headers['x-splunk-request-channel'])
  t.equal(channels[0], channels[1])
  t.not(channels[0], channels[2])
})

t.test('Raw: the records\' bytes, newline-separated, to /services/collector/raw with source, sourcetype and index in the query', async (t) => {
  const server = await hec(t, [[200, 0, 'Success']])
  await sink(t, target(server.url + '/', { endpointType: 'Raw', index: undefined })).deliver(batch([record(0, 'line one'), record(1, 'line two\n'), record(2, '{"j":1}')]), never)
  const seen = server.seen[0]!
  const url = new URL(seen.url, 'http://x')
  t.equal(url.pathname, '/services/collector/raw')
  t.same(Object.fromEntries(url.searchParams), { source: 'tributary', sourcetype: '_json' })
  t.equal(seen.body, 'line one\nline two\n{"j":1}\n')
})

t.test('HEC codes: 4 (invalid token) is not retryable, 9 (server busy) is, and each carries HEC\'s text', async (t) => {
  const wrong = await hec(t, [[200, 0, 'Success']])
  const bad = await openRecordSink(target(wrong.url, { token: 'not-the-token' }), { deliveryStream: 'logs', region: 'us-east-1', accountId: '0' }).deliver(batch([record(0, 'x')]), never).catch((e: unknown) => e)
  t.match(bad, { name: 'DeliveryError', code: 'Splunk.InvalidToken', retryable: false, message: /403 code 4: Invalid token/ })

  const busy = await hec(t, [[503, 9, 'Server is busy'], [200, 0, 'Success']])
  const s = sink(t, target(busy.url))
  t.match(await s.deliver(batch([record(0, 'x')]), never).catch((e: unknown) => e), { code: 'Splunk.ServerError', retryable: true, message: /code 9: Server is busy/ })
  await s.deliver(batch([record(0, 'x')]), never)
  t.equal(busy.seen.length, 2, 'the retry went through')

  for (const [status, code, expected, retryable] of [[400, 7, 'Splunk.InvalidIndex', false], [403, 1, 'Splunk.DisabledToken', false], [400, 6, 'Splunk.InvalidDataFormat', false], [500, 8, 'Splunk.ServerError', true]] as const) {
    const server = await hec(t, [[status, code, 'no']])
    t.match(await sink(t, target(server.url)).deliver(batch([record(0, 'x')]), never).catch((e: unknown) => e), { code: expected, retryable }, `code ${code}`)
  }
})

t.test('a 200 without a HEC status, or a HEC that is not there, fails', async (t) => {
  const server = http.createServer((_, res) => res.writeHead(200).end('<html>proxy</html>'))
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  t.match(await sink(t, target(`http://127.0.0.1:${port}`)).deliver(batch([record(0, 'x')]), never).catch((e: unknown) => e), { code: 'Splunk.InvalidResponse', retryable: false })
  const gone = await freePort()
  t.match(await sink(t, target(`http://127.0.0.1:${gone}`)).deliver(batch([record(0, 'x')]), never).catch((e: unknown) => e), { code: 'Splunk.ConnectionFailed', retryable: true })
})
