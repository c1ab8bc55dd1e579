/**
 * The Firehose API on a real relay through unchanged clients: @aws-sdk/client-firehose creates a
 * direct-put delivery stream into a files bucket and PutRecordBatch's 10,000 records arrive in the
 * files, once each; SigV4 is checked with the signing name `firehose` (a wrong secret is refused);
 * bad input gets Firehose's error types. The AWS CLI v2 (`aws firehose …`) is in firehose-awscli.test.ts.
 */
import t, { type Test } from 'tap'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CreateDeliveryStreamCommand, DeleteDeliveryStreamCommand, DescribeDeliveryStreamCommand, FirehoseClient, ListDeliveryStreamsCommand,
  ListTagsForDeliveryStreamCommand, PutRecordBatchCommand, PutRecordCommand, TagDeliveryStreamCommand,
} from '@aws-sdk/client-firehose'
import { signSigV4 } from '../../relay/kinesis/sigv4.js'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const KEY = { accessKeyId: 'AKIDFIREHOSE', secretAccessKey: 'firehose-secret' }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every line of every file under `dir` (the bucket's objects, uncompressed here). */
function objectLines(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    let names: string[]
    try { names = readdirSync(d) } catch { return }
    for (const name of names) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (!name.startsWith('.')) out.push(...readFileSync(p, 'utf8').split('\n').filter(Boolean))
    }
  }
  walk(dir)
  return out
}

async function relayWithBucket(t: Test) {
  const dir = tempDir(t)
  const bucket = join(dir, 'landing')
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ buckets: { landing: { type: 'files', directory: bucket } } }))
  const relay = await testRelay(t, { deliveryFile, accessKeys: [KEY], httpHost: '127.0.0.1' })
  const client = (credentials = KEY) => {
    const c = new FirehoseClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 })
    t.teardown(() => c.destroy())
    return c
  }
  return { relay, bucket, client, dir }
}

t.test('the SDK creates a direct-put delivery stream, puts 10,000 records in 20 batches, and they arrive in the files once each', async (t) => {
  const { bucket, client, relay } = await relayWithBucket(t)
  const firehose = client()
  const created = await firehose.send(new CreateDeliveryStreamCommand({
    DeliveryStreamName: 'sdk-landing',
    DeliveryStreamType: 'DirectPut',
    ExtendedS3DestinationConfiguration: {
      RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::landing', Prefix: 'events/',
      // Interval 0: each batch is cut as soon as records are there, so arrival does not wait on a clock.
      BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
      ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'AppendDelimiterToRecord' }] },
    },
  }))
  t.equal(created.DeliveryStreamARN, 'arn:aws:firehose:us-east-1:000000000000:deliverystream/sdk-landing')

  const sent: string[] = []
  const ids = new Set<string>()
  let failed = 0
  for (let call = 0; call < 20; call++) {
    const records = Array.from({ length: 500 }, (_, i) => JSON.stringify({ n: call * 500 + i, device: `d${i % 7}` }))
    sent.push(...records)
    const out = await firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sdk-landing', Records: records.map((r) => ({ Data: Buffer.from(r) })) }))
    failed += out.FailedPutCount ?? 0
    for (const r of out.RequestResponses ?? []) ids.add(r.RecordId!)
  }
  t.equal(failed, 0, 'no record of the 20 batches failed')
  t.equal(ids.size, 10_000, 'each record has its own RecordId')

  const deadline = Date.now() + 60_000
  let got = objectLines(bucket)
  while (got.length < 10_000 && Date.now() < deadline) {
    await sleep(100)
    got = objectLines(bucket)
  }
  t.equal(got.length, 10_000, 'as many records in the files as were put')
  t.same(new Set(got), new Set(sent), 'every record put is in the files, byte for byte')
  t.ok(readdirSync(bucket).every((name) => name === 'events'), 'objects are under the Prefix')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_firehose_requests_total\{action="PutRecordBatch",outcome="ok"\} 20\n/, '/metrics counts the Firehose requests by action and outcome')
})

t.test('the SDK describes, lists, tags and deletes a delivery stream in AWS shape', async (t) => {
  const { client } = await relayWithBucket(t)
  const firehose = client()
  await firehose.send(new CreateDeliveryStreamCommand({
    DeliveryStreamName: 'sdk-described',
    S3DestinationConfiguration: { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::landing', CompressionFormat: 'GZIP' },
    Tags: [{ Key: 'team', Value: 'data' }],
  }))
  const { DeliveryStreamDescription: d } = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'sdk-described' }))
  t.match(d, {
    DeliveryStreamName: 'sdk-described', DeliveryStreamStatus: 'ACTIVE', DeliveryStreamType: 'DirectPut', HasMoreDestinations: false,
    Destinations: [{ DestinationId: 'destinationId-000000000001', ExtendedS3DestinationDescription: { BucketARN: 'arn:aws:s3:::landing', CompressionFormat: 'GZIP', BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 300 } } }],
  })
  t.type(d!.CreateTimestamp, Date, 'CreateTimestamp reads as a date')
  t.ok(Math.abs(d!.CreateTimestamp!.getTime() - Date.now()) < 60_000, 'and is the time of creation')
  t.same((await firehose.send(new ListDeliveryStreamsCommand({}))).DeliveryStreamNames, ['sdk-described'])
  await firehose.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'sdk-described', Tags: [{ Key: 'env', Value: 'test' }] }))
  t.same((await firehose.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'sdk-described' }))).Tags, [{ Key: 'env', Value: 'test' }, { Key: 'team', Value: 'data' }])
  await firehose.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: 'sdk-described' }))
  const after = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'sdk-described' })).catch((err: Error) => err)
  t.match(after, { name: 'ResourceNotFoundException', message: 'Firehose sdk-described under account 000000000000 not found.' })
})

