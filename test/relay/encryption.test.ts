/**
 * StartStreamEncryption / StopStreamEncryption through the AWS SDK: records appended while
 * encryption is on are sealed on disk (their plaintext is nowhere in the data directory), read back
 * transparently, reported as KMS, across a restart; a wrong key is refused with a clear error.
 * Also EnableEnhancedMonitoring / DisableEnhancedMonitoring and the resource policy actions.
 */
import t, { type Test } from 'tap'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  KinesisClient, CreateStreamCommand, DescribeStreamCommand, DescribeStreamSummaryCommand, PutRecordCommand, PutRecordsCommand,
  GetShardIteratorCommand, GetRecordsCommand, StartStreamEncryptionCommand, StopStreamEncryptionCommand,
  EnableEnhancedMonitoringCommand, DisableEnhancedMonitoringCommand, PutResourcePolicyCommand, GetResourcePolicyCommand,
  DeleteResourcePolicyCommand, RegisterStreamConsumerCommand,
} from '@aws-sdk/client-kinesis'
import { resolveRelayConfig } from '../../shared/config.js'
import { startRelay, type Relay } from '../../relay/relay.js'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { LocalKeyCipher } from '../../relay/encryption.js'

const KEY = 'arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012'

function sdk(t: Test, endpoint: string): KinesisClient {
  const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  return client
}

/** Every byte under `dir`, file by file. */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...filesUnder(path))
    else out.push(readFileSync(path))
  }
  return out
}

/** Whether `text` is in the shard logs' files: the segments and the write-ahead journal that holds their newest bytes. */
const onDisk = (dir: string, text: string) => [...filesUnder(join(dir, 'streams')), ...[0, 1].map((i) => readFileSync(join(dir, `streams.journal-${i}`)))]
  .some((b) => b.includes(Buffer.from(text)))

async function readAll(client: KinesisClient, StreamName: string) {
  const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))
  const { Records } = await client.send(new GetRecordsCommand({ ShardIterator }))
  return Records!.map((r) => ({ data: Buffer.from(r.Data!).toString(), encryption: r.EncryptionType }))
}

