/**
 * boto3 (Debian's python3-boto3, run by /usr/bin/python3) against the relay, unchanged: a stream's
 * life from create to delete, records byte for byte, and, with access keys, AWS's refusals of a
 * wrong secret and an unknown key. The Python side is test/relay/boto3-roundtrip.py; it prints one
 * JSON object this file asserts on. Skips when boto3 is not importable (CI installs it: .ci/run).
 *
 * botocore speaks the JSON 1.1 protocol to Kinesis, not CBOR: every request carries
 * Content-Type application/x-amz-json-1.1 and X-Amz-Target Kinesis_20131202.<Action> (botocore
 * 1.29's kinesis-2013-12-02 model says "protocol": "json", "jsonVersion": "1.1"), and the test
 * checks that this is what reached the relay.
 */
import t, { type Test } from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { testRelay } from '../helpers/relay.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./boto3-roundtrip.py', import.meta.url))

/** Why the tests cannot run here, or false. Checked before any relay runs in this process. */
function boto3Skip(): string | false {
  try {
    const version = execFileSync(PYTHON, ['-c', 'import boto3; print(boto3.__version__)'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] })
    t.comment(`using ${PYTHON} with boto3 ${version.trim()}`)
    return false
  } catch {
    return `${PYTHON} cannot import boto3 (apt-get install python3-boto3)`
  }
}
const skip = boto3Skip()

const ACCOUNT = '000000000000'
const KEY = { id: 'AKIDTRIBUTARY', secret: 'right-secret' }
const MSG_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
const MSG_UNKNOWN_KEY = 'The security token included in the request is invalid.'

const HALF = 2n ** 127n
const LAST = 2n ** 128n - 1n
const md5Hash = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))
/** The first of key-0, key-1, … whose hash falls on the given side of the middle. */
const keyInHalf = (prefix: string, upper: boolean) => {
  for (let i = 0; ; i++) if ((md5Hash(`${prefix}-${i}`) >= HALF) === upper) return `${prefix}-${i}`
}

interface PlannedRecord { key: string; data: string; hash?: string }
interface Written { key: string; data: Buffer; hash?: bigint }
interface Failure { code: string; message: string; status: number; exception: string; text: string }
interface Read { shardId: string; key: string; data: string; seq: string; arrival: string }
interface Roundtrip {
  versions: { boto3: string; botocore: string }
  listStreams: string[]
  summary: { StreamName: string; StreamARN: string; StreamStatus: string; RetentionPeriodHours: number; OpenShardCount: number }
  putRecord: { shardId: string; seq: string }
  putRecords: { failed: number; records: { shardId: string; seq: string; error: string | null }[] }
  shards: { id: string; start: string; end: string }[]
  read: Read[]
  tags: Record<string, string>
  retentionAfter: number
  split: {
    middle: string
    shards: { id: string; parent: string | null; start: string; end: string; closed: boolean }[]
    openShards: number
    parentRead: { seqs: string[]; closed: boolean }
    putAfter: { shardId: string; seq: string }
  }
  missing: Failure | null
  afterDelete: string[]
  wire: { contentTypes: string[]; targets: string[] }
}
interface Refusals { wrongSecret: Failure | null; wrongSecretPut: Failure | null; unknownKey: Failure | null; missing: Failure | null; goodList: string[] }

