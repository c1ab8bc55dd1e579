/**
 * Unit tests of the pieces the Kinesis API is built on: sequence numbers (relay/sequence.ts),
 * shard iterators (relay/kinesis/iterator.ts), shard ids (relay/kinesis/shardid.ts), error bodies
 * (relay/kinesis/errors.ts, protocol.ts) and the hash-key split of a new stream
 * (relay/streams.ts `hashRanges`). Reference values come from FIELD-NOTES.md ("Kinesis wire").
 */
import t from 'tap'
import { createRequire } from 'node:module'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { decodeSequence, encodeSequence, encodeSequenceReference, SEQUENCE_DIGITS, SequenceDigits, sequenceBase, sequenceOf, writeSequence, type SequenceParts } from '../../relay/sequence.js'
import { IteratorCodec, type IteratorPosition } from '../../relay/kinesis/iterator.js'
import { KinesisError } from '../../relay/kinesis/errors.js'
import { NO_OUTPUT } from '../../relay/kinesis/api.js'
import { ACTIONS } from '../../relay/kinesis/actions/index.js'
import { cbor, json } from '../../relay/kinesis/protocol.js'
import { canonicalShardId, shardIndexOf } from '../../relay/kinesis/shardid.js'
import { hashRanges, HASH_SPACE } from '../../relay/streams.js'

