/**
 * The AWS CLI v2 against the relay for enhanced fan-out consumers, encryption and enhanced
 * monitoring, with the CLI's own signing, serialisation, paging and waiters. Skips when
 * no AWS CLI v2 is installed (CI installs Debian's `awscli`). Consumers change status on the relay's
 * manual clock, so each status the CLI reads is the one expected, however slow the CLI starts.
 */
import t from 'tap'
import { manualClock, testRelay } from '../helpers/relay.js'
import { awsCliSkip as skip, awsCliVersion, awsWith } from '../helpers/awscli.js'

if (awsCliVersion) t.comment(awsCliVersion)

t.test('the AWS CLI v2 registers, describes, lists and deregisters stream consumers', { skip }, async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const aws = awsWith(t, relay.endpoint, { id: 'x', secret: 'y' })
  t.equal((await aws('create-stream', '--stream-name', 'fan', '--shard-count', '1')).code, 0)
  const arn = (await aws('describe-stream-summary', '--stream-name', 'fan')).json.StreamDescriptionSummary.StreamARN as string

  const reg = await aws('register-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.equal(reg.code, 0, reg.stderr)
  t.match(reg.json?.Consumer, { ConsumerName: 'app', ConsumerStatus: 'CREATING' })
  t.equal(reg.json?.Consumer?.ConsumerARN, `${arn}/consumer/app:${Math.floor(clock.now() / 1000)}`, "AWS's layout, ending with the creation second on the relay's clock")
  t.match(reg.json?.Consumer?.ConsumerCreationTimestamp, /^\d{4}-\d\d-\d\dT/, 'the CLI parsed the timestamp')
  t.equal(Date.parse(reg.json?.Consumer?.ConsumerCreationTimestamp), clock.now(), "the relay's clock, to the millisecond")
  const creating = await aws('describe-stream-consumer', '--consumer-arn', reg.json.Consumer.ConsumerARN)
  t.equal(creating.json?.ConsumerDescription?.ConsumerStatus, 'CREATING', 'CREATING while the clock stands still')
  clock.advance(1000)
  const byName = await aws('describe-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.match(byName.json?.ConsumerDescription, { ConsumerName: 'app', ConsumerStatus: 'ACTIVE', StreamARN: arn })

  for (const name of ['b', 'c', 'd', 'e']) t.equal((await aws('register-stream-consumer', '--stream-arn', arn, '--consumer-name', name)).code, 0)
  // The CLI follows NextToken itself when the page size is small.
  const listed = await aws('list-stream-consumers', '--stream-arn', arn, '--page-size', '2')
  t.equal(listed.code, 0, listed.stderr)
  t.same(listed.json?.Consumers?.map((c: { ConsumerName: string }) => c.ConsumerName), ['app', 'b', 'c', 'd', 'e'], 'every consumer across pages')
  const one = await aws('list-stream-consumers', '--stream-arn', arn, '--max-items', '2')
  t.equal(one.json?.Consumers?.length, 2)
  t.type(one.json?.NextToken, 'string', 'the CLI hands out its own continuation token')

  const dup = await aws('register-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.not(dup.code, 0)
  t.match(dup.stderr, /ResourceInUseException/)
  const del = await aws('deregister-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.equal(del.code, 0, del.stderr)
  const after = await aws('describe-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.equal(after.json?.ConsumerDescription?.ConsumerStatus, 'DELETING', 'DELETING')
  clock.advance(1000)
  const gone = await aws('describe-stream-consumer', '--stream-arn', arn, '--consumer-name', 'app')
  t.not(gone.code, 0)
  t.match(gone.stderr, /ResourceNotFoundException/, 'and gone a second later')
  const refused = await aws('delete-stream', '--stream-name', 'fan')
  t.match(refused.stderr, /ResourceInUseException.*EnforceConsumerDeletion/s, 'a stream with consumers needs --enforce-consumer-deletion')
  t.equal((await aws('delete-stream', '--stream-name', 'fan', '--enforce-consumer-deletion')).code, 0)
})

t.test('the AWS CLI v2 switches encryption and enhanced monitoring', { skip }, async (t) => {
  const relay = await testRelay(t)
  const aws = awsWith(t, relay.endpoint, { id: 'x', secret: 'y' })
  t.equal((await aws('create-stream', '--stream-name', 'sec', '--shard-count', '1')).code, 0)
  const enc = await aws('start-stream-encryption', '--stream-name', 'sec', '--encryption-type', 'KMS', '--key-id', 'alias/aws/kinesis')
  t.equal(enc.code, 0, enc.stderr)
  const d = await aws('describe-stream', '--stream-name', 'sec')
  t.match(d.json?.StreamDescription, { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' })
  const put = await aws('put-record', '--stream-name', 'sec', '--partition-key', 'k', '--data', 'aGVsbG8=')
  t.equal(put.json?.EncryptionType, 'KMS')
  t.equal((await aws('stop-stream-encryption', '--stream-name', 'sec', '--encryption-type', 'KMS', '--key-id', 'alias/aws/kinesis')).code, 0)

  const mon = await aws('enable-enhanced-monitoring', '--stream-name', 'sec', '--shard-level-metrics', 'IncomingBytes', 'OutgoingBytes')
  t.equal(mon.code, 0, mon.stderr)
  t.same(mon.json?.DesiredShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes'])
  const off = await aws('disable-enhanced-monitoring', '--stream-name', 'sec', '--shard-level-metrics', 'IncomingBytes')
  t.same(off.json?.DesiredShardLevelMetrics, ['OutgoingBytes'])

  // Debian's AWS CLI 2.9 predates the resource-policy commands; encryption.test.ts covers them through the SDK.
})
