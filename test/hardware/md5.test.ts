/**
 * MD5 of partition keys, on both implementations, against node:crypto: every key length from 0 to
 * 300 bytes (so every padding case: under 56 bytes one block, 56-63 two, and the block boundaries
 * at 55/56, 63/64/65, 119/120, 127/128/129), keys at odd positions inside a device batch, and the
 * hash-and-route step that uses the same MD5.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import * as js from '../../hardware/native/fallback.js'
import { implementations } from '../helpers/codecs.js'

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest()
const BOUNDARIES = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 193, 255, 256, 300]

/** Random latin1 text of `n` characters: one UTF-8 byte each below 0x80, two above. */
const asciiKey = (n: number) => Array.from(randomBytes(n), (b) => String.fromCharCode(0x20 + (b % 95))).join('')

for (const [name, make, skip] of implementations) {
  t.test(`${name}: MD5 of keys of every length from 0 to 300 bytes is node:crypto's`, { skip }, async (t) => {
    const c = make()
    const rounds = process.env.TRIBUTARY_SOAK ? 200 : 8
    let differences = 0
    let keys = 0
    for (let r = 0; r < rounds; r++) {
      const batch = Array.from({ length: 301 }, (_, n) => asciiKey(n))
      const want = Buffer.concat(batch.map((k) => md5(Buffer.from(k, 'utf8'))))
      const got = c.md5Many(batch)
      for (let i = 0; i < batch.length; i++) if (!got.subarray(i * 16, i * 16 + 16).equals(want.subarray(i * 16, i * 16 + 16))) differences++
      keys += batch.length
    }
    t.equal(differences, 0, `${keys} keys, lengths 0-300, no difference`)

    for (const n of BOUNDARIES) {
      const key = asciiKey(n)
      t.ok(c.md5Many([key]).equals(md5(Buffer.from(key))), `a ${n}-byte key alone`)
    }
    // Multi-byte characters: the hash is of the UTF-8 bytes, lengths counted in bytes across a boundary.
    const wide = ['ü'.repeat(28), 'ü'.repeat(27) + 'x', 'ключ'.repeat(8), '😀'.repeat(16), '😀'.repeat(14) + 'abcdefg']
    t.ok(c.md5Many(wide).equals(Buffer.concat(wide.map((k) => md5(Buffer.from(k, 'utf8'))))), 'keys of 2-, 3- and 4-byte characters around 56 and 64 bytes')
  })

  t.test(`${name}: routing hashes keys where they sit in a batch, at any position`, { skip }, async (t) => {
    const c = make()
    // Key lengths across the block boundaries, each after data of a different length, so keys start
    // at every alignment; no explicit hash keys, so every slot comes from MD5.
    const lengths = [...BOUNDARIES.filter((n) => n > 0 && n <= 256), ...Array.from({ length: 60 }, () => 1 + Math.floor(Math.random() * 256))]
    const records = lengths.map((n, i) => ({ partitionKey: asciiKey(n), data: randomBytes(i % 9), producerTimeMs: 1.7e12 + i, clockSynced: true }))
    const frame = js.encodeBatch({ epoch: 1n, sequence: 1, records })
    const scan = c.scanBatch(frame)
    // 256 shards: one per value of the digest's first byte.
    const bounds = Buffer.alloc(256 * 16)
    for (let s = 0; s < 256; s++) bounds[s * 16] = s
    const slots = c.hashRoute(frame, scan.fields, bounds)
    const want = records.map((r) => md5(Buffer.from(r.partitionKey))[0]!)
    t.same(Array.from(slots), want, `${records.length} keys of 1-256 bytes route by the first byte of node:crypto's MD5`)
  })

  t.test(`${name}: repeated keys route as their own MD5 says, however they fall in a batch`, { skip }, async (t) => {
    const c = make()
    // A device's few keys repeated (the addon hashes each once per batch), near-twins that differ in
    // one byte or in length (the same bucket must not answer for them), and more distinct keys than
    // its table holds, so entries are replaced while the batch goes on.
    const base = Array.from({ length: 100 }, (_, i) => `sensor-${i}`)
    const twins = base.flatMap((k) => [k + 'x', k + 'y', k.slice(0, -1), k.toUpperCase()])
    const pool = [...base, ...twins, ...Array.from({ length: 20 }, () => asciiKey(1 + Math.floor(Math.random() * 200)))]
    let wrong = 0
    let records = 0
    for (let round = 0; round < 20; round++) {
      const keys = Array.from({ length: 2000 }, () => pool[Math.floor(Math.random() ** 2 * pool.length)]!)
      const frame = js.encodeBatch({ epoch: 1n, sequence: round, records: keys.map((k, i) => ({ partitionKey: k, data: randomBytes(i % 5), producerTimeMs: 0, clockSynced: false })) })
      const bounds = Buffer.alloc(256 * 16)
      for (let s = 0; s < 256; s++) bounds[s * 16] = s
      const slots = c.hashRoute(frame, c.scanBatch(frame).fields, bounds)
      keys.forEach((k, i) => { if (slots[i] !== md5(Buffer.from(k))[0]) wrong++ })
      records += keys.length
    }
    t.equal(wrong, 0, `${records} records over ${pool.length} keys (repeats, one-byte twins, more keys than the table holds), each routed by its own MD5`)
  })
}
