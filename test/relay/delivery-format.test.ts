/**
 * Objects a delivery stream writes: raw records with or without newlines, CSV quoted as RFC 4180
 * says, Parquet that an independent reader (hyparquet) reads back as the same rows and types, gzip
 * that gunzips to the exact bytes, and Snappy's framing format checked by a decoder written here
 * from the spec (framing and block format, with its own CRC-32C).
 */
import t from 'tap'
import { gunzipSync } from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { checkFormat, encodeObject, encodeObjectAsync, RecordErrorCode } from '../../relay/delivery/format/index.js'
import { DeliveryConfigError } from '../../relay/delivery/types.js'
import type { Column, OutputRecord, Processing } from '../../relay/delivery/types.js'

function record(data: string | Buffer, i = 0): OutputRecord {
  return { shardId: 'shardId-000000000000', sequenceNumber: String(1000 + i), partitionKey: 'pk', arrivalMs: 1_700_000_000_000, data: Buffer.from(data), partitionKeys: {} }
}
const records = (...data: string[]) => data.map(record)

function processing(p: Partial<Processing>): Processing {
  return { format: { type: 'raw' }, newlineDelimiter: false, compression: 'UNCOMPRESSED', ...p }
}

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer
}

// ---- An independent Snappy framing decoder, from the spec (framing_format.txt, format_description.txt). ----

const CRC32C_POLY = 0x82f63b78 // reflected Castagnoli
function crc32cBitwise(buf: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of buf) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ CRC32C_POLY : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}
function masked(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0
}

function snappyBlockDecode(src: Buffer): Buffer {
  let at = 0
  let length = 0
  for (let shift = 0; ; shift += 7) {
    const b = src[at++]!
    length |= (b & 0x7f) << shift
    if (b < 0x80) break
  }
  const out = Buffer.alloc(length)
  let o = 0
  while (at < src.length) {
    const tag = src[at++]!
    const kind = tag & 3
    if (kind === 0) {
      let len = tag >>> 2
      if (len >= 60) {
        const bytes = len - 59
        len = src.readUIntLE(at, bytes)
        at += bytes
      }
      len += 1
      src.copy(out, o, at, at + len)
      at += len
      o += len
      continue
    }
    let len: number
    let offset: number
    if (kind === 1) {
      len = ((tag >>> 2) & 7) + 4
      offset = ((tag >>> 5) << 8) | src[at++]!
    } else if (kind === 2) {
      len = (tag >>> 2) + 1
      offset = src.readUInt16LE(at)
      at += 2
    } else {
      len = (tag >>> 2) + 1
      offset = src.readUInt32LE(at)
      at += 4
    }
    if (offset === 0 || offset > o) throw new Error(`bad copy offset ${offset} at output ${o}`)
    for (let k = 0; k < len; k++, o++) out[o] = out[o - offset]!
  }
  if (o !== length) throw new Error(`block decoded to ${o} bytes, its header says ${length}`)
  return out
}

function snappyFramedDecode(buf: Buffer): { data: Buffer; chunks: number[]; types: number[] } {
  const parts: Buffer[] = []
  const chunks: number[] = []
  const types: number[] = []
  let at = 0
  let sawIdentifier = false
  while (at < buf.length) {
    const type = buf[at]!
    const len = buf.readUIntLE(at + 1, 3)
    const body = buf.subarray(at + 4, at + 4 + len)
    if (body.length !== len) throw new Error('truncated chunk')
    at += 4 + len
    if (type === 0xff) {
      if (body.toString('latin1') !== 'sNaPpY') throw new Error('bad stream identifier')
      sawIdentifier = true
      continue
    }
    if (!sawIdentifier) throw new Error('a chunk before the stream identifier')
    if (type !== 0x00 && type !== 0x01) throw new Error(`unexpected chunk type ${type}`)
    const crc = body.readUInt32LE(0)
    const data = type === 0x00 ? snappyBlockDecode(body.subarray(4)) : Buffer.from(body.subarray(4))
    if (data.length > 65_536) throw new Error(`a chunk of ${data.length} uncompressed bytes (limit 65536)`)
    if (masked(crc32cBitwise(data)) !== crc) throw new Error('chunk CRC mismatch')
    parts.push(data)
    chunks.push(data.length)
    types.push(type)
  }
  return { data: Buffer.concat(parts), chunks, types }
}

// ---- Raw ----

