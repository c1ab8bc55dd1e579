/**
 * SubscribeToShard (enhanced fan-out) through the unmodified AWS SDK over its default HTTP/2
 * handler, and through a raw HTTP/1.1 client that decodes the event stream itself.
 * Every relay runs on a manual clock: the takeover lease, the lifetime, the heartbeat, the
 * closed-shard check and consumers' CREATING → ACTIVE happen only where a test moves the clock, so
 * records that arrive while it stands still were pushed on commit, not found by a timer. What is
 * still waited for in real time is the network (an event reaching the client), with a bound that
 * only guards a hang.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { crc32 } from 'node:zlib'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, DeregisterStreamConsumerCommand, SubscribeToShardCommand, PutRecordsCommand, DeleteStreamCommand,
  type SubscribeToShardEventStream,
} from '@aws-sdk/client-kinesis'
import { manualClock, testRelay, type TestClock } from '../helpers/relay.js'
import { EventStreamDecoder, type EventMessage } from '../../relay/kinesis/eventstream.js'

const SHARD0 = 'shardId-000000000000'

function sdk(t: Test, endpoint: string): KinesisClient {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  return client
}

/** AWS's takeover lease: a second subscription for the same consumer and shard sooner than this is refused. */
const TAKEOVER_MS = 5000
/** How long a registered consumer stays CREATING (relay/consumers.ts). */
const ACTIVATION_MS = 1000
/** How often a waiting subscription looks whether its shard was closed or deleted (relay/fanout.ts): neither appends a record to wake it. */
const CLOSE_CHECK_MS = 200
/** Bounds only a hang of the network or the relay; no outcome depends on it. */
const HANG_MS = 30_000

/** A relay on a manual clock. */
async function relayOnClock(t: Test, settings: Parameters<typeof testRelay>[1] = {}) {
  const clock = manualClock()
  const relay = await testRelay(t, settings, { clock })
  return { relay, clock }
}

/** A stream with one shard and an ACTIVE consumer on it: the clock is moved past the consumer's activation. */
async function setup(client: KinesisClient, clock: TestClock, StreamName: string, ShardCount = 1): Promise<{ streamArn: string; consumerArn: string }> {
  await client.send(new CreateStreamCommand({ StreamName, ShardCount }))
  const streamArn = (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!.StreamARN!
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'efo' }))
  clock.advance(ACTIVATION_MS)
  const status = (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }))).ConsumerDescription!.ConsumerStatus
  if (status !== 'ACTIVE') throw new Error(`the consumer is ${status} ${ACTIVATION_MS} ms after it was registered`)
  return { streamArn, consumerArn: Consumer!.ConsumerARN! }
}

interface Received { data: string; seq: string; at: number }

/** Reads the SDK's event stream in the background, noting when (real time) each record arrived and whether the stream has ended. */
function collect(stream: AsyncIterable<SubscribeToShardEventStream>) {
  const received: Received[] = []
  const events: { continuation?: string; behind?: number; children?: unknown[]; records: number }[] = []
  const state = { ended: false }
  const done = (async () => {
    try {
      for await (const ev of stream) {
        const e = ev.SubscribeToShardEvent
        if (!e) continue
        events.push({ continuation: e.ContinuationSequenceNumber, behind: e.MillisBehindLatest, children: e.ChildShards, records: e.Records?.length ?? 0 })
        for (const r of e.Records ?? []) received.push({ data: Buffer.from(r.Data!).toString(), seq: r.SequenceNumber!, at: Date.now() })
      }
    } finally {
      state.ended = true
    }
  })()
  return { received, events, done, state }
}

/** Waits for an outcome (an event, a status); `ms` only guards a hang. */
async function until(check: () => boolean | Promise<boolean>, what = 'an outcome', ms = HANG_MS): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The relay's count of open subscriptions, from /metrics (a round trip to the relay). */
async function openSubscriptions(endpoint: string): Promise<number> {
  return Number(/^tributary_fanout_subscriptions (\d+)$/m.exec(await (await fetch(`${endpoint}/metrics`)).text())?.[1])
}