/** Runs the Python side (asynchronously: the relay runs in this process) and parses what it prints. */
function python<T>(mode: 'roundtrip' | 'refusals', env: Record<string, string>): Promise<T> {
  return new Promise((resolve, reject) => {
    const clean: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) clean[k] = v
    // No user configuration: no profile, no metadata service, no retries that hide a refusal.
    Object.assign(clean, { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', ...env })
    execFile(PYTHON, [SCRIPT, mode], { env: clean, timeout: 180_000, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${SCRIPT} ${mode} failed (${err.code}): ${stderr.slice(-4000)}`))
      else resolve(JSON.parse(stdout) as T)
    })
  })
}

/** The records written: text, every byte value, unicode, and two ExplicitHashKeys that overrule their keys' hashes. */
function plan(): { one: Written; many: Written[] } {
  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  return {
    one: { key: 'sensor-a', data: Buffer.from('hello from boto3') },
    many: [
      { key: 'sensor-a', data: Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0x0a, 0x00]) },
      { key: 'sensor-b', data: Buffer.from('{"t":21.5}') },
      { key: 'device-77', data: Buffer.from('ünïcode ✓') },
      { key: 'sensor-a', data: everyByte },
      { key: keyInHalf('explicit', true), data: Buffer.from('hash 0, key in the upper half'), hash: 0n },
      { key: keyInHalf('explicit', false), data: Buffer.from('hash 2^127, key in the lower half'), hash: HALF },
      { key: 'sensor-a', data: Buffer.from('last of sensor-a') },
    ],
  }
}

const toPlan = (w: Written): PlannedRecord => ({ key: w.key, data: w.data.toString('base64'), ...(w.hash !== undefined ? { hash: String(w.hash) } : {}) })
const shardOf = (w: Written) => ((w.hash ?? md5Hash(w.key)) < HALF ? 'shardId-000000000000' : 'shardId-000000000001')

async function roundtrip(t: Test, endpoint: string, creds: { id: string; secret: string }, stream: string): Promise<void> {
  const { one, many } = plan()
  const started = Date.now()
  const out = await python<Roundtrip>('roundtrip', {
    ENDPOINT: endpoint, KEY_ID: creds.id, SECRET: creds.secret,
    PLAN: JSON.stringify({ stream, put: toPlan(one), puts: many.map(toPlan) }),
  })
  const ended = Date.now()
  t.comment(`boto3 ${out.versions.boto3}, botocore ${out.versions.botocore}`)

  t.same(out.wire.contentTypes, ['application/x-amz-json-1.1'], 'botocore sends every request as JSON 1.1')
  t.ok(out.wire.targets.every((x) => x.startsWith('Kinesis_20131202.')), 'with X-Amz-Target Kinesis_20131202.<Action>')

  t.same(out.listStreams, [stream], 'list_streams names the stream the waiter saw become ACTIVE')
  t.same(out.summary, {
    StreamName: stream, StreamARN: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`, StreamStatus: 'ACTIVE',
    RetentionPeriodHours: 24, OpenShardCount: 2,
  }, 'describe_stream_summary: ACTIVE, 2 open shards, 24 h retention, the ARN of us-east-1')

  // What the puts returned, in the order written.
  const written = [one, ...many]
  const acks = [out.putRecord, ...out.putRecords.records]
  t.equal(out.putRecords.failed, 0, 'put_records fails no record')
  t.equal(out.putRecords.records.length, many.length, 'and answers each record')
  written.forEach((w, i) => {
    const ack = acks[i]
    t.equal(ack?.shardId, shardOf(w), `record ${i} (${w.key}${w.hash !== undefined ? `, ExplicitHashKey ${w.hash}` : ''}) lands in ${shardOf(w)}`)
    t.match(ack?.seq, /^\d{56}$/, 'with a 56-digit sequence number')
  })
  for (const w of many.filter((x) => x.hash !== undefined)) {
    t.not(shardOf({ key: w.key, data: w.data }), shardOf(w), `${w.key} would land in the other shard by its key's hash: ExplicitHashKey ${w.hash} decided`)
  }

  t.same(out.shards, [
    { id: 'shardId-000000000000', start: '0', end: String(HALF - 1n) },
    { id: 'shardId-000000000001', start: String(HALF), end: String(LAST) },
  ], 'list_shards splits the hash key space in two halves')

  // Read back: per shard, exactly the records put there, in sequence-number order, byte for byte.
  for (const shardId of ['shardId-000000000000', 'shardId-000000000001']) {
    const expected = written.map((w, i) => ({ w, ack: acks[i]! })).filter((x) => x.ack.shardId === shardId)
      .sort((a, b) => (BigInt(a.ack.seq) < BigInt(b.ack.seq) ? -1 : 1))
    const got = out.read.filter((r) => r.shardId === shardId)
    t.same(got.map((r) => ({ key: r.key, data: r.data, seq: r.seq })), expected.map(({ w, ack }) => ({ key: w.key, data: w.data.toString('base64'), seq: ack.seq })),
      `get_records from TRIM_HORIZON on ${shardId} returns its ${expected.length} records, keys, bytes and sequence numbers as put`)
  }
  const aOrder = out.read.filter((r) => r.key === 'sensor-a').map((r) => r.data)
  t.same(aOrder, written.filter((w) => w.key === 'sensor-a' && w.hash === undefined).map((w) => w.data.toString('base64')), 'one key reads back in the order it was written')
  for (const r of out.read) {
    const arrival = Date.parse(r.arrival)
    // Whole milliseconds: botocore parses the epoch seconds with their fraction.
    if (!(arrival >= Math.floor(started / 1000) * 1000 && arrival <= ended)) t.fail(`record ${r.seq} arrived at ${r.arrival}, outside the run`)
  }

  t.same(out.tags, { env: 'test', owner: 'tributary' }, 'list_tags_for_stream returns the tags add_tags_to_stream set')
  t.equal(out.retentionAfter, 48, 'increase_stream_retention_period raises the retention to 48 h')

  const middle = HALF / 2n
  t.equal(out.split.middle, String(middle), 'split_shard splits the first shard at 2^126')
  t.same(out.split.shards, [
    { id: 'shardId-000000000000', parent: null, start: '0', end: String(HALF - 1n), closed: true },
    { id: 'shardId-000000000001', parent: null, start: String(HALF), end: String(LAST), closed: false },
    { id: 'shardId-000000000002', parent: 'shardId-000000000000', start: '0', end: String(middle - 1n), closed: false },
    { id: 'shardId-000000000003', parent: 'shardId-000000000000', start: String(middle), end: String(HALF - 1n), closed: false },
  ], 'after the split, list_shards shows the closed parent and its two children')
  t.equal(out.split.openShards, 3, 'and describe_stream_summary counts 3 open shards')
  t.same(out.split.parentRead, {
    seqs: out.read.filter((r) => r.shardId === 'shardId-000000000000').map((r) => r.seq), closed: true,
  }, 'the closed parent still reads its records, then ends with no next iterator')
  t.equal(out.split.putAfter.shardId, 'shardId-000000000002', 'a record with ExplicitHashKey 0 now lands in the lower child')

  t.same(out.missing && { code: out.missing.code, exception: out.missing.exception, status: out.missing.status, message: out.missing.message }, {
    code: 'ResourceNotFoundException', exception: 'ResourceNotFoundException', status: 400,
    message: `Stream ${stream}-missing under account ${ACCOUNT} not found.`,
  }, 'a missing stream is botocore\'s modelled ResourceNotFoundException, with AWS\'s message')

  t.same(out.afterDelete, [], 'delete_stream removes it (the stream_not_exists waiter returned)')
}

t.test('boto3 round-trips a stream through a relay without access keys', { skip }, async (t) => {
  const relay = await testRelay(t)
  await roundtrip(t, relay.endpoint, { id: 'x', secret: 'y' }, 'boto3-open')
})

t.test('with access keys configured, boto3\'s signatures are accepted; a wrong secret and an unknown key get AWS\'s refusals', { skip }, async (t) => {
  const relay = await testRelay(t, { accessKeys: [{ accessKeyId: KEY.id, secretAccessKey: KEY.secret }], httpHost: '127.0.0.1' })
  await roundtrip(t, relay.endpoint, KEY, 'boto3-signed')

  const out = await python<Refusals>('refusals', {
    ENDPOINT: relay.endpoint, KEY_ID: KEY.id, SECRET: KEY.secret, BAD_SECRET: 'wrong-secret', UNKNOWN_KEY_ID: 'AKIDNOBODY',
  })
  // botocore has no model of these two: they are plain ClientErrors, told apart by Error.Code.
  t.same(out.wrongSecret, {
    code: 'InvalidSignatureException', message: MSG_SIGNATURE, status: 400, exception: 'ClientError',
    text: `An error occurred (InvalidSignatureException) when calling the ListStreams operation: ${MSG_SIGNATURE}`,
  }, 'a wrong secret is InvalidSignatureException (400) with AWS\'s message')
  t.same(out.wrongSecretPut && { code: out.wrongSecretPut.code, message: out.wrongSecretPut.message }, { code: 'InvalidSignatureException', message: MSG_SIGNATURE },
    'and so is a put_record to a stream that does not exist: the signature is checked first')
  t.same(out.unknownKey, {
    code: 'UnrecognizedClientException', message: MSG_UNKNOWN_KEY, status: 400, exception: 'ClientError',
    text: `An error occurred (UnrecognizedClientException) when calling the ListStreams operation: ${MSG_UNKNOWN_KEY}`,
  }, 'an unknown access key id is UnrecognizedClientException (400) with AWS\'s message')
  t.same(out.missing && { code: out.missing.code, exception: out.missing.exception, message: out.missing.message }, {
    code: 'ResourceNotFoundException', exception: 'ResourceNotFoundException', message: `Stream no-such-stream under account ${ACCOUNT} not found.`,
  }, 'a correctly signed call for a missing stream is ResourceNotFoundException')
  t.same(out.goodList, [], 'and the refused calls left nothing behind')
})
