/**
 * The CBOR codec (relay/kinesis/cbor.ts) against an independent implementation (the `cbor` npm
 * package), RFC 8949's own examples, and malformed input; then the Kinesis API in
 * `application/x-amz-cbor-1.1` on the same cases as JSON, requests encoded and answers decoded by
 * the independent implementation.
 */
import t from 'tap'
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import ref from 'cbor'
import { CborError, Tagged, decodeCbor, encodeCbor } from '../../relay/kinesis/cbor.js'
import { manualClock, testRelay } from '../helpers/relay.js'

const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex')

/** The reference decoder's view of a value: its Tagged class mapped onto ours, for comparison. */
function normal(v: unknown): unknown {
  if (v instanceof ref.Tagged) return new Tagged(v.tag, normal(v.value))
  if (v instanceof Date) return new Tagged(1, v.getTime() / 1000)
  if (Buffer.isBuffer(v)) return v
  if (Array.isArray(v)) return v.map(normal)
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, normal(x)]))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]))
  return v
}

const refDecode = (b: Buffer) => normal(ref.decodeFirstSync(b, { tags: { 1: (x: unknown) => new ref.Tagged(1, x) } }))

const CASES: [string, unknown][] = [
  ['small integers', [0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, Number.MAX_SAFE_INTEGER]],
  ['negative integers', [-1, -24, -25, -256, -257, -65536, -65537, -4294967296, -4294967297, -Number.MAX_SAFE_INTEGER]],
  ['floats', [0.5, -1.25, 3.141592653589793, 1e300, -1e-300]],
  ['text', ['', 'a', 'streams', 'ünïcødé ✓', '日本語', 'x'.repeat(300), '😀']],
  ['bytes', [Buffer.alloc(0), Buffer.from([0, 1, 2, 255]), randomBytes(70_000)]],
  ['simple', [true, false, null]],
  ['a PutRecords request', {
    StreamName: 'cbor-stream',
    Records: [{ Data: Buffer.from('hello'), PartitionKey: 'k1' }, { Data: Buffer.from([0xff, 0x00]), PartitionKey: 'k2', ExplicitHashKey: '0' }],
  }],
  ['a timestamp (tag 1, integer ms)', { Timestamp: new Tagged(1, 1700000000123) }],
  ['nested', { a: [{ b: { c: [1, [2, [3, { d: 'e' }]]] } }] }],
]

t.test('our encoder and the reference decoder agree, and the reference encoder and our decoder agree', async (t) => {
  for (const [name, value] of CASES) {
    t.same(refDecode(encodeCbor(value)), value, `ours → reference: ${name}`)
    const theirs = ref.encodeCanonical(value instanceof Tagged ? new ref.Tagged(value.tag, value.value) : toRef(value))
    t.same(decodeCbor(theirs), value, `reference → ours: ${name}`)
  }
})

function toRef(v: unknown): unknown {
  if (v instanceof Tagged) return new ref.Tagged(v.tag, toRef(v.value))
  if (Buffer.isBuffer(v)) return v
  if (Array.isArray(v)) return v.map(toRef)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toRef(x)]))
  return v
}

t.test('integers get the shortest head, as RFC 8949 prefers', async (t) => {
  t.same(encodeCbor(0), hex('00'))
  t.same(encodeCbor(23), hex('17'))
  t.same(encodeCbor(24), hex('1818'))
  t.same(encodeCbor(1000), hex('1903e8'))
  t.same(encodeCbor(1000000), hex('1a000f4240'))
  t.same(encodeCbor(1000000000000), hex('1b000000e8d4a51000'))
  t.same(encodeCbor(-1000), hex('3903e7'))
  t.same(encodeCbor(new Tagged(1, 1363896240)), hex('c11a514b67b0'))
})

