/**
 * One suite for both implementations of the hot path (the C addon and the TypeScript fallback), and
 * a differential test of the addon against the fallback on random inputs: sizes from 0 to 1 MiB,
 * odd offsets, damaged log regions. TRIBUTARY_SOAK=1 runs a million inputs.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { BATCH_DATA_START, BatchView, loadCodec, type Codec } from '../../hardware/index.js'
import * as js from '../../hardware/native/fallback.js'
import { LOG_HEADER_SIZE } from '../../shared/logframe.js'
import type { BatchRecord } from '../../shared/frame.js'
import { addon, implementations, nativeSkip } from '../helpers/codecs.js'

/** A log region of `n` records with random keys and data sizes. */
function logRegion(n: number, firstOffset = 0): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const input = { partitionKey: `k${i}-${Math.random()}`, data: randomBytes(Math.floor(Math.random() ** 3 * 3000)), producerTimeMs: Date.now(), flags: 4, device: 'd', epoch: 3n, batchSequence: i, batchIndex: i & 0xffff }
    const buf = Buffer.alloc(js.logRecordSize(input))
    js.encodeLogRecord(buf, 0, firstOffset + i, Date.now(), input)
    parts.push(buf)
  }
  return Buffer.concat(parts)
}


/** A batch frame of `n` records with random keys (some non-ASCII, some invalid UTF-8), data and hash keys. */
function randomBatch(n: number, sequence = 1): Buffer {
  const records: BatchRecord[] = []
  for (let i = 0; i < n; i++) {
    const kind = i % 7
    const key = kind === 0 ? `ключ-${i}` : kind === 1 ? `😀${i}` : `k${i}-${Math.random().toString(36).slice(2, 2 + (i % 40))}`
    records.push({
      partitionKey: key, data: randomBytes(Math.floor(Math.random() ** 3 * 2000)), producerTimeMs: Date.now() + i, clockSynced: i % 2 === 0,
      explicitHashKey: kind === 3 ? BigInt('0x' + randomBytes(16).toString('hex')) : undefined,
    })
  }
  const frame = js.encodeBatch({ epoch: 7n, sequence, records })
  return frame
}

/** Shard bounds: `n` ascending 16-byte big-endian starting hash keys, the first 0. */
function bounds(n: number): Buffer {
  const b = Buffer.alloc(16 * n)
  for (let k = 1; k < n; k++) {
    const start = ((1n << 128n) / BigInt(n)) * BigInt(k)
    b.writeBigUInt64BE(start >> 64n, k * 16)
    b.writeBigUInt64BE(start & 0xffff_ffff_ffff_ffffn, k * 16 + 8)
  }
  return b
}

/** The whole answer of a scan, hash-route and log encoding, for comparing implementations. */
function batchAnswer(c: Pick<Codec, 'scanBatch' | 'hashRoute' | 'encodeLogBatch'>, frame: Buffer, shards: number): string {
  let scan
  try { scan = c.scanBatch(frame) } catch (err) { return `error ${(err as { code?: string }).code}` }
  const slots = c.hashRoute(frame, scan.fields, bounds(shards))
  const indices = Uint32Array.from({ length: scan.times.length }, (_, i) => i).filter((i) => i % 3 !== 1)
  const device = Buffer.from('device-ü')
  const out = Buffer.alloc(js.logBatchSize(scan.fields, indices, device.length) + 5)
  const positions = new Uint32Array(indices.length)
  const wrote = c.encodeLogBatch(out, 5, frame, scan.fields, scan.times, indices, 1234, 1_700_000_000_123, device, positions)
  return [scan.epoch, scan.sequence, Array.from(scan.times).join(), Array.from(scan.fields).join(), Array.from(slots).join(), wrote, Array.from(positions).join(), out.toString('hex')].join('|')
}

for (const [name, make, skip] of implementations) {
  t.test(`${name}: CRC-32C, MD5 and log scans give the reference answers`, { skip }, async (t) => {
    const c = make()
    t.equal(c.crc32c(Buffer.from('123456789')), 0xe3069283, 'the CRC-32C check value')
    const big = randomBytes(100_000)
    t.equal(c.crc32c(big, c.crc32c(big, 0, 0, 33_333), 33_333), c.crc32c(big), 'in pieces as in one go')
    const keys = ['a', '', 'ключ', 'x'.repeat(5000)]
    const want = Buffer.concat(keys.map((k) => createHash('md5').update(k, 'utf8').digest()))
    t.ok(c.md5Many(keys).equals(want), 'MD5 of keys as node:crypto computes it')
    const region = logRegion(200, 1000)
    const scan = c.scanLog(region, 0, region.length, 1000)
    t.equal(scan.stop, 'end')
    t.equal(scan.positions.length, 200)
    const damaged = Buffer.from(region)
    damaged[scan.positions[120]! + LOG_HEADER_SIZE + 1]! ^= 0x40
    const d = c.scanLog(damaged, 0, damaged.length, 1000)
    t.same([d.positions.length, d.stop, d.end], [120, 'damaged', scan.positions[120]])
    const torn = c.scanLog(region, 0, region.length - 1, 1000)
    t.same([torn.positions.length, torn.stop], [199, 'torn'])
  })
}

