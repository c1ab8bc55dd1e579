/**
 * What the console shows beside devices, without a browser: a stream's readers and how far behind
 * they are (a checkpointing consumer, an enhanced fan-out consumer before and while it is subscribed,
 * a delivery stream reading its source), the delivery page's freshness, backlog and failures, and the
 * limits on pushed-event streams and live tails. The fleet's own bounds (devices kept, status size)
 * are checked on the class.
 */
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CreateStreamCommand, DescribeStreamConsumerCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, PutRecordsCommand,
  RegisterStreamConsumerCommand, SubscribeToShardCommand,
} from '@aws-sdk/client-kinesis'
import { CreateDeliveryStreamCommand, FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose'
import { manualClock, testRelay, type TestClock } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { until } from '../helpers/browser.js'
import { CONSOLE_HEADERS as HEADER, consoleCookie } from '../helpers/console.js'
import { Fleet } from '../../relay/fleet.js'
import { RATE_STEPS, StreamRates } from '../../relay/stream-rates.js'
import type { ConsumerView, DeliveryView, StreamView } from '../../relay/console/views.js'
import { deliveryViews } from '../../relay/console/overview.js'
import type { DeliveryStreamDescription, SinkTarget } from '../../relay/delivery/types.js'

const KEY = { accessKeyId: 'x', secretAccessKey: 'y' }

async function consoleOf(t: Test, endpoint: string, adminToken: string) {
  const cookie = await consoleCookie(endpoint, adminToken)
  const call = async <T>(name: string): Promise<T> => {
    const r = await fetch(`${endpoint}/console/api/${name}`, { method: 'POST', headers: { ...HEADER, cookie }, body: '{}' })
    t.equal(r.status, 200, name)
    return (await r.json()) as T
  }
  return {
    cookie,
    readers: async (stream: string): Promise<ConsumerView[]> => (await call<{ streams: StreamView[] }>('streams-overview')).streams.find((s) => s.name === stream)?.consumers ?? [],
    deliveries: async (): Promise<DeliveryView[]> => (await call<{ deliveries: DeliveryView[] }>('deliveries')).deliveries,
  }
}

t.test("a stream's readers: a checkpointing consumer's records and time behind, a fan-out consumer before and while subscribed", async (t) => {
  const clock: TestClock = manualClock()
  const relay = await testRelay(t, { httpHost: '127.0.0.1' }, { clock })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  const { readers } = await consoleOf(t, relay.endpoint, relay.adminToken)
  await client.send(new CreateStreamCommand({ StreamName: 'read', ShardCount: 1 }))
  t.same(await readers('read'), [], 'no reader yet')

  const put = await client.send(new PutRecordsCommand({ StreamName: 'read', Records: Array.from({ length: 10 }, (_, i) => ({ PartitionKey: `k${i}`, Data: Buffer.from(`r${i}`) })) }))
  const firstArrival = clock.now()
  clock.advance(90_000)
  // The consumer has processed records 0–3: six are behind it, the oldest of them put 90 s ago.
  const checkpoint = await fetch(`${relay.endpoint}/checkpoints/read/app/shardId-000000000000`, { method: 'PUT', body: JSON.stringify({ SequenceNumber: put.Records![3]!.SequenceNumber }) })
  t.equal(checkpoint.status, 200)
  t.same(await readers('read'), [{ name: 'app', kind: 'checkpoints', status: 'ACTIVE', shardsFollowed: 1, behindRecords: 6, behindMs: clock.now() - firstArrival, updatedMs: clock.now() }])
  await fetch(`${relay.endpoint}/checkpoints/read/app/shardId-000000000000`, { method: 'PUT', body: JSON.stringify({ SequenceNumber: put.Records![9]!.SequenceNumber }) })
  t.match(await readers('read'), [{ name: 'app', behindRecords: 0, behindMs: 0 }], 'caught up at the last record')

  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/read', ConsumerName: 'fan' }))
  // Registration takes a few seconds on the relay's clock, as on AWS.
  await until('the consumer to be active', async () => (clock.advance(1000), true) && (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN! }))).ConsumerDescription?.ConsumerStatus === 'ACTIVE', 20_000)
  t.match((await readers('read')).find((r) => r.name === 'fan'), { kind: 'fan-out', status: 'ACTIVE', shardsFollowed: 0, behindRecords: 0, updatedMs: null }, 'registered, not subscribed')

  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const sub = await client.send(new SubscribeToShardCommand({ ConsumerARN: Consumer!.ConsumerARN!, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } }), { abortSignal: abort.signal })
  let received = 0
  const reading = (async () => {
    for await (const ev of sub.EventStream!) received += ev.SubscribeToShardEvent?.Records?.length ?? 0
  })().catch(() => {})
  await until('the subscription to read the 10 records', async () => received >= 10, 20_000)
  t.match((await readers('read')).find((r) => r.name === 'fan'), { kind: 'fan-out', shardsFollowed: 1, behindRecords: 0, behindMs: 0 }, 'subscribed and caught up')
  abort.abort()
  await reading
})

