/**
 * Bad input to the Kinesis API, over real HTTP to a real relay: every bad request is answered with
 * AWS's error `__type`, HTTP status and message wording, and costs nothing else — after each one a
 * good PutRecord/GetRecords still works and every record stored before is still there, in order.
 * Plain `fetch` (HTTP/1.1) shows the wire; the real AWS SDK shows that callers get typed errors.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import {
  CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient,
  ListShardsCommand, PutRecordCommand, type KinesisClientConfig,
} from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { manualClock, testRelay } from '../helpers/relay.js'
import { encodeSequence } from '../../relay/sequence.js'

const AMZ_JSON = 'application/x-amz-json-1.1'
const ACCOUNT = '000000000000'
const MAX_HASH_KEY = ((1n << 128n) - 1n).toString()
const STREAM_PATTERN = '[a-zA-Z0-9_.-]+'

interface Reply {
  status: number
  contentType: string | null
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
}

/** POSTs one Kinesis call over HTTP/1.1. `body` is sent as JSON unless it is given as raw text. */
async function call(endpoint: string, action: string | null, body: unknown, o: { raw?: boolean; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': AMZ_JSON, ...o.headers }
  if (action !== null) headers['x-amz-target'] = `Kinesis_20131202.${action}`
  const res = await fetch(endpoint + '/', { method: 'POST', headers, body: o.raw ? (body as string) : JSON.stringify(body) })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, json }
}

type Assert = Test

/**
 * The reply is exactly AWS's error: status, JSON 1.1 content type, `__type`, and the message when
 * AWS sends one — spelled `Message` in a SerializationException and `message` in every other.
 */
