/**
 * The contract every MetadataStore keeps: the embedded SQLite store runs it now, a PostgreSQL one
 * (DESIGN.md, scale-out) will run the same suite.
 */
import type { Test } from 'tap'
import type { MetadataStore, ShardMeta, StreamMeta } from '../../relay/meta/types.js'

/** Returns an opener over the same backing state each time it is called within one test. */
export type MetadataStoreFactory = (t: Test) => () => Promise<MetadataStore>

const stream = (name: string, id = `${name}.1`): StreamMeta => ({
  name, id, arn: `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`, status: 'ACTIVE', retentionHours: 24, createdMs: 1000, mode: 'PROVISIONED',
})
const shard = (streamId: string, index: number): ShardMeta => ({
  streamId, shardId: `shardId-${String(index).padStart(12, '0')}`, index, hashStart: String(index * 10), hashEnd: String(index * 10 + 9),
  createdMs: 1000, parentShardId: null, adjacentParentShardId: null, endOffset: null,
})

export function metadataContract(t: Test, name: string, factory: MetadataStoreFactory): void {
  t.test(`${name}: a stream and its shard map are stored together and survive a reopen`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.createStream(stream('a'), [shard('a.1', 0), shard('a.1', 1)])
    await store.close()
    store = await open()
    t.same(await store.getStream('a'), stream('a'))
    t.same((await store.listShards('a.1')).map((s) => s.shardId), ['shardId-000000000000', 'shardId-000000000001'])
    t.same((await store.listShards('a.1'))[1], shard('a.1', 1))
    await store.close()
  })

  t.test(`${name}: creating a stream that exists is a CONFLICT and changes nothing`, async (t) => {
    const store = await factory(t)()
    await store.createStream(stream('a'), [shard('a.1', 0)])
    await t.rejects(store.createStream(stream('a', 'a.2'), [shard('a.2', 0)]), { code: 'CONFLICT' })
    t.equal((await store.getStream('a'))?.id, 'a.1')
    t.same(await store.listShards('a.2'), [], 'no shards of the refused stream were written')
    await store.close()
  })

  t.test(`${name}: status, retention and deletion`, async (t) => {
    const store = await factory(t)()
    await store.createStream(stream('b'), [shard('b.1', 0)])
    await store.createStream(stream('a'), [shard('a.1', 0)])
    t.same((await store.listStreams()).map((s) => s.name), ['a', 'b'], 'listed in name order')
    await store.setStreamStatus('b', 'DELETING')
    await store.setRetention('b', 48)
    t.match(await store.getStream('b'), { status: 'DELETING', retentionHours: 48 })
    await store.saveProducerState('b.1', '{"x":1}')
    await store.deleteStream('b')
    t.equal(await store.getStream('b'), undefined)
    t.same(await store.listShards('b.1'), [])
    t.equal(await store.loadProducerState('b.1'), undefined, 'its producer state goes with it')
    await store.close()
  })

  t.test(`${name}: a shard map change closes parents and adds children in one step, or not at all`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.createStream(stream('r'), [shard('r.1', 0), shard('r.1', 1)])
    const child = (index: number, parent: string, adjacent: string | null = null, endOffset: number | null = null): ShardMeta => ({ ...shard('r.1', index), parentShardId: parent, adjacentParentShardId: adjacent, endOffset })
    await store.setStreamStatus('r', 'UPDATING')
    await store.reshard('r.1', { close: [{ shardId: 'shardId-000000000000', endOffset: 42 }], create: [child(2, 'shardId-000000000000'), child(3, 'shardId-000000000000')], status: 'ACTIVE' })
    await store.close()
    store = await open()
    t.equal((await store.getStream('r'))?.status, 'ACTIVE', 'the status commits with the map')
    const shards = await store.listShards('r.1')
    t.same(shards.map((s) => [s.shardId, s.endOffset, s.parentShardId]), [
      ['shardId-000000000000', 42, null], ['shardId-000000000001', null, null],
      ['shardId-000000000002', null, 'shardId-000000000000'], ['shardId-000000000003', null, 'shardId-000000000000'],
    ])

    // Closing a shard that is already closed is a CONFLICT, and nothing of the change is kept.
    await store.setStreamStatus('r', 'UPDATING')
    await t.rejects(store.reshard('r.1', {
      close: [{ shardId: 'shardId-000000000001', endOffset: 7 }, { shardId: 'shardId-000000000000', endOffset: 50 }],
      create: [child(4, 'shardId-000000000001', 'shardId-000000000000')], status: 'ACTIVE',
    }), { code: 'CONFLICT' })
    // So is a new shard whose id exists.
    await t.rejects(store.reshard('r.1', { close: [{ shardId: 'shardId-000000000001', endOffset: 7 }], create: [child(2, 'shardId-000000000001')], status: 'ACTIVE' }), { code: 'CONFLICT' })
    t.same(await store.listShards('r.1'), shards, 'the map is as it was')
    t.equal((await store.getStream('r'))?.status, 'UPDATING', 'and so is the status')

    // A short-lived shard may be created already closed.
    await store.reshard('r.1', { close: [{ shardId: 'shardId-000000000001', endOffset: 9 }], create: [child(4, 'shardId-000000000001', null, 0), child(5, 'shardId-000000000004')] })
    t.same((await store.listShards('r.1')).map((s) => s.endOffset), [42, 9, null, null, 0, null])
    await store.close()
  })

  t.test(`${name}: tags and checkpoints are kept per stream and go with it`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.createStream(stream('g'), [shard('g.1', 0)])
    await store.putTags('g.1', { b: '2', a: '1' })
    await store.putTags('g.1', { b: '3' })
    const consumerArn = 'arn:aws:kinesis:us-east-1:000000000000:stream/g/consumer/app:1'
    await store.putTags(consumerArn, { team: 'edge' })
    await store.removeTags('g.1', ['a', 'missing'])
    const cp = { streamId: 'g.1', consumer: 'app', shardId: 'shardId-000000000000', sequenceNumber: '5', updatedMs: 1 }
    await store.putCheckpoint(cp, null)
    await t.rejects(store.putCheckpoint({ ...cp, sequenceNumber: '6' }, null), { code: 'CONFLICT' }, 'a conditional write expecting none fails when one exists')
    await t.rejects(store.putCheckpoint({ ...cp, sequenceNumber: '6' }, '4'), { code: 'CONFLICT' })
    await store.putCheckpoint({ ...cp, sequenceNumber: '6', updatedMs: 2 }, '5')
    await store.putCheckpoint({ ...cp, consumer: 'other', sequenceNumber: '1' })
    await store.close()
    store = await open()
    t.same(await store.getTags('g.1'), { b: '3' })
    t.same(await store.listCheckpoints('g.1', 'app'), [{ ...cp, sequenceNumber: '6', updatedMs: 2 }])
    t.same(await store.getTags(consumerArn), { team: 'edge' }, "a consumer's tags are kept under its ARN")
    await store.deleteStream('g')
    t.same(await store.getTags('g.1'), {})
    t.same(await store.getTags(consumerArn), {}, "its consumers' tags go with the stream")
    t.same(await store.listCheckpoints('g.1', 'other'), [])
    await store.close()
  })

  t.test(`${name}: devices are added, replaced, listed and removed`, async (t) => {
    const store = await factory(t)()
    await store.putDevice({ id: 'd1', salt: 'aa', hash: 'bb', createdMs: 1, rotatedMs: 1 })
    await store.putDevice({ id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2 })
    t.same(await store.getDevice('d1'), { id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2 })
    t.same((await store.listDevices()).map((d) => d.id), ['d1'])
    t.equal(await store.deleteDevice('d1'), true)
    t.equal(await store.deleteDevice('d1'), false)
    t.equal(await store.getDevice('d1'), undefined)
    await store.close()
  })

  t.test(`${name}: settings and producer state are kept by key`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.putSetting('k', 'v1')
    await store.putSetting('k', 'v2')
    await store.saveProducerState('s.1', 'state-1')
    await store.saveProducerState('s.1', 'state-2')
    await store.close()
    store = await open()
    t.equal(await store.getSetting('k'), 'v2')
    t.equal(await store.getSetting('missing'), undefined)
    t.equal(await store.loadProducerState('s.1'), 'state-2')
    await store.close()
  })

  t.test(`${name}: consumers, stream settings and resource policies survive a reopen and go with their stream`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.createStream(stream('c'), [shard('c.1', 0)])
    await store.createStream(stream('other'), [shard('other.1', 0)])
    const arn = stream('c').arn
    const consumer = { streamId: 'c.1', name: 'app', arn: `${arn}/consumer/app:1`, status: 'CREATING' as const, createdMs: 1000 }
    await store.putConsumer(consumer)
    await store.putConsumer({ ...consumer, name: 'b', arn: `${arn}/consumer/b:2`, createdMs: 2000 })
    await store.putConsumer({ ...consumer, status: 'ACTIVE' })
    await store.putStreamSettings('c.1', { encryptionType: 'KMS', keyId: 'alias/k', shardLevelMetrics: ['IncomingBytes'] })
    await store.putResourcePolicy(arn, '{"Statement":[]}')
    await store.putResourcePolicy(consumer.arn, '{"Statement":[1]}')
    await store.putResourcePolicy(stream('other').arn, '{"Statement":[2]}')
    await store.close()
    store = await open()
    t.same(await store.listConsumers('c.1'), [{ ...consumer, status: 'ACTIVE' }, { ...consumer, name: 'b', arn: `${arn}/consumer/b:2`, createdMs: 2000 }], 'in registration order, updated in place')
    t.equal((await store.listConsumers()).length, 2)
    t.same(await store.getStreamSettings('c.1'), { encryptionType: 'KMS', keyId: 'alias/k', shardLevelMetrics: ['IncomingBytes'] })
    t.equal(await store.getStreamSettings('other.1'), undefined)
    t.equal(await store.getResourcePolicy(consumer.arn), '{"Statement":[1]}')
    t.equal(await store.deleteConsumer('c.1', 'b'), true)
    t.equal(await store.deleteConsumer('c.1', 'b'), false)
    await store.deleteStream('c')
    t.same(await store.listConsumers('c.1'), [])
    t.equal(await store.getStreamSettings('c.1'), undefined)
    t.equal(await store.getResourcePolicy(arn), undefined, "the stream's policy goes with it")
    t.equal(await store.getResourcePolicy(consumer.arn), undefined, "and its consumers' policies")
    t.equal(await store.getResourcePolicy(stream('other').arn), '{"Statement":[2]}', "another stream's stays")
    t.equal(await store.deleteResourcePolicy(stream('other').arn), true)
    t.equal(await store.deleteResourcePolicy(stream('other').arn), false)
    await store.close()
  })
}
