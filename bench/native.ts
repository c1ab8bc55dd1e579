/**
 * Native vs TypeScript for the hot path, by input size, with zlib.crc32 (CRC-32, not -C) as a
 * reference: CRC-32C, MD5 of partition-key batches, log scans, and device batches (encode, scan,
 * hash-and-route, conversion to log records). Calls the addon directly (no
 * crossover thresholds) to find where it starts to pay. CSV on stdout.
 * Usage: npx tsx bench/native.ts
 */
import zlib from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { loadAddon } from '../hardware/index.js'
import * as js from '../hardware/native/fallback.js'

const addon = loadAddon()

function rate(fn: () => void, minMs = 200): number {
  for (let i = 0; i < 50; i++) fn()
  let n = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < minMs) {
    for (let i = 0; i < 100; i++) fn()
    n += 100
    elapsed = performance.now() - start
  }
  return (n / elapsed) * 1000
}

console.log('benchmark,input,js_ops_per_s,native_ops_per_s,native_over_js,zlib_crc32_ops_per_s')
const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32
for (const size of [16, 32, 64, 128, 256, 1024, 4096, 65536, 1048576]) {
  const buf = randomBytes(size)
  const j = rate(() => js.crc32c(buf, 0, 0, size))
  const n = rate(() => addon.crc32c(buf, 0, 0, size))
  const z = zcrc ? rate(() => zcrc(buf)) : NaN
  console.log(`crc32c,${size} B,${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},${Math.round(z)}`)
}
for (const count of [1, 4, 16, 100, 500]) {
  const keys = Array.from({ length: count }, (_, i) => `sensor-${i}-${Math.random().toString(36).slice(2, 10)}`)
  const j = rate(() => js.md5Many(keys))
  const n = rate(() => addon.md5Many(keys))
  console.log(`md5-batch,${count} keys,${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
}
for (const records of [1, 4, 16, 100, 1000]) {
  const parts: Buffer[] = []
  for (let i = 0; i < records; i++) {
    const input = { partitionKey: `k${i}`, data: randomBytes(100), producerTimeMs: 0, flags: 0 }
    const b = Buffer.alloc(js.logRecordSize(input))
    js.encodeLogRecord(b, 0, i, 0, input)
    parts.push(b)
  }
  const region = Buffer.concat(parts)
  const j = rate(() => js.scanLog(region, 0, region.length, 0))
  const n = rate(() => addon.scanLog(region, 0, region.length, 0))
  console.log(`log-scan,${records} records (${region.length} B),${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
}
// Device batches: 100-byte records with sensor-like keys, as the agent sends them.
const bounds4 = Buffer.alloc(64)
for (let k = 1; k < 4; k++) bounds4.writeBigUInt64BE(BigInt(k) << 62n, k * 16)
for (const records of [1, 4, 16, 100, 500]) {
  const batch = { epoch: 3n, sequence: 9, records: Array.from({ length: records }, (_, i) => ({ partitionKey: `sensor-${i % 64}`, data: randomBytes(100), producerTimeMs: 1.7e12 + i, clockSynced: true })) }
  const label = `${records} records`
  const jsCrc = (b: Uint8Array, i: number, s: number, e: number) => addon.crc32c(b, i, s, e)
  {
    // Both sides use the addon's CRC, so this measures the field walk itself.
    const j = rate(() => js.encodeBatch(batch, jsCrc))
    const n = rate(() => addon.encodeBatch(batch))
    console.log(`batch-encode,${label},${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
  }
  const frame = js.encodeBatch(batch)
  {
    const j = rate(() => js.scanBatch(frame))
    const n = rate(() => addon.scanBatch(frame))
    console.log(`batch-scan,${label} (${frame.length} B),${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
  }
  const scan = js.scanBatch(frame)
  {
    const j = rate(() => js.hashRoute(frame, scan.fields, bounds4))
    const n = rate(() => addon.hashRoute(frame, scan.fields, bounds4))
    console.log(`batch-hash-route,${label},${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
  }
  {
    const indices = Uint32Array.from({ length: records }, (_, i) => i)
    const device = Buffer.from('device-1')
    const out = Buffer.alloc(js.logBatchSize(scan.fields, indices, device.length))
    const positions = new Uint32Array(records)
    const j = rate(() => js.encodeLogBatch(out, 0, frame, scan.fields, scan.times, indices, 0, 1.7e12, device, positions))
    const n = rate(() => addon.encodeLogBatch(out, 0, frame, scan.fields, scan.times, indices, 0, 1.7e12, device, positions))
    console.log(`batch-to-log,${label},${Math.round(j)},${Math.round(n)},${(n / j).toFixed(2)},`)
  }
}