function isError(t: Assert, r: Reply, type: string, message?: string | RegExp, status = 400): void {
  t.equal(r.status, status, `HTTP ${status}`)
  t.match(r.contentType ?? '', /^application\/x-amz-json-1\.1/, 'answered as AWS JSON 1.1')
  t.equal(r.json?.__type, type, `__type is ${type} (body ${r.text.slice(0, 300)})`)
  const key = type === 'SerializationException' ? 'Message' : 'message'
  const keys = r.json && typeof r.json === 'object' ? Object.keys(r.json).sort() : []
  if (message === undefined) t.ok(keys.every((k) => k === '__type' || k === key), `the error carries __type and at most ${key}`)
  else t.same(keys, ['__type', key].sort(), `the error carries __type and ${key} only`)
  if (typeof message === 'string') t.equal(r.json?.[key], message, 'message in AWS wording')
  else if (message) t.match(r.json?.[key], message, 'message in AWS wording')
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')
const validation = (...errors: string[]) => `${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}`
const violation = (value: string, member: string, constraint: string) => `Value ${value} at '${member}' failed to satisfy constraint: ${constraint}`

// ---------------------------------------------------------------------------------------------
// One relay for the HTTP cases, with a stream of known records that every case must leave intact.
// ---------------------------------------------------------------------------------------------

// Its clock is the test's (on a whole second), so the times it reports are known exactly.
const clock = manualClock(Math.floor(Date.now() / 1000) * 1000)
const relay = await testRelay(t, {}, { clock })
const E = relay.endpoint

/** Streams that exist; no bad request may add or remove one. */
const streams = new Set<string>()
/** Data of every record in `good`, in order. */
const stored: string[] = []

async function mustOk(action: string, body: unknown): Promise<Reply> {
  const r = await call(E, action, body)
  if (r.status !== 200) throw new Error(`${action} ${JSON.stringify(body).slice(0, 200)} failed: ${r.status} ${r.text.slice(0, 300)}`)
  return r
}

async function createStream(name: string, shards: number) {
  await mustOk('CreateStream', { StreamName: name, ShardCount: shards })
  streams.add(name)
}

async function iterator(stream: string, shard = 0, type = 'TRIM_HORIZON', extra: object = {}): Promise<string> {
  const r = await mustOk('GetShardIterator', { StreamName: stream, ShardId: `shardId-${String(shard).padStart(12, '0')}`, ShardIteratorType: type, ...extra })
  return r.json.ShardIterator as string
}

async function readAll(stream: string, shard = 0): Promise<{ Data: string; SequenceNumber: string; PartitionKey: string }[]> {
  const r = await mustOk('GetRecords', { ShardIterator: await iterator(stream, shard), Limit: 10000 })
  return r.json.Records
}

let goodCount = 0
/** A good PutRecord and GetRecords still work, every earlier record is intact, and the set of streams is unchanged. */
async function intact(t: Assert) {
  const data = `good-${++goodCount}`
  const put = await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', Data: b64(data) })
  t.equal(put.status, 200, 'a good PutRecord still succeeds afterwards')
  if (put.status === 200) stored.push(data)
  const records = await readAll('good')
  t.same(records.map((r) => Buffer.from(r.Data, 'base64').toString()), stored, 'GetRecords returns every stored record, unchanged and in order')
  const list = await mustOk('ListStreams', {})
  t.same(list.json.StreamNames, [...streams].sort(), 'no stream was created or removed')
}

await createStream('good', 1)
await createStream('twin', 2)
const firstPut = await mustOk('PutRecord', { StreamName: 'good', PartitionKey: 'pk', Data: b64('first') })
stored.push('first')
// one record in each shard of `twin`, for sequence numbers that belong to a known shard
const twinSeq: string[] = []
for (const shard of [0, 1]) {
  const key = shard === 0 ? '0' : MAX_HASH_KEY
  const r = await mustOk('PutRecord', { StreamName: 'twin', PartitionKey: 'k', ExplicitHashKey: key, Data: b64(`twin-${shard}`) })
  // no top-level assertions before the subtests: tap would take the root test for finished and tear the relay down
  if (r.json.ShardId !== `shardId-00000000000${shard}`) throw new Error(`ExplicitHashKey ${key} went to ${r.json.ShardId}`)
  twinSeq[shard] = r.json.SequenceNumber
}

// ---------------------------------------------------------------------------------------------
// Bodies that are not a request
// ---------------------------------------------------------------------------------------------

t.test('a body that is not JSON is a SerializationException and stores nothing', async (t) => {
  for (const body of ['{"StreamName": "good", "PartitionKey": ', '{StreamName: good}', 'not json', '\u0000\u0001\u0002']) {
    const r = await call(E, 'PutRecord', body, { raw: true })
    // AWS answers {"__type":"SerializationException"} without a message; only the type is AWS's contract here.
    isError(t, r, 'SerializationException')
  }
  await intact(t)
})

t.test('a JSON array where the request object belongs is a SerializationException', async (t) => {
  isError(t, await call(E, 'PutRecord', [{ StreamName: 'good', PartitionKey: 'pk', Data: b64('x') }]), 'SerializationException',
    'Start of list found where not expected')
  await intact(t)
})

t.test('a StreamName sent as a number is a SerializationException in AWS (Coral) wording', async (t) => {
  const message = 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String'
  isError(t, await call(E, 'DescribeStream', { StreamName: 5 }), 'SerializationException', message)
  isError(t, await call(E, 'PutRecord', { StreamName: 12.5, PartitionKey: 'pk', Data: b64('x') }), 'SerializationException', message)
  isError(t, await call(E, 'CreateStream', { StreamName: 7, ShardCount: 1 }), 'SerializationException', message)
  isError(t, await call(E, 'DescribeStream', { StreamName: true }), 'SerializationException', 'class java.lang.Boolean can not be converted to an String')
  isError(t, await call(E, 'DescribeStream', { StreamName: { name: 'good' } }), 'SerializationException', 'Start of structure or map found where not expected.')
  await intact(t)
})

t.test('a ShardCount sent as a string is a SerializationException and creates no stream', async (t) => {
  isError(t, await call(E, 'CreateStream', { StreamName: 'stringy', ShardCount: '2' }), 'SerializationException',
    'class java.lang.String can not be converted to an Integer')
  await intact(t)
})

t.test('Data that is not valid base64 is a SerializationException naming the problem', async (t) => {
  const put = (Data: unknown) => call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', Data })
  isError(t, await put('abc'), 'SerializationException',
    "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3")
  isError(t, await put('ab!d'), 'SerializationException', "'ab!d' can not be converted to a Blob: Invalid Base64 character: '!'")
  isError(t, await put('ab=d'), 'SerializationException', "'ab=d' can not be converted to a Blob: Invalid Base64 character: '='")
  isError(t, await put('aGk_'), 'SerializationException', "'aGk_' can not be converted to a Blob: Invalid Base64 character: '_'")
  isError(t, await put(42), 'SerializationException', 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob')
  isError(t, await call(E, 'PutRecords', { StreamName: 'good', Records: [{ PartitionKey: 'pk', Data: b64('fine') }, { PartitionKey: 'pk', Data: 'abcde' }] }),
    'SerializationException', "'abcde' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5")
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

t.test('an unknown action is an UnknownOperationException', async (t) => {
  // AWS sends {"__type":"UnknownOperationException"} without a message.
  isError(t, await call(E, 'Frobnicate', { StreamName: 'good' }), 'UnknownOperationException')
  isError(t, await call(E, 'toString', {}), 'UnknownOperationException', undefined)
  isError(t, await call(E, 'constructor', {}), 'UnknownOperationException', undefined)
  isError(t, await call(E, 'putRecord', { StreamName: 'good', PartitionKey: 'pk', Data: b64('lowercase') }), 'UnknownOperationException')
  isError(t, await call(E, null, {}, { headers: { 'x-amz-target': 'Kinesis_20131201.PutRecord' } }), 'UnknownOperationException')
  await intact(t)
})

t.test('a request without X-Amz-Target is refused and stores nothing', async (t) => {
  isError(t, await call(E, null, { StreamName: 'good', PartitionKey: 'pk', Data: b64('no-target') }), 'UnknownOperationException')
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// Constraint violations
// ---------------------------------------------------------------------------------------------

t.test('CreateStream with ShardCount 0 is a ValidationException and creates nothing', async (t) => {
  isError(t, await call(E, 'CreateStream', { StreamName: 'zero', ShardCount: 0 }), 'ValidationException',
    validation(violation("'0'", 'shardCount', 'Member must have value greater than or equal to 1')))
  isError(t, await call(E, 'CreateStream', { StreamName: 'neg', ShardCount: -3 }), 'ValidationException',
    validation(violation("'-3'", 'shardCount', 'Member must have value greater than or equal to 1')))
  await intact(t)
})

t.test('a StreamName with spaces or over 128 characters lists each broken constraint, joined by "; "', async (t) => {
  isError(t, await call(E, 'CreateStream', { StreamName: 'my stream', ShardCount: 1 }), 'ValidationException',
    validation(violation("'my stream'", 'streamName', `Member must satisfy regular expression pattern: ${STREAM_PATTERN}`)))
  const long = 'a'.repeat(129)
  isError(t, await call(E, 'DescribeStream', { StreamName: long }), 'ValidationException',
    validation(violation(`'${long}'`, 'streamName', 'Member must have length less than or equal to 128')))
  const both = 'a b'.repeat(43) // 129 characters, with spaces
  isError(t, await call(E, 'CreateStream', { StreamName: both, ShardCount: 1 }), 'ValidationException', validation(
    violation(`'${both}'`, 'streamName', `Member must satisfy regular expression pattern: ${STREAM_PATTERN}`),
    violation(`'${both}'`, 'streamName', 'Member must have length less than or equal to 128'),
  ))
  isError(t, await call(E, 'PutRecord', { StreamName: 'has space', PartitionKey: 'pk', Data: b64('x') }), 'ValidationException',
    validation(violation("'has space'", 'streamName', `Member must satisfy regular expression pattern: ${STREAM_PATTERN}`)))
  await intact(t)
})

t.test('errors in several members are listed in member-name order, as AWS lists them', async (t) => {
  // AWS orders the list by member name: shardCount before streamName, records before streamName.
  isError(t, await call(E, 'CreateStream', { StreamName: 'bad name', ShardCount: 0 }), 'ValidationException', validation(
    violation("'0'", 'shardCount', 'Member must have value greater than or equal to 1'),
    violation("'bad name'", 'streamName', `Member must satisfy regular expression pattern: ${STREAM_PATTERN}`),
  ))
  isError(t, await call(E, 'PutRecords', { StreamName: '', Records: [] }), 'ValidationException', validation(
    violation("'[]'", 'records', 'Member must have length greater than or equal to 1'),
    violation("''", 'streamName', `Member must satisfy regular expression pattern: ${STREAM_PATTERN}`),
    violation("''", 'streamName', 'Member must have length greater than or equal to 1'),
  ))
  isError(t, await call(E, 'GetShardIterator', {}), 'ValidationException', validation(
    violation('null', 'shardId', 'Member must not be null'),
    violation('null', 'shardIteratorType', 'Member must not be null'),
  ))
  await intact(t)
})

t.test('an empty or 257-character PartitionKey is a ValidationException and stores nothing', async (t) => {
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: '', Data: b64('x') }), 'ValidationException',
    validation(violation("''", 'partitionKey', 'Member must have length greater than or equal to 1')))
  const key = 'k'.repeat(257)
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: key, Data: b64('x') }), 'ValidationException',
    validation(violation(`'${key}'`, 'partitionKey', 'Member must have length less than or equal to 256')))
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', Data: b64('x') }), 'ValidationException',
    validation(violation('null', 'partitionKey', 'Member must not be null')))
  // 256 characters is still fine
  const ok = await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'k'.repeat(256), Data: b64('key-256') })
  t.equal(ok.status, 200, 'a 256-character key is accepted')
  stored.push('key-256')
  await intact(t)
})

