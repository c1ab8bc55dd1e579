/**
 * A subscription lives AWS's whole 5-minute lifetime and then ends cleanly, over HTTP/2 (the SDK)
 * and HTTP/1.1 (a raw client), with records trickling in the whole time and idle gaps between them
 * longer than the heartbeat. The relay runs on a manual clock: the test moves it a heartbeat at a
 * time, so every event's time is exact (an empty event each time 5 s pass without one, none at
 * the end) and the lifetime ends at 300 s to the millisecond.
 *
 * `npm test` moves the clock as fast as the events come back. The soak tier (TRIBUTARY_SOAK=1)
 * paces it so the subscriptions also stay open, in real time, past the HTTP layer's longest timeout
 * (120 s, checked every 30 s by Node): about 2.5 minutes instead of 5.
 */
import t from 'tap'
import http from 'node:http'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, SubscribeToShardCommand, PutRecordsCommand,
} from '@aws-sdk/client-kinesis'
import { manualClock, testRelay } from '../helpers/relay.js'
import { EventStreamDecoder } from '../../relay/kinesis/eventstream.js'

const SOAK = process.env.TRIBUTARY_SOAK === '1'
/** AWS's lifetime of one subscription (the relay's default). */
const LIFETIME_MS = 300_000
/** An empty event after this long without one (relay/fanout.ts). */
const HEARTBEAT_MS = 5_000
/** Between two records: longer than the heartbeat. */
const GAP_MS = 20_000
/** Real time between two moves of the clock: 60 moves take 156 s in the soak tier, none otherwise. */
const PACE_MS = SOAK ? 2_600 : 0
/** Bounds only a hang of the network or the relay; no outcome depends on it. */
const HANG_MS = 30_000

interface Event { at: number; records: string[]; seqs: string[]; continuation?: string; behind?: number }
interface Collected { events: Event[]; other: string[]; ended: boolean; done: Promise<number> }

/**
 * Each subscription's events as the test expects them: the first at once, a record every GAP_MS
 * (after the heartbeat's empty event when one falls due at that moment), an empty event each time
 * HEARTBEAT_MS pass without one, and nothing at the end of the lifetime.
 */
