/**
 * SubscribeToShard (enhanced fan-out) through the unmodified AWS SDK over its default HTTP/2
 * handler, and through a raw HTTP/1.1 client that decodes the event stream itself.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { crc32 } from 'node:zlib'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, DeregisterStreamConsumerCommand, SubscribeToShardCommand, PutRecordsCommand, DeleteStreamCommand,
  type SubscribeToShardEventStream,
} from '@aws-sdk/client-kinesis'
import { testRelay } from '../helpers/relay.js'
import { EventStreamDecoder, type EventMessage } from '../../relay/kinesis/eventstream.js'

const SHARD0 = 'shardId-000000000000'

function sdk(t: Test, endpoint: string): KinesisClient {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  return client
}

/** A stream with one shard and an ACTIVE consumer on it. */
async function setup(client: KinesisClient, StreamName: string, ShardCount = 1): Promise<{ streamArn: string; consumerArn: string }> {
  await client.send(new CreateStreamCommand({ StreamName, ShardCount }))
  const streamArn = (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!.StreamARN!
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'efo' }))
  for (;;) {
    const d = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }))
    if (d.ConsumerDescription!.ConsumerStatus === 'ACTIVE') break
    await new Promise((r) => setTimeout(r, 100))
  }
  return { streamArn, consumerArn: Consumer!.ConsumerARN! }
}

interface Received { data: string; seq: string; at: number }

/** Reads the SDK's event stream in the background, noting when each record arrived. */
function collect(stream: AsyncIterable<SubscribeToShardEventStream>) {
  const received: Received[] = []
  const events: { continuation?: string; behind?: number; children?: unknown[] }[] = []
  const done = (async () => {
    for await (const ev of stream) {
      const e = ev.SubscribeToShardEvent
      if (!e) continue
      events.push({ continuation: e.ContinuationSequenceNumber, behind: e.MillisBehindLatest, children: e.ChildShards })
      for (const r of e.Records ?? []) received.push({ data: Buffer.from(r.Data!).toString(), seq: r.SequenceNumber!, at: Date.now() })
    }
  })()
  return { received, events, done }
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('through the SDK over HTTP/2, a subscriber receives every record written after it subscribed, in order, within a second', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-sdk')
  // Records written before the subscription are not part of a LATEST subscription.
  await client.send(new PutRecordsCommand({ StreamName: 'efo-sdk', Records: [{ PartitionKey: 'k', Data: Buffer.from('before') }] }))
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const { received, events, done } = collect(out.EventStream!)
  done.catch(() => {})

  const sent: { data: string; seq: string; at: number }[] = []
  for (let batch = 0; batch < 20; batch++) {
    const records = Array.from({ length: 25 }, (_, i) => ({ PartitionKey: `key-${i % 7}`, Data: Buffer.from(`r-${batch * 25 + i}`) }))
    const res = await client.send(new PutRecordsCommand({ StreamName: 'efo-sdk', Records: records }))
    const at = Date.now()
    res.Records!.forEach((r, i) => sent.push({ data: `r-${batch * 25 + i}`, seq: r.SequenceNumber!, at }))
    // Spread the writes out, so each batch is pushed on its own rather than found by a later read.
    await new Promise((r) => setTimeout(r, 30))
  }
  await until(() => received.length >= sent.length)
  t.same(received.map((r) => r.data), sent.map((s) => s.data), 'every record, in the order written, nothing from before')
  t.same(received.map((r) => r.seq), sent.map((s) => s.seq), 'with the sequence numbers PutRecords gave')
  const delays = received.map((r, i) => r.at - sent[i]!.at)
  const worst = Math.max(...delays)
  t.comment(`delay from PutRecords answer to receipt: worst ${worst} ms, median ${delays.sort((a, b) => a - b)[delays.length >> 1]} ms`)
  t.ok(worst < 1000, `each record arrives within a second of being acknowledged (worst ${worst} ms)`)
  const last = events[events.length - 1]!
  t.equal(last.continuation, sent[sent.length - 1]!.seq, 'ContinuationSequenceNumber is the last record delivered')
  t.equal(last.behind, 0, 'caught up: MillisBehindLatest is 0')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /^tributary_fanout_subscriptions 1$/m, '/metrics counts the open subscription')
  abort.abort()
})

