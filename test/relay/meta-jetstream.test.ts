import t, { type Test } from 'tap'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { JetStreamMetadataStore } from '../../relay/meta/jetstream.js'
import type { ShardMeta, StreamMeta } from '../../relay/meta/types.js'
import { metadataContract } from '../contracts/metadata.js'
import { natsMissing, startNats } from '../helpers/nats.js'

const stream = (name: string, id = `${name}.1`): StreamMeta => ({
  name, id, arn: `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`, status: 'ACTIVE', retentionHours: 24, createdMs: 1000, mode: 'PROVISIONED',
})
const shard = (streamId: string, index: number, parentShardId: string | null = null): ShardMeta => ({
  streamId, shardId: `shardId-${String(index).padStart(12, '0')}`, index, hashStart: String(index * 10), hashEnd: String(index * 10 + 9),
  createdMs: 1000, parentShardId, adjacentParentShardId: null, endOffset: null,
})

let clusters = 0
/** A bucket of its own for each test. */
const freshCluster = () => `m${process.pid}-${++clusters}`

async function connectTo(t: Test, servers: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
  t.teardown(() => nc.close())
  return nc
}

/** Resolves with how long it took until `check` held, or rejects after `ms`. */
async function within(ms: number, what: string, check: () => boolean): Promise<number> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return Date.now() - start
}

/**
 * Retries `fn` while NATS is failing over (the store says STORAGE_FAILED), up to `ms`. A write that
 * timed out may have been applied all the same; its retry is then a CONFLICT, accepted only when
 * `applied` confirms the write is there.
 */
async function retrying<T>(ms: number, fn: () => Promise<T>, applied?: () => Promise<boolean>): Promise<T | undefined> {
  const deadline = Date.now() + ms
  let failed = false
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'CONFLICT' && failed && applied && (await applied())) return undefined
      if (code !== 'STORAGE_FAILED' || Date.now() > deadline) throw err
      failed = true
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