t.test('a Data blob of 1048577 bytes is a ValidationException; 1 MiB minus the key fits', async (t) => {
  const big = Buffer.alloc(1048577, 0x61)
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', Data: b64(big) }), 'ValidationException',
    validation(violation("'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]'", 'data', 'Member must have length less than or equal to 1048576')))
  isError(t, await call(E, 'PutRecords', { StreamName: 'good', Records: [{ PartitionKey: 'pk', Data: b64('small') }, { PartitionKey: 'pk', Data: b64(big) }] }),
    'ValidationException',
    validation(violation("'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]'", 'records.2.member.data', 'Member must have length less than or equal to 1048576')))
  await intact(t)
})

t.test('PutRecords with 0 or 501 records is a ValidationException and stores none of them', async (t) => {
  isError(t, await call(E, 'PutRecords', { StreamName: 'good', Records: [] }), 'ValidationException',
    validation(violation("'[]'", 'records', 'Member must have length greater than or equal to 1')))
  // 501 records of 2 KiB: the answer names the constraint without echoing the batch back byte by byte
  const many = Array.from({ length: 501 }, (_, i) => ({ PartitionKey: `pk${i}`, Data: b64(Buffer.alloc(2048, i)) }))
  const r = await call(E, 'PutRecords', { StreamName: 'good', Records: many })
  isError(t, r, 'ValidationException',
    /^1 validation error detected: Value '\[.*\]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500$/s)
  t.ok(r.text.length < 100_000, `the error stays small (${r.text.length} bytes for a ${JSON.stringify(many).length}-byte request)`)
  t.match(r.json?.message, /^[^;]*'\[com\.amazonaws\.kinesis\.v20131202\.PutRecordsRequestEntry@[0-9a-f]{1,8}, /, 'entries are shown as AWS shows them, by class (kinesalite validations/putRecords.js)')
  await intact(t)
})

t.test('one bad record in a PutRecords batch rejects the whole batch, so none of its good records are stored', async (t) => {
  const r = await call(E, 'PutRecords', { StreamName: 'good', Records: [{ PartitionKey: 'pk', Data: b64('batch-1') }, { PartitionKey: '', Data: b64('batch-2') }, { PartitionKey: 'pk', Data: b64('batch-3') }] })
  isError(t, r, 'ValidationException', validation(violation("''", 'records.2.member.partitionKey', 'Member must have length greater than or equal to 1')))
  await intact(t)
})

t.test('GetRecords with Limit 0 or 10001 is a ValidationException and does not spend the iterator', async (t) => {
  const it = await iterator('good')
  isError(t, await call(E, 'GetRecords', { ShardIterator: it, Limit: 0 }), 'ValidationException',
    validation(violation("'0'", 'limit', 'Member must have value greater than or equal to 1')))
  isError(t, await call(E, 'GetRecords', { ShardIterator: it, Limit: 10001 }), 'ValidationException',
    validation(violation("'10001'", 'limit', 'Member must have value less than or equal to 10000')))
  const r = await call(E, 'GetRecords', { ShardIterator: it, Limit: 10000 })
  t.equal(r.status, 200, 'the same iterator still reads')
  t.equal(r.json?.Records?.length, stored.length, 'and sees every record')
  await intact(t)
})

t.test('an ExplicitHashKey of 2^128 is an InvalidArgumentException naming the value', async (t) => {
  const over = '340282366920938463463374607431768211456'
  const message = `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${over}`
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', ExplicitHashKey: over, Data: b64('x') }), 'InvalidArgumentException', message)
  isError(t, await call(E, 'PutRecords', { StreamName: 'good', Records: [{ PartitionKey: 'pk', Data: b64('y') }, { PartitionKey: 'pk', ExplicitHashKey: over, Data: b64('z') }] }),
    'InvalidArgumentException', message)
  const ok = await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', ExplicitHashKey: MAX_HASH_KEY, Data: b64('max-key') })
  t.equal(ok.status, 200, '2^128-1 itself is accepted')
  stored.push('max-key')
  await intact(t)
})

t.test('an ExplicitHashKey that is not a decimal number is a ValidationException with the pattern', async (t) => {
  for (const key of ['abc', '-1', '007', '1e5', '']) {
    isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', ExplicitHashKey: key, Data: b64('x') }), 'ValidationException',
      validation(violation(`'${key}'`, 'explicitHashKey', 'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})')))
  }
  isError(t, await call(E, 'PutRecord', { StreamName: 'good', PartitionKey: 'pk', ExplicitHashKey: '1'.repeat(40), Data: b64('x') }), 'ValidationException',
    /at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern/)
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// Streams and shards that do not exist
// ---------------------------------------------------------------------------------------------

t.test('DescribeStream, PutRecord and GetShardIterator on an unknown stream are ResourceNotFoundException', async (t) => {
  const message = `Stream nope under account ${ACCOUNT} not found.`
  isError(t, await call(E, 'DescribeStream', { StreamName: 'nope' }), 'ResourceNotFoundException', message)
  isError(t, await call(E, 'DescribeStreamSummary', { StreamName: 'nope' }), 'ResourceNotFoundException', message)
  isError(t, await call(E, 'PutRecord', { StreamName: 'nope', PartitionKey: 'pk', Data: b64('x') }), 'ResourceNotFoundException', message)
  isError(t, await call(E, 'PutRecords', { StreamName: 'nope', Records: [{ PartitionKey: 'pk', Data: b64('x') }] }), 'ResourceNotFoundException', message)
  // AWS names the shard, not the stream, when GetShardIterator's stream does not exist (kinesalite's
  // recorded answers, test/getShardIterator.js "unknown stream and short prefix").
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'nope', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }),
    'ResourceNotFoundException', `Shard shardId-000000000000 in stream nope under account ${ACCOUNT} does not exist`)
  isError(t, await call(E, 'DeleteStream', { StreamName: 'nope' }), 'ResourceNotFoundException', message)
  await intact(t)
})

