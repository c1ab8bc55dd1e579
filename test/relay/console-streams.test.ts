/**
 * The console's streams page (`/console/streams`) without a browser: each data stream's shards with
 * their hash-key ranges (a split shows its closed parent and two children covering its range), its
 * incoming records and bytes per second in ten-second steps on the relay's clock, retention, and a
 * pushed `streams` event at each step. Nothing of it answers without the session cookie.
 */
import t from 'tap'
import { CreateStreamCommand, KinesisClient, PutRecordsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis'
import { manualClock, testRelay } from '../helpers/relay.js'
import { CONSOLE_HEADERS as HEADER, consoleCookie } from '../helpers/console.js'
import type { StreamView } from '../../relay/console/views.js'

t.test('streams with their shards and incoming rates, stepped on the relay clock and pushed', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, { httpHost: '127.0.0.1' }, { clock })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  const cookie = await consoleCookie(relay.endpoint, relay.adminToken)
  const overview = async (): Promise<StreamView[]> => {
    const r = await fetch(`${relay.endpoint}/console/api/streams-overview`, { method: 'POST', headers: { ...HEADER, cookie }, body: '{}' })
    t.equal(r.status, 200)
    return ((await r.json()) as { streams: StreamView[] }).streams
  }
  t.equal((await fetch(`${relay.endpoint}/console/api/streams-overview`, { method: 'POST', headers: HEADER, body: '{}' })).status, 401, 'not without the cookie')
  t.match(await (await fetch(`${relay.endpoint}/console/streams`)).text(), /<form id="login">/)
  t.match(await (await fetch(`${relay.endpoint}/console/streams`, { headers: { cookie } })).text(), /<div id="streams">/)

  await client.send(new CreateStreamCommand({ StreamName: 'flow', ShardCount: 2 }))
  const created = (await overview()).find((s) => s.name === 'flow')!
  t.match(created, { status: 'ACTIVE', retentionHours: 24, encrypted: false })
  t.same(created.shards.map((s) => [s.shardId, s.from, s.to, s.open]), [['shardId-000000000000', 0, 0.5, true], ['shardId-000000000001', 0.5, 1, true]], 'two shards, each half of the hash-key space')

  // A pushed event at each step.
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const events = await fetch(`${relay.endpoint}/console/api/events`, { headers: { cookie }, signal: abort.signal })
  const reader = events.body!.getReader()
  let text = ''
  const nextStreamsEvent = async () => {
    while (!/event: streams\n/.test(text)) text += Buffer.from((await reader.read()).value!).toString()
    text = text.replace(/[^]*?event: streams\n/, '')
  }

  for (let i = 0; i < 4; i++) {
    await client.send(new PutRecordsCommand({ StreamName: 'flow', Records: Array.from({ length: 50 }, (_, j) => ({ PartitionKey: `k${j}`, Data: Buffer.alloc(100, j) })) }))
  }
  clock.advance(10_000)
  await nextStreamsEvent()
  const flowing = (await overview()).find((s) => s.name === 'flow')!
  t.equal(flowing.incoming.stepMs, 10_000)
  t.equal(flowing.incoming.recordsPerSecond.at(-1), 20, '200 records in the last 10 s step: 20 records/s')
  t.equal(flowing.incoming.bytesPerSecond.at(-1), 2000, 'and 2,000 bytes/s')
  t.equal(flowing.shards.reduce((n, s) => n + s.records, 0), 200, 'the shards hold them')
  clock.advance(10_000)
  await nextStreamsEvent()
  t.same((await overview()).find((s) => s.name === 'flow')!.incoming.recordsPerSecond.slice(-2), [20, 0], 'a quiet step reads 0')

  await client.send(new SplitShardCommand({ StreamName: 'flow', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 126n).toString() }))
  const split = (await overview()).find((s) => s.name === 'flow')!
  const open = split.shards.filter((s) => s.open)
  t.same(open.map((s) => [s.from, s.to]).sort(), [[0, 0.25], [0.25, 0.5], [0.5, 1]], 'the open shards cover the space once, the split one in two quarters')
  t.match(split.shards.find((s) => s.shardId === 'shardId-000000000000'), { open: false, from: 0, to: 0.5 }, 'the parent is kept, closed')
  t.ok(open.filter((s) => s.parent === 'shardId-000000000000').length === 2, 'the children name it')
})

t.test('a live tail sends a stream\'s records as they arrive, from its end, within 2 s', async (t) => {
  const relay = await testRelay(t, { httpHost: '127.0.0.1' })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  const cookie = await consoleCookie(relay.endpoint, relay.adminToken)
  await client.send(new CreateStreamCommand({ StreamName: 'tailed', ShardCount: 2 }))
  await client.send(new PutRecordsCommand({ StreamName: 'tailed', Records: [{ PartitionKey: 'before', Data: Buffer.from('not shown: before the tail') }] }))

  t.equal((await fetch(`${relay.endpoint}/console/api/tail?stream=tailed`)).status, 401, 'not without the cookie')
  t.equal((await fetch(`${relay.endpoint}/console/api/tail?stream=nothing`, { headers: { cookie } })).status, 404, 'a stream that does not exist')
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const r = await fetch(`${relay.endpoint}/console/api/tail?stream=tailed`, { headers: { cookie }, signal: abort.signal })
  t.equal(r.status, 200)
  t.match(r.headers.get('content-type'), /^text\/event-stream/)
  const reader = r.body!.getReader()
  let text = ''
  const records: { partitionKey: string; data: string; shardId: string }[] = []
  const read = async (n: number, ms: number) => {
    const deadline = Date.now() + ms
    while (records.length < n) {
      if (Date.now() > deadline) throw new Error(`${records.length} of ${n} records within ${ms} ms`)
      const chunk = await reader.read()
      text += Buffer.from(chunk.value!).toString()
      for (let m = /event: record\ndata: (.*)\n\n/.exec(text); m; m = /event: record\ndata: (.*)\n\n/.exec(text)) {
        records.push(JSON.parse(m[1]!) as { partitionKey: string; data: string; shardId: string })
        text = text.slice(m.index + m[0].length)
      }
    }
  }
  // Give the tail one look at the ends before putting.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const putAt = Date.now()
  await client.send(new PutRecordsCommand({ StreamName: 'tailed', Records: [{ PartitionKey: 'a', Data: Buffer.from('hello tail') }, { PartitionKey: 'zz', Data: Buffer.from([0, 1, 2, 255]) }] }))
  await read(2, 2000)
  t.ok(Date.now() - putAt < 2000, `both records on the tail ${Date.now() - putAt} ms after the put`)
  t.same(records.map((x) => [x.partitionKey, Buffer.from(x.data, 'base64').toString('hex')]).sort(), [['a', Buffer.from('hello tail').toString('hex')], ['zz', '000102ff']], 'the records put, not the one before; data as base64')

  // More than a look takes (100 a shard): the rest is skipped and said, so the tail stays at the newest.
  records.length = 0
  await client.send(new PutRecordsCommand({ StreamName: 'tailed', Records: Array.from({ length: 500 }, (_, i) => ({ PartitionKey: 'one-key', Data: Buffer.from(`burst ${i}`) })) }))
  const deadline = Date.now() + 3000
  while (!/event: skipped\ndata: /.test(text)) {
    if (Date.now() > deadline) throw new Error('no skipped event')
    text += Buffer.from((await reader.read()).value!).toString()
  }
  const skipped = JSON.parse(/event: skipped\ndata: (.*)\n\n/.exec(text)![1]!) as { records: number }
  t.equal(skipped.records, 400, '100 records sent from the burst of 500 in one shard, 400 skipped and said')
})
