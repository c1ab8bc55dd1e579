/**
 * The shard-log store on NATS JetStream (relay/log/jetstream.ts), against real nats-server
 * processes: the contract every LogStore keeps, on one server with R1 streams; then what only a
 * shared log has: a second relay reading and hearing what the first commits, two writers racing on
 * one shard, and a three-server cluster losing a server (the streams' leader) in the middle of commits.
 */
import t, { type Test } from 'tap'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { JetStreamApiError, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { spawn } from 'node:child_process'
import { JetStreamLogStore, decodeShardKey, encodeShardKey } from '../../relay/log/jetstream.js'
import type { LogStore } from '../../relay/log/types.js'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { LogRecordInput } from '../../shared/logframe.js'
import { shardLogContract, type LogStoreFactory } from '../contracts/shardlog.js'
import { NATS_SERVER, startNats, type NatsCluster } from '../helpers/nats.js'
import { freePort } from '../helpers/relay.js'

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

// ---- recovering from what a partition leaves behind ----

/** The store's private parts a test reaches into to stand in for a misbehaving server. */
interface StoreInternals {
  host: { js: JetStreamClient; manager: () => Promise<JetStreamManager> }
  sub: { unsubscribe(): void }
}
const internals = (store: JetStreamLogStore) => store as unknown as StoreInternals
const until = async (what: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) if (await what()) return true
  return what()
}
const unavailableError = (err: unknown) => err instanceof TributaryError && err.code === ErrorCode.LOG_UNAVAILABLE
  ? 'LOG_UNAVAILABLE' : `${(err as Error).name}: ${(err as Error).message}`

t.test('a read below the known end gets its records from the stream leader when the consumer returns none (its server is catching up)', async (t) => {
  const nc = await connection(t, single.urls)
  const writer = new JetStreamLogStore({ nc, cluster: 'behind' })
  const reader = new JetStreamLogStore({ nc, cluster: 'behind', timeoutMs: 1000 })
  t.teardown(async () => { await writer.close(); await reader.close() })
  const log = await writer.open('s', shard(0))
  log.append(Array.from({ length: 50 }, (_, i) => rec(`r${i}`)))
  await writer.commit()
  // Every consumer of the reader runs on a server that has none of the records yet.
  const host = internals(reader).host
  const real = host.js
  let pulls = 0
  const lagging = {
    get: async () => ({
      fetch: async () => {
        pulls++
        return Object.assign((async function* () {})(), { stop() {} })
      },
      delete: async () => true,
    }),
  }
  host.js = new Proxy(real, { get: (target, prop) => prop === 'consumers' ? lagging : Reflect.get(target, prop) })
  const other = await reader.open('s', shard(0))
  t.equal(other.endOffset(), 50)
  const { records, nextOffset } = await other.read(0, 100, 1 << 20)
  t.ok(pulls > 0, 'the read tried a consumer first')
  t.same(records.map((r) => r.data.toString()), Array.from({ length: 50 }, (_, i) => `r${i}`), 'and got every record all the same')
  t.equal(nextOffset, 50)
})