t.test('raw records are concatenated as they are, with a newline after each when asked', async (t) => {
  const rs = records('{"a":1}', 'not json', '')
  const plain = encodeObject(rs, processing({}))
  t.equal(plain.body.toString(), '{"a":1}not json')
  t.equal(plain.extension, '')
  t.equal(plain.contentType, 'application/octet-stream')
  t.same(plain.failed, [])
  const lines = encodeObject(rs, processing({ newlineDelimiter: true }))
  t.equal(lines.body.toString(), '{"a":1}\nnot json\n\n')
})

t.test('a gzip object gunzips to the exact bytes of the records', async (t) => {
  const rs = Array.from({ length: 500 }, (_, i) => record(`{"i":${i},"s":"${'x'.repeat(i % 50)}"}`, i))
  rs.push(record(Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x80])))
  const expected = Buffer.concat(rs.flatMap((r) => [r.data, Buffer.from('\n')]))
  const obj = encodeObject(rs, processing({ newlineDelimiter: true, compression: 'GZIP' }))
  t.equal(obj.extension, '.gz')
  t.equal(obj.contentType, 'application/gzip')
  t.ok(gunzipSync(obj.body).equals(expected))
  const viaAsync = await encodeObjectAsync(rs, processing({ newlineDelimiter: true, compression: 'GZIP' }))
  t.ok(gunzipSync(viaAsync.body).equals(expected), 'the async encoder gives the same bytes once gunzipped')
})

// ---- Snappy framing ----

t.test('a Snappy object is in the framing format: stream identifier, then CRC-checked chunks of at most 64 KiB', async (t) => {
  // Compressible text and incompressible bytes, over several chunks, so both chunk types appear.
  const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => `{"reading":${i % 17},"device":"sensor-${i % 5}"}`).join(''))
  const noise = randomBytes(70_000)
  const obj = encodeObject([record(text), record(noise)], processing({ compression: 'Snappy' }))
  t.equal(obj.extension, '.snappy')
  t.equal(obj.contentType, 'application/x-snappy-framed')
  t.same([...obj.body.subarray(0, 10)], [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59], 'begins with the stream identifier')
  const decoded = snappyFramedDecode(obj.body)
  t.ok(decoded.data.equals(Buffer.concat([text, noise])), 'decodes to the exact bytes')
  t.ok(decoded.chunks.length >= 3, `split into chunks (${decoded.chunks.join(', ')})`)
  t.ok(decoded.chunks.slice(0, -1).every((n) => n === 65_536), 'every chunk but the last holds 64 KiB')
  t.ok(decoded.types.includes(0x00) && decoded.types.includes(0x01), `compressed chunks for text, uncompressed ones for noise (${decoded.types.join(', ')})`)
  t.ok(obj.body.length < text.length + noise.length + 100, 'compresses the text')

  const empty = encodeObject([], processing({ compression: 'Snappy' }))
  t.same([...empty.body], [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59], 'an empty object is the identifier alone')
})

t.test('a damaged Snappy chunk fails the decoder here (the check above can fail)', async (t) => {
  const obj = encodeObject(records('{"a":"hello hello hello hello"}'), processing({ compression: 'Snappy' }))
  const damaged = Buffer.from(obj.body)
  damaged[damaged.length - 1]! ^= 0x01
  t.throws(() => snappyFramedDecode(damaged))
})

// ---- CSV ----

t.test('CSV has one line per record with the configured columns, quoted as RFC 4180 says', async (t) => {
  const columns: Column[] = [{ name: 'id' }, { name: 'text' }, { name: 'city', path: 'where.city' }, { name: 'tags' }, { name: 'ok' }]
  const rs = records(
    '{"id":1,"text":"plain","where":{"city":"Lyon"},"tags":["a","b"],"ok":true}',
    '{"id":2,"text":"comma, here","where":{"city":"say \\"hi\\""},"ok":false}',
    '{"id":3,"text":"line\\nbreak","where":"not an object","tags":null}',
    '{"id":4,"text":"cr\\rhere"}',
  )
  const obj = encodeObject(rs, processing({ format: { type: 'csv', columns, header: true } }))
  t.equal(obj.contentType, 'text/csv')
  t.equal(obj.extension, '')
  t.equal(obj.body.toString(), [
    'id,text,city,tags,ok',
    '1,plain,Lyon,"[""a"",""b""]",true',
    '2,"comma, here","say ""hi""",,false',
    '3,"line\nbreak",,,',
    '4,"cr\rhere",,,',
    '',
  ].join('\n'))
  const noHeader = encodeObject(rs.slice(0, 1), processing({ format: { type: 'csv', columns, header: false }, compression: 'GZIP' }))
  t.equal(noHeader.extension, '.gz')
  t.equal(gunzipSync(noHeader.body).toString(), '1,plain,Lyon,"[""a"",""b""]",true\n')
})