t.test('the addon agrees with the fallback on random inputs', { skip: nativeSkip }, async (t) => {
  const a = addon!
  const rounds = process.env.TRIBUTARY_SOAK ? 1_000_000 : 20_000
  const pool = randomBytes(1024 * 1024 + 64)
  let differences = 0
  for (let i = 0; i < rounds; i++) {
    // Mostly small inputs, some large; any byte offset.
    const size = i % 1000 === 0 ? Math.floor(Math.random() * 1024 * 1024) : Math.floor(Math.random() ** 4 * 4096)
    const start = Math.floor(Math.random() * 64)
    const initial = i % 3 === 0 ? (Math.random() * 2 ** 32) >>> 0 : 0
    if (a.crc32c(pool, initial, start, start + size) !== js.crc32c(pool, initial, start, start + size)) differences++
  }
  t.equal(differences, 0, `CRC-32C: ${rounds} inputs, no difference`)

  let md5Differences = 0
  const keyRounds = Math.max(200, rounds / 100)
  for (let i = 0; i < keyRounds; i++) {
    const keys = Array.from({ length: 1 + (i % 50) }, () => randomBytes(Math.floor(Math.random() * 300)).toString(i % 2 ? 'latin1' : 'base64'))
    if (!a.md5Many(keys).equals(js.md5Many(keys))) md5Differences++
  }
  t.equal(md5Differences, 0, `MD5: ${keyRounds} key batches, no difference`)

  let scanDifferences = 0
  const scanRounds = Math.max(300, rounds / 50)
  const base = logRegion(300)
  for (let i = 0; i < scanRounds; i++) {
    const buf = Buffer.from(base)
    const flips = i % 4
    for (let f = 0; f < flips; f++) buf[Math.floor(Math.random() * buf.length)]! ^= 1 << (i % 8)
    const start = i % 5 === 0 ? Math.floor(Math.random() * buf.length) : 0
    const end = start + Math.floor(Math.random() * (buf.length - start + 1))
    const expected = i % 2 ? -1 : 0
    const [positions, stopAt, stop] = a.scanLog(buf, start, end, expected)
    const ref = js.scanLog(buf, start, end, expected)
    if (stopAt !== ref.end || ['end', 'torn', 'damaged'][stop] !== ref.stop || positions.length !== ref.positions.length ||
      Array.from(positions).some((p, k) => p !== ref.positions[k])) scanDifferences++
  }
  t.equal(scanDifferences, 0, `log scan: ${scanRounds} regions (damaged, torn, odd starts), no difference`)
})