function expectedTimeline(): Pick<Event, 'at' | 'records'>[] {
  const out: Pick<Event, 'at' | 'records'>[] = [{ at: 0, records: [] }]
  let last = 0
  for (let at = 0; at < LIFETIME_MS; at += HEARTBEAT_MS) {
    if (at - last >= HEARTBEAT_MS) { out.push({ at, records: [] }); last = at }
    if (at % GAP_MS === 0) { out.push({ at, records: [`at-${at}`] }); last = at }
  }
  return out
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + HANG_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test(`subscriptions over HTTP/2 and HTTP/1.1 deliver for their whole ${LIFETIME_MS / 1000} s lifetime, with a heartbeat in every idle 5 s, then end exactly at its end`, { timeout: SOAK ? 400_000 : 120_000 }, async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const client = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })
  t.teardown(() => client.destroy())
  await client.send(new CreateStreamCommand({ StreamName: 'life', ShardCount: 1 }))
  const StreamARN = (await client.send(new DescribeStreamSummaryCommand({ StreamName: 'life' }))).StreamDescriptionSummary!.StreamARN!
  const arns: string[] = []
  for (const ConsumerName of ['h2', 'h1']) {
    const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName }))
    arns.push(Consumer!.ConsumerARN!)
  }
  clock.advance(1000) // consumers are ACTIVE a second after they are registered
  for (const ConsumerARN of arns) t.equal((await client.send(new DescribeStreamConsumerCommand({ ConsumerARN }))).ConsumerDescription!.ConsumerStatus, 'ACTIVE')
  const openSubscriptions = async () => Number(/^tributary_fanout_subscriptions (\d+)$/m.exec(await (await fetch(`${relay.endpoint}/metrics`)).text())?.[1])

  const started = clock.now()
  const h2: Collected = { events: [], other: [], ended: false, done: Promise.resolve(0) }
  const out = await client.send(new SubscribeToShardCommand({ ConsumerARN: arns[0], ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }))
  h2.done = (async () => {
    for await (const ev of out.EventStream!) {
      const e = ev.SubscribeToShardEvent
      if (!e) { h2.other.push(Object.keys(ev).join()); continue }
      const records = e.Records ?? []
      h2.events.push({ at: clock.now() - started, records: records.map((r) => Buffer.from(r.Data!).toString()), seqs: records.map((r) => r.SequenceNumber!), continuation: e.ContinuationSequenceNumber, behind: e.MillisBehindLatest })
    }
    h2.ended = true
    return clock.now() - started
  })()
  const h1: Collected = { events: [], other: [], ended: false, done: Promise.resolve(0) }
  h1.done = new Promise<number>((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ ConsumerARN: arns[1], ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }))
    const req = http.request({ host: '127.0.0.1', port: relay.httpPort, method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard', 'content-length': body.length } }, (res) => {
      const decoder = new EventStreamDecoder()
      res.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk)) {
          const type = String(m.headers[':event-type'] ?? m.headers[':exception-type'])
          if (type !== 'SubscribeToShardEvent') { if (type !== 'initial-response') h1.other.push(type); continue }
          const e = JSON.parse(m.payload.toString()) as { Records: { Data: string; SequenceNumber: string }[]; ContinuationSequenceNumber?: string; MillisBehindLatest: number }
          h1.events.push({ at: clock.now() - started, records: e.Records.map((r) => Buffer.from(r.Data, 'base64').toString()), seqs: e.Records.map((r) => r.SequenceNumber), continuation: e.ContinuationSequenceNumber, behind: e.MillisBehindLatest })
        }
      })
      res.on('end', () => { h1.ended = true; resolve(clock.now() - started) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  h2.done.catch(() => {})
  h1.done.catch(() => {})

  const timeline = expectedTimeline()
  /** How many events each subscription has by `at` (with the record written at `at`, or before it is). */
  const countBy = (at: number, withRecord: boolean) => timeline.filter((e) => e.at < at || (e.at === at && (withRecord || e.records.length === 0))).length
  const both = (n: number, what: string) => until(() => h2.events.length >= n && h1.events.length >= n, what)
  const pace = () => PACE_MS ? new Promise((r) => setTimeout(r, PACE_MS)) : Promise.resolve()

  const sent: string[] = []
  for (let at = 0; at < LIFETIME_MS; at += HEARTBEAT_MS) {
    if (at > 0) {
      await pace()
      clock.advance(HEARTBEAT_MS)
    }
    await both(countBy(at, false), `the events at ${at} ms`)
    if (at % GAP_MS === 0) {
      const data = `at-${at}`
      await client.send(new PutRecordsCommand({ StreamName: 'life', Records: [{ PartitionKey: 'k', Data: Buffer.from(data) }] }))
      sent.push(data)
      await both(countBy(at, true), `the record written at ${at} ms`)
    }
  }
  await pace()
  clock.advance(HEARTBEAT_MS - 1)
  t.equal(await openSubscriptions(), 2, 'both subscriptions are open 1 ms before the end of their lifetime')
  t.same([h2.ended, h1.ended], [false, false], 'and both event streams go on')
  clock.advance(1)
  const [h2Ms, h1Ms] = await Promise.all([h2.done, h1.done])
  t.comment(`${sent.length} records and ${timeline.length} events over ${LIFETIME_MS / 1000} s of the relay's clock`)
  t.same([h2Ms, h1Ms], [LIFETIME_MS, LIFETIME_MS], 'both ended at the end of their lifetime, to the millisecond')
  t.equal(await openSubscriptions(), 0)
  t.equal(sent.length, LIFETIME_MS / GAP_MS)

  for (const [name, c] of [['HTTP/2', h2], ['HTTP/1.1', h1]] as const) {
    t.same(c.other, [], `${name}: no exception event`)
    t.same(c.events.flatMap((e) => e.records), sent, `${name}: every record of the whole lifetime`)
    t.same(c.events.map((e) => ({ at: e.at, records: e.records })), timeline, `${name}: each record as it was written, and an empty event each time 5 s passed without one`)
    t.ok(c.events.every((e) => e.behind === 0), `${name}: caught up all along (MillisBehindLatest 0)`)
    let lastSeq: string | undefined
    const continuations = c.events.slice(1).map((e) => { lastSeq = e.seqs[e.seqs.length - 1] ?? lastSeq; return e.continuation === lastSeq })
    t.ok(continuations.every(Boolean), `${name}: each event's continuation is the last record delivered`)
  }
})
