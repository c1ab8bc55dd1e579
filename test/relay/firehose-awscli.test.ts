/**
 * The AWS CLI v2 against the relay's Firehose API (`aws firehose …`, signed with the relay's keys):
 * it creates, describes, lists, puts to and deletes delivery streams, and shows Firehose's error
 * types. Skipped, with the reason, when no AWS CLI v2 is installed.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { awsCliSkip, awsCliVersion, type AwsRun } from '../helpers/awscli.js'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const KEY = { accessKeyId: 'AKIDFIREHOSECLI', secretAccessKey: 'firehose-cli-secret' }

/** `aws firehose …` against `endpoint`, with throwaway credentials and no user configuration (as test/helpers/awscli.ts runs `aws kinesis`). */
function firehoseCli(t: Test, endpoint: string, secret = KEY.secretAccessKey) {
  const home = tempDir(t, 'tributary-aws-')
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v
  Object.assign(env, {
    HOME: home, AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: secret, AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(home, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'), AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1',
  })
  return (...args: string[]): Promise<AwsRun> => new Promise((resolve) => {
    execFile('/usr/bin/aws', ['firehose', ...args, '--endpoint-url', endpoint, '--output', 'json', '--cli-connect-timeout', '10', '--cli-read-timeout', '30'], { env, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      let json: unknown = null
      try { json = stdout.trim() ? JSON.parse(stdout) : null } catch { /* not JSON */ }
      resolve({ code, stdout, stderr, json })
    })
  })
}

t.test(`the AWS CLI v2 creates, describes, lists, puts to and deletes delivery streams ${awsCliVersion}`, { skip: awsCliSkip }, async (t) => {
  const dir = tempDir(t)
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ buckets: { archive: { type: 'files', directory: join(dir, 'archive') } } }))
  const relay = await testRelay(t, { deliveryFile, accessKeys: [KEY], httpHost: '127.0.0.1' })
  const aws = firehoseCli(t, relay.endpoint)

  const created = await aws('create-delivery-stream', '--delivery-stream-name', 'cli-archive', '--delivery-stream-type', 'DirectPut',
    '--extended-s3-destination-configuration', JSON.stringify({
      RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::archive', Prefix: 'raw/', ErrorOutputPrefix: 'errors/',
      BufferingHints: { SizeInMBs: 2, IntervalInSeconds: 120 }, CompressionFormat: 'GZIP',
    }),
    '--tags', 'Key=team,Value=data')
  t.equal(created.code, 0, created.stderr)
  t.same(created.json, { DeliveryStreamARN: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/cli-archive' })

  const http = await aws('create-delivery-stream', '--delivery-stream-name', 'cli-hook',
    '--http-endpoint-destination-configuration', JSON.stringify({
      EndpointConfiguration: { Url: 'http://127.0.0.1:9/ingest', Name: 'local', AccessKey: 'hook-access-key' },
      S3Configuration: { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::archive' },
    }))
  t.equal(http.code, 0, http.stderr)

  const described = await aws('describe-delivery-stream', '--delivery-stream-name', 'cli-archive')
  t.equal(described.code, 0, described.stderr)
  t.match(described.json.DeliveryStreamDescription, {
    DeliveryStreamName: 'cli-archive', DeliveryStreamStatus: 'ACTIVE', DeliveryStreamType: 'DirectPut', VersionId: '1', HasMoreDestinations: false,
    Destinations: [{
      DestinationId: 'destinationId-000000000001',
      ExtendedS3DestinationDescription: { BucketARN: 'arn:aws:s3:::archive', Prefix: 'raw/', ErrorOutputPrefix: 'errors/', BufferingHints: { SizeInMBs: 2, IntervalInSeconds: 120 }, CompressionFormat: 'GZIP' },
    }],
  })
  t.type(described.json.DeliveryStreamDescription.CreateTimestamp, 'string', 'the CLI prints CreateTimestamp as a time')
  const hook = await aws('describe-delivery-stream', '--delivery-stream-name', 'cli-hook')
  t.match(hook.json.DeliveryStreamDescription.Destinations[0].HttpEndpointDestinationDescription, { EndpointConfiguration: { Url: 'http://127.0.0.1:9/ingest', Name: 'local' } })
  t.notMatch(hook.stdout, /hook-access-key/, 'the access key is not described')

  t.same((await aws('list-delivery-streams')).json, { DeliveryStreamNames: ['cli-archive', 'cli-hook'], HasMoreDeliveryStreams: false })
  t.same((await aws('list-delivery-streams', '--limit', '1')).json, { DeliveryStreamNames: ['cli-archive'], HasMoreDeliveryStreams: true })
  t.same((await aws('list-tags-for-delivery-stream', '--delivery-stream-name', 'cli-archive')).json, { Tags: [{ Key: 'team', Value: 'data' }], HasMoreTags: false })

  const put = await aws('put-record', '--delivery-stream-name', 'cli-archive', '--cli-binary-format', 'raw-in-base64-out', '--record', 'Data=hello')
  t.equal(put.code, 0, put.stderr)
  t.match(put.json, { RecordId: /^\d+$/, Encrypted: false })

  t.equal((await aws('delete-delivery-stream', '--delivery-stream-name', 'cli-hook')).code, 0)
  t.same((await aws('list-delivery-streams')).json, { DeliveryStreamNames: ['cli-archive'], HasMoreDeliveryStreams: false })
})

t.test('the AWS CLI v2 shows Firehose\'s error types, and a wrong secret is refused', { skip: awsCliSkip }, async (t) => {
  const relay = await testRelay(t, { accessKeys: [KEY], httpHost: '127.0.0.1' })
  const aws = firehoseCli(t, relay.endpoint)
  const missing = await aws('describe-delivery-stream', '--delivery-stream-name', 'nowhere')
  t.not(missing.code, 0)
  t.match(missing.stderr, /\(ResourceNotFoundException\) when calling the DescribeDeliveryStream operation(?: \(reached max retries: \d+\))?: Firehose nowhere under account 000000000000 not found\./)
  const zip = await aws('create-delivery-stream', '--delivery-stream-name', 'zipped',
    '--s3-destination-configuration', 'RoleARN=arn:aws:iam::000000000000:role/r,BucketARN=arn:aws:s3:::zips,CompressionFormat=ZIP')
  t.match(zip.stderr, /\(InvalidArgumentException\) when calling the CreateDeliveryStream operation(?: \(reached max retries: \d+\))?: CompressionFormat ZIP is not supported by Tributary/)
  const wrong = await firehoseCli(t, relay.endpoint, 'not-the-secret')('list-delivery-streams')
  t.match(wrong.stderr, /\(InvalidSignatureException\) when calling the ListDeliveryStreams operation/)
})