t.test('a record that is not a JSON object is left out of a CSV object and reported as MalformedData', async (t) => {
  const rs = records('{"id":1}', 'not json', '[1,2]', '"a string"', '{"id":5}')
  const obj = encodeObject(rs, processing({ format: { type: 'csv', columns: [{ name: 'id' }], header: false } }))
  t.equal(obj.body.toString(), '1\n5\n')
  t.same(obj.failed.map((f) => [f.record.sequenceNumber, f.code]), [
    ['1001', 'DataFormatConversion.MalformedData'], ['1002', 'DataFormatConversion.MalformedData'], ['1003', 'DataFormatConversion.MalformedData'],
  ])
  t.match(obj.failed[1]!.message, /not an object \(an array\)/)
})

// ---- Parquet ----

const COLUMNS: Column[] = [
  { name: 'device' },
  { name: 'seq', type: 'int32' },
  { name: 'big', type: 'int64' },
  { name: 'temp', type: 'double' },
  { name: 'on', type: 'boolean' },
  { name: 'at', type: 'timestamp-millis' },
  { name: 'meta', type: 'json' },
  { name: 'room', path: 'place.room' },
]

for (const compression of ['UNCOMPRESSED', 'SNAPPY', 'GZIP'] as const) {
  t.test(`a Parquet file (${compression} inside) reads back with hyparquet as the same rows and types`, async (t) => {
    const rs = records(
      '{"device":"d1","seq":1,"big":9007199254740991,"temp":21.5,"on":true,"at":1700000000123,"meta":{"fw":"1.2","ch":[1,2]},"place":{"room":"lab"}}',
      '{"device":"d2","seq":-2147483648,"big":"-9223372036854775808","temp":-3,"on":false,"at":"2024-03-04T05:06:07.089Z","meta":"text"}',
      '{"device":"d3"}',
      '{"device":42,"seq":"7","temp":"1e3","meta":null,"place":{"room":null}}',
    )
    const obj = encodeObject(rs, processing({ format: { type: 'parquet', columns: COLUMNS, compression } }))
    t.equal(obj.extension, '.parquet')
    t.equal(obj.contentType, 'application/vnd.apache.parquet')
    t.same(obj.failed, [])
    const file = arrayBuffer(obj.body)
    const meta = parquetMetadata(file)
    t.equal(Number(meta.num_rows), 4)
    t.same(meta.schema.slice(1).map((s) => [s.name, s.type, s.converted_type ?? null, s.repetition_type]), [
      ['device', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
      ['seq', 'INT32', null, 'OPTIONAL'],
      ['big', 'INT64', null, 'OPTIONAL'],
      ['temp', 'DOUBLE', null, 'OPTIONAL'],
      ['on', 'BOOLEAN', null, 'OPTIONAL'],
      ['at', 'INT64', 'TIMESTAMP_MILLIS', 'OPTIONAL'],
      ['meta', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
      ['room', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
    ])
    t.same(meta.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data?.codec)), COLUMNS.map(() => compression), `every column chunk is ${compression}`)
    const rows = await parquetReadObjects({ file, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) } })
    t.same(rows, [
      { device: 'd1', seq: 1, big: 9007199254740991n, temp: 21.5, on: true, at: new Date(1700000000123), meta: '{"fw":"1.2","ch":[1,2]}', room: 'lab' },
      { device: 'd2', seq: -2147483648, big: -9223372036854775808n, temp: -3, on: false, at: new Date('2024-03-04T05:06:07.089Z'), meta: '"text"', room: null },
      { device: 'd3', seq: null, big: null, temp: null, on: null, at: null, meta: null, room: null },
      { device: '42', seq: 7, big: null, temp: 1000, on: null, at: null, meta: null, room: null },
    ])
    t.type(rows[0]!['big'], 'bigint')
    t.type(rows[0]!['at'], Date)
  })
}