t.test('a subscription from TRIM_HORIZON replays the shard, then continues live; resuming AFTER the continuation number misses nothing', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-replay')
  const put = async (from: number, n: number) => {
    await client.send(new PutRecordsCommand({ StreamName: 'efo-replay', Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: 'k', Data: Buffer.from(`r-${from + i}`) })) }))
  }
  await put(0, 300)
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } }), { abortSignal: abort.signal })
  const first = collect(out.EventStream!)
  first.done.catch(() => {})
  await until(() => first.received.length >= 300)
  await put(300, 50)
  await until(() => first.received.length >= 350)
  t.same(first.received.map((r) => r.data), Array.from({ length: 350 }, (_, i) => `r-${i}`))
  const continuation = first.events[first.events.length - 1]!.continuation!
  abort.abort()

  // Records written between the two subscriptions are delivered by the second.
  await put(350, 20)
  // A new subscription for the same consumer and shard is accepted only 5 s after the first.
  await new Promise((r) => setTimeout(r, 5100))
  const abort2 = new AbortController()
  const again = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation },
  }), { abortSignal: abort2.signal })
  const second = collect(again.EventStream!)
  second.done.catch(() => {})
  await until(() => second.received.length >= 20)
  t.same(second.received.map((r) => r.data), Array.from({ length: 20 }, (_, i) => `r-${350 + i}`))
  abort2.abort()
})

t.test('a second subscription for the same consumer and shard within 5 s is refused; after 5 s it takes over and the first ends with ResourceInUseException', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-lease', 2)
  const subscribe = (ShardId = SHARD0) => client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId, StartingPosition: { Type: 'LATEST' } }))
  const first = await subscribe()
  const firstDone = collect(first.EventStream!).done
  await t.rejects(subscribe(), { name: 'ResourceInUseException' }, 'refused within 5 s')
  const other = await subscribe('shardId-000000000001')
  t.ok(other.EventStream, 'another shard of the same consumer is independent')
  await new Promise((r) => setTimeout(r, 5100))
  const second = await subscribe()
  t.ok(second.EventStream, 'taken over after 5 s')
  await t.rejects(firstDone, { name: 'ResourceInUseException' }, 'the first subscription ends with an exception event')
  const a = collect(second.EventStream!)
  const b = collect(other.EventStream!)
  a.done.catch(() => {})
  b.done.catch(() => {})
  // Deregistering the consumer ends its subscriptions.
  await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn }))
  await t.rejects(a.done, { name: 'ResourceNotFoundException' })
  await t.rejects(b.done, { name: 'ResourceNotFoundException' })
})

t.test('errors before the stream starts are ordinary error responses', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn, streamArn } = await setup(client, 'efo-errors')
  const sub = (input: Partial<ConstructorParameters<typeof SubscribeToShardCommand>[0]>) =>
    client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' }, ...input }))
  await t.rejects(sub({ ShardId: 'shardId-000000000009' }), { name: 'ResourceNotFoundException', message: /Shard shardId-000000000009 in stream efo-errors/ })
  await t.rejects(sub({ ConsumerARN: `${streamArn}/consumer/nobody:1700000000` }), { name: 'ResourceNotFoundException' })
  await t.rejects(sub({ StartingPosition: { Type: 'AT_SEQUENCE_NUMBER' } }), { name: 'InvalidArgumentException' })
  await t.rejects(sub({ ConsumerARN: 'not-an-arn' }), { name: 'ValidationException', message: /at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern/ })
  await t.rejects(sub({ StartingPosition: { Type: 'SOMEWHERE' as 'LATEST' } }), { name: 'ValidationException', message: /startingPosition.type/ })
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'fresh' }))
  await t.rejects(sub({ ConsumerARN: Consumer!.ConsumerARN }), { name: 'ResourceInUseException', message: /not in ACTIVE state/ }, 'a CREATING consumer cannot subscribe yet')
})

