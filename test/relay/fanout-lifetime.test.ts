/**
 * A subscription lives its whole lifetime and then ends cleanly, over HTTP/2 (the SDK) and
 * HTTP/1.1 (a raw client), with records trickling in the whole time and idle gaps between them
 * longer than the heartbeat. The soak tier (TRIBUTARY_SOAK=1) runs AWS's full 5 minutes, past every
 * idle timeout of the HTTP layer; `npm test` runs the same with a 6-second lifetime.
 */
import t from 'tap'
import http from 'node:http'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, SubscribeToShardCommand, PutRecordsCommand,
} from '@aws-sdk/client-kinesis'
import { testRelay } from '../helpers/relay.js'
import { EventStreamDecoder } from '../../relay/kinesis/eventstream.js'

const SOAK = process.env.TRIBUTARY_SOAK === '1'
const LIFETIME_S = SOAK ? 300 : 6
const GAP_MS = SOAK ? 20_000 : 1_500

t.test(`subscriptions over HTTP/2 and HTTP/1.1 deliver for ${LIFETIME_S} s, then end`, { timeout: (LIFETIME_S + 60) * 1000 }, async (t) => {
  const relay = await testRelay(t, SOAK ? {} : { subscriptionSeconds: LIFETIME_S })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  await client.send(new CreateStreamCommand({ StreamName: 'life', ShardCount: 1 }))
  const StreamARN = (await client.send(new DescribeStreamSummaryCommand({ StreamName: 'life' }))).StreamDescriptionSummary!.StreamARN!
  const arns: string[] = []
  for (const ConsumerName of ['h2', 'h1']) {
    const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName }))
    arns.push(Consumer!.ConsumerARN!)
  }
  for (const ConsumerARN of arns) {
    while ((await client.send(new DescribeStreamConsumerCommand({ ConsumerARN }))).ConsumerDescription!.ConsumerStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 100))
  }
  const started = Date.now()
  const viaH2: string[] = []
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: arns[0], ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }))
  const h2Done = (async () => {
    for await (const ev of out.EventStream!) for (const r of ev.SubscribeToShardEvent?.Records ?? []) viaH2.push(Buffer.from(r.Data!).toString())
    return Date.now() - started
  })()
  const viaH1: string[] = []
  const h1Done = new Promise<number>((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ ConsumerARN: arns[1], ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }))
    const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-length': body.length } }, (res) => {
      const decoder = new EventStreamDecoder()
      res.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk)) {
          if (m.headers[':event-type'] !== 'SubscribeToShardEvent') continue
          for (const r of JSON.parse(m.payload.toString()).Records as { Data: string }[]) viaH1.push(Buffer.from(r.Data, 'base64').toString())
        }
      })
      res.on('end', () => resolve(Date.now() - started))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  await new Promise((r) => setTimeout(r, 300))

  const sent: string[] = []
  const deadline = started + LIFETIME_S * 1000 - GAP_MS
  while (Date.now() < deadline) {
    const data = `at-${Date.now() - started}`
    await client.send(new PutRecordsCommand({ StreamName: 'life', Records: [{ PartitionKey: 'k', Data: Buffer.from(data) }] }))
    sent.push(data)
    await new Promise((r) => setTimeout(r, GAP_MS))
  }
  const [h2Ms, h1Ms] = await Promise.all([h2Done, h1Done])
  t.comment(`HTTP/2 ended after ${h2Ms} ms, HTTP/1.1 after ${h1Ms} ms; ${sent.length} records`)
  t.ok(sent.length >= 3)
  t.same(viaH2, sent, 'HTTP/2: every record of the whole lifetime')
  t.same(viaH1, sent, 'HTTP/1.1: every record of the whole lifetime')
  for (const ms of [h2Ms, h1Ms]) t.ok(ms >= LIFETIME_S * 1000 - 1000 && ms < LIFETIME_S * 1000 + 10_000, `ended at the end of its lifetime (${ms} ms)`)
})