t.test('creating a stream that exists is ResourceInUseException and leaves the stream and its records alone', async (t) => {
  isError(t, await call(E, 'CreateStream', { StreamName: 'good', ShardCount: 3 }), 'ResourceInUseException',
    `Stream good under account ${ACCOUNT} already exists.`)
  const d = await mustOk('DescribeStream', { StreamName: 'good' })
  t.equal(d.json.StreamDescription.Shards.length, 1, 'the stream keeps its one shard')
  await intact(t)
})

t.test('GetShardIterator for a shard the stream does not have is ResourceNotFoundException', async (t) => {
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000009', ShardIteratorType: 'TRIM_HORIZON' }),
    'ResourceNotFoundException', `Shard shardId-000000000009 in stream good under account ${ACCOUNT} does not exist`)
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// GetShardIterator arguments
// ---------------------------------------------------------------------------------------------

const mustEither = (type: string, what: string) =>
  'Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or ' +
  `(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified ${type} and ${what}.`

t.test('AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER without a StartingSequenceNumber is an InvalidArgumentException', async (t) => {
  for (const type of ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER']) {
    isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: type }),
      'InvalidArgumentException', mustEither(type, 'no StartingSequenceNumber'))
  }
  await intact(t)
})

t.test('LATEST or TRIM_HORIZON with a StartingSequenceNumber is an InvalidArgumentException', async (t) => {
  for (const type of ['LATEST', 'TRIM_HORIZON']) {
    isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: type, StartingSequenceNumber: firstPut.json.SequenceNumber }),
      'InvalidArgumentException', mustEither(type, 'also a StartingSequenceNumber'))
  }
  await intact(t)
})