t.test('RFC 8949 Appendix A examples decode, indefinite lengths included', async (t) => {
  const examples: [string, unknown][] = [
    ['1bffffffffffffffff', 18446744073709551615n],
    ['3bffffffffffffffff', -18446744073709551616n],
    ['f93c00', 1],
    ['f97bff', 65504],
    ['f90001', 5.960464477539063e-8],
    ['f9c400', -4],
    ['f97c00', Infinity],
    ['fa47c35000', 100000],
    ['fb3ff199999999999a', 1.1],
    ['c074323031332d30332d32315432303a30343a30305a', new Tagged(0, '2013-03-21T20:04:00Z')],
    ['5f42010243030405ff', hex('0102030405')],
    ['7f657374726561646d696e67ff', 'streaming'],
    ['9fff', []],
    ['9f018202039f0405ffff', [1, [2, 3], [4, 5]]],
    ['83018202039f0405ff', [1, [2, 3], [4, 5]]],
    ['bf61610161629f0203ffff', { a: 1, b: [2, 3] }],
    ['bf6346756ef563416d7421ff', { Fun: true, Amt: -2 }],
    ['a26161016162820203', { a: 1, b: [2, 3] }],
    ['f7', undefined],
  ]
  for (const [bytes, value] of examples) t.same(decodeCbor(hex(bytes)), value, bytes)
})

t.test('malformed input is refused with a typed error naming the problem', async (t) => {
  const bad: [string, string][] = [
    ['', 'CBOR_TRUNCATED'],
    ['19 03', 'CBOR_TRUNCATED'],
    ['62 61', 'CBOR_TRUNCATED'],
    ['1c', 'CBOR_RESERVED_INFO'],
    ['fc', 'CBOR_RESERVED_INFO'],
    ['ff', 'CBOR_UNEXPECTED_BREAK'],
    ['1f', 'CBOR_BAD_INDEFINITE'],
    ['df 00', 'CBOR_BAD_INDEFINITE'],
    ['5f 61 61 ff', 'CBOR_BAD_INDEFINITE'],
    ['7f 7f ff ff', 'CBOR_BAD_INDEFINITE'],
    ['62 c3 28', 'CBOR_BAD_UTF8'],
    ['7f 61 c3 61 a9 ff', 'CBOR_BAD_UTF8'],
    ['a1 01 02', 'CBOR_BAD_MAP_KEY'],
    ['a2 61 61 01 61 61 02', 'CBOR_DUPLICATE_KEY'],
    ['00 00', 'CBOR_TRAILING_BYTES'],
    ['f8 20', 'CBOR_UNSUPPORTED'],
    ['9f 01', 'CBOR_TRUNCATED'],
    // A string that claims 4 GiB in a 9-byte input: refused before anything is allocated.
    ['5b 00 00 00 01 00 00 00 00', 'CBOR_TRUNCATED'],
    ['9b 00 00 00 00 ff ff ff ff', 'CBOR_TRUNCATED'],
    ['81'.repeat(200) + '00', 'CBOR_TOO_DEEP'],
  ]
  for (const [bytes, code] of bad) {
    t.throws(() => decodeCbor(hex(bytes)), { name: 'CborError', code }, `${bytes.slice(0, 24)} → ${code}`)
  }
  const e = t.throws(() => decodeCbor(hex('a2 61 61 01 61 61 02'))) as CborError
  t.match(e.message, /duplicate map key "a" \(at byte 4\)/)
})

t.test('decoding is total: every prefix and random damage of a valid message decodes or throws CborError', async (t) => {
  const good = encodeCbor(CASES.find(([n]) => n === 'a PutRecords request')![1])
  let refused = 0
  for (let i = 0; i < good.length; i++) {
    try { decodeCbor(good.subarray(0, i)) } catch (err) { t.ok(err instanceof CborError); refused++ }
  }
  t.equal(refused, good.length, 'every strict prefix is refused')
  for (let round = 0; round < 3000; round++) {
    const damaged = Buffer.from(good)
    for (let k = 0; k < 3; k++) damaged[Math.floor(Math.random() * damaged.length)] = Math.floor(Math.random() * 256)
    try { decodeCbor(damaged) } catch (err) { if (!(err instanceof CborError)) t.fail(`not a CborError: ${err}`) }
    try { decodeCbor(randomBytes(1 + (round % 64))) } catch (err) { if (!(err instanceof CborError)) t.fail(`not a CborError: ${err}`) }
  }
})