/** Runs `fn` and returns what it threw (undefined when it did not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------------------------

const AWS_EXAMPLE = '49590338271490256608559692538361571095921575989136588898'

t.test('a sequence number decodes back to the shard, counter and times it was made from', async (t) => {
  const cases: SequenceParts[] = [
    { shardCreatedSec: 1_700_000_000, shardIndex: 0, offset: 0, recordSec: 1_700_000_000 },
    { shardCreatedSec: 1_700_000_000, shardIndex: 3, offset: 42, recordSec: 1_700_000_123 },
    // an index above 15 (the low-nibble field only keeps 4 bits) and a counter beyond 32 bits
    { shardCreatedSec: 1_650_000_000, shardIndex: 1234, offset: 2 ** 40 + 7, recordSec: 1_760_000_000 },
    { shardCreatedSec: 1_700_000_000, shardIndex: 0xffff_ffff, offset: Number.MAX_SAFE_INTEGER, recordSec: 1_700_000_001 },
  ]
  for (const parts of cases) {
    const text = encodeSequence(parts)
    t.match(text, /^[1-9]\d*$/, `${JSON.stringify(parts)} is a decimal string without a leading zero`)
    t.equal(text.length, 56, 'it has the 56 digits AWS sequence numbers have')
    t.same(decodeSequence(text), parts, `${text} decodes to ${JSON.stringify(parts)}`)
  }
})

t.test('the fast sequence encoder agrees with the BigInt reference on random parts', async (t) => {
  let differences = 0
  const edges = [0, 1, 2 ** 26 - 1, 2 ** 26, 2 ** 32, 2 ** 36 - 1, 2 ** 52, Number.MAX_SAFE_INTEGER]
  for (let i = 0; i < 20_000; i++) {
    const pick = (max: number) => (i % 4 === 0 ? edges[Math.floor(Math.random() * edges.length)]! % (max + 1) : Math.floor(Math.random() * (max + 1)))
    const parts = { shardCreatedSec: pick(2 ** 36 - 1), shardIndex: pick(0xffff_ffff), offset: pick(Number.MAX_SAFE_INTEGER), recordSec: pick(2 ** 36 - 1) }
    if (encodeSequence(parts) !== encodeSequenceReference(parts)) differences++
  }
  t.equal(differences, 0, '20,000 random and edge-value parts, no difference')
})

t.test('sequence numbers written from limbs (writeSequence) equal the BigInt reference on random and edge parts', async (t) => {
  let differences = 0
  const edges = [0, 1, 9_999_999, 10_000_000, 2 ** 26, 2 ** 32, 2 ** 36 - 1, 2 ** 36, 2 ** 52, 10 ** 14 - 1, 10 ** 14, Number.MAX_SAFE_INTEGER]
  const out = new Uint8Array(SEQUENCE_DIGITS + 2)
  for (let i = 0; i < 20_000; i++) {
    const pick = (max: number) => (i % 3 === 0 ? Math.min(edges[Math.floor(Math.random() * edges.length)]!, max) : Math.floor(Math.random() * (max + 1)))
    const shard = { createdSec: pick(2 ** 36 - 1), meta: { index: pick(0xffff_ffff) } }
    const offset = pick(Number.MAX_SAFE_INTEGER)
    // Record time past 2^36 s too: the layout keeps it modulo 2^36, as encodeSequence does.
    const sec = pick(2 ** 37)
    const end = writeSequence(out, 1, sequenceBase(shard), offset, sec)
    const got = Buffer.from(out.subarray(1, end)).toString('latin1')
    const want = encodeSequenceReference({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset, recordSec: sec % 2 ** 36 })
    if (got !== want && differences++ < 3) t.fail(`shard ${JSON.stringify(shard)}, offset ${offset}, second ${sec}: ${got}, not ${want}`)
  }
  t.equal(differences, 0, '20,000 random and edge-value parts, no difference')
})

t.test('sequence numbers stepped digit by digit (SequenceDigits) equal sequenceOf over walks of offsets and record times', async (t) => {
  let differences = 0
  let checked = 0
  const out = new Uint8Array(64)
  for (let walk = 0; walk < 400; walk++) {
    const shard = { createdSec: Math.floor(Math.random() * 2 ** 36), meta: { index: Math.floor(Math.random() * 2 ** 32) } }
    const digits = new SequenceDigits(shard)
    // Near a digit carry, near 2^36 seconds, or anywhere.
    let offset = [0, 2 ** 32 - 3, Math.floor(Math.random() * 2 ** 52)][walk % 3]!
    let arrivalMs = [0, (2 ** 36 - 5) * 1000, Math.floor(Math.random() * 2 ** 36) * 1000 + 999][walk % 3]!
    for (let i = 0; i < 60; i++) {
      // Mostly the next offset a moment later; sometimes the same record again, a jump, or time going back.
      const step = Math.random()
      if (step < 0.7) { offset += 1; arrivalMs += Math.floor(Math.random() * 3000) }
      else if (step < 0.8) { /* the same record again */ }
      else if (step < 0.9) { offset += 1 + Math.floor(Math.random() * 5); arrivalMs += Math.floor(Math.random() * 30_000) }
      else { offset += 1; arrivalMs = Math.max(0, arrivalMs - Math.floor(Math.random() * 5000)) }
      const want = sequenceOf(shard, offset, arrivalMs)
      const end = digits.write(out, 0, offset, arrivalMs)
      const got = Buffer.from(out.subarray(0, end)).toString('latin1')
      checked++
      if (got !== want || got.length !== SEQUENCE_DIGITS) {
        if (differences++ < 3) t.fail(`shard ${JSON.stringify(shard)}, offset ${offset}, arrival ${arrivalMs}: ${got} (${got.length} digits), not ${want}`)
      }
    }
  }
  t.equal(differences, 0, `${checked} numbers over 400 walks, no difference`)
})

t.test("AWS's own sequence number from FIELD-NOTES decodes to shard 6, counter 1734642199, created 2018-11-21, written 2018-12-17", async (t) => {
  const parts = decodeSequence(AWS_EXAMPLE)
  if (!parts) return t.fail(`${AWS_EXAMPLE} was not recognised as a sequence number`)
  t.equal(parts.shardIndex, 6)
  t.equal(parts.offset, 1734642199)
  t.equal(new Date(parts.shardCreatedSec * 1000).toISOString().slice(0, 10), '2018-11-21')
  t.equal(new Date(parts.recordSec * 1000).toISOString().slice(0, 10), '2018-12-17')
  t.equal(encodeSequence(parts), AWS_EXAMPLE, 're-encoding its parts gives back the very same number')
})