t.test('records written while encryption is on are sealed on disk and read back in plaintext, also after a restart', async (t) => {
  const dataDir = tempDir(t)
  const config = resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, groupCommitMs: 0 })
  let relay: Relay = await startRelay(config, () => {})
  let client = sdk(t, `http://127.0.0.1:${relay.httpPort}`)
  const StreamName = 'sealed'
  await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
  await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from('open-before-7f3a') }))
  await client.send(new StartStreamEncryptionCommand({ StreamName, EncryptionType: 'KMS', KeyId: KEY }))
  const d = (await client.send(new DescribeStreamCommand({ StreamName }))).StreamDescription!
  t.equal(d.EncryptionType, 'KMS')
  t.equal(d.KeyId, KEY)
  const summary = (await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!
  t.equal(summary.EncryptionType, 'KMS')
  t.equal(summary.KeyId, KEY)

  const secrets = Array.from({ length: 50 }, (_, i) => `secret-${i}-${randomBytes(8).toString('hex')}`)
  const one = await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from(secrets[0]!) }))
  t.equal(one.EncryptionType, 'KMS', 'PutRecord reports the encryption')
  const many = await client.send(new PutRecordsCommand({ StreamName, Records: secrets.slice(1).map((s) => ({ PartitionKey: 'k', Data: Buffer.from(s) })) }))
  t.equal(many.EncryptionType, 'KMS')

  t.ok(onDisk(dataDir, 'open-before-7f3a'), 'the record from before is stored as it was written (the scan finds plaintext where there is some)')
  t.notOk(secrets.some((s) => onDisk(dataDir, s)), 'no plaintext of a sealed record is anywhere in the shard logs')
  const key = statSync(join(dataDir, 'encryption.key'))
  t.equal(key.mode & 0o777, 0o600, 'the key file is readable only by its owner')

  const read = await readAll(client, StreamName)
  t.same(read.map((r) => r.data), ['open-before-7f3a', ...secrets], 'reads see plaintext')
  t.same(read.map((r) => r.encryption), [undefined, ...secrets.map(() => 'KMS')], 'each record says whether it was encrypted')

  client.destroy()
  await relay.close()
  relay = await startRelay(config, () => {})
  t.teardown(() => relay.close())
  client = sdk(t, `http://127.0.0.1:${relay.httpPort}`)
  t.same((await readAll(client, StreamName)).map((r) => r.data), ['open-before-7f3a', ...secrets], 'readable after a restart')
  t.equal((await client.send(new DescribeStreamCommand({ StreamName }))).StreamDescription!.EncryptionType, 'KMS', 'still encrypted after a restart')
  await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from('after-restart-secret-99') }))
  t.notOk(onDisk(dataDir, 'after-restart-secret-99'), 'still sealing after a restart')

  for (const [Command, action] of [[StartStreamEncryptionCommand, 'StartStreamEncryption'], [StopStreamEncryptionCommand, 'StopStreamEncryption']] as const) {
    await t.rejects(client.send(new Command({ StreamName, EncryptionType: 'NONE', KeyId: KEY })),
      { name: 'InvalidArgumentException', message: `Encryption type NONE is not valid for ${action}. The only supported encryption type is KMS.` })
  }
  await client.send(new StopStreamEncryptionCommand({ StreamName, EncryptionType: 'KMS', KeyId: KEY }))
  t.equal((await client.send(new DescribeStreamCommand({ StreamName }))).StreamDescription!.EncryptionType, 'NONE')
  // AWS leaves EncryptionType out of a put to a stream without encryption (kinesalite's test/putRecord.js).
  t.equal((await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from('open-after-stop') }))).EncryptionType, undefined)
  t.ok(onDisk(dataDir, 'open-after-stop'))
  const after = await readAll(client, StreamName)
  t.equal(after.length, 53)
  t.same(after.slice(-2).map((r) => r.data), ['after-restart-secret-99', 'open-after-stop'], 'sealed and open records read side by side')
})

t.test('device batches over MQTT into an encrypted stream are sealed too, and read back in plaintext', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  await client.send(new CreateStreamCommand({ StreamName: 'sealed-mqtt', ShardCount: 1 }))
  await client.send(new StartStreamEncryptionCommand({ StreamName: 'sealed-mqtt', EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }))
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'dev-sealed', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => device.endAsync(true))
  const secrets = Array.from({ length: 20 }, (_, i) => `device-secret-${i}-${randomBytes(6).toString('hex')}`)
  const frame = codec.encodeBatch({ epoch: 7n, sequence: 0, records: secrets.map((s) => ({ partitionKey: 'sensor', data: Buffer.from(s), producerTimeMs: Date.now(), clockSynced: true })) })
  await device.publishAsync(topics.records('dev-sealed', 'sealed-mqtt'), frame, { qos: 1 })
  t.notOk(secrets.some((s) => onDisk(relay.config.dataDir, s)), 'no plaintext of a device record on disk')
  const read = await readAll(client, 'sealed-mqtt')
  t.same(read.map((r) => r.data), secrets)
  t.ok(read.every((r) => r.encryption === 'KMS'))
})

t.test('a relay with a different key refuses sealed records with a clear error instead of returning garbage', async (t) => {
  const dataDir = tempDir(t)
  const config = resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true })
  let relay = await startRelay(config, () => {})
  let client = sdk(t, `http://127.0.0.1:${relay.httpPort}`)
  await client.send(new CreateStreamCommand({ StreamName: 'rekeyed', ShardCount: 1 }))
  await client.send(new StartStreamEncryptionCommand({ StreamName: 'rekeyed', EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }))
  await client.send(new PutRecordCommand({ StreamName: 'rekeyed', PartitionKey: 'k', Data: Buffer.from('x') }))
  client.destroy()
  await relay.close()
  writeFileSync(join(dataDir, 'encryption.key'), randomBytes(32).toString('hex') + '\n')
  relay = await startRelay(config, () => {})
  t.teardown(() => relay.close())
  client = sdk(t, `http://127.0.0.1:${relay.httpPort}`)
  await t.rejects(readAll(client, 'rekeyed'), { name: 'KMSAccessDeniedException', message: /cannot be opened: authentication failed/ })
  // Writing goes on.
  t.equal((await client.send(new PutRecordCommand({ StreamName: 'rekeyed', PartitionKey: 'k', Data: Buffer.from('y') }))).EncryptionType, 'KMS')
})

