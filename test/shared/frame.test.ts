import t from 'tap'
import { randomBytes } from 'node:crypto'
import { codec } from '../../hardware/index.js'
import { FrameError } from '../../shared/errors.js'
import { HEADER_SIZE, type Batch } from '../../shared/frame.js'

const sample = (): Batch => ({
  epoch: 0xfeedface12345678n,
  sequence: 2 ** 40 + 3,
  records: [
    { partitionKey: 'sensor-1', data: Buffer.from('{"t":21.5}'), producerTimeMs: 1_700_000_000_123, clockSynced: true },
    { partitionKey: 'ключ-ü', data: Buffer.alloc(0), producerTimeMs: 0, clockSynced: false, explicitHashKey: (1n << 128n) - 1n },
    { partitionKey: 'x'.repeat(256), data: randomBytes(70_000), producerTimeMs: 5.5, clockSynced: true, explicitHashKey: 0n },
  ],
})

t.test('a batch decodes to what was encoded', async (t) => {
  const batch = sample()
  const decoded = codec.decodeBatch(codec.encodeBatch(batch))
  t.equal(decoded.epoch, batch.epoch)
  t.equal(decoded.sequence, batch.sequence)
  t.equal(decoded.records.length, 3)
  decoded.records.forEach((r, i) => {
    const want = batch.records[i]!
    t.equal(r.partitionKey, want.partitionKey)
    t.ok(Buffer.from(want.data).equals(r.data))
    t.equal(r.producerTimeMs, want.producerTimeMs)
    t.equal(r.clockSynced, want.clockSynced)
    t.equal(r.explicitHashKey, want.explicitHashKey)
    t.ok(r.keyValidUtf8)
  })
})

t.test('decoding is total: every damaged frame yields a typed error, never a crash', async (t) => {
  const good = codec.encodeBatch(sample())
  let errors = 0
  let decoded = 0
  for (let i = 0; i < 5000; i++) {
    const damaged = Buffer.from(good)
    const kind = i % 4
    let input: Buffer
    if (kind === 0) input = damaged.subarray(0, Math.floor(Math.random() * damaged.length))
    else if (kind === 1) { damaged[(i >> 2) % damaged.length]! ^= 1 << (i % 8); input = damaged }
    else if (kind === 2) input = randomBytes(Math.floor(Math.random() * 200))
    else { input = Buffer.concat([damaged, randomBytes(1 + (i % 9))]) }
    try {
      codec.decodeBatch(input)
      decoded++
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      errors++
    }
  }
  t.equal(decoded, 0, 'no damaged frame slips through (the checksum covers the body)')
  t.equal(errors, 5000)
})

t.test('each kind of damage has its own code', async (t) => {
  const good = codec.encodeBatch(sample())
  const code = (buf: Buffer) => { try { codec.decodeBatch(buf); return 'ok' } catch (e) { return (e as FrameError).code } }
  t.equal(code(good.subarray(0, 10)), 'FRAME_TRUNCATED')
  t.equal(code(good.subarray(0, good.length - 1)), 'FRAME_TRUNCATED')
  const magic = Buffer.from(good); magic[0] = 0
  t.equal(code(magic), 'FRAME_BAD_MAGIC')
  const version = Buffer.from(good); version[2] = 9
  t.equal(code(version), 'FRAME_BAD_VERSION')
  const flags = Buffer.from(good); flags[3] = 1
  t.equal(code(flags), 'FRAME_BAD_FIELD', 'the reserved flags byte is outside the checksum and checked by value')
  const body = Buffer.from(good); body[HEADER_SIZE + 20]! ^= 0xff
  t.equal(code(body), 'FRAME_BAD_CHECKSUM')
  t.equal(code(Buffer.concat([good, Buffer.alloc(1)])), 'FRAME_BAD_FIELD')
})

t.test('a frame whose count promises more records than it can hold is refused before allocating', async (t) => {
  const one = codec.encodeBatch({ epoch: 1n, sequence: 1, records: [{ partitionKey: 'k', data: Buffer.alloc(0), producerTimeMs: 0, clockSynced: false }] })
  const forged = Buffer.from(one)
  forged.writeUInt32LE(0xffffffff, 28)
  // Re-seal the checksum so only the count is wrong.
  forged.writeUInt32LE(codec.crc32c(forged, 0, 12, forged.length), 4)
  t.throws(() => codec.decodeBatch(forged), { code: 'FRAME_TRUNCATED' })
})

t.test('a partition key that is not valid UTF-8 is flagged, not fatal to the batch', async (t) => {
  const frame = codec.encodeBatch({ epoch: 1n, sequence: 1, records: [{ partitionKey: 'ab', data: Buffer.from('x'), producerTimeMs: 0, clockSynced: false }] })
  const at = HEADER_SIZE + 16
  frame[at] = 0xff
  frame.writeUInt32LE(codec.crc32c(frame, 0, 12, frame.length), 4)
  const decoded = codec.decodeBatch(frame)
  t.equal(decoded.records[0]?.keyValidUtf8, false)
})

t.test('CRC-32C matches the standard check value', async (t) => {
  t.equal(codec.crc32c(Buffer.from('123456789')), 0xe3069283)
  t.equal(codec.crc32c(Buffer.alloc(0)), 0)
  const data = randomBytes(1000)
  t.equal(codec.crc32c(data, codec.crc32c(data.subarray(0, 333)), 333), codec.crc32c(data), 'it can be computed in pieces')
})

t.test('MD5 of many keys matches node:crypto, 16 bytes each', async (t) => {
  const hashes = codec.md5Many(['a', '', 'ключ'])
  t.equal(hashes.length, 48)
  t.equal(BigInt('0x' + hashes.subarray(0, 16).toString('hex')).toString(), '16955237001963240173058271559858726497')
})

t.test('the loader says which implementation runs and why', async (t) => {
  t.match(codec.implementation, /^(native|js)$/)
  t.ok(codec.reason.length > 10)
})
