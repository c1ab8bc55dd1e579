/**
 * The shard-log store on NATS JetStream (relay/log/jetstream.ts), against real nats-server
 * processes: the contract every LogStore keeps, on one server with R1 streams; then what only a
 * shared log has: a second relay reading and hearing what the first commits, two writers racing on
 * one shard, and a three-server cluster losing a server (the streams' leader) in the middle of commits.
 */
import t, { type Test } from 'tap'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { JetStreamLogStore, decodeShardKey, encodeShardKey } from '../../relay/log/jetstream.js'
import type { LogStore } from '../../relay/log/types.js'
import { TributaryError } from '../../shared/errors.js'
import type { LogRecordInput } from '../../shared/logframe.js'
import { shardLogContract, type LogStoreFactory } from '../contracts/shardlog.js'
import { startNats, type NatsCluster } from '../helpers/nats.js'

const shard = (n: number) => `shardId-${String(n).padStart(12, '0')}`
const rec = (data: string): LogRecordInput => ({ partitionKey: 'k', data: Buffer.from(data), producerTimeMs: 0, flags: 0 })

async function connection(t: Test, servers: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
  t.teardown(() => nc.close())
  return nc
}

/** Each test its own cluster prefix on the one server, so its streams are its own. */
let tests = 0
const single = await startNats(t, 1)
const jetStreamFactory: LogStoreFactory = (t) => {
  const cluster = `c${++tests}`
  let last: LogStore | null = null
  const nc = connection(t, single.urls)
  return {
    async open(setup) {
      last = new JetStreamLogStore({ nc: await nc, cluster, maxStreamBytes: setup?.maxStreamBytes, now: setup?.now })
      return last
    },
    // A sealed JetStream stream refuses every publish: a failure the store cannot recover from.
    async breakWrites(stream, shardId) {
      if (!last?.get(stream, shardId)) throw new Error(`no open log ${stream}/${shardId} to break`)
      const jsm = await jetstreamManager(await nc)
      const name = `${cluster}_${encodeShardKey(`${stream}/${shardId}`)}`
      const info = await jsm.streams.info(name)
      await jsm.streams.update(name, { ...info.config, sealed: true })
    },
  }
}

t.test('shard keys encode to stream names and subject tokens and back', async (t) => {
  for (const key of [`orders.0123456789ab/${shard(0)}`, `a_b-c.d..e/${shard(12)}`, 'ключ.00/s', '_2f/_']) {
    const token = encodeShardKey(key)
    t.match(token, /^[A-Za-z0-9_-]+$/, `${key} → ${token}`)
    t.equal(decodeShardKey(token), key)
  }
  t.equal(encodeShardKey(`orders.0123456789ab/${shard(0)}`), 'orders_2e0123456789ab_2fshardId-000000000000')
})

shardLogContract(t, 'jetstream log', jetStreamFactory)

t.test('a second relay reads what the first committed, and hears of new commits within a second without polling', async (t) => {
  const a = new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'two', now: () => 7000 })
  const b = new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'two' })
  t.teardown(async () => { await a.close(); await b.close() })
  const writer = await a.open('s.0123456789ab', shard(0))
  writer.append([{ partitionKey: 'ключ', data: Buffer.from('first'), producerTimeMs: 12.5, flags: 5, device: 'dev-1', epoch: 2n ** 63n + 5n, batchSequence: 41, batchIndex: 3 }])
  await a.commit()
  const reader = await b.open('s.0123456789ab', shard(0))
  t.same([reader.startOffset(), reader.endOffset(), reader.lastArrivalMs(), reader.sizeBytes()], [0, 1, 7000, writer.sizeBytes()], 'opening finds what the other relay wrote')
  const [first] = (await reader.read(0, 10, 1 << 20)).records
  t.same(first && { ...first, data: first.data.toString() }, {
    offset: 0, arrivalMs: 7000, producerTimeMs: 12.5, flags: 5, partitionKey: 'ключ', device: 'dev-1',
    epoch: 2n ** 63n + 5n, batchSequence: 41, batchIndex: 3, data: 'first',
  }, 'every field of the record came across')

  const heard = new Promise<number>((resolve) => {
    const stop = b.onAppend((log) => { if (log === reader && log.endOffset() === 3) { stop(); resolve(performance.now()) } })
  })
  const sent = performance.now()
  writer.append([rec('second'), rec('third')])
  await a.commit()
  const at = await Promise.race([heard, new Promise<null>((r) => setTimeout(() => r(null), 1000))])
  t.ok(at !== null, `relay B heard the commit (${at === null ? 'not within 1 s' : `${(at - sent).toFixed(1)} ms`})`)
  t.same((await reader.read(1, 10, 1 << 20)).records.map((r) => [r.offset, r.data.toString()]), [[1, 'second'], [2, 'third']])
})