t.test('StartStreamEncryption validates its arguments', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  await client.send(new CreateStreamCommand({ StreamName: 'enc-v', ShardCount: 1 }))
  for (const KeyId of ['alias/aws/kinesis', '12345678-1234-1234-1234-123456789012', 'arn:aws:kms:eu-west-1:123456789012:alias/my-key', 'mrk-1234abcd12ab34cd56ef1234567890ab']) {
    await client.send(new StartStreamEncryptionCommand({ StreamName: 'enc-v', EncryptionType: 'KMS', KeyId }))
    t.equal((await client.send(new DescribeStreamCommand({ StreamName: 'enc-v' }))).StreamDescription!.KeyId, KeyId, `accepted: ${KeyId}`)
  }
  await t.rejects(client.send(new StartStreamEncryptionCommand({ StreamName: 'enc-v', EncryptionType: 'KMS', KeyId: 'my key' })), { name: 'InvalidArgumentException', message: /Invalid KeyId my key/ })
  await t.rejects(client.send(new StartStreamEncryptionCommand({ StreamName: 'enc-v', EncryptionType: 'NONE', KeyId: KEY })), { name: 'InvalidArgumentException', message: /only supported encryption type is KMS/ })
  await t.rejects(client.send(new StartStreamEncryptionCommand({ StreamName: 'enc-v', EncryptionType: 'AES' as 'KMS', KeyId: KEY })), { name: 'ValidationException', message: /at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: \[NONE, KMS\]/ })
  await t.rejects(client.send(new StartStreamEncryptionCommand({ StreamName: 'missing', EncryptionType: 'KMS', KeyId: KEY })), { name: 'ResourceNotFoundException' })
  await t.rejects(client.send(new StopStreamEncryptionCommand({ StreamName: 'enc-v', EncryptionType: 'KMS', KeyId: KEY })), { name: 'InvalidArgumentException', message: /does not match the key/ })
})

t.test('enhanced monitoring is recorded and reported, with Current and Desired metrics', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  await client.send(new CreateStreamCommand({ StreamName: 'mon', ShardCount: 1 }))
  const on = await client.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['IncomingBytes', 'OutgoingRecords'] }))
  t.same(on.CurrentShardLevelMetrics, [])
  t.same(on.DesiredShardLevelMetrics, ['IncomingBytes', 'OutgoingRecords'])
  t.equal(on.StreamName, 'mon')
  t.match(on.StreamARN, /:stream\/mon$/)
  t.same((await client.send(new DescribeStreamCommand({ StreamName: 'mon' }))).StreamDescription!.EnhancedMonitoring, [{ ShardLevelMetrics: ['IncomingBytes', 'OutgoingRecords'] }])
  const all = await client.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['ALL'] }))
  t.equal(all.DesiredShardLevelMetrics!.length, 7, 'ALL means all seven')
  const off = await client.send(new DisableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['IncomingBytes', 'IteratorAgeMilliseconds'] }))
  t.equal(off.CurrentShardLevelMetrics!.length, 7)
  t.same(off.DesiredShardLevelMetrics, ['IncomingRecords', 'OutgoingBytes', 'OutgoingRecords', 'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded'])
  t.same((await client.send(new DescribeStreamSummaryCommand({ StreamName: 'mon' }))).StreamDescriptionSummary!.EnhancedMonitoring, [{ ShardLevelMetrics: off.DesiredShardLevelMetrics }])
  await t.rejects(client.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['Bogus' as 'ALL'] })), { name: 'ValidationException', message: /Value '\[Bogus\]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: \[Member must satisfy enum value set: \[/ })
  await t.rejects(client.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: [] })), { name: 'ValidationException', message: /Member must have length greater than or equal to 1/ })
})