t.test('through the SDK over HTTP/2, a subscriber receives every record written after it subscribed, in order, each pushed as it is committed: the relay\'s clock never moves', async (t) => {
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-sdk')
  // Records written before the subscription are not part of a LATEST subscription.
  await client.send(new PutRecordsCommand({ StreamName: 'efo-sdk', Records: [{ PartitionKey: 'k', Data: Buffer.from('before') }] }))
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const { received, events, done } = collect(out.EventStream!)
  done.catch(() => {})
  await until(() => events.length === 1, 'the first event')

  const sent: { data: string; seq: string; at: number }[] = []
  for (let batch = 0; batch < 20; batch++) {
    const records = Array.from({ length: 25 }, (_, i) => ({ PartitionKey: `key-${i % 7}`, Data: Buffer.from(`r-${batch * 25 + i}`) }))
    const res = await client.send(new PutRecordsCommand({ StreamName: 'efo-sdk', Records: records }))
    const at = Date.now()
    res.Records!.forEach((r, i) => sent.push({ data: `r-${batch * 25 + i}`, seq: r.SequenceNumber!, at }))
    // Each batch arrives before the next is written: it was pushed on its own, with no timer of the
    // relay able to fire (the heartbeat and every wait run on the clock, which stands still).
    await until(() => received.length >= sent.length, `batch ${batch}`)
  }
  t.same(received.map((r) => r.data), sent.map((s) => s.data), 'every record, in the order written, nothing from before')
  t.same(received.map((r) => r.seq), sent.map((s) => s.seq), 'with the sequence numbers PutRecords gave')
  const delays = received.map((r, i) => r.at - sent[i]!.at)
  t.comment(`delay from PutRecords answer to receipt (real time, a figure, not asserted): worst ${Math.max(...delays)} ms, median ${delays.sort((a, b) => a - b)[delays.length >> 1]} ms`)
  t.equal(events[0]!.records, 0, 'the first event comes at once, before any record')
  t.same(events.slice(1).filter((e) => e.records === 0), [], 'every later event carries records: with the clock still, there is no heartbeat')
  const last = events[events.length - 1]!
  t.equal(last.continuation, sent[sent.length - 1]!.seq, 'ContinuationSequenceNumber is the last record delivered')
  t.equal(last.behind, 0, 'caught up: MillisBehindLatest is 0')
  t.equal(await openSubscriptions(relay.endpoint), 1, '/metrics counts the open subscription')
  abort.abort()
})

t.test('a subscription from TRIM_HORIZON replays the shard, then continues live; resuming AFTER the continuation number misses nothing', async (t) => {
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-replay')
  const put = async (from: number, n: number) => {
    await client.send(new PutRecordsCommand({ StreamName: 'efo-replay', Records: Array.from({ length: n }, (_, i) => ({ PartitionKey: 'k', Data: Buffer.from(`r-${from + i}`) })) }))
  }
  await put(0, 300)
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } }), { abortSignal: abort.signal })
  const first = collect(out.EventStream!)
  first.done.catch(() => {})
  await until(() => first.received.length >= 300, 'the replay')
  await put(300, 50)
  await until(() => first.received.length >= 350, 'the live records')
  t.same(first.received.map((r) => r.data), Array.from({ length: 350 }, (_, i) => `r-${i}`))
  const continuation = first.events[first.events.length - 1]!.continuation!
  abort.abort()

  // Records written between the two subscriptions are delivered by the second.
  await put(350, 20)
  // A new subscription for the same consumer and shard is accepted 5 s after the first (whether or
  // not the relay has seen the first hang up yet).
  clock.advance(TAKEOVER_MS)
  const abort2 = new AbortController()
  const again = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation },
  }), { abortSignal: abort2.signal })
  const second = collect(again.EventStream!)
  second.done.catch(() => {})
  await until(() => second.received.length >= 20, 'the records written in between')
  t.same(second.received.map((r) => r.data), Array.from({ length: 20 }, (_, i) => `r-${350 + i}`))
  abort2.abort()
})