// ---- the API in CBOR ----

interface Answer { status: number; type: string; body: unknown; raw: Buffer }

function call(port: number, action: string, body: Buffer, contentType = 'application/x-amz-cbor-1.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': contentType, 'x-amz-target': `Kinesis_20131202.${action}`, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const raw = Buffer.concat(chunks)
        const type = String(res.headers['content-type'])
        resolve({ status: res.statusCode!, type, raw, body: type.includes('cbor') ? (raw.length ? refDecode(raw) : undefined) : JSON.parse(raw.toString() || 'null') })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const cbor = (port: number, action: string, value: unknown) => call(port, action, ref.encode(toRef(value)))
const json = (port: number, action: string, value: unknown) => call(port, action, Buffer.from(JSON.stringify(value)), 'application/x-amz-json-1.1')

t.test('the Kinesis API in CBOR: Data as byte strings, timestamps as tag 1 integer milliseconds, the same answers as JSON', async (t) => {
  // The relay's clock is the test's, so every timestamp it reports is known to the millisecond.
  const clock = manualClock(1_800_000_000_123)
  const relay = await testRelay(t, {}, { clock })
  const port = relay.httpPort
  const created = await cbor(port, 'CreateStream', { StreamName: 'cbor-s', ShardCount: 1 })
  const createdMs = clock.now()
  t.equal(created.status, 200)
  t.equal(created.type, 'application/x-amz-cbor-1.1')
  clock.advance(5_000)
  const before = clock.now()
  const payload = Buffer.from([0, 1, 2, 0xfe, 0xff])
  const put = await cbor(port, 'PutRecord', { StreamName: 'cbor-s', PartitionKey: 'k', Data: payload })
  t.equal(put.status, 200)
  t.match(put.body, { ShardId: 'shardId-000000000000', SequenceNumber: /^\d{56}$/ })
  // AWS leaves EncryptionType out of a put to a stream without encryption (kinesalite's test/putRecord.js).
  t.notOk('EncryptionType' in (put.body as object), 'no EncryptionType on a stream without encryption')
  const many = await cbor(port, 'PutRecords', { StreamName: 'cbor-s', Records: [{ PartitionKey: 'a', Data: Buffer.from('one') }, { PartitionKey: 'b', Data: Buffer.from('two') }] })
  t.match(many.body, { FailedRecordCount: 0, Records: [{ SequenceNumber: /^\d{56}$/ }, { SequenceNumber: /^\d{56}$/ }] })

  const summary = (await cbor(port, 'DescribeStreamSummary', { StreamName: 'cbor-s' })).body as { StreamDescriptionSummary: { StreamCreationTimestamp: Tagged } }
  const createdAt = summary.StreamDescriptionSummary.StreamCreationTimestamp
  t.ok(createdAt instanceof Tagged && createdAt.tag === 1 && Number.isInteger(createdAt.value), 'StreamCreationTimestamp is tag 1 with an integer')
  t.equal(createdAt.value, Math.floor(createdMs / 1000) * 1000, 'in milliseconds, of the whole second AWS reports (kinesalite actions/createStream.js)')

  // AT_TIMESTAMP with a tag-1 millisecond timestamp.
  const it = await cbor(port, 'GetShardIterator', { StreamName: 'cbor-s', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Tagged(1, before - 1000) })
  t.equal(it.status, 200, JSON.stringify(it.body))
  const records = await cbor(port, 'GetRecords', { ShardIterator: (it.body as { ShardIterator: string }).ShardIterator })
  const got = (records.body as { Records: { Data: Buffer; PartitionKey: string; ApproximateArrivalTimestamp: Tagged }[] }).Records
  t.equal(got.length, 3)
  t.ok(Buffer.isBuffer(got[0]!.Data), 'Data is a byte string')
  t.same(got[0]!.Data, payload)
  t.same(got.slice(1).map((r) => r.Data.toString()), ['one', 'two'])
  const arrival = got[0]!.ApproximateArrivalTimestamp
  t.ok(arrival instanceof Tagged && arrival.tag === 1 && Number.isInteger(arrival.value), 'ApproximateArrivalTimestamp is tag 1, integer ms')
  t.equal(arrival.value, before, 'the time the record arrived, to the millisecond')

  // The same reads in JSON see the same records: one store, two encodings.
  const jsonIt = await json(port, 'GetShardIterator', { StreamName: 'cbor-s', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' })
  const jsonRecords = await json(port, 'GetRecords', { ShardIterator: (jsonIt.body as { ShardIterator: string }).ShardIterator })
  const jr = (jsonRecords.body as { Records: { Data: string; ApproximateArrivalTimestamp: number; SequenceNumber: string }[] }).Records
  t.same(jr.map((r) => Buffer.from(r.Data, 'base64')), got.map((r) => r.Data))
  t.equal(Math.round(jr[0]!.ApproximateArrivalTimestamp * 1000), arrival.value)

  // Indefinite-length maps and strings, as some encoders stream them.
  const indefinite = Buffer.concat([
    hex('bf'), ref.encode('StreamName'), hex('7f'), ref.encode('cbor'), ref.encode('-s'), hex('ff'),
    ref.encode('PartitionKey'), ref.encode('k'), ref.encode('Data'), hex('5f'), ref.encode(Buffer.from('ab')), ref.encode(Buffer.from('c')), hex('ff'), hex('ff'),
  ])
  const streamed = await call(port, 'PutRecord', indefinite)
  t.equal(streamed.status, 200, 'indefinite lengths are accepted')
})

t.test('errors come back in CBOR with __type and message (Message in a SerializationException, none in an UnknownOperationException, as AWS), worded as in JSON', async (t) => {
  const relay = await testRelay(t)
  const port = relay.httpPort
  const cases: [string, unknown, string][] = [
    ['DescribeStream', { StreamName: 'missing' }, 'ResourceNotFoundException'],
    ['CreateStream', { StreamName: 'bad name!', ShardCount: 0 }, 'ValidationException'],
    ['PutRecord', { StreamName: 'missing', PartitionKey: '', Data: Buffer.alloc(0) }, 'ValidationException'],
    ['GetRecords', { ShardIterator: 'bogus' }, 'InvalidArgumentException'],
    ['CreateStream', { StreamName: 5 }, 'SerializationException'],
    ['NoSuchAction', {}, 'UnknownOperationException'],
  ]
  for (const [action, body, type] of cases) {
    const a = await cbor(port, action, body)
    const jsonBody = Object.fromEntries(Object.entries(body as object).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('base64') : v]))
    const b = await json(port, action, jsonBody)
    t.equal(a.type, 'application/x-amz-cbor-1.1', `${action}: CBOR answer`)
    t.equal(a.status, b.status, `${action}: same status`)
    if (type === 'UnknownOperationException') {
      t.same(a.body, { __type: type }, `${action}: ${type}, no message`)
      t.same(b.body, a.body, `${action}: as in JSON`)
      continue
    }
    const key = type === 'SerializationException' ? 'Message' : 'message'
    t.match(a.body, { __type: type, [key]: String }, `${action}: ${type}`)
    t.equal((a.body as Record<string, string>)[key], (b.body as Record<string, string>)[key], `${action}: same message as JSON`)
  }
  const garbage = await call(port, 'ListStreams', hex('a2 61 61 01 61 61 02'))
  t.equal(garbage.status, 400)
  t.match(garbage.body, { __type: 'SerializationException', Message: /not valid CBOR: duplicate map key "a"/ })
  const notAMap = await call(port, 'ListStreams', hex('83 01 02 03'))
  t.match(notAMap.body, { __type: 'SerializationException' })
  const truncated = await call(port, 'ListStreams', hex('bf 61 61'))
  t.match(truncated.body, { __type: 'SerializationException', Message: /CBOR/ })
})
