/**
 * One suite for both implementations of the hot path (the C addon and the TypeScript fallback), and
 * a differential test of the addon against the fallback on random inputs: sizes from 0 to 1 MiB,
 * odd offsets, damaged log regions. TRIBUTARY_SOAK=1 runs a million inputs.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { loadAddon, loadCodec, type Addon, type Codec } from '../../hardware/index.js'
import * as js from '../../hardware/native/fallback.js'
import { LOG_HEADER_SIZE } from '../../shared/logframe.js'

let addon: Addon | null = null
let why = ''
try { addon = loadAddon() } catch (err) { why = (err as Error).message }
const nativeSkip = process.env.TRIBUTARY_NATIVE === '0' ? 'TRIBUTARY_NATIVE=0' : addon ? false : `the addon is not built: ${why}`

const implementations: [string, () => Codec, string | false][] = [
  ['the TypeScript fallback', () => loadCodec({ TRIBUTARY_NATIVE: '0' }), false],
  ['the C addon', () => loadCodec({}, () => {}), nativeSkip],
]

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
