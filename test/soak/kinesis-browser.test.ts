/**
 * The AWS SDK for JavaScript in a real browser against the relay, across origins: headless Chromium
 * (Debian's `chromium`, driven by playwright-core, kept off the network) loads a page from a plain
 * HTTP server on its own port, with `@aws-sdk/client-kinesis` bundled for the browser by esbuild
 * when the test runs, and every SDK call goes to the relay on another port, so the browser sends
 * CORS preflights and reads only the headers the relay exposes. Against an open relay (the SDK still
 * signs, with dummy credentials) and a keyed one: ListStreams, CreateStream waited ACTIVE, PutRecord
 * of binary data read back byte for byte through GetShardIterator and GetRecords, a missing stream's
 * ResourceNotFoundException, and on the keyed relay a wrong secret's InvalidSignatureException and
 * an unknown key's UnrecognizedClientException, each as the SDK surfaces it in the page.
 * Soak tier (a browser, tens of seconds): `npm run test:soak`.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import { chromiumMissing, launchChromium } from '../helpers/browser.js'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import type { ClientSettings, CommandName, Outcome } from './kinesis-browser-page.js'

const PAGE_ENTRY = fileURLToPath(new URL('./kinesis-browser-page.ts', import.meta.url))
const KEY = { accessKeyId: 'AKIDBROWSERKINESIS', secretAccessKey: 'browser-kinesis-secret' }
/** What the SDK signs with when the relay asks for no keys (it signs every request all the same). */
const DUMMY = { accessKeyId: 'AKIDANYONE', secretAccessKey: 'anything' }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const MSG_SIGNATURE = 'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
const MSG_UNKNOWN_KEY = 'The security token included in the request is invalid.'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

declare const window: { kinesis(settings: ClientSettings, command: CommandName, input: Record<string, unknown>): Promise<Outcome> }

interface Exchange { method: string; url: string; status: number; requestHeaders: Record<string, string>; headers: Record<string, string> }

/** The page's script: the SDK and the entry, bundled for the browser as one ES module. */
async function bundle(): Promise<string> {
  const out = await build({
    entryPoints: [PAGE_ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
  })
  return out.outputFiles[0]!.text
}

/** The page's origin: a plain HTTP server on its own port, serving the page and its script. */
async function pageServer(t: Test, script: string): Promise<string> {
  const html = '<!doctype html><meta charset="utf-8"><title>Kinesis in the browser</title><script type="module" src="/page.js"></script>\n'
  const server = createServer((req, res) => {
    const [type, body] = req.url === '/' ? ['text/html; charset=utf-8', html] : req.url === '/page.js' ? ['text/javascript; charset=utf-8', script] : [null, 'not found']
    res.writeHead(type ? 200 : 404, { 'content-type': type ?? 'text/plain' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The CORS preflights the page's requests caused, each with its answer, as Chromium reports them. */
async function preflightsOf(page: Page): Promise<Exchange[]> {
  const cdp = await page.context().newCDPSession(page)
  const asked = new Map<string, { method: string; url: string; requestHeaders: Record<string, string> }>()
  const answered: Exchange[] = []
  const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]))
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.initiator.type === 'preflight') asked.set(e.requestId, { method: e.request.method, url: e.request.url, requestHeaders: lower(e.request.headers) })
  })
  cdp.on('Network.responseReceived', (e) => {
    const request = asked.get(e.requestId)
    if (request) answered.push({ ...request, status: e.response.status, headers: lower(e.response.headers) })
  })
  await cdp.send('Network.enable')
  return answered
}