async function suite(): Promise<void> {
  const one = await startNats(t, 1)

  metadataContract(t, 'JetStream metadata (R1)', (t) => {
    const cluster = freshCluster()
    // A reopen is a new connection to the same bucket, as a relay restarting.
    return async () => JetStreamMetadataStore.open({ nc: await connectTo(t, one.servers), cluster, replicas: 1 })
  })

  t.test('two relays on one NATS share the metadata', async (t) => {
    const cluster = freshCluster()
    const a = await JetStreamMetadataStore.open({ nc: await connectTo(t, one.servers), cluster })
    const b = await JetStreamMetadataStore.open({ nc: await connectTo(t, one.servers), cluster })
    t.teardown(async () => { await a.close(); await b.close() })

    await t.test('a stream created through one relay is read through the other', async (t) => {
      await a.createStream(stream('shared'), [shard('shared.1', 0), shard('shared.1', 1)])
      t.same(await b.getStream('shared'), stream('shared'))
      t.same(await b.listShards('shared.1'), [shard('shared.1', 0), shard('shared.1', 1)])
      await b.setRetention('shared', 72)
      t.equal((await a.getStream('shared'))?.retentionHours, 72, 'and a change through the other is read through the first')
    })

    await t.test('of two relays resharding the same shard at once, exactly one applies and the other gets CONFLICT', async (t) => {
      const rounds = 8
      await a.createStream(stream('race'), [shard('race.1', 0)])
      let parent = shard('race.1', 0).shardId
      for (let round = 0; round < rounds; round++) {
        // Each relay splits the open shard into children of its own numbering.
        const childOf = (store: number) => shard('race.1', 1 + round * 2 + store, parent)
        const results = await Promise.allSettled([
          a.reshard('race.1', { close: [{ shardId: parent, endOffset: round + 1 }], create: [childOf(0)] }),
          b.reshard('race.1', { close: [{ shardId: parent, endOffset: round + 100 }], create: [childOf(1)] }),
        ])
        const won = results.findIndex((r) => r.status === 'fulfilled')
        t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one applied`)
        const lost = results[1 - won]
        t.match(lost, { status: 'rejected', reason: { code: 'CONFLICT' } }, `round ${round}: the other is a CONFLICT`)
        const [mapA, mapB] = await Promise.all([a.listShards('race.1'), b.listShards('race.1')])
        t.same(mapA, mapB, `round ${round}: both relays read the same map`)
        t.equal(mapA.filter((s) => s.endOffset === null).length, 1, `round ${round}: one open shard, the winner's child`)
        t.equal(mapA.find((s) => s.shardId === parent)?.endOffset, won === 0 ? round + 1 : round + 100, `round ${round}: closed at the winner's offset`)
        parent = childOf(won).shardId
      }
      t.equal((await a.listShards('race.1')).length, 1 + rounds, "no loser's child was kept")
    })

    await t.test('two relays resharding different shards at once both apply: the loser of the race applies on top of the winner', async (t) => {
      await a.createStream(stream('both'), [shard('both.1', 0), shard('both.1', 1)])
      await Promise.all([
        a.reshard('both.1', { close: [{ shardId: shard('both.1', 0).shardId, endOffset: 5 }], create: [shard('both.1', 2, shard('both.1', 0).shardId)] }),
        b.reshard('both.1', { close: [{ shardId: shard('both.1', 1).shardId, endOffset: 6 }], create: [shard('both.1', 3, shard('both.1', 1).shardId)] }),
      ])
      t.same((await b.listShards('both.1')).map((s) => [s.index, s.endOffset]), [[0, 5], [1, 6], [2, null], [3, null]])
    })

    await t.test('of two relays creating one stream name at once, exactly one succeeds', async (t) => {
      for (let round = 0; round < 8; round++) {
        const name = `dup-${round}`
        const results = await Promise.allSettled([
          a.createStream(stream(name, `${name}.a`), [shard(`${name}.a`, 0)]),
          b.createStream(stream(name, `${name}.b`), [shard(`${name}.b`, 0), shard(`${name}.b`, 1)]),
        ])
        const won = results.findIndex((r) => r.status === 'fulfilled')
        t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one created it`)
        t.match(results[1 - won], { status: 'rejected', reason: { code: 'CONFLICT' } })
        const winnerId = `${name}.${won === 0 ? 'a' : 'b'}`
        const loserId = `${name}.${won === 0 ? 'b' : 'a'}`
        t.equal((await b.getStream(name))?.id, winnerId, "both read the winner's stream")
        t.equal((await a.getStream(name))?.id, winnerId)
        t.equal((await a.listShards(winnerId)).length, won === 0 ? 1 : 2)
        t.same(await a.listShards(loserId), [], "the loser's shards are nowhere")
      }
    })

    await t.test("a relay sees another's stream changes within a second (watchStreams)", async (t) => {
      const seen: string[] = []
      const stop = b.watchStreams((name) => seen.push(name))
      const expect = async (what: string, change: () => Promise<unknown>) => {
        seen.length = 0
        await change()
        const ms = await within(1000, what, () => seen.includes('watched'))
        t.ok(ms < 1000, `${what}: seen after ${ms} ms`)
      }
      await expect('created', () => a.createStream(stream('watched'), [shard('watched.1', 0)]))
      await expect('status', () => a.setStreamStatus('watched', 'UPDATING'))
      await expect('resharded', () => a.reshard('watched.1', { close: [{ shardId: shard('watched.1', 0).shardId, endOffset: 1 }], create: [shard('watched.1', 1, shard('watched.1', 0).shardId)], status: 'ACTIVE' }))
      t.equal((await b.listShards('watched.1')).length, 2, 'and reads the new map when told')
      await expect('settings', () => a.putStreamSettings('watched.1', { encryptionType: 'KMS', keyId: 'k', shardLevelMetrics: [] }))
      await expect('mode', () => a.setStreamMode('watched', 'ON_DEMAND'))
      await expect('deleted', () => a.deleteStream('watched'))
      t.equal(await b.getStream('watched'), undefined)

      seen.length = 0
      await a.putDevice({ id: 'd', salt: 's', hash: 'h', createdMs: 1, rotatedMs: 1 })
      await a.putTags('x.1', { a: 'b' })
      await a.createStream(stream('after'), [])
      await within(1000, 'a later change', () => seen.includes('after'))
      t.same(seen, ['after'], 'other keys are not announced as streams')
      stop()
      await a.setStreamStatus('after', 'UPDATING')
      await new Promise((r) => setTimeout(r, 300))
      t.same(seen, ['after'], 'a stopped listener hears nothing more')
    })
  })

  t.test('producer state of several MiB is kept in parts, replaced whole, and goes with its stream', async (t) => {
    const cluster = freshCluster()
    const nc = await connectTo(t, one.servers)
    const store = await JetStreamMetadataStore.open({ nc, cluster })
    t.teardown(() => store.close())
    const raw = await new Kvm(nc).create(`${cluster}-meta`)
    const partKeys = async () => { const keys: string[] = []; for await (const k of await raw.keys('producer-part.>')) keys.push(k); return keys }
    const maxPayload = nc.info!.max_payload
    // Larger than any one message the server takes (1 MiB by default; the helper's servers may take more).
    const mib = Math.max(5, Math.ceil(maxPayload / 2 ** 20) + 1)
    const big = (mib: number, seed: string) => JSON.stringify({ seed, producers: Array.from({ length: mib * 1024 * 16 }, (_, i) => `device-${i}:${seed}:${'é'.repeat(24)}`) })
    await store.createStream(stream('p'), [shard('p.1', 0)])
    const first = big(mib, 'one')
    t.ok(Buffer.byteLength(first) > Math.max(5 * 2 ** 20, maxPayload), `the state (${Buffer.byteLength(first)} bytes) is over 5 MiB and over the max payload (${maxPayload})`)
    await store.saveProducerState('p.1', first)
    t.equal(await store.loadProducerState('p.1'), first, 'a state of several MiB comes back whole')
    const parts = (await partKeys()).length
    t.ok(parts > 5, `in ${parts} parts`)

    const second = big(3, 'two')
    await store.saveProducerState('p.1', second)
    t.equal(await store.loadProducerState('p.1'), second, 'a second large state replaces the first')
    t.ok((await partKeys()).length < parts, "the first state's parts are removed")
    await store.saveProducerState('p.1', '{"small":true}')
    t.equal(await store.loadProducerState('p.1'), '{"small":true}')
    t.same(await partKeys(), [], 'a small state needs no parts')

    await store.saveProducerState('p.1', first)
    await store.deleteStream('p')
    t.equal(await store.loadProducerState('p.1'), undefined)
    t.same(await partKeys(), [], "a deleted stream's parts go with it")
  })

  t.test('a deletion cut short after its commit point (a tombstone) hides the stream and is finished by the next create of the name', async (t) => {
    const cluster = freshCluster()
    const nc = await connectTo(t, one.servers)
    const store = await JetStreamMetadataStore.open({ nc, cluster })
    t.teardown(() => store.close())
    await store.createStream(stream('t'), [shard('t.1', 0)])
    await store.putTags('t.1', { a: '1' })
    await store.putCheckpoint({ streamId: 't.1', consumer: 'app', shardId: shard('t.1', 0).shardId, sequenceNumber: '3', updatedMs: 1 })
    // What deleteStream writes first (the layout in relay/meta/jetstream.ts), as if the relay died right after.
    const raw = await new Kvm(nc).create(`${cluster}-meta`)
    const k = `stream.${Buffer.from('t').toString('base64url')}`
    const entry = await raw.get(k)
    await raw.update(k, JSON.stringify({ ...entry!.json<object>(), deleting: true }), entry!.revision)

    t.equal(await store.getStream('t'), undefined, 'the stream is gone for readers')
    t.same(await store.listStreams(), [])
    t.same(await store.listShards('t.1'), [])
    await store.setStreamStatus('t', 'ACTIVE')
    t.equal(await store.getStream('t'), undefined, 'and a change does not bring it back')
    await t.rejects(store.reshard('t.1', { close: [{ shardId: shard('t.1', 0).shardId, endOffset: 1 }], create: [] }), { code: 'CONFLICT' })

    await store.createStream(stream('t', 't.2'), [shard('t.2', 0)])
    t.equal((await store.getStream('t'))?.id, 't.2', 'the name is created again')
    t.same(await store.getTags('t.1'), {}, "and the old stream's tags were removed first")
    t.same(await store.listCheckpoints('t.1', 'app'), [], 'and its checkpoints')
    t.equal(await raw.get(`stream-id.${Buffer.from('t.1').toString('base64url')}`).then((e) => e?.operation), 'DEL', 'and its id released')
  })

  t.test('a stream whose value would pass the max payload is refused whole, not cut', async (t) => {
    const nc = await connectTo(t, one.servers)
    const store = await JetStreamMetadataStore.open({ nc, cluster: freshCluster() })
    t.teardown(() => store.close())
    // Each shard is over 100 bytes of JSON.
    const shards = Array.from({ length: Math.ceil(nc.info!.max_payload / 100) }, (_, i) => shard('huge.1', i))
    await t.rejects(store.createStream(stream('huge'), shards), { code: 'LIMIT_EXCEEDED' })
    t.equal(await store.getStream('huge'), undefined)
    await store.createStream(stream('huge'), shards.slice(0, 2))
    t.equal((await store.listShards('huge.1')).length, 2, 'the name and id were left free')
  })

  t.test('on a three-server cluster', async (t) => {
    const three = await startNats(t, 3)

    metadataContract(t, 'JetStream metadata (R3)', (t) => {
      const cluster = freshCluster()
      return async () => JetStreamMetadataStore.open({ nc: await connectTo(t, three.urls), cluster, replicas: 3 })
    })

    t.test('kill -9 of the bucket leader: after the client reconnects, reads and writes go on and nothing written is lost', async (t) => {
      const cluster = freshCluster()
      const nc = await connectTo(t, three.urls)
      const store = await JetStreamMetadataStore.open({ nc, cluster, replicas: 3 })
      t.teardown(() => store.close())
      const other = await JetStreamMetadataStore.open({ nc: await connectTo(t, three.urls), cluster, replicas: 3 })
      t.teardown(() => other.close())

      for (let i = 0; i < 20; i++) await store.createStream(stream(`s${i}`), [shard(`s${i}.1`, 0), shard(`s${i}.1`, 1)])
      await store.reshard('s0.1', { close: [{ shardId: shard('s0.1', 0).shardId, endOffset: 9 }], create: [shard('s0.1', 2, shard('s0.1', 0).shardId)] })
      await store.putDevice({ id: 'dev', salt: 's', hash: 'h', createdMs: 1, rotatedMs: 1 })
      await store.putCheckpoint({ streamId: 's1.1', consumer: 'app', shardId: shard('s1.1', 0).shardId, sequenceNumber: '7', updatedMs: 1 }, null)
      const state = 'x'.repeat(3 * 1024 * 1024)
      await store.saveProducerState('s2.1', state)

      const info = await (await jetstreamManager(nc)).streams.info(`KV_${cluster}-meta`)
      const leader = Number(/^n(\d)$/.exec(info.cluster?.leader ?? '')?.[1])
      t.ok([0, 1, 2].includes(leader), `the bucket's leader is n${leader}`)
      t.equal(info.config.num_replicas, 3)
      three.kill(leader)

      const started = Date.now()
      await retrying(20_000, () => store.createStream(stream('after-kill'), [shard('after-kill.1', 0)]), async () => (await store.getStream('after-kill'))?.id === 'after-kill.1')
      t.comment(`first write after the kill took ${Date.now() - started} ms`)
      t.same(await retrying(20_000, () => other.getStream('after-kill')), stream('after-kill'), 'the other relay reads it')
      await retrying(20_000, () => other.reshard('s1.1', { close: [{ shardId: shard('s1.1', 0).shardId, endOffset: 3 }], create: [shard('s1.1', 2, shard('s1.1', 0).shardId)] }),
        async () => (await other.listShards('s1.1')).length === 3)
      await retrying(20_000, () => store.putCheckpoint({ streamId: 's1.1', consumer: 'app', shardId: shard('s1.1', 0).shardId, sequenceNumber: '8', updatedMs: 2 }, '7'),
        async () => (await store.listCheckpoints('s1.1', 'app'))[0]?.sequenceNumber === '8')

      t.equal((await retrying(20_000, () => other.listStreams())).length, 21, 'every stream written before is there')
      t.same((await other.listShards('s0.1')).map((s) => s.endOffset), [9, null, null], 'with its map')
      t.same((await other.listShards('s1.1')).map((s) => s.endOffset), [3, null, null])
      t.equal((await other.getDevice('dev'))?.hash, 'h')
      t.equal((await other.listCheckpoints('s1.1', 'app'))[0]?.sequenceNumber, '8')
      t.equal(await other.loadProducerState('s2.1'), state, 'and the large producer state')
      await three.start(leader)
    })
  })
}

const missing = natsMissing()
if (missing !== null) t.skip(`the JetStream metadata store needs real NATS servers: ${missing}`)
else await suite()
