/**
 * The AWS CLI v2 against the relay, unchanged: the Kinesis commands a user reaches for first, with
 * the CLI's own signing, serialisation and parsing. Skips when no AWS CLI v2 is installed (CI
 * installs Debian's `awscli`).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { manualClock, testRelay } from '../helpers/relay.js'
import { awsCliSkip as skip, awsCliVersion, awsWith } from '../helpers/awscli.js'

if (awsCliVersion) t.comment(awsCliVersion)

/** Kinesis's hash key of a partition key: MD5 as an unsigned 128-bit big-endian integer. */
const hashKey = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))
const HALF = 2n ** 127n

t.test('the AWS CLI v2 creates, lists, describes, writes and reads a stream', { skip }, async (t) => {
  // The relay's clock is the test's: every record arrives at a time the test knows to the millisecond.
  const clock = manualClock(1_800_000_000_123)
  const relay = await testRelay(t, {}, { clock })
  const aws = awsWith(t, relay.endpoint, { id: 'x', secret: 'y' })

  const created = await aws('create-stream', '--stream-name', 'telemetry', '--shard-count', '2')
  t.equal(created.code, 0, `create-stream exits 0 (stderr: ${created.stderr})`)
  t.equal(created.stdout.trim(), '', 'create-stream prints nothing, as against AWS')
  const waited = await aws('wait', 'stream-exists', '--stream-name', 'telemetry')
  t.equal(waited.code, 0, `wait stream-exists returns (stderr: ${waited.stderr})`)

  const listed = await aws('list-streams')
  t.equal(listed.code, 0, `list-streams exits 0 (stderr: ${listed.stderr})`)
  t.same(listed.json?.StreamNames, ['telemetry'], 'list-streams names the stream')
  t.equal(listed.json?.StreamSummaries?.[0]?.StreamStatus, 'ACTIVE', 'and its summary says ACTIVE')

  const described = await aws('describe-stream', '--stream-name', 'telemetry')
  t.equal(described.code, 0, `describe-stream exits 0 (stderr: ${described.stderr})`)
  const desc = described.json?.StreamDescription
  t.equal(desc?.StreamName, 'telemetry', 'describe-stream names the stream')
  t.equal(desc?.StreamStatus, 'ACTIVE', 'describe-stream says ACTIVE')
  t.equal(desc?.StreamARN, 'arn:aws:kinesis:us-east-1:000000000000:stream/telemetry', 'with the ARN of the configured region and account')
  t.same(desc?.Shards?.map((s: { ShardId: string }) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001'], 'describe-stream lists two shards')
  // The CLI pages DescribeStream itself (Limit + ExclusiveStartShardId, following HasMoreShards).
  const pagedDesc = await aws('describe-stream', '--stream-name', 'telemetry', '--page-size', '1')
  t.same(pagedDesc.json?.StreamDescription?.Shards?.map((s: { ShardId: string }) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001'], 'describe-stream --page-size 1 follows the pages to both shards')

  const summary = await aws('describe-stream-summary', '--stream-name', 'telemetry')
  t.equal(summary.code, 0, `describe-stream-summary exits 0 (stderr: ${summary.stderr})`)
  t.equal(summary.json?.StreamDescriptionSummary?.OpenShardCount, 2, 'describe-stream-summary counts 2 open shards')
  t.equal(summary.json?.StreamDescriptionSummary?.RetentionPeriodHours, 24, 'and the default 24 h retention')

  const shards = await aws('list-shards', '--stream-name', 'telemetry')
  t.equal(shards.code, 0, `list-shards exits 0 (stderr: ${shards.stderr})`)
  t.same(shards.json?.Shards?.map((s: { ShardId: string; HashKeyRange: object }) => [s.ShardId, s.HashKeyRange]), [
    ['shardId-000000000000', { StartingHashKey: '0', EndingHashKey: String(HALF - 1n) }],
    ['shardId-000000000001', { StartingHashKey: String(HALF), EndingHashKey: String(2n ** 128n - 1n) }],
  ], 'list-shards splits the hash key space in two halves')
  // Paging by hand as AWS documents it: the NextToken alone names the stream. (The CLI's own
  // auto-paging of list-shards resends StreamName with NextToken, which AWS itself refuses:
  // aws/aws-cli#9635, boto/botocore#2009; the relay refuses it the same way.)
  const page1 = await aws('list-shards', '--stream-name', 'telemetry', '--max-results', '1')
  t.same(page1.json?.Shards?.map((s: { ShardId: string }) => s.ShardId), ['shardId-000000000000'], 'list-shards --max-results 1 returns the first shard')
  t.type(page1.json?.NextToken, 'string', 'and a NextToken')
  const page2 = await aws('list-shards', '--next-token', String(page1.json?.NextToken), '--max-results', '1')
  t.equal(page2.code, 0, `list-shards --next-token exits 0 (stderr: ${page2.stderr})`)
  t.same(page2.json?.Shards?.map((s: { ShardId: string }) => s.ShardId), ['shardId-000000000001'], 'the NextToken leads to the second shard')

  // Text through raw-in-base64-out, and binary bytes as base64 (the CLI v2's default for blobs).
  const binary = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0x0a, 0x00])
  const puts = [
    { key: 'sensor-a', data: Buffer.from('hello from the aws cli'), args: ['--cli-binary-format', 'raw-in-base64-out', '--data', 'hello from the aws cli'] },
    { key: 'sensor-b', data: Buffer.from('{"t":21.5}'), args: ['--cli-binary-format', 'raw-in-base64-out', '--data', '{"t":21.5}'] },
    { key: 'sensor-a', data: binary, args: ['--data', binary.toString('base64')] },
    { key: 'device-77', data: Buffer.from('ünïcode ✓'), args: ['--cli-binary-format', 'raw-in-base64-out', '--data', 'ünïcode ✓'] },
  ]
  const written: { key: string; data: Buffer; shardId: string; seq: string }[] = []
  for (const p of puts) {
    const out = await aws('put-record', '--stream-name', 'telemetry', '--partition-key', p.key, ...p.args)
    t.equal(out.code, 0, `put-record ${p.key} exits 0 (stderr: ${out.stderr})`)
    const shardId = hashKey(p.key) < HALF ? 'shardId-000000000000' : 'shardId-000000000001'
    t.equal(out.json?.ShardId, shardId, `put-record ${p.key} lands in the shard that owns MD5 of its key`)
    t.match(out.json?.SequenceNumber, /^\d{56}$/, 'with a 56-digit sequence number')
    written.push({ key: p.key, data: p.data, shardId: out.json?.ShardId, seq: out.json?.SequenceNumber })
  }

  const read: { shardId: string; key: string; data: Buffer; seq: string; arrival: unknown }[] = []
  for (const shardId of ['shardId-000000000000', 'shardId-000000000001']) {
    const it = await aws('get-shard-iterator', '--stream-name', 'telemetry', '--shard-id', shardId, '--shard-iterator-type', 'TRIM_HORIZON')
    t.equal(it.code, 0, `get-shard-iterator ${shardId} exits 0 (stderr: ${it.stderr})`)
    t.type(it.json?.ShardIterator, 'string', 'and returns an iterator')
    const got = await aws('get-records', '--shard-iterator', it.json?.ShardIterator)
    t.equal(got.code, 0, `get-records ${shardId} exits 0 (stderr: ${got.stderr})`)
    t.type(got.json?.NextShardIterator, 'string', `get-records ${shardId} returns the next iterator of an open shard`)
    t.equal(got.json?.MillisBehindLatest, 0, `get-records ${shardId} is caught up`)
    for (const r of got.json?.Records ?? []) {
      read.push({ shardId, key: r.PartitionKey, data: Buffer.from(r.Data, 'base64'), seq: r.SequenceNumber, arrival: r.ApproximateArrivalTimestamp })
    }
  }
  t.equal(read.length, written.length, 'get-records returns every record, once')
  for (const w of written) {
    const r = read.find((x) => x.seq === w.seq)
    t.ok(r, `record ${w.seq} is read back`)
    if (!r) continue
    t.equal(r.shardId, w.shardId, 'from the shard put-record named')
    t.equal(r.key, w.key, `with its partition key ${w.key}`)
    t.equal(r.data.toString('hex'), w.data.toString('hex'), `with its data byte for byte (${JSON.stringify(w.data.toString('utf8'))})`)
    t.equal(Date.parse(String(r.arrival)), clock.now(), `with an arrival time the CLI parses as when it was stored (${String(r.arrival)})`)
  }
  const aKeys = read.filter((r) => r.key === 'sensor-a').map((r) => r.data.toString('hex'))
  t.same(aKeys, puts.filter((p) => p.key === 'sensor-a').map((p) => p.data.toString('hex')), 'one key reads back in the order it was written')

  // AT_SEQUENCE_NUMBER with a sequence number put-record printed starts at that very record.
  const second = written[2]!
  const at = await aws('get-shard-iterator', '--stream-name', 'telemetry', '--shard-id', second.shardId, '--shard-iterator-type', 'AT_SEQUENCE_NUMBER', '--starting-sequence-number', second.seq)
  t.equal(at.code, 0, `get-shard-iterator AT_SEQUENCE_NUMBER exits 0 (stderr: ${at.stderr})`)
  const fromSeq = await aws('get-records', '--shard-iterator', at.json?.ShardIterator, '--limit', '1')
  t.same(fromSeq.json?.Records?.map((r: { SequenceNumber: string }) => r.SequenceNumber), [second.seq], 'get-records --limit 1 from it returns exactly that record')

  const latest = await aws('get-shard-iterator', '--stream-name', 'telemetry', '--shard-id', 'shardId-000000000000', '--shard-iterator-type', 'LATEST')
  const none = await aws('get-records', '--shard-iterator', latest.json?.ShardIterator)
  t.same(none.json?.Records, [], 'a LATEST iterator reads nothing that was written before it')

  const missing = await aws('describe-stream-summary', '--stream-name', 'nope')
  t.not(missing.code, 0, 'describing an unknown stream fails')
  t.match(missing.stderr, /ResourceNotFoundException/, `the CLI reports ResourceNotFoundException: ${missing.stderr.trim()}`)

  const deleted = await aws('delete-stream', '--stream-name', 'telemetry')
  t.equal(deleted.code, 0, `delete-stream exits 0 (stderr: ${deleted.stderr})`)
  const waitedGone = await aws('wait', 'stream-not-exists', '--stream-name', 'telemetry')
  t.equal(waitedGone.code, 0, `wait stream-not-exists returns (stderr: ${waitedGone.stderr})`)
})

t.test('with access keys configured, the relay accepts the AWS CLI\'s signatures and refuses a wrong secret', { skip }, async (t) => {
  const relay = await testRelay(t, { accessKeys: [{ accessKeyId: 'AKIDTRIBUTARY', secretAccessKey: 'right-secret' }], httpHost: '127.0.0.1' })
  const good = awsWith(t, relay.endpoint, { id: 'AKIDTRIBUTARY', secret: 'right-secret' })
  const badSecret = awsWith(t, relay.endpoint, { id: 'AKIDTRIBUTARY', secret: 'wrong-secret' })
  const unknownKey = awsWith(t, relay.endpoint, { id: 'AKIDNOBODY', secret: 'right-secret' })

  const created = await good('create-stream', '--stream-name', 'signed', '--shard-count', '1')
  t.equal(created.code, 0, `create-stream with the configured key exits 0 (stderr: ${created.stderr})`)
  const put = await good('put-record', '--stream-name', 'signed', '--partition-key', 'k', '--cli-binary-format', 'raw-in-base64-out', '--data', 'signed payload')
  t.equal(put.code, 0, `a signed put-record is accepted (stderr: ${put.stderr})`)

  const [wrong, wrongList, unknown] = await Promise.all([
    badSecret('put-record', '--stream-name', 'signed', '--partition-key', 'k', '--cli-binary-format', 'raw-in-base64-out', '--data', 'forged'),
    badSecret('list-streams'),
    unknownKey('list-streams'),
  ])
  // AWS's own texts, as the CLI prints a service error to stderr; 254 is the CLI's exit code for one.
  // The note "(reached max retries: 0)" is there only because awsWith sets AWS_MAX_ATTEMPTS=1: the
  // CLI's standard retry mode marks the last allowed attempt before asking whether the error could be
  // retried. With the CLI's defaults it prints the same line without the note.
  const cliError = (type: string, operation: string, message: string) => `An error occurred (${type}) when calling the ${operation} operation (reached max retries: 0): ${message}`
  const signatureText = 'The request signature we calculated does not match the signature you provided. ' +
    'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
  t.equal(wrong.code, 254, 'a request signed with the wrong secret fails as a service error (exit 254)')
  t.equal(wrong.stderr.trim(), cliError('InvalidSignatureException', 'PutRecord', signatureText), 'with InvalidSignatureException and AWS\'s message')
  t.equal(wrongList.code, 254, 'list-streams signed with the wrong secret exits 254')
  t.equal(wrongList.stderr.trim(), cliError('InvalidSignatureException', 'ListStreams', signatureText), 'and the CLI prints AWS\'s text')
  t.equal(unknown.code, 254, 'a request from an unknown access key fails as a service error (exit 254)')
  t.equal(unknown.stderr.trim(), cliError('UnrecognizedClientException', 'ListStreams', 'The security token included in the request is invalid.'), 'with UnrecognizedClientException and AWS\'s message')

  const it = await good('get-shard-iterator', '--stream-name', 'signed', '--shard-id', 'shardId-000000000000', '--shard-iterator-type', 'TRIM_HORIZON')
  const got = await good('get-records', '--shard-iterator', it.json?.ShardIterator)
  t.same(got.json?.Records?.map((r: { Data: string }) => Buffer.from(r.Data, 'base64').toString()), ['signed payload'], 'only the signed record was stored')
})