t.test('the AWS SDK in a browser page lists, creates, puts and gets binary records on the relay across origins', { skip: chromiumMissing }, async (t) => {
  const dir = tempDir(t)
  const origin = await pageServer(t, await bundle())
  const open = await testRelay(t, { httpHost: '127.0.0.1' })
  const keyed = await testRelay(t, { accessKeys: [KEY], httpHost: '127.0.0.1' })

  const context = await launchChromium(t, dir)
  const page: Page = await context.newPage()
  const exchanges: Exchange[] = []
  const pending = new Set<Promise<void>>()
  page.on('response', (r) => {
    const read = Promise.all([r.request().allHeaders(), r.allHeaders()]).then(([requestHeaders, headers]) => {
      exchanges.push({ method: r.request().method(), url: r.url(), status: r.status(), requestHeaders, headers })
    }, () => {}).finally(() => pending.delete(read))
    pending.add(read)
  })
  // Playwright leaves CORS preflights out of its request events; Chromium's DevTools protocol reports
  // them (initiator preflight), so they are read from a CDP session of the page.
  const preflights = await preflightsOf(page)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(`${origin}/`)
  await page.waitForFunction(() => typeof window.kinesis === 'function')

  const run = (settings: ClientSettings, command: CommandName, input: Record<string, unknown> = {}) =>
    page.evaluate(([s, c, i]) => window.kinesis(s, c, i), [settings, command, input] as const)
  const ok = async (settings: ClientSettings, command: CommandName, input: Record<string, unknown> = {}): Promise<{ output: any; requestId: string | undefined }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const o = await run(settings, command, input)
    if (!o.ok) throw new Error(`${command} failed in the page: ${o.error.name}: ${o.error.message}`)
    return o
  }

  for (const [name, relay, credentials] of [['open', open, DUMMY], ['keyed', keyed, KEY]] as const) {
    await t.test(`against the ${name} relay`, async (t) => {
      const client: ClientSettings = { endpoint: relay.endpoint, ...credentials }
      const stream = `browser-${name}`

      const before = await ok(client, 'ListStreams')
      t.same(before.output.StreamNames, [], 'ListStreams answers an empty list')
      t.match(before.requestId, UUID, 'the page reads x-amzn-RequestId from a cross-origin answer ($metadata.requestId)')

      await ok(client, 'CreateStream', { StreamName: stream, ShardCount: 1 })
      const deadline = Date.now() + 30_000
      let status: unknown
      while ((status = (await ok(client, 'DescribeStreamSummary', { StreamName: stream })).output.StreamDescriptionSummary.StreamStatus) !== 'ACTIVE') {
        if (Date.now() > deadline) throw new Error(`${stream} is not ACTIVE within 30 s (${String(status)})`)
        await sleep(200)
      }
      t.pass('CreateStream, then DescribeStreamSummary until ACTIVE')
      t.same((await ok(client, 'ListStreams')).output.StreamNames, [stream], 'ListStreams lists it')

      // Every byte value, then bytes that are not UTF-8 (a lone continuation byte, an overlong NUL).
      const data = [...Array.from({ length: 256 }, (_, i) => i), 0x80, 0xc0, 0x80, 0xff, 0x00]
      const put = await ok(client, 'PutRecord', { StreamName: stream, PartitionKey: 'pk-1', Data: data })
      t.match(put.output, { ShardId: 'shardId-000000000000', SequenceNumber: /^\d+$/ }, 'PutRecord answers the shard and a sequence number')
      t.match(put.requestId, UUID, 'with a request id')

      const iterator = await ok(client, 'GetShardIterator', { StreamName: stream, ShardId: put.output.ShardId, ShardIteratorType: 'TRIM_HORIZON' })
      const got = await ok(client, 'GetRecords', { ShardIterator: iterator.output.ShardIterator })
      t.equal(got.output.Records.length, 1, 'GetRecords reads the one record')
      const record = got.output.Records[0]
      t.same(record.Data, data, 'its data byte for byte')
      t.equal(record.SequenceNumber, put.output.SequenceNumber, 'at the sequence number PutRecord answered')
      t.equal(record.PartitionKey, 'pk-1', 'with its partition key')
      t.match(record.ApproximateArrivalTimestamp, /^\d{4}-\d\d-\d\dT/, 'and an arrival time the SDK parsed into a Date')

      const missing = await run(client, 'DescribeStream', { StreamName: 'no-such-stream' })
      t.match(missing, { ok: false, error: { name: 'ResourceNotFoundException', message: /no-such-stream.* not found\.$/, status: 400, requestId: UUID } },
        'a missing stream is ResourceNotFoundException, read by the page from a cross-origin 400')

      if (name === 'keyed') {
        const wrongSecret = await run({ ...client, secretAccessKey: 'not-the-secret' }, 'ListStreams')
        t.match(wrongSecret, { ok: false, error: { name: 'InvalidSignatureException', message: MSG_SIGNATURE, status: 400, requestId: UUID } },
          'a wrong secret is InvalidSignatureException with AWS\'s message')
        const unknownKey = await run({ ...client, accessKeyId: 'AKIDNOBODYKNOWS' }, 'ListStreams')
        t.match(unknownKey, { ok: false, error: { name: 'UnrecognizedClientException', message: MSG_UNKNOWN_KEY, status: 400, requestId: UUID } },
          'an unknown key is UnrecognizedClientException with AWS\'s message')
      }

      // What the browser saw on the wire (from playwright, on the Node side).
      await Promise.all(pending)
      const toRelay = exchanges.filter((x) => x.url.startsWith(`${relay.endpoint}/`))
      const answered = preflights.filter((x) => x.url.startsWith(`${relay.endpoint}/`))
      t.ok(answered.length >= 1, `the browser sent CORS preflights (${answered.length})`)
      t.ok(answered.every((x) => x.method === 'OPTIONS' && x.status === 200 && x.headers['access-control-allow-origin'] === '*'), 'each an OPTIONS answered 200 with access-control-allow-origin: *')
      const preflight = answered[0]
      if (preflight) {
        const allowed = (preflight.headers['access-control-allow-headers'] ?? '').toLowerCase().split(/\s*,\s*/)
        const asked = (preflight.requestHeaders['access-control-request-headers'] ?? '').toLowerCase().split(/\s*,\s*/).filter(Boolean)
        t.ok(asked.includes('authorization') && asked.includes('x-amz-target'), `the preflight asked for the SDK's headers (${asked.join(', ')})`)
        t.same(asked.filter((h) => !allowed.includes(h)), [], 'and every header asked for is allowed')
        t.match(preflight.headers['access-control-allow-methods'] ?? '', /\bPOST\b/, 'and POST is allowed')
      }
      const posts = toRelay.filter((x) => x.method === 'POST')
      t.ok(posts.length >= 8, `the SDK's calls reached the relay as POSTs (${posts.length})`)
      t.ok(posts.every((x) => x.requestHeaders.origin === origin), `each from the page's origin ${origin}, not the relay's`)
      t.ok(posts.every((x) => x.headers['access-control-allow-origin'] === '*' && /(^|,)\s*x-amzn-requestid\s*(,|$)/i.test(x.headers['access-control-expose-headers'] ?? '')),
        'every answer, 200 or 400, allows any origin and exposes x-amzn-RequestId')
    })
  }
  t.same(pageErrors, [], 'no script error on the page')
})