t.test('a Parquet row whose value does not fit its column is left out, named, and the other rows kept', async (t) => {
  const rs = records(
    '{"device":"ok","seq":1}',
    '{"device":"big","seq":2147483648}',
    '{"device":"frac","seq":1.5}',
    '{"device":{"nested":1}}',
    '{"device":"bool","on":"yes"}',
    '{"device":"time","at":"not a date"}',
    '{"device":"int64","big":1e300}',
    'garbage',
    '{"device":"last","seq":3}',
  )
  const obj = encodeObject(rs, processing({ format: { type: 'parquet', columns: COLUMNS, compression: 'SNAPPY' } }))
  const rows = await parquetReadObjects({ file: arrayBuffer(obj.body), columns: ['device', 'seq'] })
  t.same(rows, [{ device: 'ok', seq: 1 }, { device: 'last', seq: 3 }])
  t.same(obj.failed.map((f) => f.record.sequenceNumber), ['1001', '1002', '1003', '1004', '1005', '1006', '1007'])
  t.ok(obj.failed.every((f) => f.code === RecordErrorCode.malformedData))
  t.match(obj.failed[0]!.message, /column seq \(int32\) cannot hold 2147483648/)
  t.match(obj.failed[2]!.message, /column device \(string\) cannot hold \{"nested":1\}/)
  t.match(obj.failed[6]!.message, /not JSON/)
})

t.test('a Parquet object of only failed records is still a valid file of no rows', async (t) => {
  const obj = encodeObject(records('nope'), processing({ format: { type: 'parquet', columns: COLUMNS, compression: 'SNAPPY' } }))
  t.equal(obj.failed.length, 1)
  t.equal(Number(parquetMetadata(arrayBuffer(obj.body)).num_rows), 0)
})

function refusedField(fn: () => void): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof DeliveryConfigError ? err.field : `not a DeliveryConfigError: ${String(err)}`
  }
  return undefined
}

t.test('settings encodeObject cannot honour are refused, naming the field', async (t) => {
  const parquet = { type: 'parquet' as const, columns: COLUMNS, compression: 'SNAPPY' as const }
  t.throws(() => checkFormat(processing({ format: parquet, compression: 'GZIP' })), new DeliveryConfigError('processing.compression', "Parquet compresses inside the file (format.compression); the object's compression must be UNCOMPRESSED, not GZIP"))
  t.equal(refusedField(() => checkFormat(processing({ format: { type: 'csv', columns: [], header: true } }))), 'processing.format.columns')
  t.equal(refusedField(() => checkFormat(processing({ format: { type: 'csv', columns: [{ name: 'a' }, { name: 'a' }], header: true } }))), 'processing.format.columns[1].name')
  t.equal(refusedField(() => checkFormat(processing({ format: { ...parquet, columns: [{ name: 'a', type: 'float' as never }] } }))), 'processing.format.columns[0].type')
  t.equal(refusedField(() => checkFormat(processing({ format: { ...parquet, columns: [{ name: 'a', path: 'b..c' }] } }))), 'processing.format.columns[0].path')
  t.doesNotThrow(() => checkFormat(processing({ format: parquet })))
  t.doesNotThrow(() => checkFormat(processing({ compression: 'Snappy', newlineDelimiter: true })))
})

t.test('a column or path named after an Object.prototype member reads the record\'s own field, or nothing', async (t) => {
  const columns: Column[] = [{ name: 'constructor' }, { name: 'toString' }, { name: '__proto__' }, { name: 'deep', path: 'a.hasOwnProperty' }, { name: 'own', path: 'b.constructor' }]
  const csv = encodeObject(records('{"a":{}}', '{"constructor":"c","toString":"s","__proto__":"p","b":{"constructor":"bc"}}'), processing({ format: { type: 'csv', columns, header: false } }))
  t.equal(csv.body.toString(), ',,,,\nc,s,p,,bc\n', 'missing own fields are empty, present ones are theirs')
  // Before, a string column named constructor failed every record (a function is not a string).
  const obj = encodeObject(records('{"a":{}}', '{"constructor":"c","b":{"constructor":"bc"}}'), processing({ format: { type: 'parquet', columns, compression: 'SNAPPY' } }))
  t.same(obj.failed, [])
  // A row object with a __proto__ key is not one a reader builds plainly: the other columns are read.
  t.same(await parquetReadObjects({ file: arrayBuffer(obj.body), columns: ['constructor', 'toString', 'deep', 'own'] }), [
    { constructor: null, toString: null, deep: null, own: null },
    { constructor: 'c', toString: null, deep: null, own: 'bc' },
  ])
})