t.test('a sequence number from another shard is refused, naming both shards', async (t) => {
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'twin', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: twinSeq[1] }),
    'InvalidArgumentException',
    'Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000')
  // and the right shard accepts it
  const it = await iterator('twin', 1, 'AT_SEQUENCE_NUMBER', { StartingSequenceNumber: twinSeq[1] })
  const r = await mustOk('GetRecords', { ShardIterator: it })
  t.same(r.json.Records.map((x: { Data: string }) => Buffer.from(x.Data, 'base64').toString()), ['twin-1'], 'the sequence number reads its record on its own shard')
  await intact(t)
})

t.test('a sequence number of a shard created at another time is refused as not from this stream', async (t) => {
  // shard 0, a plausible offset, but a shard creation time (2018-11-21) that is not this shard's
  const seq = encodeSequence({ shardCreatedSec: 1_542_800_000, shardIndex: 0, offset: 0, recordSec: 1_545_000_000 })
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seq }),
    'InvalidArgumentException',
    `StartingSequenceNumber ${seq} used in GetShardIterator on shard shardId-000000000000 in stream good under account ${ACCOUNT} is invalid because it did not come from this stream.`)
  // a number copied from a real AWS stream (FIELD-NOTES) names the shard it encodes
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: '49590338271490256608559692538361571095921575989136588898' }),
    'InvalidArgumentException',
    'Invalid StartingSequenceNumber. It encodes shardId-000000000006, while it was used in a call to a shard with shardId-000000000000')
  await intact(t)
})

t.test('a garbage sequence number is an InvalidArgumentException, and a non-number a ValidationException', async (t) => {
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: '12345' }),
    'InvalidArgumentException',
    `StartingSequenceNumber 12345 used in GetShardIterator on shard shardId-000000000000 in stream good under account ${ACCOUNT} is invalid.`)
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: 'abc' }),
    'ValidationException', validation(violation("'abc'", 'startingSequenceNumber', 'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})')))
  await intact(t)
})