for (const [name, make, skip] of implementations) {
  t.test(`${name}: a batch scans to a table, routes by MD5 and encodes as log records`, { skip }, async (t) => {
    const c = make()
    const frame = randomBatch(300)
    const scan = c.scanBatch(frame)
    const decoded = js.decodeBatch(frame)
    t.equal(scan.times.length, 300)
    t.equal(scan.epoch, 7n)
    const view = new BatchView(frame, scan)
    for (let i = 0; i < 300; i++) {
      const r = decoded.records[i]!
      if (view.partitionKey(i) !== r.partitionKey || !view.data(i).equals(r.data) || view.producerTimeMs(i) !== r.producerTimeMs ||
        view.keyIsValidUtf8(i) !== r.keyValidUtf8) {
        t.fail(`record ${i} differs from the decoded record`)
        return
      }
    }
    const slots = c.hashRoute(frame, scan.fields, bounds(4))
    const wrong = decoded.records.findIndex((r, i) => {
      const hash = r.explicitHashKey ?? js.u128BEToBigint(createHash('md5').update(r.partitionKey).digest(), 0)
      return slots[i] !== Number(hash / ((1n << 128n) / 4n))
    })
    t.equal(wrong, -1, 'each record routes to the shard whose quarter of the hash space holds its MD5 or explicit hash key')
    // The log records it writes are the ones the general encoder writes for the same inputs.
    const indices = Uint32Array.of(0, 5, 6, 299)
    const device = Buffer.from('dev-1')
    const out = Buffer.alloc(js.logBatchSize(scan.fields, indices, device.length))
    const positions = new Uint32Array(4)
    t.equal(c.encodeLogBatch(out, 0, frame, scan.fields, scan.times, indices, 40, 99, device, positions), out.length)
    const records = Array.from(positions, (p) => js.decodeLogRecord(out, p))
    t.same(records.map((r) => [r.offset, r.partitionKey, r.device, r.batchIndex, r.epoch, r.batchSequence, r.arrivalMs]),
      [0, 5, 6, 299].map((i, j) => [40 + j, decoded.records[i]!.partitionKey, 'dev-1', i, 7n, 1, 99]))
    t.ok(records.every((r, j) => r.data.equals(decoded.records[indices[j]!]!.data)), 'the data is carried over byte for byte')
    t.equal(c.scanLog(out, 0, out.length, 40).stop, 'end', 'the log records verify')
  })

  t.test(`${name}: a key that is not valid UTF-8 is flagged in the table, not fatal to the batch`, { skip }, async (t) => {
    const c = make()
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbd], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const frame = js.encodeBatch({ epoch: 1n, sequence: 1, records: [{ partitionKey: 'x'.repeat(bad.length), data: Buffer.from('d'), producerTimeMs: 0, clockSynced: false }] })
      Buffer.from(bad).copy(frame, 32 + 16)
      frame.writeUInt32LE(js.crc32c(frame, 0, 12, frame.length), 4)
      t.equal(new BatchView(frame, c.scanBatch(frame)).keyIsValidUtf8(0), false, `bytes ${Buffer.from(bad).toString('hex')}`)
    }
  })
}

t.test('the addon agrees with the fallback on random and damaged batch frames', { skip: nativeSkip }, async (t) => {
  const c = loadCodec({}, () => {})
  const rounds = process.env.TRIBUTARY_SOAK ? 20_000 : 1500
  let differences = 0
  const base = randomBatch(120)
  for (let i = 0; i < rounds; i++) {
    let frame: Buffer
    const kind = i % 5
    if (kind === 0) frame = randomBatch(1 + (i % 60), i)
    else if (kind === 1) { frame = Buffer.from(base); frame[Math.floor(Math.random() * frame.length)]! ^= 1 << (i % 8) }
    else if (kind === 2) frame = base.subarray(0, Math.floor(Math.random() * base.length))
    else if (kind === 3) {
      // Damage re-sealed with a good checksum, so the field checks behind it are what decides.
      frame = Buffer.from(base)
      frame[32 + Math.floor(Math.random() * (frame.length - 32))] = Math.floor(Math.random() * 256)
      frame.writeUInt32LE(js.crc32c(frame, 0, 12, frame.length), 4)
    } else frame = randomBytes(Math.floor(Math.random() * 300))
    const shards = 1 + (i % 9)
    if (batchAnswer(c, frame, shards) !== batchAnswer(js, frame, shards)) differences++
  }
  t.equal(differences, 0, `${rounds} frames (random, flipped, cut, re-sealed damage, noise): scan, route and log encoding agree`)
  let encodeDifferences = 0
  for (let i = 0; i < rounds / 5; i++) {
    const records = js.decodeBatch(randomBatch(1 + (i % 40), i)).records
    const batch = { epoch: BigInt(i) * 0x1_0000_0001n, sequence: i * 7919, records: records.map(({ keyValidUtf8: _, ...r }) => r) }
    if (!addon!.encodeBatch(batch).equals(js.encodeBatch(batch))) encodeDifferences++
  }
  t.equal(encodeDifferences, 0, `${Math.floor(rounds / 5)} batches encoded by both (unicode keys, explicit hash keys), byte for byte the same`)
})