t.test('sequence numbers strictly increase with the log offset, even when the clock steps back', async (t) => {
  const created = 1_700_000_000
  let previous = -1n
  let ok = true
  for (let offset = 0; offset < 2000; offset++) {
    // the record time wanders backwards and forwards; only the offset may decide the order
    const recordSec = created + 1000 - (offset % 7) * 100
    const value = BigInt(encodeSequence({ shardCreatedSec: created, shardIndex: 2, offset, recordSec }))
    if (value <= previous) {
      ok = false
      t.fail(`offset ${offset} gave ${value}, not above ${previous}`)
      break
    }
    previous = value
  }
  t.ok(ok, '2000 consecutive offsets give strictly increasing numbers')
  const far = [0, 1, 255, 256, 65_535, 2 ** 32, 2 ** 32 + 1, 2 ** 52].map((offset) =>
    BigInt(encodeSequence({ shardCreatedSec: created, shardIndex: 2, offset, recordSec: created + (offset % 3) })))
  t.ok(far.every((v, i) => i === 0 || v > far[i - 1]!), 'offsets far apart (byte and word boundaries) keep the order')
})

t.test('sequence numbers of different shards of one stream never collide', async (t) => {
  const seen = new Set<string>()
  for (let shardIndex = 0; shardIndex < 40; shardIndex++) {
    for (let offset = 0; offset < 50; offset++) seen.add(encodeSequence({ shardCreatedSec: 1_700_000_000, shardIndex, offset, recordSec: 1_700_000_000 }))
  }
  t.equal(seen.size, 40 * 50)
})

t.test('text that is not one of our sequence numbers decodes to null instead of a wrong position', async (t) => {
  const good = encodeSequence({ shardCreatedSec: 1_700_000_000, shardIndex: 1, offset: 5, recordSec: 1_700_000_000 })
  const hexOf = (s: string) => BigInt(s).toString(16)
  const fromHex = (h: string) => BigInt('0x' + h).toString(10)
  const h = hexOf(good)
  const bad: Record<string, string> = {
    'a short number': '12345',
    zero: '0',
    'letters': 'abc',
    'a negative number': '-' + good,
    'a number with a fraction': good + '.5',
    'an empty string': '',
    'a number with a space': ' ' + good,
    'the wrong leading marker': fromHex('3' + h.slice(1)),
    'the wrong trailing marker': fromHex(h.slice(0, 46) + '4'),
    'a non-zero separator': fromHex(h.slice(0, 27) + '01' + h.slice(29)),
    'one hex digit too many': fromHex(h + '2'),
    'a counter beyond 2^53': fromHex(h.slice(0, 11) + 'ffffffffffffffff' + h.slice(27)),
  }
  for (const [what, text] of Object.entries(bad)) t.equal(decodeSequence(text), null, `${what} (${text}) is refused`)
  t.not(decodeSequence(good), null, 'while a real one is accepted')
})

// ---------------------------------------------------------------------------------------------
// Shard iterators
// ---------------------------------------------------------------------------------------------

const KEY = Buffer.alloc(32, 7)
const CREATED = Date.UTC(2026, 2, 1, 12, 0, 0) // Sunday 1 March 2026, 12:00:00 UTC
const POSITION: IteratorPosition = { streamId: 'telemetry.0123456789ab', shardIndex: 3, offset: 12345, createdMs: CREATED }