t.test('delivery streams: delivered, backlog and freshness, failures by code; a delivery stream is a reader of its source', async (t) => {
  const dir = tempDir(t)
  const blocked = join(dir, 'not-a-directory')
  writeFileSync(blocked, 'a file where the bucket directory should be')
  mkdirSync(join(dir, 'landing'))
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ buckets: { landing: { type: 'files', directory: join(dir, 'landing') }, broken: { type: 'files', directory: join(blocked, 'bucket') } } }))
  const relay = await testRelay(t, { deliveryFile, httpHost: '127.0.0.1' })
  const firehose = new FirehoseClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => firehose.destroy())
  const { deliveries, readers } = await consoleOf(t, relay.endpoint, relay.adminToken)
  t.same(await deliveries(), [], 'none yet')

  for (const [name, bucket] of [['good', 'landing'], ['bad', 'broken']]) {
    await firehose.send(new CreateDeliveryStreamCommand({
      DeliveryStreamName: name, DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: `arn:aws:s3:::${bucket}`, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
    }))
    await firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: Array.from({ length: 20 }, (_, i) => ({ Data: Buffer.from(`{"n":${i}}\n`) })) }))
  }
  await until('the good one to deliver and the bad one to fail', async () => {
    const list = await deliveries()
    return list.find((d) => d.name === 'good')?.recordsDelivered === 20 && Object.keys(list.find((d) => d.name === 'bad')?.failuresByCode ?? {}).length > 0
  }, 20_000)
  const [bad, good] = await deliveries()
  t.match(good, { name: 'good', status: 'ACTIVE', source: 'direct put', destination: `files in ${join(dir, 'landing')}`, recordsDelivered: 20, backlogRecords: 0, freshnessSeconds: 0, failuresByCode: {} })
  t.ok(good!.lastDeliveryMs !== null && good!.bytesDelivered > 0)
  t.match(bad, { name: 'bad', source: 'direct put', recordsDelivered: 0, backlogRecords: 20, lastDeliveryMs: null, lastError: { code: String, message: String } })
  t.ok(Object.values(bad!.failuresByCode).every((n) => n > 0), `failures by code: ${JSON.stringify(bad!.failuresByCode)}`)

  // Each direct-put delivery stream reads a stream made for it, with checkpoints: a reader like any other.
  t.match(await readers('firehose.good'), [{ name: 'good', kind: 'delivery', shardsFollowed: 1, behindRecords: 0 }])
  t.match(await readers('firehose.bad'), [], 'nothing delivered, nothing checkpointed')
})

t.test('pushed-event streams and live tails are bounded; a closed one frees its place', async (t) => {
  const relay = await testRelay(t, { httpHost: '127.0.0.1' })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  await client.send(new CreateStreamCommand({ StreamName: 'tailed', ShardCount: 1 }))
  const { cookie } = await consoleOf(t, relay.endpoint, relay.adminToken)
  const open = async (path: string): Promise<{ status: number; close: () => void }> => {
    const abort = new AbortController()
    const r = await fetch(`${relay.endpoint}${path}`, { headers: { cookie }, signal: abort.signal })
    if (r.status !== 200) await r.body?.cancel()
    t.teardown(() => abort.abort())
    return { status: r.status, close: () => abort.abort() }
  }
  for (const [path, limit] of [['/console/api/events', 64], ['/console/api/tail?stream=tailed', 8]] as const) {
    const opened = []
    for (let i = 0; i < limit; i++) opened.push(await open(path))
    t.ok(opened.every((o) => o.status === 200), `${limit} open at once`)
    const refused = await fetch(`${relay.endpoint}${path}`, { headers: { cookie } })
    t.equal(refused.status, 503, `the next is refused (${path})`)
    t.equal(refused.headers.get('retry-after'), '5')
    t.match(await refused.json(), { code: 'SERVICE_UNAVAILABLE' })
    opened[0]!.close()
    await until('a place to be freed', async () => (await open(path)).status === 200, 20_000)
    for (const o of opened) o.close()
  }
  // Reading, the tail still answers what it sees: a record put while a tail is open arrives.
  const tail = new AbortController()
  t.teardown(() => tail.abort())
  await until('the tails to be closed', async () => {
    const r = await fetch(`${relay.endpoint}/console/api/tail?stream=tailed`, { headers: { cookie }, signal: tail.signal })
    if (r.status === 200) {
      const reader = r.body!.getReader()
      await client.send(new PutRecordsCommand({ StreamName: 'tailed', Records: [{ PartitionKey: 'k', Data: Buffer.from('after the limits') }] }))
      let text = ''
      while (!text.includes('event: record')) text += Buffer.from((await reader.read()).value!).toString()
      t.match(text, new RegExp(Buffer.from('after the limits').toString('base64')))
      return true
    }
    await r.body?.cancel()
    return false
  }, 20_000)
  // GetRecords still reads what the tail showed: a tail takes nothing from the stream.
  const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: 'tailed', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))
  t.equal((await client.send(new GetRecordsCommand({ ShardIterator }))).Records?.length, 1)
})

