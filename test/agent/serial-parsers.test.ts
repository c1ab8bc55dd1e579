import t, { type Test } from 'tap'
import { createParser, FramingError, type ParserConfig, type Reading } from '../../agent/sources/parsers/index.js'

/** Feeds `input` in the given chunking and collects readings and errors. */
function run(config: ParserConfig, input: Buffer, chunk = Infinity) {
  const readings: Reading[] = []
  const errors: { code: string; detail: string }[] = []
  const p = createParser(config, { reading: (r) => readings.push(r), error: (code, detail) => errors.push({ code, detail }) })
  for (let i = 0; i < input.length; i += chunk === Infinity ? input.length : chunk) p.push(input.subarray(i, chunk === Infinity ? input.length : i + chunk))
  return { readings, errors, parser: p }
}

/** The same result whether the bytes come at once, one at a time, or in odd chunks. */
function sameAnyChunking(t: Test, config: ParserConfig, input: Buffer) {
  const whole = run(config, input)
  for (const chunk of [1, 2, 3, 7, 64]) {
    const r = run(config, input, chunk)
    t.same(r.readings.map((x) => x.data.toString('hex')), whole.readings.map((x) => x.data.toString('hex')), `readings with ${chunk}-byte chunks`)
    t.same(r.errors.map((e) => e.code), whole.errors.map((e) => e.code), `errors with ${chunk}-byte chunks`)
  }
  return whole
}