t.test('a read never takes a gap for retention unless the stream leader says the records are gone', async (t) => {
  const nc = await connection(t, single.urls)
  const writer = new JetStreamLogStore({ nc, cluster: 'gaps' })
  t.teardown(() => writer.close())
  const log = await writer.open('s', shard(0))
  log.append(Array.from({ length: 50 }, (_, i) => rec(`r${i}`)))
  await writer.commit()
  const name = `gaps_${encodeShardKey(`s/${shard(0)}`)}`
  const all = Array.from({ length: 50 }, (_, i) => `r${i}`)

  // A consumer on a server that lacks records 10..19 delivers 0..9, then 20.. (stream sequences skip).
  const skipping = new JetStreamLogStore({ nc, cluster: 'gaps', timeoutMs: 1000 })
  t.teardown(() => skipping.close())
  const host = internals(skipping).host
  const real = host.js
  host.js = new Proxy(real, {
    get: (target, prop) => prop !== 'consumers' ? Reflect.get(target, prop) : {
      get: async (stream: string, opts: { opt_start_seq: number }) => {
        const consumer = await real.consumers.get(stream, opts)
        return {
          fetch: async (fetchOpts: { max_messages: number; expires: number }) => {
            const batch = await consumer.fetch(fetchOpts)
            return Object.assign((async function* () {
              for await (const msg of batch) if (msg.seq <= 10 || msg.seq > 20) yield msg
            })(), { stop: () => batch.stop() })
          },
          delete: () => consumer.delete(),
        }
      },
    },
  })
  const viaGap = await skipping.open('s', shard(0))
  const read = await viaGap.read(0, 100, 1 << 20)
  t.same(read.records.map((r) => r.data.toString()), all, 'records a consumer skipped come from the stream leader instead')
  t.equal(viaGap.startOffset(), 0, 'and the shard still starts at 0')

  // The leader itself answers "no message" for a record below the committed end and above its first.
  const missing = new JetStreamLogStore({ nc, cluster: 'gaps', timeoutMs: 1000 })
  t.teardown(() => missing.close())
  const mhost = internals(missing).host
  const realManager = mhost.manager
  mhost.manager = async () => {
    const jsm = await realManager()
    return new Proxy(jsm, {
      get: (target, prop) => prop !== 'streams' ? Reflect.get(target, prop) : new Proxy(target.streams, {
        get: (streams, sp) => sp !== 'getMessage' ? Reflect.get(streams, sp)
          : async (stream: string, query: { seq: number }) => query.seq === 3 ? null : streams.getMessage(stream, query),
      }),
    })
  }
  const holed = await missing.open('s', shard(0))
  await holed.read(0, 3, 1 << 20).then(
    (r) => t.fail(`the read returned ${r.records.length} records past a hole`),
    (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'a record the leader does not return is LOG_UNAVAILABLE (try again), not skipped'))
  t.equal(holed.startOffset(), 0, 'the hole did not move the start')

  // Retention did take records 0..19: a read from 0 starts at 20, and the start moves there.
  const jsm = await jetstreamManager(nc)
  await jsm.streams.purge(name, { seq: 21 })
  for (const [label, count] of [['one by one', 3], ['through a consumer', 100]] as const) {
    const fresh = new JetStreamLogStore({ nc, cluster: 'gaps', timeoutMs: 1000 })
    const after = await fresh.open('s', shard(0))
    // A store opened now may know the new start already; a read from 0 must begin at 20 either way.
    const got = await after.read(0, count, 1 << 20)
    t.same(got.records.map((r) => r.data.toString()), all.slice(20, 20 + count), `${label}: records gone by retention are skipped`)
    t.ok(after.startOffset() >= 20, `${label}: the start moved past them (${after.startOffset()})`)
    await fresh.close()
  }
})

t.test('a store that missed a commit notice finds the end again: from a read at its end, from refresh, after a reconnect; a stale answer never moves the end back', async (t) => {
  const nats = await startNats(t, 1)
  const a = new JetStreamLogStore({ nc: await connection(t, nats.urls), cluster: 'deaf' })
  const b = new JetStreamLogStore({ nc: await connection(t, nats.urls), cluster: 'deaf' })
  t.teardown(async () => { await a.close(); await b.close() })
  const writer = await a.open('s', shard(0))
  const reader = await b.open('s', shard(0))
  const name = `deaf_${encodeShardKey(`s/${shard(0)}`)}`
  const jsm = await jetstreamManager(await connection(t, nats.urls))
  const before = await jsm.streams.info(name)
  // B hears no more notices (as when one is lost while a route or a client connection is down).
  internals(b).sub.unsubscribe()
  const write = async (n: number) => {
    writer.append(Array.from({ length: n }, (_, i) => rec(`w${writer.endOffset() + i}`)))
    await a.commit()
  }

  await write(3)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(reader.endOffset(), 0, 'the notice did not reach B')
  await new Promise((r) => setTimeout(r, 1100))
  const woken = new Promise<void>((resolve) => { const stop = b.onAppend((log) => { if (log === reader && log.endOffset() === 3) { stop(); resolve() } }) })
  t.same((await reader.read(0, 10, 1 << 20)).records, [], 'a read at the end finds nothing yet…')
  t.ok(await Promise.race([woken.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]), '…and looks at JetStream\'s end, waking B\'s readers')
  t.same((await reader.read(0, 10, 1 << 20)).records.map((r) => r.data.toString()), ['w0', 'w1', 'w2'])

  await write(2)
  await reader.refresh!()
  t.equal(reader.endOffset(), 5, 'refresh reads the end')

  // A stream-info answer from before (a request that raced commits) leaves the end where it is.
  await (reader as unknown as { adopt(info: unknown): Promise<void> }).adopt(before)
  t.same([reader.endOffset(), reader.startOffset()], [5, 0], 'an older answer does not move the end back')

  await write(4)
  t.equal(reader.endOffset(), 5)
  nats.kill(0)
  await nats.start(0)
  t.ok(await until(() => reader.endOffset() === 9, 10_000), `after a reconnect B reads the end again (${reader.endOffset()})`)
})

