/**
 * The HTTP port's smaller holes (issue 11, medium 5 and the low items): metric series minted by a
 * header, SigV4 signatures that leave the action or the body unsigned or name another region, and
 * requests that made a handler fail with a 500 where a 400 is due. Each is tried against a real
 * relay on loopback.
 */
import t from 'tap'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import { Hash } from '@smithy/core/serde'
import { CreateStreamCommand, KinesisClient } from '@aws-sdk/client-kinesis'
import { ACTIONS } from '../../relay/kinesis/actions/index.js'
import { testRelay } from '../helpers/relay.js'

const KEY = { accessKeyId: 'AKIDINPUT', secretAccessKey: 'input-secret' }
const AMZ_JSON = 'application/x-amz-json-1.1'

/** Signs a Kinesis call with the SDK's own signer; `unsigned` headers are added after signing, as a client that signs only some headers would. */
async function signed(endpoint: string, action: string, body: object, o: { region?: string; unsignable?: string[]; extra?: Record<string, string> } = {}) {
  const url = new URL(endpoint)
  const request = new HttpRequest({
    method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/',
    headers: { host: url.host, 'content-type': AMZ_JSON, 'x-amz-target': `Kinesis_20131202.${action}`, ...o.extra },
    body: JSON.stringify(body),
  })
  const signer = new SignatureV4({ credentials: KEY, region: o.region ?? 'us-east-1', service: 'kinesis', sha256: Hash.bind(null, 'sha256') })
  const out = await signer.sign(request, { unsignableHeaders: new Set(o.unsignable ?? []) })
  return { headers: out.headers as Record<string, string>, body: out.body as string }
}

const post = async (endpoint: string, r: { headers: Record<string, string>; body: string }) => {
  const res = await fetch(`${endpoint}/`, { method: 'POST', headers: r.headers, body: r.body })
  // An action without output answers with an empty body, as AWS's do.
  const text = await res.text()
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> }
}

const series = async (endpoint: string) => (await (await fetch(`${endpoint}/metrics`)).text()).split('\n').filter((l) => l && !l.startsWith('#'))

t.test('2,000 unique X-Amz-Target values do not grow /metrics, with or without access keys', async (t) => {
  for (const accessKeys of [[], [KEY]]) {
    const relay = await testRelay(t, { accessKeys })
    const target = (i: number) => `Kinesis_20131202.Made${i}Up`
    // One request of each outcome first, so the series a relay legitimately has already exist.
    await fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': target(-1) }, body: '{}' })
    const before = await series(relay.endpoint)
    for (let i = 0; i < 2000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': target(i + j) }, body: '{}' }).then((r) => r.arrayBuffer())))
    }
    const after = await series(relay.endpoint)
    const names = (lines: string[]) => lines.map((l) => l.replace(/ \S+$/, '')).sort()
    t.same(names(after), names(before), `${accessKeys.length ? 'with' : 'without'} access keys: the same series, only their counts moved`)
    t.notOk(after.some((l) => l.includes('Made')), 'no made-up action is a label')
    if (accessKeys.length) t.notOk(after.some((l) => l.startsWith('tributary_api_requests_total')), 'unauthenticated requests make no per-action series')
    else t.ok(after.some((l) => /tributary_api_requests_total\{action="unknown",outcome="UnknownOperationException"\} 2001/.test(l)), 'they are counted under one "unknown" label')
  }
})

t.test('a captured DescribeStreamSummary replayed as DeleteStream is refused, and the stream survives', async (t) => {
  const relay = await testRelay(t, { accessKeys: [KEY] })
  const sdk = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY })
  t.teardown(() => sdk.destroy())
  await sdk.send(new CreateStreamCommand({ StreamName: 'kept', ShardCount: 1 }))

  // A client that signs only host and x-amz-date (the capture): the target rides unsigned.
  const captured = await signed(relay.endpoint, 'DescribeStreamSummary', { StreamName: 'kept' }, { unsignable: ['x-amz-target', 'content-type'] })
  t.notMatch(captured.headers.authorization, /x-amz-target/, 'the capture does not sign the target')
  const replay = await post(relay.endpoint, { ...captured, headers: { ...captured.headers, 'x-amz-target': 'Kinesis_20131202.DeleteStream' } })
  t.equal(replay.status, 400)
  t.match(replay.json, { __type: 'InvalidSignatureException', message: /'x-amz-target' must be a 'SignedHeader'/ })
  const asIs = await post(relay.endpoint, captured)
  t.equal(asIs.status, 400, 'so is the capture itself: a signature must cover its action')

  // The SDK's way (target signed): a changed target breaks the signature.
  const proper = await signed(relay.endpoint, 'DescribeStreamSummary', { StreamName: 'kept' })
  t.equal((await post(relay.endpoint, proper)).status, 200, 'the properly signed call is served')
  const swapped = await post(relay.endpoint, { ...proper, headers: { ...proper.headers, 'x-amz-target': 'Kinesis_20131202.DeleteStream' } })
  t.match(swapped.json, { __type: 'InvalidSignatureException' })

  const still = await post(relay.endpoint, await signed(relay.endpoint, 'DescribeStreamSummary', { StreamName: 'kept' }))
  t.match(still.json, { StreamDescriptionSummary: { StreamName: 'kept', StreamStatus: 'ACTIVE' } }, 'the stream is still there')
})