t.test('an unknown ShardIteratorType is a ValidationException listing the allowed ones', async (t) => {
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'OLDEST' }), 'ValidationException',
    validation(violation("'OLDEST'", 'shardIteratorType',
      'Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]')))
  await intact(t)
})

t.test('AT_TIMESTAMP in the future or without a Timestamp is an InvalidArgumentException', async (t) => {
  const future = Math.round(clock.now() / 1000) + 3600
  const r = await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: future })
  isError(t, r, 'InvalidArgumentException',
    new RegExp(`^The timestampInMillis parameter cannot be greater than the currentTimestampInMillis\\. timestampInMillis: ${future * 1000}, currentTimestampInMillis: \\d{13}$`))
  const now = Number(/currentTimestampInMillis: (\d+)$/.exec(r.json?.message ?? '')?.[1])
  t.equal(now, clock.now(), 'the current time it reports is the relay clock')
  const iterator = (Timestamp: number) => call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp })
  t.equal((await iterator(clock.now() / 1000)).status, 200, 'the present moment is not in the future')
  isError(t, await iterator(clock.now() / 1000 + 1), 'InvalidArgumentException',
    `The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ${clock.now() + 1000}, currentTimestampInMillis: ${clock.now()}`)
  const oneSecondAhead = clock.now() / 1000 + 1
  clock.advance(1000)
  t.equal((await iterator(oneSecondAhead)).status, 200, 'a second later, that time is the present')
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP' }),
    'InvalidArgumentException', 'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.')
  isError(t, await call(E, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: 'yesterday' }),
    'SerializationException', 'class java.lang.String can not be converted to milliseconds since epoch')
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// Shard iterators
// ---------------------------------------------------------------------------------------------

t.test('a forged iterator (random base64) is refused as "Invalid ShardIterator."', async (t) => {
  const real = await iterator('good')
  for (const forged of [randomBytes(Buffer.from(real, 'base64').length).toString('base64'), randomBytes(24).toString('base64'), 'AAAA', b64('{"stream":"good","offset":0}')]) {
    isError(t, await call(E, 'GetRecords', { ShardIterator: forged }), 'InvalidArgumentException', 'Invalid ShardIterator.')
  }
  await intact(t)
})

t.test('a real iterator with one byte changed is refused as "Invalid ShardIterator."', async (t) => {
  const raw = Buffer.from(await iterator('good'), 'base64')
  // the version, the offset (to read elsewhere), the shard index, the stream id, the MAC
  for (const at of [0, 9, 17, 21, raw.length - 1]) {
    const copy = Buffer.from(raw)
    copy[at] = copy[at]! ^ 0x04
    isError(t, await call(E, 'GetRecords', { ShardIterator: copy.toString('base64') }), 'InvalidArgumentException', 'Invalid ShardIterator.')
  }
  await intact(t)
})