t.test('JetStream unreachable or failing while reading, refreshing or opening: LOG_UNAVAILABLE, never a raw NATS error', async (t) => {
  const nats = await startNats(t, 1)
  const a = new JetStreamLogStore({ nc: await connection(t, nats.urls), cluster: 'down' })
  const b = new JetStreamLogStore({ nc: await connection(t, nats.urls), cluster: 'down', timeoutMs: 500 })
  t.teardown(async () => { await a.close(); await b.close() })
  const writer = await a.open('s', shard(0))
  writer.append(Array.from({ length: 20 }, (_, i) => rec(`r${i}`)))
  await a.commit()
  const reader = await b.open('s', shard(0))
  writer.append([rec('r20')])
  await a.commit()

  // "JetStream system temporarily unavailable" (a 503 API error) from the message lookup a refresh makes.
  const host = internals(b).host
  const manager = host.manager
  const real = await manager()
  const failing = Object.create(real) as JetStreamManager
  Object.defineProperty(failing, 'streams', {
    value: new Proxy(real.streams, {
      get: (target, prop) => prop === 'getMessage'
        ? () => Promise.reject(new JetStreamApiError({ err_code: 10008, code: 503, description: 'JetStream system temporarily unavailable' }))
        : Reflect.get(target, prop),
    }),
  })
  host.manager = async () => failing
  internals(b).sub.unsubscribe()
  await reader.refresh!().then(() => t.fail('refresh should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'a 503 from the lookup of the newest record'))
  await reader.read(0, 3, 1 << 20).then(() => t.fail('read should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'a 503 from single gets'))
  host.manager = manager

  nats.kill(0)
  await reader.refresh!().then(() => t.fail('refresh should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'refresh with the server gone'))
  await reader.read(0, 3, 1 << 20).then(() => t.fail('read should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'a short read with the server gone'))
  await reader.read(0, 15, 1 << 20).then(() => t.fail('read should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'a consumer read with the server gone'))
  await b.open('s', shard(1)).then(() => t.fail('open should fail'), (err) => t.equal(unavailableError(err), 'LOG_UNAVAILABLE', 'opening with the server gone'))
})

t.test('a NATS server without JetStream: opening a shard is LOG_UNAVAILABLE saying JetStream could not be reached', async (t) => {
  const port = await freePort()
  const server = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  t.teardown(() => { server.kill('SIGKILL') })
  let nc: NatsConnection | null = null
  await until(async () => { nc = await connect({ servers: `nats://127.0.0.1:${port}` }).catch(() => null); return nc !== null }, 10_000)
  t.ok(nc, 'connected to a server without JetStream')
  t.teardown(() => nc!.close())
  const store = new JetStreamLogStore({ nc: nc!, cluster: 'nojs', timeoutMs: 1000 })
  t.teardown(() => store.close())
  const err = await store.open('s', shard(0)).then(() => null, (e: unknown) => e)
  t.equal(unavailableError(err), 'LOG_UNAVAILABLE')
  t.match((err as Error).message, /JetStream could not be reached/)
})

t.test('a shard stream deleted and made again by another relay: refresh takes its new, lower end', async (t) => {
  const a = new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'again' })
  const b = new JetStreamLogStore({ nc: await connection(t, single.urls), cluster: 'again' })
  t.teardown(async () => { await a.close(); await b.close() })
  const first = await a.open('s', shard(0))
  first.append([rec('a'), rec('b'), rec('c')])
  await a.commit()
  const reader = await b.open('s', shard(0))
  t.equal(reader.endOffset(), 3)
  await new Promise((r) => setTimeout(r, 1100))
  await a.drop('s', shard(0))
  const again = await a.open('s', shard(0))
  again.append([rec('new')])
  await a.commit()
  await reader.refresh!()
  t.equal(reader.endOffset(), 1, 'the end of the new stream')
  t.same((await reader.read(0, 10, 1 << 20)).records.map((r) => r.data.toString()), ['new'])
})