t.test("the fleet keeps at most 20,000 devices' status, the longest silent go first, and ignores a status over 256 KB", async (t) => {
  let now = 0
  const fleet = new Fleet(() => now)
  const heard: string[] = []
  fleet.subscribe((id) => heard.push(id))
  const devices = { list: async () => [] } as unknown as Parameters<Fleet['list']>[0]
  const status = (backlog: number) => JSON.stringify({ online: true, outbox: { backlog } })
  for (let i = 0; i < 20_000; i++) {
    now = i
    fleet.status(`d${i}`, status(i))
  }
  now = 20_000
  fleet.status('d0', status(7))
  fleet.status('newcomer', status(1))
  const list = await fleet.list(devices)
  t.equal(list.length, 20_000, 'at most 20,000')
  t.notOk(list.some((d) => d.id === 'd1'), 'the longest silent device (d1) went')
  t.match(list.find((d) => d.id === 'd0'), { backlog: 7, lastSeenMs: 20_000 }, 'd0 spoke again and stayed')
  t.ok(list.some((d) => d.id === 'newcomer'))

  const big = JSON.stringify({ online: true, outbox: { backlog: 5 }, padding: 'x'.repeat(256 * 1024) })
  heard.length = 0
  fleet.status('newcomer', big)
  t.match((await fleet.list(devices)).find((d) => d.id === 'newcomer'), { backlog: 1 }, 'a status over 256 KB is not kept')
  t.same(heard, [], 'nor pushed')
})

t.test("a stream's rates are kept while anything was stored within the hour, and dropped after a whole quiet hour", async (t) => {
  const rates = new StreamRates()
  rates.add('gone', 100, 1000)
  rates.step()
  t.same(rates.of('gone').recordsPerSecond, [10])
  for (let i = 1; i < RATE_STEPS; i++) rates.step()
  t.equal(rates.of('gone').recordsPerSecond.length, RATE_STEPS, 'an hour of steps, the first with records')
  t.equal(rates.of('gone').recordsPerSecond[0], 10)
  rates.step()
  t.same(rates.of('gone'), { stepMs: 10_000, recordsPerSecond: [], bytesPerSecond: [] }, 'a whole hour with nothing stored: the series is dropped (a deleted stream\'s goes so)')
  rates.add('gone', 5, 50)
  rates.step()
  t.same(rates.of('gone').recordsPerSecond, [0.5], 'a stream stored to again starts a new series')
})

t.test("the delivery page names each sink without what may be secret: a connection string's password, a URL's user or query", async (t) => {
  const stats = { recordsDelivered: 0, bytesDelivered: 0, batchesDelivered: 0, recordsFailed: {}, failuresByCode: {}, backlogRecords: 0, freshnessSeconds: 0, lastDeliveryMs: null, lastError: null }
  const of = (sink: Partial<SinkTarget>) => deliveryViews([{ config: { name: 'd', source: { type: 'direct' }, sink }, status: 'ACTIVE', stats } as unknown as DeliveryStreamDescription])[0]!.destination
  t.equal(of({ type: 'files', directory: '/data/out' }), 'files in /data/out')
  t.equal(of({ type: 's3', bucket: 'landing', endpoint: 'http://key:secret@swift:8080/path?x=1' }), 's3://landing at http://swift:8080')
  t.equal(of({ type: 's3', bucket: 'landing' }), 's3://landing')
  t.equal(of({ type: 'postgres', connectionString: 'postgres://app:hunter2@db/test', table: 'events' }), 'PostgreSQL table events')
  t.equal(of({ type: 'http', url: 'https://user:pw@collector.example:9443/in?token=abc', name: 'collector' }), 'HTTP endpoint collector at https://collector.example:9443')
  t.equal(of({ type: 'splunk', url: 'https://splunk:8088', token: 'hec-token' }), 'Splunk at https://splunk:8088')
  t.equal(of({ type: 'http', url: 'not a url' }), 'HTTP endpoint at (an invalid URL)')
})