t.test('deleting the stream mid-subscription ends it with a ResourceNotFoundException event', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-delete')
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }))
  const c = collect(out.EventStream!)
  await client.send(new PutRecordsCommand({ StreamName: 'efo-delete', Records: [{ PartitionKey: 'k', Data: Buffer.from('x') }] }))
  await until(() => c.received.length === 1)
  await client.send(new DeleteStreamCommand({ StreamName: 'efo-delete', EnforceConsumerDeletion: true }))
  const deleted = Date.now()
  await t.rejects(c.done, { name: 'ResourceNotFoundException' })
  t.ok(Date.now() - deleted < 2000, 'promptly, not at the next heartbeat')
})

/** SubscribeToShard over plain HTTP/1.1 with a chunked body, frames decoded here, CRCs checked independently. */
function rawSubscribe(port: number, body: object): Promise<{ status: number; headers: http.IncomingHttpHeaders; messages: EventMessage[]; frames: Buffer[]; req: http.ClientRequest; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body))
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-length': payload.length },
    }, (res) => {
      const decoder = new EventStreamDecoder()
      const messages: EventMessage[] = []
      const frames: Buffer[] = []
      let raw = Buffer.alloc(0)
      res.on('data', (chunk: Buffer) => {
        raw = Buffer.concat([raw, chunk])
        while (raw.length >= 4 && raw.length >= raw.readUInt32BE(0)) {
          frames.push(raw.subarray(0, raw.readUInt32BE(0)))
          raw = raw.subarray(raw.readUInt32BE(0))
        }
        // One byte at a time: the decoder must not care how the bytes are cut.
        for (const byte of chunk) messages.push(...decoder.push(Buffer.of(byte)))
      })
      const closed = new Promise<void>((r) => res.on('close', () => r()))
      resolve({ status: res.statusCode!, headers: res.headers, messages, frames, req, closed })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

t.test('over HTTP/1.1 the answer is a chunked application/vnd.amazon.eventstream with valid prelude and message CRCs', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-h1')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-h1', Records: [{ PartitionKey: 'k', Data: Buffer.from('zero') }] }))
  const sub = await rawSubscribe(relay.httpPort, { ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } })
  t.equal(sub.status, 200)
  t.equal(sub.headers['content-type'], 'application/vnd.amazon.eventstream')
  t.equal(sub.headers['transfer-encoding'], 'chunked')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-h1', Records: [{ PartitionKey: 'k', Data: Buffer.from('one') }, { PartitionKey: 'k', Data: Buffer.from('two') }] }))
  const records = () => sub.messages.filter((m) => m.headers[':event-type'] === 'SubscribeToShardEvent').flatMap((m) => JSON.parse(m.payload.toString()).Records as { Data: string }[])
  await until(() => records().length >= 3)
  sub.req.destroy()
  await sub.closed

  const [initial] = sub.messages
  t.same(initial!.headers, { ':event-type': 'initial-response', ':content-type': 'application/x-amz-json-1.1', ':message-type': 'event' })
  t.same(JSON.parse(initial!.payload.toString()), {})
  t.same(records().map((r) => Buffer.from(r.Data, 'base64').toString()), ['zero', 'one', 'two'])
  const event = JSON.parse(sub.messages[1]!.payload.toString())
  t.match(event, { ContinuationSequenceNumber: /^\d{56}$/, MillisBehindLatest: Number })
  t.type(event.Records[0].ApproximateArrivalTimestamp, 'number')
  // The checksums, recomputed here from the raw frames with zlib's CRC-32.
  t.ok(sub.frames.length >= 2)
  for (const f of sub.frames) {
    t.equal(f.readUInt32BE(8), crc32(f.subarray(0, 8)), 'prelude CRC')
    t.equal(f.readUInt32BE(f.length - 4), crc32(f.subarray(0, f.length - 4)), 'message CRC')
  }
})