t.test('the batch functions of the addon refuse tables that point outside their frame', { skip: nativeSkip }, async (t) => {
  const a = addon!
  const frame = randomBatch(3)
  const scanned = a.scanBatch(frame)
  t.type(a.scanBatch(frame.subarray(0, 20)), 'number', 'a bad frame is answered with its error kind')
  if (typeof scanned === 'number') return t.fail('scan failed')
  const [times, fields] = scanned
  const forged = Uint32Array.from(fields)
  forged[BATCH_DATA_START] = frame.length + 100
  t.throws(() => a.hashRoute(frame, forged, bounds(2)), { name: 'RangeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.hashRoute(frame, fields.subarray(1), bounds(2)), { name: 'RangeError' })
  t.throws(() => a.hashRoute(frame, fields, Buffer.alloc(0)), { name: 'RangeError' })
  t.throws(() => a.hashRoute(frame, new Float64Array(6) as never, bounds(2)), { name: 'TypeError' })
  const out = Buffer.alloc(10)
  const p = new Uint32Array(3)
  t.throws(() => a.encodeLogBatch(out, 0, frame, fields, times, Uint32Array.of(0), 0, 0, Buffer.from('d'), p), { name: 'RangeError', code: 'ERR_TRIBUTARY_ARGUMENT' }, 'no room in the output')
  t.throws(() => a.encodeLogBatch(Buffer.alloc(1 << 16), 0, frame, fields, times, Uint32Array.of(3), 0, 0, Buffer.from('d'), p), { name: 'RangeError' }, 'an index beyond the batch')
  t.throws(() => a.encodeLogBatch(Buffer.alloc(1 << 16), 0, frame, forged, times, Uint32Array.of(0), 0, 0, Buffer.from('d'), p), { name: 'RangeError' })
  t.throws(() => a.encodeLogBatch(Buffer.alloc(1 << 16), 0, frame, fields, times, Uint32Array.of(0), -1, 0, Buffer.from('d'), p), { name: 'RangeError' })
  const record = { partitionKey: 'k', data: Buffer.from('d'), producerTimeMs: 1, clockSynced: false }
  t.throws(() => a.encodeBatch({ epoch: 1 as never, sequence: 1, records: [record] }), { name: 'TypeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: -1, records: [record] }), { name: 'RangeError' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, explicitHashKey: -1n }] }), { name: 'RangeError' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, explicitHashKey: 1n << 128n }] }), { name: 'RangeError' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, partitionKey: 7 as never }] }), { name: 'TypeError' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, data: 'x' as never }] }), { name: 'TypeError' })
  t.throws(() => a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, partitionKey: 'x'.repeat(70000) }] }), { name: 'RangeError' })
  t.ok(a.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, explicitHashKey: (1n << 128n) - 1n }] }).equals(js.encodeBatch({ epoch: 1n, sequence: 1, records: [{ ...record, explicitHashKey: (1n << 128n) - 1n }] })), 'the largest hash key encodes as the fallback does')
})