const nmea = (body: string) => {
  let sum = 0
  for (const c of body) sum ^= c.charCodeAt(0)
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`
}

t.test('NMEA sentences are checked against their checksum; bad ones are counted, never passed on', async (t) => {
  const good1 = nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')
  const good2 = nmea('GNRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W')
  const prop = nmea('PUBX,00,081350.00')
  const input = Buffer.from([good1, good1.replace(/\*..$/, '*00'), 'GPGGA,no dollar', good2, nmea('GPGSV,1') .slice(0, -3), prop, '\x00\xff\x13garbage', ''].join('\r\n') + '\r\n', 'latin1')
  const { readings, errors } = sameAnyChunking(t, { type: 'nmea', maxLineBytes: 200, requireChecksum: true }, input)
  t.same(readings.map((r) => r.data.toString()), [good1, good2, prop])
  t.same(readings.map((r) => [r.fields!.talker, r.fields!.sentence]), [['GP', 'GGA'], ['GN', 'RMC'], ['P', 'UBX']])
  t.same(errors.map((e) => e.code), [FramingError.BAD_CHECKSUM, FramingError.MALFORMED, FramingError.BAD_CHECKSUM, FramingError.MALFORMED])
  t.match(errors[0]!.detail, /checksum 00 does not match/)
  const lax = run({ type: 'nmea', maxLineBytes: 200, requireChecksum: false }, Buffer.from('$GPGSV,1,1,00\n'))
  t.equal(lax.readings.length, 1, 'a sentence without checksum passes when checksums are optional')
})

t.test('JSON lines: each line is one record as sent; invalid JSON and bad UTF-8 are counted', async (t) => {
  const input = Buffer.concat([Buffer.from('{"id":"a","v":1}\n[1,2]\n{"id":\n'), Buffer.from([0xc3, 0x28, 0x0a]), Buffer.from('{"id":"b","v":2}\r\n')])
  const { readings, errors } = sameAnyChunking(t, { type: 'json', maxLineBytes: 100 }, input)
  t.same(readings.map((r) => r.data.toString()), ['{"id":"a","v":1}', '[1,2]', '{"id":"b","v":2}'])
  t.same(readings[0]!.fields, { id: 'a', v: 1 })
  t.equal(readings[1]!.fields, null, 'a non-object has no fields to take a key from')
  t.same(errors.map((e) => e.code), [FramingError.MALFORMED, FramingError.BAD_ENCODING])
})

t.test('CSV with a header line or named columns becomes JSON objects; quoted fields; wrong column counts are counted', async (t) => {
  const input = Buffer.from('sensor,temp,note\ns1,21.5,"a, ""quoted"" note"\ns2,22\ns3,-1e3,plain\ns4,"open\n')
  const { readings, errors } = sameAnyChunking(t, { type: 'csv', maxLineBytes: 100, columns: null, separator: ',' }, input)
  t.same(readings.map((r) => JSON.parse(r.data.toString())), [{ sensor: 's1', temp: 21.5, note: 'a, "quoted" note' }, { sensor: 's3', temp: -1000, note: 'plain' }])
  t.same(errors.map((e) => e.code), [FramingError.MALFORMED, FramingError.MALFORMED])
  const named = run({ type: 'csv', maxLineBytes: 100, columns: ['a', 'b'], separator: ';' }, Buffer.from('1;x\n'))
  t.same(named.readings[0]!.fields, { a: 1, b: 'x' })
})

t.test('a CSV header is read again after the link is reset', async (t) => {
  const { readings, parser } = run({ type: 'csv', maxLineBytes: 100, columns: null, separator: ',' }, Buffer.from('a,b\n1,2\n'))
  parser.reset()
  parser.push(Buffer.from('c,d\n3,4\n'))
  t.same(readings.map((r) => r.fields), [{ a: 1, b: 2 }, { c: 3, d: 4 }])
})

t.test('key=value lines become JSON objects; tokens without = are counted', async (t) => {
  const { readings, errors } = sameAnyChunking(t, { type: 'kv', maxLineBytes: 100 }, Buffer.from('id=s1 temp=21.5 ok=yes\nid=s2,temp=3;hum=40\nid=s3 junk\n'))
  t.same(readings.map((r) => r.fields), [{ id: 's1', temp: 21.5, ok: 'yes' }, { id: 's2', temp: 3, hum: 40 }])
  t.same(errors.map((e) => e.code), [FramingError.MALFORMED])
})

t.test('an over-long line is cut and counted once, and the next line is read normally', async (t) => {
  const long = 'x'.repeat(5000)
  const { readings, errors } = sameAnyChunking(t, { type: 'lines', maxLineBytes: 100 }, Buffer.from(`before\n${long}\nafter\n`))
  t.same(readings.map((r) => r.data.toString()), ['before', 'after'])
  t.same(errors.map((e) => e.code), [FramingError.TOO_LONG])
  t.ok(errors[0]!.detail.length < 200, 'the report holds an excerpt, not the line')
})

t.test('a flood with no newline is held to the bound, however long it runs', async (t) => {
  const p = run({ type: 'json', maxLineBytes: 1024 }, Buffer.alloc(0))
  const before = process.memoryUsage().arrayBuffers
  const chunk = Buffer.alloc(64 * 1024, 0x41)
  for (let i = 0; i < 1024; i++) p.parser.push(chunk) // 64 MiB without a newline
  p.parser.push(Buffer.from('\n{"ok":true}\n'))
  t.same(p.readings.map((r) => r.data.toString()), ['{"ok":true}'])
  t.same(p.errors.map((e) => e.code), [FramingError.TOO_LONG], 'counted once, not once per chunk')
  t.ok(process.memoryUsage().arrayBuffers - before < 8 * 1024 * 1024, 'memory did not grow with the flood')
})

t.test('reset reports a partial line as PARTIAL and does not join it to what comes next', async (t) => {
  const { readings, errors, parser } = run({ type: 'lines', maxLineBytes: 100 }, Buffer.from('whole\nhal'))
  parser.reset()
  parser.push(Buffer.from('next\n'))
  t.same(readings.map((r) => r.data.toString()), ['whole', 'next'])
  t.same(errors.map((e) => e.code), [FramingError.PARTIAL])
})

t.test('byte-delimited frames, with a multi-byte delimiter split across chunks', async (t) => {
  const { readings, errors } = sameAnyChunking(t, { type: 'delimiter', delimiter: Buffer.from([0x00, 0xff]), maxFrameBytes: 8, includeDelimiter: false }, Buffer.from('01020300ff0400ff00ff' + '11'.repeat(20) + '00ff0500ff', 'hex'))
  t.same(readings.map((r) => r.data.toString('hex')), ['010203', '04', '05'])
  t.same(errors.map((e) => e.code), [FramingError.TOO_LONG])
})

t.test('fixed-length frames resynchronise on their sync bytes after garbage', async (t) => {
  const frame = (n: number) => Buffer.from([0xaa, 0x55, n, n ^ 0xff])
  const input = Buffer.concat([frame(1), Buffer.from([0x01, 0x02, 0xaa]), frame(2), frame(3)])
  const { readings, errors } = sameAnyChunking(t, { type: 'fixed', frameBytes: 4, sync: Buffer.from([0xaa, 0x55]) }, input)
  t.same(readings.map((r) => r.data.toString('hex')), [frame(1), frame(2), frame(3)].map((f) => f.toString('hex')))
  t.ok(errors.length >= 1 && errors.every((e) => e.code === FramingError.SYNC_LOST))
  const plain = run({ type: 'fixed', frameBytes: 3, sync: null }, Buffer.from('abcdefgh'))
  t.same(plain.readings.map((r) => r.data.toString()), ['abc', 'def'])
})

t.test('length-prefixed frames: lengths out of bounds are counted and skipped, valid frames around them kept', async (t) => {
  const config: ParserConfig = { type: 'length-prefixed', sync: Buffer.from([0x7e]), lengthOffset: 1, lengthBytes: 2, lengthEndian: 'little', lengthAdjust: 1, maxFrameBytes: 64 }
  const frame = (payload: Buffer) => { const h = Buffer.alloc(3); h[0] = 0x7e; h.writeUInt16LE(payload.length, 1); return Buffer.concat([h, payload, Buffer.from([0xcc])]) }
  const a = frame(Buffer.from('hello'))
  const b = frame(Buffer.from(''))
  const bogus = Buffer.from([0x7e, 0xff, 0xff, 1, 2])
  const { readings, errors } = sameAnyChunking(t, config, Buffer.concat([a, bogus, b, a]))
  t.same(readings.map((r) => r.data.toString('hex')), [a, b, a].map((f) => f.toString('hex')))
  t.same(errors.map((e) => e.code), [FramingError.BAD_LENGTH, FramingError.SYNC_LOST])
  const big = run({ ...config, sync: null, lengthBytes: 4, lengthEndian: 'big', lengthAdjust: 0, lengthOffset: 0 }, Buffer.from([0, 0, 0, 2, 9, 9, 0, 0, 0, 1, 8]))
  t.same(big.readings.map((r) => r.data.toString('hex')), ['000000020909', '0000000108'])
})