t.test('the event stream decoder refuses damaged frames', async (t) => {
  const { encodeMessage } = await import('../../relay/kinesis/eventstream.js')
  const good = encodeMessage({ ':message-type': 'event', ':event-type': 'x' }, Buffer.from('{"a":1}'))
  t.same(new EventStreamDecoder().push(good)[0]!.headers[':event-type'], 'x')
  const prelude = Buffer.from(good)
  prelude[2] ^= 1
  t.throws(() => new EventStreamDecoder().push(prelude), { name: 'EventStreamError', message: /prelude checksum/ })
  const body = Buffer.from(good)
  body[body.length - 6] ^= 1
  t.throws(() => new EventStreamDecoder().push(body), { name: 'EventStreamError', message: /message checksum/ })
  const partial = new EventStreamDecoder()
  t.same(partial.push(good.subarray(0, 20)), [])
  t.equal(partial.pending(), 20, 'an unfinished message is held until the rest arrives')
})

t.test('at the end of a split shard the last event carries ChildShards; subscribing to the children continues with nothing lost or repeated', async (t) => {
  const { SplitShardCommand } = await import('@aws-sdk/client-kinesis')
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-split')
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const parent = collect(out.EventStream!)
  const keys = Array.from({ length: 16 }, (_, i) => `key-${i}`)
  let n = 0
  const write = async (count: number) => {
    const records = Array.from({ length: count }, () => { const i = n++; return { PartitionKey: keys[i % keys.length]!, Data: Buffer.from(`${keys[i % keys.length]}:${i}`) } })
    await client.send(new PutRecordsCommand({ StreamName: 'efo-split', Records: records }))
  }
  // Writing goes on while the shard splits.
  let writing = true
  const writer = (async () => { while (writing) { await write(20); await new Promise((r) => setTimeout(r, 5)) } })()
  await until(() => parent.received.length >= 100)
  await client.send(new SplitShardCommand({ StreamName: 'efo-split', ShardToSplit: SHARD0, NewStartingHashKey: (1n << 127n).toString() }))
  await new Promise((r) => setTimeout(r, 200))
  writing = false
  await writer
  await parent.done
  const last = parent.events[parent.events.length - 1]!
  t.equal(last.continuation, undefined, 'the last event of a closed shard has no ContinuationSequenceNumber')
  const children = last.children as { ShardId: string; ParentShards: string[]; HashKeyRange: { StartingHashKey: string } }[]
  t.same(children.map((c) => c.ShardId).sort(), ['shardId-000000000001', 'shardId-000000000002'])
  for (const c of children) t.same(c.ParentShards, [SHARD0])

  const childAbort = new AbortController()
  const readers = await Promise.all(children.map(async (c) => {
    const sub = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: c.ShardId, StartingPosition: { Type: 'TRIM_HORIZON' } }), { abortSignal: childAbort.signal })
    const got = collect(sub.EventStream!)
    got.done.catch(() => {})
    return got
  }))
  await until(() => parent.received.length + readers.reduce((k, r) => k + r.received.length, 0) >= n)
  t.ok(readers.every((r) => r.received.length > 0), 'both children hold records written after the split')
  const all = [...parent.received, ...readers.flatMap((r) => r.received)].map((r) => r.data)
  t.equal(all.length, n, 'every record written, once')
  t.equal(new Set(all).size, n, 'no duplicates')
  // Per key: parent records first, then the child's, in write order.
  for (const key of keys) {
    const seq = all.filter((d) => d.startsWith(`${key}:`)).map((d) => Number(d.split(':')[1]))
    const ordered = [...seq].sort((a, b) => a - b)
    t.same(seq, ordered, `order kept for ${key}`)
  }
  abort.abort()
  childAbort.abort()
})

