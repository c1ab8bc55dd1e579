/**
 * The contract every MetadataStore keeps: the embedded SQLite store and the in-memory one run it
 * (test/relay/meta.test.ts), and a PostgreSQL one (DESIGN.md, scale-out) will run the same suite.
 * Each case pins one behaviour callers rely on, so a store that broke it fails here.
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
    await t.rejects(store.createStream(stream('b', 'a.1'), [shard('b.1', 0)]), { code: 'CONFLICT' }, 'an id is unique across names too')
    await t.rejects(store.createStream(stream('c'), [shard('c.1', 0), shard('c.1', 0)]), { code: 'CONFLICT' }, 'and a shard id within its stream')
    t.equal(await store.getStream('b'), undefined, 'neither refused stream was written')
    t.equal(await store.getStream('c'), undefined)
    t.same(await store.listShards('b.1'), [])
    t.same(await store.listShards('c.1'), [], 'nor the first of the duplicated shards')
    t.same((await store.listStreams()).map((s) => s.name), ['a'])
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
    t.match(await store.getStream('a'), { status: 'ACTIVE', retentionHours: 24 }, 'another stream is untouched')
    await store.setStreamMode('a', 'ON_DEMAND')
    t.equal((await store.getStream('a'))?.mode, 'ON_DEMAND')
    t.equal((await store.getStream('b'))?.mode, 'PROVISIONED')
    await store.setStreamStatus('missing', 'ACTIVE')
    await store.setRetention('missing', 48)
    await store.setStreamMode('missing', 'ON_DEMAND')
    t.equal(await store.getStream('missing'), undefined, 'changing a stream that does not exist creates none')
    await store.saveProducerState('b.1', '{"x":1}')
    await store.saveProducerState('a.1', '{"y":2}')
    await store.deleteStream('b')
    t.equal(await store.getStream('b'), undefined)
    t.same(await store.listShards('b.1'), [])
    t.equal(await store.loadProducerState('b.1'), undefined, 'its producer state goes with it')
    t.same((await store.listStreams()).map((s) => s.name), ['a'])
    t.equal((await store.listShards('a.1')).length, 1, "another stream's shards stay")
    t.equal(await store.loadProducerState('a.1'), '{"y":2}', 'and its producer state')
    await store.deleteStream('missing')
    await store.deleteStream('b')
    t.pass('deleting a stream that does not exist is not an error')
    await store.close()
  })

  t.test(`${name}: streams are listed in UTF-8 byte order and shards by index`, async (t) => {
    const store = await factory(t)()
    // SQLite's BINARY collation: U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80), though not in UTF-16.
    for (const n of ['b', '\u{1F600}', 'B', '\uFFFD', 'a']) await store.createStream(stream(n), [])
    t.same((await store.listStreams()).map((s) => s.name), ['B', 'a', 'b', '\uFFFD', '\u{1F600}'])
    await store.createStream(stream('s'), [shard('s.1', 2), shard('s.1', 10), shard('s.1', 1)])
    t.same((await store.listShards('s.1')).map((s) => s.index), [1, 2, 10], 'by number, not by text')
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

    // Nor may it close a shard that does not exist, or one twice, or a shard it creates.
    await t.rejects(store.reshard('r.1', { close: [{ shardId: 'shardId-000000000009', endOffset: 1 }], create: [] }), { code: 'CONFLICT' })
    await t.rejects(store.reshard('r.1', { close: [{ shardId: 'shardId-000000000001', endOffset: 1 }, { shardId: 'shardId-000000000001', endOffset: 2 }], create: [] }), { code: 'CONFLICT' })
    await t.rejects(store.reshard('r.1', { close: [{ shardId: 'shardId-000000000004', endOffset: 1 }], create: [child(4, 'shardId-000000000001')] }), { code: 'CONFLICT' })
    await t.rejects(store.reshard('r.1', { close: [], create: [child(4, 'shardId-000000000001'), child(4, 'shardId-000000000001')] }), { code: 'CONFLICT' }, 'or create one shard twice')
    t.same(await store.listShards('r.1'), shards, 'none of these changed the map')

    // A short-lived shard may be created already closed; without a status the stream's stays.
    await store.reshard('r.1', { close: [{ shardId: 'shardId-000000000001', endOffset: 9 }], create: [child(4, 'shardId-000000000001', null, 0), child(5, 'shardId-000000000004')] })
    t.same((await store.listShards('r.1')).map((s) => s.endOffset), [42, 9, null, null, 0, null])
    t.same((await store.listShards('r.1'))[5], child(5, 'shardId-000000000004'), 'a new shard is stored whole')
    t.equal((await store.getStream('r'))?.status, 'UPDATING')
    await store.close()
  })

  t.test(`${name}: a shard map change touches only its own stream`, async (t) => {
    const store = await factory(t)()
    await store.createStream(stream('p'), [shard('p.1', 0)])
    await store.createStream(stream('q'), [shard('q.1', 0)])
    await store.setStreamStatus('p', 'UPDATING')
    await store.setStreamStatus('q', 'UPDATING')
    await t.rejects(store.reshard('q.1', { close: [{ shardId: 'shardId-000000000000', endOffset: 3 }], create: [{ ...shard('q.1', 0), shardId: 'shardId-000000000000' }] }), { code: 'CONFLICT' })
    await store.reshard('p.1', { close: [{ shardId: 'shardId-000000000000', endOffset: 3 }], create: [{ ...shard('p.1', 1), parentShardId: 'shardId-000000000000' }], status: 'ACTIVE' })
    t.same(await store.listShards('q.1'), [shard('q.1', 0)], "the other stream's map is as it was")
    t.equal((await store.getStream('q'))?.status, 'UPDATING', 'and so is its status')
    t.equal((await store.getStream('p'))?.status, 'ACTIVE')
    t.same((await store.listShards('p.1')).map((s) => s.endOffset), [3, null])
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
    await store.createStream(stream('h'), [shard('h.1', 0)])
    await store.putTags('h.1', { a: 'kept' })
    const cp = { streamId: 'g.1', consumer: 'app', shardId: 'shardId-000000000000', sequenceNumber: '5', updatedMs: 1 }
    await t.rejects(store.putCheckpoint(cp, '4'), { code: 'CONFLICT' }, 'a conditional write expecting one fails when there is none')
    t.same(await store.listCheckpoints('g.1', 'app'), [], 'and writes nothing')
    await store.putCheckpoint(cp, null)
    await t.rejects(store.putCheckpoint({ ...cp, sequenceNumber: '6' }, null), { code: 'CONFLICT' }, 'a conditional write expecting none fails when one exists')
    await t.rejects(store.putCheckpoint({ ...cp, sequenceNumber: '6' }, '4'), { code: 'CONFLICT' })
    t.equal((await store.listCheckpoints('g.1', 'app'))[0]?.sequenceNumber, '5', 'a refused write changes nothing')
    await store.putCheckpoint({ ...cp, sequenceNumber: '6', updatedMs: 2 }, '5')
    await store.putCheckpoint({ ...cp, consumer: 'other', sequenceNumber: '1' })
    await store.putCheckpoint({ ...cp, consumer: 'other', sequenceNumber: '2' })
    await store.putCheckpoint({ ...cp, streamId: 'h.1', sequenceNumber: '9' })
    await store.close()
    store = await open()
    t.same(await store.getTags('g.1'), { b: '3' })
    t.same(await store.listCheckpoints('g.1', 'app'), [{ ...cp, sequenceNumber: '6', updatedMs: 2 }])
    t.same(await store.listCheckpoints('g.1', 'other'), [{ ...cp, consumer: 'other', sequenceNumber: '2' }], 'a write without a condition replaces')
    t.same(await store.listCheckpoints('g.1'), [{ ...cp, sequenceNumber: '6', updatedMs: 2 }, { ...cp, consumer: 'other', sequenceNumber: '2' }],
      "without a consumer: every consumer's of the stream, by consumer, and no other stream's")
    await store.putCheckpoint({ ...cp, consumer: 'gone', shardId: 'shardId-000000000000' })
    await store.putCheckpoint({ ...cp, consumer: 'gone', shardId: 'shardId-000000000001' })
    t.equal(await store.deleteCheckpoints('g.1', 'gone'), 2, "deleting a consumer's checkpoints removes each of its shards'")
    t.same(await store.listCheckpoints('g.1', 'gone'), [])
    t.equal((await store.listCheckpoints('g.1', 'app')).length, 1, "and no other consumer's")
    t.same(await store.getTags(consumerArn), { team: 'edge' }, "a consumer's tags are kept under its ARN")
    await store.deleteStream('g')
    t.same(await store.getTags('g.1'), {})
    t.same(await store.getTags(consumerArn), {}, "its consumers' tags go with the stream")
    t.same(await store.listCheckpoints('g.1', 'other'), [])
    t.same(await store.getTags('h.1'), { a: 'kept' }, "another stream's tags stay")
    t.same(await store.listCheckpoints('h.1', 'app'), [{ ...cp, streamId: 'h.1', sequenceNumber: '9' }], 'and its checkpoints')
    await store.close()
  })

  t.test(`${name}: tags are returned sorted by key, checkpoints by shard`, async (t) => {
    const store = await factory(t)()
    await store.putTags('s.1', { zeta: '1', Alpha: '2', alpha: '3', '\u{1F600}': '4', '\uFFFD': '5' })
    t.same(Object.keys(await store.getTags('s.1')), ['Alpha', 'alpha', 'zeta', '\uFFFD', '\u{1F600}'], 'in UTF-8 byte order')
    t.same(await store.getTags('none'), {}, 'a resource without tags has none')
    await store.removeTags('s.1', ['zeta', 'Alpha', 'alpha', '\u{1F600}', '\uFFFD'])
    t.same(await store.getTags('s.1'), {}, 'removing every tag leaves none')
    await store.putTags('s.1', {})
    t.same(await store.getTags('s.1'), {})
    for (const shardId of ['shardId-000000000010', 'shardId-000000000002', 'shardId-000000000001']) {
      await store.putCheckpoint({ streamId: 's.1', consumer: 'app', shardId, sequenceNumber: '1', updatedMs: 1 })
    }
    t.same((await store.listCheckpoints('s.1', 'app')).map((c) => c.shardId), ['shardId-000000000001', 'shardId-000000000002', 'shardId-000000000010'])
    await store.close()
  })

  t.test(`${name}: devices are added, replaced, listed and removed`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.putDevice({ id: 'd1', salt: 'aa', hash: 'bb', createdMs: 1, rotatedMs: 1 })
    await store.putDevice({ id: 'd1', salt: 'cc', hash: 'dd', createdMs: 5, rotatedMs: 2 })
    t.same(await store.getDevice('d1'), { id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2 }, 'a replaced device keeps when it was added')
    await store.putDevice({ id: 'd0', salt: 'ee', hash: 'ff', createdMs: 3, rotatedMs: 3 })
    await store.close()
    store = await open()
    t.same(await store.listDevices(), [{ id: 'd0', salt: 'ee', hash: 'ff', createdMs: 3, rotatedMs: 3 }, { id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2 }], 'listed by id')
    t.equal(await store.deleteDevice('d1'), true)
    t.equal(await store.deleteDevice('d1'), false)
    t.equal(await store.getDevice('d1'), undefined)
    t.same((await store.listDevices()).map((d) => d.id), ['d0'])
    await store.close()
  })

  t.test(`${name}: a device's previous secret is kept with its end, and dropped by a put without one`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.putDevice({ id: 'd1', salt: 'aa', hash: 'bb', createdMs: 1, rotatedMs: 1 })
    await store.putDevice({ id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2, previous: { salt: 'aa', hash: 'bb', untilMs: 3_600_002 } })
    await store.close()
    store = await open()
    t.strictSame(await store.getDevice('d1'), { id: 'd1', salt: 'cc', hash: 'dd', createdMs: 1, rotatedMs: 2, previous: { salt: 'aa', hash: 'bb', untilMs: 3_600_002 } }, 'kept across a reopen')
    t.strictSame((await store.listDevices())[0]?.previous, { salt: 'aa', hash: 'bb', untilMs: 3_600_002 }, 'and listed')
    await store.putDevice({ id: 'd1', salt: 'ee', hash: 'ff', createdMs: 1, rotatedMs: 3 })
    t.strictSame(await store.getDevice('d1'), { id: 'd1', salt: 'ee', hash: 'ff', createdMs: 1, rotatedMs: 3 }, 'a put without one clears it')
    await store.close()
  })

  t.test(`${name}: device certificates are kept by serial, replaced, listed by serial per device, and copied in and out`, async (t) => {
    const open = factory(t)
    let store = await open()
    const issued = { serial: 'A1', device: 'd1', issuedMs: 10, notAfterMs: 1000, revokedMs: null }
    await store.putDeviceCertificate(issued)
    issued.device = 'changed'
    await store.putDeviceCertificate({ serial: '1F', device: 'd1', issuedMs: 11, notAfterMs: 1001, revokedMs: null })
    await store.putDeviceCertificate({ serial: '0B', device: 'd2', issuedMs: null, notAfterMs: null, revokedMs: 12 })
    await store.close()
    store = await open()
    t.strictSame(await store.getDeviceCertificate('A1'), { serial: 'A1', device: 'd1', issuedMs: 10, notAfterMs: 1000, revokedMs: null }, 'kept across a reopen, as it was put')
    t.strictSame(await store.getDeviceCertificate('0B'), { serial: '0B', device: 'd2', issuedMs: null, notAfterMs: null, revokedMs: 12 }, 'a revoked serial the relay did not issue')
    t.equal(await store.getDeviceCertificate('a1'), undefined, 'serials are compared exactly')
    t.same((await store.listDeviceCertificates('d1')).map((c) => c.serial), ['1F', 'A1'], "one device's, by serial")
    t.same((await store.listDeviceCertificates()).map((c) => c.serial), ['0B', '1F', 'A1'], 'all, by serial')
    t.same(await store.listDeviceCertificates('none'), [])
    await store.putDeviceCertificate({ serial: 'A1', device: 'd1', issuedMs: 10, notAfterMs: 1000, revokedMs: 50 })
    t.equal((await store.getDeviceCertificate('A1'))?.revokedMs, 50, 'a put replaces the one of its serial')
    t.equal((await store.listDeviceCertificates('d1')).length, 2, 'and adds none')
    ;(await store.getDeviceCertificate('A1'))!.revokedMs = null
    ;(await store.listDeviceCertificates())[2]!.revokedMs = null
    t.equal((await store.getDeviceCertificate('A1'))?.revokedMs, 50, 'outputs changed after they were read leave the store as it was')
    await store.close()
  })

  t.test(`${name}: settings and producer state are kept by key`, async (t) => {
    const open = factory(t)
    let store = await open()
    await store.putSetting('k', 'v1')
    await store.putSetting('k', 'v2')
    await store.putSetting('j', 'other')
    await store.saveProducerState('s.1', 'state-1')
    await store.saveProducerState('s.1', 'state-2')
    await store.saveProducerState('t.1', 'state-t')
    await store.close()
    store = await open()
    t.equal(await store.getSetting('k'), 'v2')
    t.equal(await store.getSetting('j'), 'other')
    t.equal(await store.getSetting('missing'), undefined)
    t.equal(await store.loadProducerState('s.1'), 'state-2')
    t.equal(await store.loadProducerState('t.1'), 'state-t')
    t.equal(await store.loadProducerState('missing'), undefined)
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
    const otherArn = stream('other').arn
    const elsewhere = { streamId: 'other.1', name: 'app', arn: `${otherArn}/consumer/app:3`, status: 'ACTIVE' as const, createdMs: 500 }
    await store.putConsumer(elsewhere)
    await store.putStreamSettings('c.1', { encryptionType: 'NONE', keyId: null, shardLevelMetrics: [] })
    await store.putStreamSettings('c.1', { encryptionType: 'KMS', keyId: 'alias/k', shardLevelMetrics: ['IncomingBytes'] })
    await store.putStreamSettings('other.1', { encryptionType: 'NONE', keyId: null, shardLevelMetrics: ['ALL'] })
    await store.putResourcePolicy(arn, '{"Statement":[0]}')
    await store.putResourcePolicy(arn, '{"Statement":[]}')
    await store.putResourcePolicy(consumer.arn, '{"Statement":[1]}')
    await store.putResourcePolicy(otherArn, '{"Statement":[2]}')
    await store.close()
    store = await open()
    t.same(await store.listConsumers('c.1'), [{ ...consumer, status: 'ACTIVE' }, { ...consumer, name: 'b', arn: `${arn}/consumer/b:2`, createdMs: 2000 }], 'in registration order, updated in place')
    t.same((await store.listConsumers()).map((c) => [c.streamId, c.name]), [['c.1', 'app'], ['c.1', 'b'], ['other.1', 'app']], 'all of them, by stream and then registration')
    t.same(await store.getStreamSettings('c.1'), { encryptionType: 'KMS', keyId: 'alias/k', shardLevelMetrics: ['IncomingBytes'] })
    t.same(await store.getStreamSettings('other.1'), { encryptionType: 'NONE', keyId: null, shardLevelMetrics: ['ALL'] })
    t.equal(await store.getStreamSettings('missing'), undefined)
    t.equal(await store.getResourcePolicy(arn), '{"Statement":[]}', 'a policy put again replaces')
    t.equal(await store.getResourcePolicy(consumer.arn), '{"Statement":[1]}')
    t.equal(await store.deleteConsumer('c.1', 'b'), true)
    t.equal(await store.deleteConsumer('c.1', 'b'), false)
    t.equal(await store.deleteConsumer('other.1', 'b'), false, 'a consumer is named within its stream')
    await store.deleteStream('c')
    t.same(await store.listConsumers('c.1'), [])
    t.equal(await store.getStreamSettings('c.1'), undefined)
    t.equal(await store.getResourcePolicy(arn), undefined, "the stream's policy goes with it")
    t.equal(await store.getResourcePolicy(consumer.arn), undefined, "and its consumers' policies")
    t.equal(await store.getResourcePolicy(otherArn), '{"Statement":[2]}', "another stream's stays")
    t.same(await store.listConsumers(), [elsewhere], "and so do its consumers")
    t.same(await store.getStreamSettings('other.1'), { encryptionType: 'NONE', keyId: null, shardLevelMetrics: ['ALL'] }, 'and its settings')
    t.equal(await store.deleteResourcePolicy(otherArn), true)
    t.equal(await store.deleteResourcePolicy(otherArn), false)
    t.equal(await store.getResourcePolicy(otherArn), undefined)
    await store.close()
  })

  t.test(`${name}: consumers of one stream are listed by registration time, then name; an ARN belongs to one consumer`, async (t) => {
    const store = await factory(t)()
    const arn = stream('c').arn
    const consumer = (name: string, createdMs: number, suffix = createdMs) => ({ streamId: 'c.1', name, arn: `${arn}/consumer/${name}:${suffix}`, status: 'ACTIVE' as const, createdMs })
    await store.putConsumer(consumer('b', 2000))
    await store.putConsumer(consumer('a', 2000))
    await store.putConsumer(consumer('z', 1000))
    t.same((await store.listConsumers('c.1')).map((c) => c.name), ['z', 'a', 'b'])
    await t.rejects(store.putConsumer({ ...consumer('y', 3000), arn: consumer('z', 1000).arn }), { code: 'CONFLICT' }, "another consumer's ARN is refused")
    t.same((await store.listConsumers('c.1')).map((c) => c.name), ['z', 'a', 'b'], 'and nothing is written')
    await store.putConsumer(consumer('z', 4000, 9))
    t.same((await store.listConsumers('c.1')).at(-1), consumer('z', 4000, 9), 'registered again, a consumer takes its new ARN and time')
    await store.close()
  })

  t.test(`${name}: what a store returns and what it was given are copies, not its own state`, async (t) => {
    const store = await factory(t)()
    const s = stream('m')
    const sh = shard('m.1', 0)
    await store.createStream(s, [sh])
    s.status = 'DELETING'
    sh.endOffset = 99
    const settings = { encryptionType: 'NONE' as const, keyId: null, shardLevelMetrics: ['IncomingBytes'] }
    await store.putStreamSettings('m.1', settings)
    settings.shardLevelMetrics.push('OutgoingBytes')
    const consumer = { streamId: 'm.1', name: 'app', arn: `${s.arn}/consumer/app:1`, status: 'CREATING' as 'CREATING' | 'ACTIVE', createdMs: 1 }
    await store.putConsumer(consumer)
    consumer.status = 'ACTIVE'
    const device = { id: 'd', salt: 'a', hash: 'b', createdMs: 1, rotatedMs: 1 }
    await store.putDevice(device)
    device.hash = 'changed'
    const cp = { streamId: 'm.1', consumer: 'app', shardId: sh.shardId, sequenceNumber: '1', updatedMs: 1 }
    await store.putCheckpoint(cp)
    cp.sequenceNumber = '2'
    const child = { ...shard('m.1', 1), parentShardId: sh.shardId }
    await store.reshard('m.1', { close: [{ shardId: sh.shardId, endOffset: 5 }], create: [child] })
    child.endOffset = 7

    const check = async (what: string) => {
      t.equal((await store.getStream('m'))?.status, 'ACTIVE', `stream (${what})`)
      t.same((await store.listShards('m.1')).map((x) => x.endOffset), [5, null], `shards (${what})`)
      t.same((await store.getStreamSettings('m.1'))?.shardLevelMetrics, ['IncomingBytes'], `settings (${what})`)
      t.equal((await store.listConsumers('m.1'))[0]?.status, 'CREATING', `consumer (${what})`)
      t.equal((await store.getDevice('d'))?.hash, 'b', `device (${what})`)
      t.equal((await store.listDevices())[0]?.hash, 'b', `listed device (${what})`)
      t.equal((await store.listCheckpoints('m.1', 'app'))[0]?.sequenceNumber, '1', `checkpoint (${what})`)
      t.equal((await store.listStreams())[0]?.status, 'ACTIVE', `listed stream (${what})`)
    }
    await check('inputs changed after they were stored')
    const got = await store.getStream('m')
    got!.status = 'DELETING'
    ;(await store.listStreams())[0]!.status = 'DELETING'
    for (const x of await store.listShards('m.1')) x.endOffset = 1
    ;(await store.getStreamSettings('m.1'))!.shardLevelMetrics.push('x')
    ;(await store.listConsumers('m.1'))[0]!.status = 'ACTIVE'
    ;(await store.listConsumers())[0]!.status = 'ACTIVE'
    ;(await store.getDevice('d'))!.hash = 'x'
    ;(await store.listDevices())[0]!.hash = 'x'
    ;(await store.listCheckpoints('m.1', 'app'))[0]!.sequenceNumber = 'x'
    await check('outputs changed after they were read')
    await store.close()
  })

  t.test(`${name}: a closed store refuses further calls`, async (t) => {
    const store = await factory(t)()
    await store.createStream(stream('x'), [shard('x.1', 0)])
    await store.close()
    await t.rejects(store.getStream('x'))
    await t.rejects(store.listShards('x.1'))
    await t.rejects(store.putSetting('k', 'v'))
    await t.rejects(store.createStream(stream('y'), []))
  })
}