t.test('UNSIGNED-PAYLOAD, an unsigned x-amz-content-sha256 and another region are refused', async (t) => {
  const relay = await testRelay(t, { accessKeys: [KEY] })
  const unsignedPayload = await signed(relay.endpoint, 'ListStreams', {}, { extra: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })
  t.match(unsignedPayload.headers.authorization, /x-amz-content-sha256/, 'the literal is signed, as SigV4 allows')
  t.match((await post(relay.endpoint, unsignedPayload)).json, { __type: 'InvalidSignatureException', message: /UNSIGNED-PAYLOAD/ })

  const body = JSON.stringify({})
  const { createHash } = await import('node:crypto')
  const hashLeftOut = await signed(relay.endpoint, 'ListStreams', {}, { unsignable: ['x-amz-content-sha256'], extra: { 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex') } })
  t.match((await post(relay.endpoint, hashLeftOut)).json, { __type: 'InvalidSignatureException', message: /'x-amz-content-sha256' must be a 'SignedHeader'/ })

  const elsewhere = await post(relay.endpoint, await signed(relay.endpoint, 'ListStreams', {}, { region: 'eu-west-1' }))
  t.equal(elsewhere.status, 400)
  t.match(elsewhere.json, { __type: 'InvalidSignatureException', message: /scoped to a valid region, not 'eu-west-1'/ })
  t.equal((await post(relay.endpoint, await signed(relay.endpoint, 'ListStreams', {}))).status, 200, 'the relay\'s own region is served')
})

t.test('null members anywhere in a request body are a 400, never a 500, for every action', async (t) => {
  const relay = await testRelay(t)
  await fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': 'Kinesis_20131202.CreateStream' }, body: JSON.stringify({ StreamName: 'n', ShardCount: 1 }) })
  const arn = 'arn:aws:kinesis:us-east-1:000000000000:stream/n'
  const holes: object[] = [
    { Records: [null] }, { Records: [{ Data: null, PartitionKey: null }] }, { Records: [{}, null] },
    { Tags: { a: null } }, { Tags: null }, { TagKeys: [null] }, { ShardLevelMetrics: [null] },
    { ShardFilter: { Type: null } }, { ShardFilter: null }, { StreamModeDetails: { StreamMode: null } }, { StreamModeDetails: null },
    { StartingPosition: null }, { StartingPosition: { Type: null } }, { ConsumerARN: null },
    { StreamName: null, ShardCount: null }, { ShardToSplit: null, NewStartingHashKey: null }, { ShardIterator: null },
  ]
  const res = await fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': 'Kinesis_20131202.PutRecords' }, body: JSON.stringify({ StreamName: 'n', Records: [null] }) })
  t.equal(res.status, 400)
  t.match(await res.json(), { __type: 'ValidationException', message: /Value null at 'records\.1\.member' failed to satisfy constraint: Member must not be null/ })

  let checked = 0
  const failures: string[] = []
  // DeleteStream would take the stream the others need (it has no list or map to hold a null).
  for (const action of Object.keys(ACTIONS).filter((a) => a !== 'DeleteStream')) {
    for (const hole of holes) {
      for (const named of [{}, { StreamName: 'n' }, { StreamARN: arn }]) {
        const res = await fetch(`${relay.endpoint}/`, { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': `Kinesis_20131202.${action}` }, body: JSON.stringify({ ...named, ...hole }) })
        const text = await res.text()
        if (res.status >= 500 || /InternalFailure/.test(text)) failures.push(`${action} ${JSON.stringify({ ...named, ...hole })}: ${res.status} ${text}`)
        checked++
      }
    }
  }
  t.same(failures, [], `${checked} requests with null members, none answered with a 500`)
})

t.test('a path with broken percent-encoding is a 400', async (t) => {
  const relay = await testRelay(t)
  const res = await fetch(`${relay.endpoint}/admin/devices/%E0%A4%A`, { method: 'DELETE', headers: { authorization: `Bearer ${relay.adminToken}` } })
  t.equal(res.status, 400)
  t.match(await res.json(), { code: 'REQUEST_INVALID', message: /percent-encoding/ })
})
