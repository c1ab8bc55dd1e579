/**
 * Delivery-stream processing rates on this machine, in records/s of ~100 B JSON records: each
 * object format and compression (one object of 50,000 records, as a 5 MiB buffer holds), and jq
 * dynamic partitioning through one long-running jq. Issue 14's floors: raw+gzip ≥ 200,000/s,
 * Parquet ≥ 100,000/s. A Markdown table on stdout, progress on stderr.
 * Usage: npx tsx bench/delivery-format.ts [seconds per row=2]
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { encodeObject, encodeObjectAsync, JqPartitioner } from '../relay/delivery/format/index.js'
import type { Column, OutputRecord, Processing } from '../relay/delivery/types.js'

const SECONDS = Number(process.argv[2] ?? 2)
const BATCH = 50_000

function makeRecords(n: number): OutputRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    shardId: 'shardId-000000000000',
    sequenceNumber: String(49_500_000_000_000_000_000n + BigInt(i)),
    partitionKey: `sensor-${i % 256}`,
    arrivalMs: 1_700_000_000_000 + i,
    data: Buffer.from(JSON.stringify({ device: `sensor-${String(i % 256).padStart(3, '0')}`, seq: i, temp: Math.round(Math.sin(i) * 2000) / 100, on: i % 3 === 0, at: 1_700_000_000_000 + i, site: `site-${i % 7}` })),
    partitionKeys: {},
  }))
}

const records = makeRecords(BATCH)
const avgBytes = records.reduce((n, r) => n + r.data.length, 0) / records.length
const columns: Column[] = [
  { name: 'device' }, { name: 'seq', type: 'int64' }, { name: 'temp', type: 'double' }, { name: 'on', type: 'boolean' },
  { name: 'at', type: 'timestamp-millis' }, { name: 'site' },
]
const base: Processing = { format: { type: 'raw' }, newlineDelimiter: true, compression: 'UNCOMPRESSED' }

interface Row { name: string; recordsPerS: number; perCpuS: number; mbPerS: number; ratio: number; floor?: number }

/** CPU seconds a child process has used so far (utime + stime from /proc, in clock ticks of 1/100 s). */
function childCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const rows: Row[] = []

async function measure(name: string, run: () => Promise<number> | number, floor?: number, childPid?: () => number | undefined): Promise<void> {
  process.stderr.write(`${name}…\n`)
  await run() // warm-up
  let n = 0
  let outBytes = 0
  const start = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const child0 = childCpuSeconds(childPid?.())
  let elapsed = 0
  while (elapsed < SECONDS) {
    outBytes += await run()
    n += BATCH
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  }
  const cpu = process.cpuUsage(cpu0)
  // Node's own CPU counts the thread pool's too (async gzip); jq's is read from /proc.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6 + childCpuSeconds(childPid?.()) - child0
  rows.push({ name, recordsPerS: n / elapsed, perCpuS: n / cpuSeconds, mbPerS: (n * avgBytes) / elapsed / 1e6, ratio: outBytes / (n * avgBytes), floor })
}

const encode = (p: Partial<Processing>) => () => encodeObject(records, { ...base, ...p }).body.length

await measure('raw, newline, gzip', encode({ compression: 'GZIP' }), 200_000)
await measure('raw, newline, gzip (async: thread pool)', async () => (await encodeObjectAsync(records, { ...base, compression: 'GZIP' })).body.length, 200_000)
await measure('raw, newline, Snappy (framed)', encode({ compression: 'Snappy' }))
await measure('raw, newline, uncompressed', encode({}))
await measure('CSV, uncompressed', encode({ format: { type: 'csv', columns, header: true } }))
await measure('CSV, gzip', encode({ format: { type: 'csv', columns, header: true }, compression: 'GZIP' }))
await measure('Parquet, SNAPPY inside', encode({ format: { type: 'parquet', columns, compression: 'SNAPPY' } }), 100_000)
await measure('Parquet, GZIP inside', encode({ format: { type: 'parquet', columns, compression: 'GZIP' } }), 100_000)
await measure('Parquet, UNCOMPRESSED', encode({ format: { type: 'parquet', columns, compression: 'UNCOMPRESSED' } }), 100_000)

const jq = await JqPartitioner.create({ device: '.device', site: '.site' })
await measure('jq partitioning (2 keys, one jq 1.6)', async () => {
  const answers = await jq.keys(records)
  if (answers.length !== BATCH || 'error' in answers[0]!) throw new Error('jq gave a wrong answer')
  return 0
}, undefined, () => jq.pid)
await jq.close()

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
console.log(`Delivery processing, ${BATCH.toLocaleString('en-US')} records of ${avgBytes.toFixed(0)} B JSON per object, Node ${process.version}, ${SECONDS} s per row, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
console.log('records/CPU-s: records per second of CPU used (this process, its thread pool, and jq): the rate on an idle core.\n')
console.log('| processing | records/s | records/CPU-s | MB/s in | out/in | floor |')
console.log('|---|---:|---:|---:|---:|---|')
for (const r of rows) {
  const floor = r.floor === undefined ? '' : `${fmt(r.floor)}/s ${r.recordsPerS >= r.floor ? 'met' : '**not met**'}`
  console.log(`| ${r.name} | ${fmt(r.recordsPerS)} | ${fmt(r.perCpuS)} | ${r.mbPerS.toFixed(1)} | ${r.ratio === 0 ? '–' : r.ratio.toFixed(3)} | ${floor} |`)
}