t.test('a subscription ends by itself after its lifetime (AWS: 5 minutes; here set to 2 s), and the consumer renews it from its continuation', async (t) => {
  const relay = await testRelay(t, { subscriptionSeconds: 2 })
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-life')
  const started = Date.now()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }))
  const c = collect(out.EventStream!)
  await client.send(new PutRecordsCommand({ StreamName: 'efo-life', Records: [{ PartitionKey: 'k', Data: Buffer.from('in-time') }] }))
  await c.done
  const lasted = Date.now() - started
  t.ok(lasted >= 1900 && lasted < 4000, `the event stream ended cleanly after its lifetime (${lasted} ms)`)
  t.same(c.received.map((r) => r.data), ['in-time'])
  await client.send(new PutRecordsCommand({ StreamName: 'efo-life', Records: [{ PartitionKey: 'k', Data: Buffer.from('between') }] }))
  const renewed = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: c.events[c.events.length - 1]!.continuation! },
  }))
  const r = collect(renewed.EventStream!)
  await r.done
  t.same(r.received.map((x) => x.data), ['between'], 'nothing lost between two subscriptions')
})

t.test('a CBOR request gets its events in CBOR', async (t) => {
  const { encodeCbor, decodeCbor, Tagged } = await import('../../relay/kinesis/cbor.js')
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-cbor')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-cbor', Records: [{ PartitionKey: 'k', Data: Buffer.from([1, 2, 3]) }] }))
  const body = encodeCbor({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } })
  const messages = await new Promise<EventMessage[]>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-cbor-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-length': body.length } }, (res) => {
      const decoder = new EventStreamDecoder()
      const got: EventMessage[] = []
      res.on('data', (chunk: Buffer) => {
        got.push(...decoder.push(chunk))
        if (got.length >= 2) { req.destroy(); resolve(got) }
      })
    })
    req.on('error', (err) => { if (!(err as NodeJS.ErrnoException).code?.includes('RESET')) reject(err) })
    req.end(body)
  })
  t.equal(messages[1]!.headers[':content-type'], 'application/x-amz-cbor-1.1')
  const event = decodeCbor(messages[1]!.payload) as { Records: { Data: Buffer; ApproximateArrivalTimestamp: InstanceType<typeof Tagged> }[] }
  t.same(event.Records[0]!.Data, Buffer.from([1, 2, 3]), 'Data as a byte string')
  t.equal(event.Records[0]!.ApproximateArrivalTimestamp.tag, 1, 'timestamps as tag 1')
})

t.test('with access keys configured, SubscribeToShard is signed like any call: the right key streams, a wrong secret is refused', async (t) => {
  const relay = await testRelay(t, { accessKeys: [{ accessKeyId: 'AKIDEFO', secretAccessKey: 'fan-out-secret' }] })
  const signed = (secretAccessKey: string) => {
    const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEFO', secretAccessKey } })
    t.teardown(() => client.destroy())
    return client
  }
  const client = signed('fan-out-secret')
  const { consumerArn } = await setup(client, 'efo-signed')
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const c = collect(out.EventStream!)
  c.done.catch(() => {})
  await client.send(new PutRecordsCommand({ StreamName: 'efo-signed', Records: [{ PartitionKey: 'k', Data: Buffer.from('signed') }] }))
  await until(() => c.received.length === 1)
  t.equal(c.received[0]!.data, 'signed')
  abort.abort()
  await t.rejects(signed('wrong').send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } })), { name: 'InvalidSignatureException' })
})

t.test('a subscriber that hangs up at once, before its stream starts, leaves no subscription behind', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, 'efo-hangup', 1)
  const payload = Buffer.from(JSON.stringify({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } }))
  for (let i = 0; i < 20; i++) {
    // The whole request, then the socket closed without waiting for an answer.
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-length': payload.length },
      })
      req.on('error', () => resolve())
      req.on('close', () => resolve())
      req.end(payload, () => setTimeout(() => req.destroy(), i % 3))
    })
  }
  const open = async () => /^tributary_fanout_subscriptions (\d+)$/m.exec(await (await fetch(`${relay.endpoint}/metrics`)).text())?.[1]
  for (let i = 0; i < 100 && (await open()) !== '0'; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(await open(), '0', 'every one of them ended')
})