t.test('a second subscription for the same consumer and shard within 5 s is refused; at 5 s it takes over and the first ends with ResourceInUseException', async (t) => {
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-lease', 2)
  const subscribe = (ShardId = SHARD0) => client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId, StartingPosition: { Type: 'LATEST' } }))
  const first = await subscribe()
  const firstDone = collect(first.EventStream!).done
  await t.rejects(subscribe(), { name: 'ResourceInUseException' }, 'refused at once')
  const other = await subscribe('shardId-000000000001')
  t.ok(other.EventStream, 'another shard of the same consumer is independent')
  clock.advance(TAKEOVER_MS - 1)
  await t.rejects(subscribe(), { name: 'ResourceInUseException' }, 'still refused 1 ms before 5 s')
  clock.advance(1)
  const second = await subscribe()
  t.ok(second.EventStream, 'taken over at 5 s')
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
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn, streamArn } = await setup(client, clock, 'efo-errors')
  const sub = (input: Partial<ConstructorParameters<typeof SubscribeToShardCommand>[0]>) =>
    client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' }, ...input }))
  await t.rejects(sub({ ShardId: 'shardId-000000000009' }), { name: 'ResourceNotFoundException', message: /Shard shardId-000000000009 in stream efo-errors/ })
  await t.rejects(sub({ ConsumerARN: `${streamArn}/consumer/nobody:1700000000` }), { name: 'ResourceNotFoundException' })
  await t.rejects(sub({ StartingPosition: { Type: 'AT_SEQUENCE_NUMBER' } }), { name: 'InvalidArgumentException' })
  await t.rejects(sub({ ConsumerARN: 'not-an-arn' }), { name: 'ValidationException', message: /at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern/ })
  await t.rejects(sub({ StartingPosition: { Type: 'SOMEWHERE' as 'LATEST' } }), { name: 'ValidationException', message: /startingPosition.type/ })
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'fresh' }))
  await t.rejects(sub({ ConsumerARN: Consumer!.ConsumerARN }), { name: 'ResourceInUseException', message: /not in ACTIVE state/ }, 'a CREATING consumer cannot subscribe yet')
  clock.advance(ACTIVATION_MS - 1)
  await t.rejects(sub({ ConsumerARN: Consumer!.ConsumerARN }), { name: 'ResourceInUseException', message: /not in ACTIVE state/ }, 'nor 1 ms before it is ACTIVE')
})

t.test('deleting the stream mid-subscription ends it with a ResourceNotFoundException event at the next closed-shard check, not at the next heartbeat', async (t) => {
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-delete')
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }))
  const c = collect(out.EventStream!)
  await until(() => c.events.length === 1, 'the first event')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-delete', Records: [{ PartitionKey: 'k', Data: Buffer.from('x') }] }))
  await until(() => c.received.length === 1, 'the record')
  await client.send(new DeleteStreamCommand({ StreamName: 'efo-delete', EnforceConsumerDeletion: true }))
  // The deletion appends nothing to wake the subscription; its closed-shard check finds it, 200 ms
  // of the clock later, long before the 5 s heartbeat would.
  clock.advance(CLOSE_CHECK_MS)
  await t.rejects(c.done, { name: 'ResourceNotFoundException', message: /Shard shardId-000000000000 in stream efo-delete/ }, 'the shard is gone')
  t.equal(c.events.length, 2, 'no heartbeat came before it: the first event and the record only')
  t.equal(await openSubscriptions(relay.endpoint), 0)
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
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-h1')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-h1', Records: [{ PartitionKey: 'k', Data: Buffer.from('zero') }] }))
  const sub = await rawSubscribe(relay.httpPort, { ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } })
  t.equal(sub.status, 200)
  t.equal(sub.headers['content-type'], 'application/vnd.amazon.eventstream')
  t.equal(sub.headers['transfer-encoding'], 'chunked')
  await client.send(new PutRecordsCommand({ StreamName: 'efo-h1', Records: [{ PartitionKey: 'k', Data: Buffer.from('one') }, { PartitionKey: 'k', Data: Buffer.from('two') }] }))
  const records = () => sub.messages.filter((m) => m.headers[':event-type'] === 'SubscribeToShardEvent').flatMap((m) => JSON.parse(m.payload.toString()).Records as { Data: string }[])
  await until(() => records().length >= 3, 'three records')
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
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-split')
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
  await until(() => parent.received.length >= 100, '100 records before the split')
  await client.send(new SplitShardCommand({ StreamName: 'efo-split', ShardToSplit: SHARD0, NewStartingHashKey: (1n << 127n).toString() }))
  // Three more batches of 20 (every key) after the split, counted rather than timed.
  const split = n
  await until(() => n >= split + 60, 'writes after the split')
  writing = false
  await writer
  // Closing a shard appends nothing: the parent's subscription finds it closed at its next check.
  clock.advance(CLOSE_CHECK_MS)
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
  await until(() => parent.received.length + readers.reduce((k, r) => k + r.received.length, 0) >= n, 'every record, from the parent and the children')
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