t.test('resource policies on streams and consumers are stored and returned', async (t) => {
  const relay = await testRelay(t)
  const client = sdk(t, relay.endpoint)
  await client.send(new CreateStreamCommand({ StreamName: 'pol', ShardCount: 1 }))
  const ResourceARN = (await client.send(new DescribeStreamSummaryCommand({ StreamName: 'pol' }))).StreamDescriptionSummary!.StreamARN!
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'kinesis:GetRecords', Resource: ResourceARN }] })
  t.same((await client.send(new GetResourcePolicyCommand({ ResourceARN }))).Policy, '{}', 'no policy reads as an empty document')
  await client.send(new PutResourcePolicyCommand({ ResourceARN, Policy: policy }))
  t.equal((await client.send(new GetResourcePolicyCommand({ ResourceARN }))).Policy, policy)
  const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: ResourceARN, ConsumerName: 'c' }))
  await client.send(new PutResourcePolicyCommand({ ResourceARN: Consumer!.ConsumerARN, Policy: policy }))
  t.equal((await client.send(new GetResourcePolicyCommand({ ResourceARN: Consumer!.ConsumerARN }))).Policy, policy, 'consumers take policies too')
  await client.send(new DeleteResourcePolicyCommand({ ResourceARN }))
  t.same((await client.send(new GetResourcePolicyCommand({ ResourceARN }))).Policy, '{}')
  await t.rejects(client.send(new DeleteResourcePolicyCommand({ ResourceARN })), { name: 'ResourceNotFoundException' })
  await t.rejects(client.send(new PutResourcePolicyCommand({ ResourceARN, Policy: '{not json' })), { name: 'InvalidArgumentException', message: /not a valid JSON document/ })
  await t.rejects(client.send(new PutResourcePolicyCommand({ ResourceARN: ResourceARN.replace('pol', 'nope'), Policy: policy })), { name: 'ResourceNotFoundException' })
  await t.rejects(client.send(new GetResourcePolicyCommand({ ResourceARN: 'arn:aws:s3:::bucket' })), { name: 'ValidationException', message: /at 'resourceARN' failed to satisfy constraint/ })
})

t.test('an action Tributary does not have is an UnknownOperationException, as AWS answers it', async (t) => {
  const relay = await testRelay(t)
  const res = await fetch(relay.endpoint, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecordsBatchV9' }, body: '{}' })
  t.equal(res.status, 400)
  // AWS's answer has no message (the conformance table's front-door rows; docs/compatibility.md).
  t.same(await res.json(), { __type: 'UnknownOperationException' })
})

t.test('records are sealed under subkeys of the local key: one salt per start, every record opens after restarts', async (t) => {
  const dir = tempDir(t)
  const keyPath = join(dir, 'encryption.key')
  const first = new LocalKeyCipher(keyPath, () => true)
  const a = Buffer.from(first.seal('s', Buffer.from('one'))!)
  const b = Buffer.from(first.seal('s', Buffer.from('two'))!)
  const second = new LocalKeyCipher(keyPath, () => true)
  const c = Buffer.from(second.seal('s', Buffer.from('three'))!)
  const salt = (x: Buffer) => x.subarray(1, 17).toString('hex')
  t.equal(salt(a), salt(b), 'one salt while the relay runs')
  t.not(salt(a), salt(c), 'a new one after a restart')
  t.not(a.subarray(17, 29).toString('hex'), b.subarray(17, 29).toString('hex'), 'a fresh nonce per record')
  t.same([a, b, c].map((x) => second.open('s', x).toString()), ['one', 'two', 'three'], 'all open with the same local key')
  t.throws(() => second.open('other', a), { code: 'DECRYPT_FAILED' }, 'and only in their own stream')
  const forged = Buffer.from(a)
  forged[3]! ^= 1
  t.throws(() => second.open('s', forged), { code: 'DECRYPT_FAILED' }, 'a changed salt does not open')
})
