/**
 * `tributary delivery list | describe NAME` as a user runs it: a child process against an
 * in-process relay whose delivery streams have delivered records (to files) and failed them (to an
 * HTTP endpoint nobody listens on), shown as text and as --json; signed when the relay has keys.
 */
import t from 'tap'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FirehoseClient } from '../../relay/firehose/index.js'
import { freePort, testRelay } from '../helpers/relay.js'
import { cli } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Stats { DeliveryStreamName: string; RecordsDelivered: number; BacklogRecords: number; RecordsFailed: Record<string, number> }

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}

t.test('list and describe show records delivered, backlog, freshness and failures by reason, as text and JSON', async (t) => {
  const dir = tempDir(t)
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ buckets: { out: { type: 'files', directory: join(dir, 'out') }, failed: { type: 'files', directory: join(dir, 'failed') } } }))
  const relay = await testRelay(t, { deliveryFile })
  const firehose = new FirehoseClient({ endpoint: relay.endpoint })
  t.teardown(() => firehose.close())
  const e = ['--endpoint', relay.endpoint]

  const empty = await cli(['delivery', 'list', ...e])
  t.same([empty.code, empty.stdout], [0, 'no delivery streams\n'], empty.stderr)

  // Interval 0 cuts a batch as soon as records are there; retry duration 0 gives up on the first failure.
  await firehose.call('CreateDeliveryStream', {
    DeliveryStreamName: 'to-files',
    ExtendedS3DestinationConfiguration: { BucketARN: 'arn:aws:s3:::out', BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
  })
  await firehose.call('CreateDeliveryStream', {
    DeliveryStreamName: 'to-nowhere',
    HttpEndpointDestinationConfiguration: {
      EndpointConfiguration: { Url: `http://127.0.0.1:${await freePort()}/` }, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
      RetryOptions: { DurationInSeconds: 0 }, S3Configuration: { BucketARN: 'arn:aws:s3:::failed' },
    },
  })
  const records = (n: number) => Array.from({ length: n }, (_, i) => ({ Data: Buffer.from(`{"i":${i}}`).toString('base64') }))
  await firehose.call('PutRecordBatch', { DeliveryStreamName: 'to-files', Records: records(25) })
  await firehose.call('PutRecordBatch', { DeliveryStreamName: 'to-nowhere', Records: records(4) })

  const stats = async () => (await firehose.call<{ DeliveryStreams: Stats[] }>('DescribeDeliveryStreamStats', {})).DeliveryStreams
  await until('both delivery streams are done with their records', async () => {
    const [files, nowhere] = await stats()
    return files!.RecordsDelivered === 25 && files!.BacklogRecords === 0 && Object.values(nowhere!.RecordsFailed).reduce((a, b) => a + b, 0) === 4 && nowhere!.BacklogRecords === 0
  })
  t.ok(readdirSync(join(dir, 'failed')).length > 0, 'the failed records are in the error bucket')

  const list = await cli(['delivery', 'list', ...e])
  t.equal(list.code, 0, list.stderr)
  t.same(list.stdout.split('\n'), [
    'to-files\tACTIVE\tdelivered 25\tbacklog 0\tfreshness 0s\tfailed 0',
    'to-nowhere\tACTIVE\tdelivered 0\tbacklog 0\tfreshness 0s\tfailed 4 (http-endpoint-failed=4)',
    '',
  ])

  const listJson = await cli(['delivery', 'list', '--json', ...e])
  t.match(JSON.parse(listJson.stdout), [
    { DeliveryStreamName: 'to-files', DeliveryStreamStatus: 'ACTIVE', RecordsDelivered: 25, BytesDelivered: 7 * 10 + 8 * 15, BacklogRecords: 0, FreshnessSeconds: 0, RecordsFailed: {} },
    { DeliveryStreamName: 'to-nowhere', RecordsDelivered: 0, RecordsFailed: { 'http-endpoint-failed': 4 }, LastError: { Code: String } },
  ])

  const described = await cli(['delivery', 'describe', 'to-nowhere', ...e])
  t.equal(described.code, 0, described.stderr)
  t.match(described.stdout, /^name: +to-nowhere\n/)
  t.match(described.stdout, /\nsink: +http http:\/\/127\.0\.0\.1:\d+\/\n/)
  t.match(described.stdout, /\nrecords delivered: 0\n/)
  t.match(described.stdout, /\nbacklog: +0 records\n/)
  t.match(described.stdout, /\nfreshness: +0s /)
  t.match(described.stdout, /\nrecords failed: +4 \(http-endpoint-failed=4\)\n/)
  t.match(described.stdout, /\nlast error: +\S+: .+ at \d{4}-\d\d-\d\dT/)

  const describedJson = JSON.parse((await cli(['delivery', 'describe', 'to-files', '--json', ...e])).stdout)
  t.match(describedJson, {
    Stats: { DeliveryStreamName: 'to-files', RecordsDelivered: 25, Sink: `files ${join(dir, 'out')}` },
    DeliveryStreamDescription: { DeliveryStreamName: 'to-files', Destinations: [{ ExtendedS3DestinationDescription: { BucketARN: 'arn:aws:s3:::out' } }] },
  })

  const missing = await cli(['delivery', 'describe', 'nope', ...e])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, 'error: ResourceNotFoundException: Firehose nope under account 000000000000 not found.\n')
  const noName = await cli(['delivery', 'describe', ...e])
  t.match(noName.stderr, /name the delivery stream: tributary delivery describe NAME/)
  const badVerb = await cli(['delivery', 'frobnicate', ...e])
  t.match(badVerb.stderr, /unknown subcommand "frobnicate"; use list or describe/)
})

t.test('the command signs with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when the relay has keys', async (t) => {
  const key = { accessKeyId: 'AKIDDELIVERYCLI', secretAccessKey: 'delivery-cli-secret' }
  const relay = await testRelay(t, { accessKeys: [key], httpHost: '127.0.0.1' })
  const e = ['--endpoint', relay.endpoint]
  const unsigned = await cli(['delivery', 'list', ...e])
  t.equal(unsigned.code, 1)
  t.match(unsigned.stderr, /^error: MissingAuthenticationTokenException: /)
  const signed = await cli(['delivery', 'list', ...e], '', 30_000, { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey })
  t.same([signed.code, signed.stdout], [0, 'no delivery streams\n'], signed.stderr)
  const wrong = await cli(['delivery', 'list', ...e], '', 30_000, { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' })
  t.match(wrong.stderr, /^error: InvalidSignatureException: /)
})