t.test('an iterator decodes back to the stream, shard, offset and creation time it was made for', async (t) => {
  const codec = new IteratorCodec(KEY)
  const positions: IteratorPosition[] = [
    POSITION,
    { streamId: 'a', shardIndex: 0, offset: 0, createdMs: CREATED },
    { streamId: 'x'.repeat(128) + '.ffffffffffff', shardIndex: 4095, offset: 2 ** 50, createdMs: CREATED + 1 },
  ]
  for (const p of positions) {
    const token = codec.encode(p)
    t.match(token, /^[A-Za-z0-9+/]+={0,2}$/, 'the token is plain base64')
    t.ok(token.length <= 512, `the token fits GetRecords' 512-character limit (${token.length})`)
    t.same(codec.decode(token, CREATED + 1000), p, `${p.streamId}/${p.shardIndex}@${p.offset} round-trips`)
  }
  t.same(new IteratorCodec(Buffer.from(KEY)).decode(codec.encode(POSITION), CREATED), POSITION,
    'a codec built again from the same key (a restarted relay) accepts the iterator')
})

t.test('an iterator with any single byte changed is refused as "Invalid ShardIterator."', async (t) => {
  const codec = new IteratorCodec(KEY)
  const raw = Buffer.from(codec.encode(POSITION), 'base64')
  let refused = 0
  for (let i = 0; i < raw.length; i++) {
    const copy = Buffer.from(raw)
    copy[i] = copy[i]! ^ 0x01
    const err = thrown(() => codec.decode(copy.toString('base64'), CREATED))
    if (err instanceof KinesisError && err.type === 'InvalidArgumentException' && err.message === 'Invalid ShardIterator.') refused++
    else t.fail(`flipping a bit of byte ${i} was not refused: ${String(err)}`)
  }
  t.equal(refused, raw.length, `all ${raw.length} single-byte edits are refused`)
})

t.test('iterators that were truncated, extended, forged or made under another key are refused', async (t) => {
  const codec = new IteratorCodec(KEY)
  const token = codec.encode(POSITION)
  const raw = Buffer.from(token, 'base64')
  const cases: Record<string, string> = {
    'truncated by one byte': raw.subarray(0, raw.length - 1).toString('base64'),
    'with a byte appended': Buffer.concat([raw, Buffer.from([0])]).toString('base64'),
    'random bytes': randomBytes(raw.length).toString('base64'),
    'random bytes with our version byte': Buffer.concat([Buffer.from([1]), randomBytes(raw.length - 1)]).toString('base64'),
    'made under another key': new IteratorCodec(Buffer.alloc(32, 8)).encode(POSITION),
    'not base64 at all': '!!!!not-an-iterator!!!!',
    'base64url instead of base64': token.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
    'without its padding': token.replace(/=+$/, ''),
    'empty': '',
  }
  // a version of the token whose base64 text differs but whose bytes are the same (unused low bits of the last character)
  if (token.endsWith('=')) {
    const at = token.replace(/=+$/, '').length - 1
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const idx = alphabet.indexOf(token[at]!)
    cases['the same bytes written with other padding bits'] = token.slice(0, at) + alphabet[idx ^ 1] + token.slice(at + 1)
  }
  for (const [what, text] of Object.entries(cases)) {
    if (text === token) continue
    const err = thrown(() => codec.decode(text, CREATED))
    t.ok(err instanceof KinesisError && err.type === 'InvalidArgumentException' && err.message === 'Invalid ShardIterator.',
      `an iterator ${what} is refused (${String(err)})`)
  }
})

t.test('a token too short to be an iterator, or of another format version, is refused as invalid even when its MAC holds', async (t) => {
  const codec = new IteratorCodec(KEY)
  // Signed with the relay's own key, so only the length and version checks can refuse them.
  const signed = (body: Buffer) => Buffer.concat([body, createHmac('sha256', KEY).update(body).digest().subarray(0, 16)]).toString('base64')
  const body = Buffer.from(codec.encode(POSITION), 'base64').subarray(0, -16)
  const cases: Record<string, string> = {
    // Shorter than a MAC: a comparison of unequal lengths would throw a RangeError (an internal error, not a 400).
    'of nine bytes starting with the version byte': Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0]).toString('base64'),
    'of version 2': signed(Buffer.concat([Buffer.from([2]), body.subarray(1)])),
    'of version 0': signed(Buffer.concat([Buffer.from([0]), body.subarray(1)])),
    'naming no stream': codec.encode({ ...POSITION, streamId: '' }),
  }
  for (const [what, text] of Object.entries(cases)) {
    const err = thrown(() => codec.decode(text, CREATED))
    t.ok(err instanceof KinesisError && err.type === 'InvalidArgumentException' && err.message === 'Invalid ShardIterator.',
      `a token ${what} is refused (${String(err)})`)
  }
  t.same(codec.decode(signed(body), CREATED), POSITION, 'while the same body of version 1, signed the same way, is accepted')
})