t.test('two writers racing on one shard never share an offset, never lose an acknowledged record, and the loser recovers', async (t) => {
  const stores = [0, 1].map(async () => new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'race' }))
  const [a, b] = await Promise.all(stores)
  t.teardown(async () => { await a!.close(); await b!.close() })
  const logs = await Promise.all([a!.open('s', shard(0)), b!.open('s', shard(0))])
  const acknowledged = new Map<string, number>()
  const refused: string[] = []
  const recoveredAfterRefusal = [false, false]
  const write = async (who: number) => {
    const store = who === 0 ? a! : b!
    const log = logs[who]!
    let refusedOnce = false
    for (let round = 0; round < 60; round++) {
      const data = Array.from({ length: 1 + (round % 4) }, (_, j) => `${who}-${round}-${j}`)
      const { firstOffset } = log.append(data.map(rec))
      try {
        await store.commit()
        data.forEach((d, j) => acknowledged.set(d, firstOffset + j))
        if (refusedOnce) recoveredAfterRefusal[who] = true
      } catch (err) {
        refused.push((err as TributaryError).code)
        refusedOnce = true
      }
      if (round % 3 === who) await new Promise((r) => setImmediate(r))
    }
  }
  await Promise.all([write(0), write(1)])
  t.ok(refused.length > 0, `the writers collided (${refused.length} commits refused)`)
  t.same([...new Set(refused)], ['LOG_FENCED'], 'a refused commit says it was fenced')
  t.same(recoveredAfterRefusal, [true, true], 'each writer committed again after being refused')

  const check = new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'race' })
  t.teardown(() => check.close())
  const log = await check.open('s', shard(0))
  const { records } = await log.read(0, 100_000, 1 << 30)
  t.same(records.map((r) => r.offset), Array.from({ length: log.endOffset() }, (_, i) => i), 'offsets are dense from 0')
  const stored = new Map(records.map((r) => [r.data.toString(), r.offset]))
  t.equal(stored.size, records.length, 'no record is stored twice')
  const lost = [...acknowledged].filter(([d, offset]) => stored.get(d) !== offset)
  t.same(lost, [], `every one of ${acknowledged.size} acknowledged records is stored at the offset its append returned`)
})

t.test('a three-server cluster loses a server (the leader) mid-commits: nothing acknowledged is lost or doubled, and writes continue after', async (t) => {
  const cluster: NatsCluster = await startNats(t, 3)
  const nc = await connection(t, cluster.urls)
  const store = new JetStreamLogStore({ nc, cluster: 'r3', replicas: 3, timeoutMs: 2000 })
  t.teardown(() => store.close())
  const log = await store.open('s', shard(0))
  const jsm = await jetstreamManager(nc)
  const leader = (await jsm.streams.info(`r3_${encodeShardKey(`s/${shard(0)}`)}`)).cluster?.leader ?? ''
  const victim = Number(leader.replace(/^n/, ''))
  t.ok(victim >= 0 && victim < 3, `the stream's leader is ${leader}`)

  const acknowledged: string[] = []
  const outcomes = { resolved: 0, refused: new Map<string, number>() }
  let round = 0
  let committing = false
  const commitOnce = async () => {
    const data = Array.from({ length: 20 }, (_, j) => `r${round}-${j}`)
    round++
    log.append(data.map(rec))
    committing = true
    try {
      await store.commit()
      acknowledged.push(...data)
      outcomes.resolved++
      return true
    } catch (err) {
      const code = (err as TributaryError).code ?? String(err)
      outcomes.refused.set(code, (outcomes.refused.get(code) ?? 0) + 1)
      return false
    } finally {
      committing = false
    }
  }
  // The writer keeps committing; the leader dies while a commit's publishes are in flight.
  let killedAt = 0
  let afterKill = 0
  const writer = (async () => {
    while (afterKill < 30 && (!killedAt || performance.now() - killedAt < 20_000)) {
      if ((await commitOnce()) && killedAt) afterKill++
    }
  })()
  while (acknowledged.length < 600) await new Promise((r) => setTimeout(r, 1))
  killedAt = performance.now()
  cluster.kill(victim)
  t.ok(committing, 'the kill lands while a commit waits for its acknowledgements')
  await writer
  t.equal(afterKill, 30, `commits go on after the leader died (${(performance.now() - killedAt).toFixed(0)} ms for 30 more)`)
  const refused = [...outcomes.refused.keys()]
  t.ok(refused.every((code) => code === 'LOG_UNAVAILABLE' || code === 'LOG_FENCED'), `refusals are typed (${JSON.stringify([...outcomes.refused])})`)
  t.notOk(store.failed, 'the store is not failed by a lost server')
  await cluster.start(victim)
  await cluster.ready()
  for (let i = 0; i < 10; i++) t.ok(await commitOnce(), `commit ${i} after the restart`)

  const reader = new JetStreamLogStore({ nc: await connection(t, cluster.urls), cluster: 'r3', replicas: 3 })
  t.teardown(() => reader.close())
  const again = await reader.open('s', shard(0))
  t.equal(again.endOffset(), log.endOffset(), 'a fresh store finds the same end')
  const { records } = await again.read(0, 100_000, 1 << 30)
  const stored = records.map((r) => r.data.toString())
  t.equal(new Set(stored).size, stored.length, `no record is stored twice (${stored.length} stored)`)
  const position = new Map(stored.map((d, i) => [d, i]))
  const missing = acknowledged.filter((d) => !position.has(d))
  t.same(missing, [], `every one of ${acknowledged.length} acknowledged records is there`)
  const order = acknowledged.map((d) => position.get(d)!)
  t.ok(order.every((p, i) => i === 0 || p > order[i - 1]!), 'in the order they were acknowledged')
})