t.test('a subscription ends by itself exactly at the end of its lifetime (AWS: 5 minutes; here set to 2 s), and the consumer renews it from its continuation', async (t) => {
  const { relay, clock } = await relayOnClock(t, { subscriptionSeconds: 2 })
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-life')
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }))
  const c = collect(out.EventStream!)
  await client.send(new PutRecordsCommand({ StreamName: 'efo-life', Records: [{ PartitionKey: 'k', Data: Buffer.from('in-time') }] }))
  await until(() => c.received.length === 1, 'the record')
  clock.advance(1999)
  t.equal(await openSubscriptions(relay.endpoint), 1, 'still open 1 ms before its lifetime is up')
  t.equal(c.state.ended, false, 'and its event stream goes on')
  clock.advance(1)
  await c.done
  t.pass('the event stream ended cleanly at its lifetime')
  t.equal(await openSubscriptions(relay.endpoint), 0)
  t.same(c.received.map((r) => r.data), ['in-time'])
  await client.send(new PutRecordsCommand({ StreamName: 'efo-life', Records: [{ PartitionKey: 'k', Data: Buffer.from('between') }] }))
  const renewed = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: c.events[c.events.length - 1]!.continuation! },
  }))
  const r = collect(renewed.EventStream!)
  await until(() => r.received.length === 1, 'the record written in between')
  clock.advance(2000)
  await r.done
  t.same(r.received.map((x) => x.data), ['between'], 'nothing lost between two subscriptions')
})

t.test('a CBOR request gets its events in CBOR', async (t) => {
  const { encodeCbor, decodeCbor, Tagged } = await import('../../relay/kinesis/cbor.js')
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-cbor')
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
  const { relay, clock } = await relayOnClock(t, { accessKeys: [{ accessKeyId: 'AKIDEFO', secretAccessKey: 'fan-out-secret' }] })
  const signed = (secretAccessKey: string) => {
    const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEFO', secretAccessKey } })
    t.teardown(() => client.destroy())
    return client
  }
  const client = signed('fan-out-secret')
  const { consumerArn } = await setup(client, clock, 'efo-signed')
  const abort = new AbortController()
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }), { abortSignal: abort.signal })
  const c = collect(out.EventStream!)
  c.done.catch(() => {})
  await client.send(new PutRecordsCommand({ StreamName: 'efo-signed', Records: [{ PartitionKey: 'k', Data: Buffer.from('signed') }] }))
  await until(() => c.received.length === 1, 'the record')
  t.equal(c.received[0]!.data, 'signed')
  abort.abort()
  await t.rejects(signed('wrong').send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } })), { name: 'InvalidSignatureException' })
})

t.test('a subscriber that hangs up at once, before its stream starts, leaves no subscription behind', async (t) => {
  const { relay, clock } = await relayOnClock(t)
  const client = sdk(t, relay.endpoint)
  const { consumerArn } = await setup(client, clock, 'efo-hangup', 1)
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
  // Each request reached the API: registered (ok), or refused because the one before was still
  // registered within the takeover time. At least one subscription existed, so there was one to end.
  const outcomes = async () => {
    const text = await (await fetch(`${relay.endpoint}/metrics`)).text()
    const of = (outcome: string) => Number(new RegExp(`^tributary_api_requests_total\\{action="SubscribeToShard",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
    return { ok: of('ok'), busy: of('ResourceInUseException') }
  }
  await until(async () => { const o = await outcomes(); return o.ok + o.busy === 20 }, 'all 20 requests answered')
  const { ok, busy } = await outcomes()
  t.ok(ok >= 1, `${ok} subscriptions were registered (${busy} refused while an earlier one was still registered)`)
  // The relay sees each hang-up over the network; waited for, not timed.
  await until(async () => (await openSubscriptions(relay.endpoint)) === 0, 'every subscription to end').catch(() => {})
  t.equal(await openSubscriptions(relay.endpoint), 0, 'every one of them ended')
})