t.test('an iterator lives exactly 300 s, then fails with ExpiredIteratorException in AWS wording', async (t) => {
  const codec = new IteratorCodec(KEY)
  const token = codec.encode(POSITION)
  t.same(codec.decode(token, CREATED + 299_999), POSITION, 'still good 1 ms before five minutes')
  t.same(codec.decode(token, CREATED + 300_000), POSITION, 'still good at exactly five minutes')
  const err = thrown(() => codec.decode(token, CREATED + 300_001))
  if (!(err instanceof KinesisError)) return t.fail(`expected a KinesisError, got ${String(err)}`)
  t.equal(err.type, 'ExpiredIteratorException')
  t.equal(err.status, 400)
  // AWS prints both instants the way java.util.Date#toString does, in UTC.
  t.equal(err.message,
    'Iterator expired. The iterator was created at time Sun Mar 01 12:00:00 UTC 2026 while right now it is ' +
    'Sun Mar 01 12:05:00 UTC 2026 which is further in the future than the tolerated delay of 300000 milliseconds.')
  const later = thrown(() => codec.decode(token, Date.UTC(2026, 2, 9, 3, 4, 5)))
  t.match((later as Error).message, /right now it is Mon Mar 09 03:04:05 UTC 2026 which/, 'single-digit days are zero-padded as Java does')
})

t.test('a tampered iterator is refused as invalid even when it has also expired', async (t) => {
  const codec = new IteratorCodec(KEY)
  const raw = Buffer.from(codec.encode(POSITION), 'base64')
  raw[9] = raw[9]! ^ 0xff // the offset
  const err = thrown(() => codec.decode(raw.toString('base64'), CREATED + 3_600_000))
  t.ok(err instanceof KinesisError && err.type === 'InvalidArgumentException', `refused as invalid, not expired (${String(err)})`)
})

// ---------------------------------------------------------------------------------------------
// Hash key ranges
// ---------------------------------------------------------------------------------------------

const MAX = HASH_SPACE - 1n
const md5Key = (key: string) => BigInt('0x' + createHash('md5').update(key, 'utf8').digest('hex'))

t.test('a 4-shard stream splits the hash key space at multiples of floor(2^128/4), the last shard ending at 2^128-1', async (t) => {
  const step = (1n << 128n) / 4n
  t.same(hashRanges(4), [
    [0n, step - 1n],
    [step, 2n * step - 1n],
    [2n * step, 3n * step - 1n],
    [3n * step, MAX],
  ])
  t.equal(MAX.toString(), '340282366920938463463374607431768211455')
})

t.test('a 3-shard stream gets the same ranges AWS gives (the last shard takes the remainder)', async (t) => {
  t.same(hashRanges(3).map(([a, b]) => [a.toString(), b.toString()]), [
    ['0', '113427455640312821154458202477256070484'],
    ['113427455640312821154458202477256070485', '226854911280625642308916404954512140969'],
    ['226854911280625642308916404954512140970', '340282366920938463463374607431768211455'],
  ])
})