t.test('the addon refuses bad arguments with typed errors instead of crashing', { skip: nativeSkip }, async (t) => {
  const a = addon!
  const buf = Buffer.alloc(10)
  t.throws(() => a.crc32c(buf, 0, 0, 11), { name: 'RangeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.crc32c(buf, 0, 5, 2), { name: 'RangeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.crc32c(buf, 0, -1, 2), { code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.crc32c(buf, 0, 1.5, 2), { code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.crc32c('not bytes' as never, 0, 0, 1), { name: 'TypeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.crc32c(new Uint16Array(4) as never, 0, 0, 1), { name: 'TypeError' })
  t.throws(() => (a.crc32c as (...x: unknown[]) => number)(buf), { name: 'TypeError' })
  t.throws(() => a.md5Many('abc' as never), { name: 'TypeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.md5Many(['ok', 7] as never), { name: 'TypeError', code: 'ERR_TRIBUTARY_ARGUMENT' })
  t.throws(() => a.scanLog(buf, 0, 100, 0), { name: 'RangeError' })
  t.throws(() => a.scanLog(buf, 0, 10, Number.NaN), { name: 'TypeError' })
  t.same(Array.from(a.scanLog(Buffer.alloc(0), 0, 0, 0)[0]), [], 'an empty region scans to nothing')
})

t.test('TRIBUTARY_NATIVE=0 forces the fallback and says so; a missing addon falls back with one warning', async (t) => {
  const forced = loadCodec({ TRIBUTARY_NATIVE: '0' })
  t.equal(forced.implementation, 'js')
  t.match(forced.reason, /TRIBUTARY_NATIVE=0/)
  const c = loadCodec({}, () => {})
  t.match(c.implementation, /^(native|js)$/)
  t.ok(c.reason.length > 10, `the reason: ${c.reason}`)
})

t.test('a log record is written byte for byte as the layout says (fields through Buffer\'s own writers) and read back, over random inputs', async (t) => {
  /** The layout of shared/logframe.ts written plainly with Buffer's methods: the reference. */
  const reference = (offset: number, arrivalMs: number, input: { partitionKey: string; data: Buffer; producerTimeMs: number; flags: number; device?: string; epoch?: bigint; batchSequence?: number; batchIndex?: number }) => {
    const key = Buffer.from(input.partitionKey, 'utf8')
    const device = Buffer.from(input.device ?? '', 'utf8')
    const head = Buffer.alloc(LOG_HEADER_SIZE)
    const length = LOG_HEADER_SIZE + key.length + device.length + input.data.length
    head.writeUInt32LE(length, 0)
    head.writeUInt32LE(offset % 2 ** 32, 8)
    head.writeUInt32LE(Math.floor(offset / 2 ** 32), 12)
    head.writeDoubleLE(arrivalMs, 16)
    head.writeDoubleLE(input.producerTimeMs, 24)
    head[32] = input.flags
    head.writeUInt16LE(key.length, 34)
    head.writeUInt16LE(device.length, 36)
    head.writeUInt16LE(input.batchIndex ?? 0, 38)
    head.writeBigUInt64LE(input.epoch ?? 0n, 40)
    head.writeUInt32LE((input.batchSequence ?? 0) % 2 ** 32, 48)
    head.writeUInt32LE(Math.floor((input.batchSequence ?? 0) / 2 ** 32), 52)
    const record = Buffer.concat([head, key, device, input.data])
    record.writeUInt32LE(js.crc32c(record, 0, 8, record.length), 4)
    return record
  }
  const keys = () => [`k-${Math.random()}`, 'ключ', '😀'.repeat(3), 'x'.repeat(200), '\ud800', 'a'.repeat(64) + 'ü', ''][Math.floor(Math.random() * 7)]!
  let differences = 0
  for (let i = 0; i < 2000; i++) {
    const input = {
      partitionKey: keys(), data: randomBytes(Math.floor(Math.random() * 300)), producerTimeMs: Math.random() < 0.5 ? Date.now() + Math.random() : 0,
      flags: Math.floor(Math.random() * 256),
      ...(Math.random() < 0.5 ? { device: ['dev-1', 'устройство', ''][i % 3]!, epoch: BigInt(Math.floor(Math.random() * 2 ** 53)) * (i % 5 === 0 ? 2047n : 1n) % (1n << 64n), batchSequence: Math.floor(Math.random() * 2 ** 53), batchIndex: i & 0xffff } : {}),
    }
    const offset = Math.floor(Math.random() * 2 ** 53)
    const arrival = Math.random() * 2e12
    const want = reference(offset, arrival, input)
    const got = Buffer.alloc(js.logRecordSize(input) + 7)
    const length = js.encodeLogRecord(got, 7, offset, arrival, input)
    if (length !== want.length || !got.subarray(7).equals(want)) {
      if (differences++ < 3) t.same(got.subarray(7).toString('hex'), want.toString('hex'), `input ${i}`)
    }
    // And read back: every field as written, the key and device as their UTF-8 decodes.
    const back = js.decodeLogRecord(got, 7)
    const fields = { offset, arrivalMs: arrival, producerTimeMs: input.producerTimeMs, flags: input.flags, partitionKey: Buffer.from(input.partitionKey).toString(), device: input.device ?? '', epoch: input.epoch ?? 0n, batchSequence: input.batchSequence ?? 0, batchIndex: input.batchIndex ?? 0 }
    const { data, ...read } = back
    if (!data.equals(input.data) || JSON.stringify(read, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)) !== JSON.stringify(fields, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))) {
      if (differences++ < 3) t.same(read, fields, `input ${i} read back`)
    }
  }
  t.equal(differences, 0, '2,000 records, at an odd position, none differs from the reference, and each reads back as written')
})

t.test('a log record whose header field cannot hold a value is refused, not wrapped', async (t) => {
  const base = { partitionKey: 'k', data: Buffer.from('d'), producerTimeMs: 0, flags: 0 }
  const encode = (input: Parameters<typeof js.encodeLogRecord>[4]) => js.encodeLogRecord(Buffer.alloc(js.logRecordSize(input)), 0, 0, 0, input)
  t.throws(() => encode({ ...base, batchIndex: 0x10000 }), RangeError, 'a batch index past 65,535')
  t.throws(() => encode({ ...base, epoch: -1n }), RangeError, 'a negative epoch')
  t.throws(() => encode({ ...base, epoch: 1n << 64n }), RangeError, 'an epoch of 2^64')
  t.throws(() => encode({ ...base, device: 'd'.repeat(0x10000) }), RangeError, 'a device id of 65,536 bytes')
  t.ok(encode({ ...base, batchIndex: 0xffff, epoch: (1n << 64n) - 1n, device: 'd'.repeat(0xffff) }) > 0, 'the largest values that fit are written')
})