t.test('bad input reaches the SDK as Firehose\'s error types', async (t) => {
  const { client } = await relayWithBucket(t)
  const firehose = client()
  const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal') }, (err: Error & { $metadata?: { httpStatusCode?: number } }) => err)
  const s3 = { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::landing' }
  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'zip', ExtendedS3DestinationConfiguration: { ...s3, CompressionFormat: 'ZIP' } }))),
    { name: 'InvalidArgumentException', message: 'CompressionFormat ZIP is not supported by Tributary; use UNCOMPRESSED, GZIP or Snappy.', $metadata: { httpStatusCode: 400 } })
  await firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'taken', S3DestinationConfiguration: s3 }))
  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'taken', S3DestinationConfiguration: s3 }))), { name: 'ResourceInUseException' })
  t.match(await fail(firehose.send(new PutRecordCommand({ DeliveryStreamName: 'absent', Record: { Data: Buffer.from('x') } }))), { name: 'ResourceNotFoundException' })
  t.match(await fail(firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: 'taken', Records: Array.from({ length: 5 }, () => ({ Data: Buffer.alloc(900_000) })) }))),
    { name: 'InvalidArgumentException', message: /exceeds the 4194304 bytes limit/ })
  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'big', ExtendedS3DestinationConfiguration: { ...s3, BufferingHints: { SizeInMBs: 129 } } }))),
    { name: 'ValidationException', message: /Member must have value less than or equal to 128/ })
})

t.test('a bad prefix, a jq query that does not compile and a path in a BucketARN are refused as the caller\'s mistakes, and leave no delivery stream behind', async (t) => {
  const { client, dir } = await relayWithBucket(t)
  const firehose = client()
  const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal') }, (err: Error & { $metadata?: { httpStatusCode?: number } }) => err)
  const gone = async (name: string) => t.match(await fail(firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))), { name: 'ResourceNotFoundException' }, `${name} was not left behind`)
  const s3 = { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::landing' }

  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'bad-prefix', ExtendedS3DestinationConfiguration: { ...s3, Prefix: 'x/!{bogus:x}/' } }))),
    { name: 'InvalidArgumentException', message: /^Prefix: prefix "x\/!\{bogus:x\}\/"/, $metadata: { httpStatusCode: 400 } })
  await gone('bad-prefix')

  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'rooted', ExtendedS3DestinationConfiguration: { ...s3, Prefix: '/events/' } }))),
    { name: 'InvalidArgumentException', message: /a prefix must not start with \// })
  await gone('rooted')

  // The query splits into keys here; jq compiles it only when the relay starts the stream, so this is refused after the stream was begun.
  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({
    DeliveryStreamName: 'bad-jq',
    ExtendedS3DestinationConfiguration: {
      ...s3, Prefix: 'p/!{partitionKeyFromQuery:d}/', ErrorOutputPrefix: 'e/', DynamicPartitioningConfiguration: { Enabled: true },
      ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{d: .d | no_such_function}' }] }] },
    },
  }))), { name: 'InvalidArgumentException', message: /partition key "d": the jq expression/, $metadata: { httpStatusCode: 400 } })
  await gone('bad-jq')

  const escaped = join(dir, 'escaped:s3:::b')
  const arn = `arn:aws:s3:::x/../../../../../../../..${escaped}`
  t.match(await fail(firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'escape', ExtendedS3DestinationConfiguration: { ...s3, BucketARN: arn, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } } }))),
    { name: 'ValidationException', message: /Member must satisfy regular expression pattern/ })
  await gone('escape')
  t.notOk(existsSync(escaped), 'nothing was written where the ARN pointed')
  t.same((await firehose.send(new ListDeliveryStreamsCommand({}))).DeliveryStreamNames, [], 'no delivery stream exists')
})

t.test('requests are signed for firehose with the relay\'s keys: a wrong secret or an unknown key is refused', async (t) => {
  const { client, relay } = await relayWithBucket(t)
  const wrong = await client({ ...KEY, secretAccessKey: 'not-the-secret' }).send(new ListDeliveryStreamsCommand({})).catch((err: Error) => err)
  t.match(wrong, { name: 'InvalidSignatureException', message: /The request signature we calculated does not match the signature you provided/ })
  const unknown = await client({ accessKeyId: 'AKIDNOBODY', secretAccessKey: 'x' }).send(new ListDeliveryStreamsCommand({})).catch((err: Error) => err)
  t.match(unknown, { name: 'UnrecognizedClientException' })
  t.same((await client().send(new ListDeliveryStreamsCommand({}))).DeliveryStreamNames, [], 'the right key is served')
  // The right key, signed for kinesis rather than firehose: a signature is for one service.
  const body = Buffer.from('{}')
  const headers: Record<string, string> = { host: new URL(relay.endpoint).host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Firehose_20150804.ListDeliveryStreams' }
  signSigV4({ method: 'POST', path: '/', headers, body }, KEY, 'us-east-1', 'kinesis')
  const res = await fetch(relay.endpoint, { method: 'POST', headers, body })
  t.equal(res.status, 400)
  t.match(await res.json(), { __type: 'InvalidSignatureException', message: /firehose/ }, 'a signature made for kinesis is refused')
})