t.test("another relay's iterator is refused as \"Invalid ShardIterator.\"", async (t) => {
  const other = await testRelay(t)
  await call(other.endpoint, 'CreateStream', { StreamName: 'good', ShardCount: 1 })
  const foreign = (await call(other.endpoint, 'GetShardIterator', { StreamName: 'good', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' })).json.ShardIterator
  t.type(foreign, 'string', 'the other relay issued an iterator')
  isError(t, await call(E, 'GetRecords', { ShardIterator: foreign }), 'InvalidArgumentException', 'Invalid ShardIterator.')
  await intact(t)
})

t.test('an iterator of a deleted stream is ResourceNotFoundException, even after a stream of that name is created again', async (t) => {
  await createStream('doomed', 1)
  await mustOk('PutRecord', { StreamName: 'doomed', PartitionKey: 'pk', Data: b64('secret-of-the-old-stream') })
  const old = await iterator('doomed')
  await mustOk('DeleteStream', { StreamName: 'doomed' })
  streams.delete('doomed')
  const message = `Shard shardId-000000000000 in stream doomed under account ${ACCOUNT} does not exist`
  isError(t, await call(E, 'GetRecords', { ShardIterator: old }), 'ResourceNotFoundException', message)
  await createStream('doomed', 1)
  await mustOk('PutRecord', { StreamName: 'doomed', PartitionKey: 'pk', Data: b64('new') })
  isError(t, await call(E, 'GetRecords', { ShardIterator: old }), 'ResourceNotFoundException', message)
  t.same((await readAll('doomed')).map((r) => Buffer.from(r.Data, 'base64').toString()), ['new'], 'the new stream holds only its own record')
  await intact(t)
})

t.test('GetRecords without a ShardIterator is a ValidationException', async (t) => {
  isError(t, await call(E, 'GetRecords', {}), 'ValidationException', validation(violation('null', 'shardIterator', 'Member must not be null')))
  isError(t, await call(E, 'GetRecords', { ShardIterator: 'A'.repeat(513) }), 'ValidationException',
    validation(violation(`'${'A'.repeat(513)}'`, 'shardIterator', 'Member must have length less than or equal to 512')))
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// ListShards
// ---------------------------------------------------------------------------------------------

t.test('ListShards with both NextToken and StreamName, or with neither, is an InvalidArgumentException', async (t) => {
  const page = await mustOk('ListShards', { StreamName: 'twin', MaxResults: 1 })
  const token = page.json.NextToken as string
  t.type(token, 'string', 'a first page of one shard has a NextToken')
  isError(t, await call(E, 'ListShards', { StreamName: 'twin', NextToken: token }), 'InvalidArgumentException', 'NextToken and StreamName cannot be provided together.')
  isError(t, await call(E, 'ListShards', {}), 'InvalidArgumentException', 'Either NextToken or StreamName should be provided.')
  const next = await mustOk('ListShards', { NextToken: token })
  t.same(next.json.Shards.map((s: { ShardId: string }) => s.ShardId), ['shardId-000000000001'], 'the token alone still pages on')
  isError(t, await call(E, 'ListShards', { NextToken: b64('forged-token-that-is-long-enough') }), 'InvalidArgumentException', 'Invalid NextToken.')
  await intact(t)
})

// ---------------------------------------------------------------------------------------------
// The AWS SDK sees typed errors
// ---------------------------------------------------------------------------------------------

function sdk(t: { teardown(fn: () => void): void }, endpoint: string, o: Partial<KinesisClientConfig> & { h1?: boolean } = {}): KinesisClient {
  const { h1, ...rest } = o
  const client = new KinesisClient({
    endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1,
    ...(h1 ? { requestHandler: new NodeHttpHandler() } : {}), ...rest,
  })
  t.teardown(() => client.destroy())
  return client
}

interface SdkError { name: string; message: string; $metadata?: { httpStatusCode?: number }; $fault?: string }

async function sdkError(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p
  } catch (err) {
    return err as SdkError
  }
  throw new Error('the call succeeded')
}

for (const h1 of [true, false]) {
  t.test(`the AWS SDK (${h1 ? 'HTTP/1.1' : 'HTTP/2'}) surfaces each error as its typed exception`, async (t) => {
    const kinesis = sdk(t, E, { h1 })
    const cases: [string, Promise<unknown>, string, string | RegExp][] = [
      ['DescribeStream of an unknown stream', kinesis.send(new DescribeStreamCommand({ StreamName: 'nope' })), 'ResourceNotFoundException', `Stream nope under account ${ACCOUNT} not found.`],
      ['CreateStream of an existing stream', kinesis.send(new CreateStreamCommand({ StreamName: 'good', ShardCount: 1 })), 'ResourceInUseException', `Stream good under account ${ACCOUNT} already exists.`],
      ['PutRecord with ExplicitHashKey 2^128', kinesis.send(new PutRecordCommand({ StreamName: 'good', PartitionKey: 'pk', ExplicitHashKey: '340282366920938463463374607431768211456', Data: Buffer.from('x') })),
        'InvalidArgumentException', /^Invalid ExplicitHashKey\./],
      ['PutRecord with an empty PartitionKey', kinesis.send(new PutRecordCommand({ StreamName: 'good', PartitionKey: '', Data: Buffer.from('x') })), 'ValidationException',
        validation(violation("''", 'partitionKey', 'Member must have length greater than or equal to 1'))],
      ['GetRecords with a forged iterator', kinesis.send(new GetRecordsCommand({ ShardIterator: randomBytes(48).toString('base64') })), 'InvalidArgumentException', 'Invalid ShardIterator.'],
      ['GetShardIterator on a missing shard', kinesis.send(new GetShardIteratorCommand({ StreamName: 'good', ShardId: 'shardId-000000000007', ShardIteratorType: 'LATEST' })),
        'ResourceNotFoundException', /^Shard shardId-000000000007 in stream good/],
      ['ListShards with neither stream nor token', kinesis.send(new ListShardsCommand({})), 'InvalidArgumentException', /NextToken or StreamName/],
    ]
    for (const [what, p, name, message] of cases) {
      const err = await sdkError(p)
      t.equal(err.name, name, `${what}: ${name}`)
      t.match(err.message, message, `${what}: message`)
      t.equal(err.$metadata?.httpStatusCode, 400, `${what}: HTTP 400`)
      t.equal(err.$fault, 'client', `${what}: a client fault, not retried`)
    }
    // and the same client still works
    const put = await kinesis.send(new PutRecordCommand({ StreamName: 'good', PartitionKey: 'pk', Data: Buffer.from(`sdk-${h1 ? 1 : 2}`) }))
    t.equal(put.ShardId, 'shardId-000000000000')
    stored.push(`sdk-${h1 ? 1 : 2}`)
    await intact(t)
  })
}

// ---------------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------------

// Over HTTP/2 the SDK signs `:authority` rather than `host`; both must verify.

t.test('with access keys configured, only correctly signed requests get through', async (t) => {
  const KEY = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret1' }
  const secured = await testRelay(t, { accessKeys: [KEY], httpHost: '127.0.0.1' })
  const good = { h1: sdk(t, secured.endpoint, { h1: true, credentials: KEY }), h2: sdk(t, secured.endpoint, { credentials: KEY }) }
  const locked: string[] = []
  const read = async (client: KinesisClient) => {
    const it = await client.send(new GetShardIteratorCommand({ StreamName: 'locked', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))
    const r = await client.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }))
    return (r.Records ?? []).map((x) => Buffer.from(x.Data!).toString())
  }

  await t.test('the SDK with the right key works over HTTP/1.1', async (t) => {
    await good.h1.send(new CreateStreamCommand({ StreamName: 'locked', ShardCount: 1 }))
    const put = await good.h1.send(new PutRecordCommand({ StreamName: 'locked', PartitionKey: 'pk', Data: Buffer.from('h1') }))
    t.equal(put.ShardId, 'shardId-000000000000')
    locked.push('h1')
    t.same(await read(good.h1), locked, 'it reads back what it wrote')
  })

  await t.test('the SDK with the right key works over HTTP/2 (its default handler)', async (t) => {
    const put = await good.h2.send(new PutRecordCommand({ StreamName: 'locked', PartitionKey: 'pk', Data: Buffer.from('h2') }))
    t.equal(put.ShardId, 'shardId-000000000000')
    locked.push('h2')
    t.same(await read(good.h2), locked, 'it reads back both records')
  })

  for (const h1 of [true, false]) {
    await t.test(`a wrong secret is InvalidSignatureException and stores nothing (${h1 ? 'HTTP/1.1' : 'HTTP/2'})`, async (t) => {
      const bad = sdk(t, secured.endpoint, { h1, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret2' } })
      const err = await sdkError(bad.send(new PutRecordCommand({ StreamName: 'locked', PartitionKey: 'pk', Data: Buffer.from('forged') })))
      t.equal(err.name, 'InvalidSignatureException')
      t.equal(err.message, 'The request signature we calculated does not match the signature you provided. ' +
        'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.')
      t.equal(err.$metadata?.httpStatusCode, 400)
      t.same(await read(good.h1), locked, 'the stream holds only the signed records')
    })
  }

  await t.test('an unknown access key is UnrecognizedClientException', async (t) => {
    const stranger = sdk(t, secured.endpoint, { h1: true, credentials: { accessKeyId: 'AKIDOTHER', secretAccessKey: 'secret1' } })
    const err = await sdkError(stranger.send(new PutRecordCommand({ StreamName: 'locked', PartitionKey: 'pk', Data: Buffer.from('stranger') })))
    t.equal(err.name, 'UnrecognizedClientException')
    t.equal(err.message, 'The security token included in the request is invalid.')
    t.equal(err.$metadata?.httpStatusCode, 400)
    const err2 = await sdkError(stranger.send(new DescribeStreamCommand({ StreamName: 'locked' })))
    t.equal(err2.name, 'UnrecognizedClientException', 'it cannot even learn whether a stream exists')
    t.same(await read(good.h1), locked, 'the stream holds only the signed records')
  })

  await t.test('an unsigned request is MissingAuthenticationTokenException with HTTP 400', async (t) => {
    isError(t, await call(secured.endpoint, 'PutRecord', { StreamName: 'locked', PartitionKey: 'pk', Data: b64('unsigned') }),
      'MissingAuthenticationTokenException', 'Missing Authentication Token', 400)
    isError(t, await call(secured.endpoint, 'ListStreams', {}), 'MissingAuthenticationTokenException', 'Missing Authentication Token', 400)
    isError(t, await call(secured.endpoint, 'PutRecord', { StreamName: 'locked', PartitionKey: 'pk', Data: b64('fake') },
      { headers: { authorization: 'Bearer not-sigv4' } }), 'IncompleteSignatureException', undefined, 400)
    t.same(await read(good.h1), locked, 'the stream holds only the signed records')
  })
})