t.test('for any shard count the ranges cover the whole key space without gaps or overlaps', async (t) => {
  for (const n of [1, 2, 3, 5, 7, 10, 64, 100, 1000]) {
    const ranges = hashRanges(n)
    const problems: string[] = []
    if (ranges.length !== n) problems.push(`${ranges.length} ranges`)
    if (ranges[0]![0] !== 0n) problems.push('does not start at 0')
    if (ranges[n - 1]![1] !== MAX) problems.push('does not end at 2^128-1')
    ranges.forEach(([a, b], i) => {
      if (a > b) problems.push(`range ${i} is empty`)
      if (i > 0 && a !== ranges[i - 1]![1] + 1n) problems.push(`range ${i} does not follow range ${i - 1}`)
    })
    t.same(problems, [], `${n} shards`)
  }
})

t.test('MD5("a") is 16955237001963240173058271559858726497 and routes to shard 0 of a 4-shard stream', async (t) => {
  const key = md5Key('a')
  t.equal(key.toString(), '16955237001963240173058271559858726497')
  const shard = hashRanges(4).findIndex(([a, b]) => key >= a && key <= b)
  t.equal(shard, 0)
  // and a key that belongs to the last shard, to show the lookup discriminates
  const high = ['b', 'c', 'd', 'e', 'f', 'g'].map(md5Key).find((k) => k >= 3n * (HASH_SPACE / 4n))
  if (high !== undefined) t.equal(hashRanges(4).findIndex(([a, b]) => high >= a && high <= b), 3)
})

// ---------------------------------------------------------------------------------------------
// Shard ids and error bodies (the wire-level rows are in test/relay/conformance/)
// ---------------------------------------------------------------------------------------------

t.test('a shard id is the decimal index after its first hyphen, or the whole id without one', async (t) => {
  const cases: [string, number | null][] = [
    ['shardId-000000000001', 1], ['shardId-1', 1], ['1', 1], ['abc-1', 1], ['-1', 1], ['0', 0], ['shardId-', null],
    ['shardId-2147483647', 2147483647], ['2147483648', null], ['shardId-002147483648', null], ['ABKLFD8', null],
    ['2.14E4', null], ['shardId-1-2', null], ['shardId-0x1', null], ['9'.repeat(400), null], ['', null],
  ]
  for (const [id, index] of cases) t.equal(shardIndexOf(id), index, JSON.stringify(id))
  t.equal(canonicalShardId('a-00002147483647'), 'shardId-002147483647')
  t.equal(canonicalShardId('nope'), null)
})

t.test('a SerializationException says Message, every other error message, and an empty message is left out', async (t) => {
  t.same(new KinesisError('SerializationException', 'Expected null').toJSON(), { __type: 'SerializationException', Message: 'Expected null' })
  t.same(new KinesisError('ResourceNotFoundException', 'gone').toJSON(), { __type: 'ResourceNotFoundException', message: 'gone' })
  t.same(new KinesisError('UnknownOperationException').toJSON(), { __type: 'UnknownOperationException' })
  t.equal(json.encodeError(new KinesisError('UnknownOperationException')).toString(), '{"__type":"UnknownOperationException"}')
  // AWS writes a CBOR error as an indefinite-length map (kinesalite's recorded bytes).
  t.equal(cbor.encodeError(new KinesisError('SerializationException')).toString('hex'), `bf66${Buffer.from('__type').toString('hex')}76${Buffer.from('SerializationException').toString('hex')}ff`)
})

t.test('the actions answered with an empty body are exactly the served ones whose output the service model says is Unit', async (t) => {
  // The operation schemas, as the SDK's CommonJS build exports them (ESM's named-export detection misses them).
  const model = createRequire(import.meta.url)('@aws-sdk/client-kinesis') as Record<string, unknown>
  const unit = Object.values(model)
    .filter((v): v is unknown[] => Array.isArray(v) && v[0] === 9)
    .filter((op) => { const out = typeof op[5] === 'function' ? (op[5] as () => unknown)() : op[5]; return out === 'unit' })
    .map((op) => op[2] as string)
    .filter((action) => Object.hasOwn(ACTIONS, action))
  t.same([...NO_OUTPUT].sort(), unit.sort())
})
