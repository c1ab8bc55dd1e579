/**
 * The relay's ingest path alone, in process, without MQTT: device batches of 500 records of 100 bytes
 * decoded, validated, hashed, routed and appended to a 4-shard stream with group commit. It isolates
 * the CPU that ingest spends per record from the broker's. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/ingest-cpu.ts [batches=2000] [inflight=8]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { codec } from '../hardware/index.js'
import { FileLogStore } from '../relay/log/filelog.js'
import { SqliteMetadataStore } from '../relay/meta/sqlite.js'
import { Streams } from '../relay/streams.js'
import { Ingest } from '../relay/ingest.js'

const batches = Number(process.argv[2] ?? 2000)
const inflight = Number(process.argv[3] ?? 8)
const dir = mkdtempSync(join(tmpdir(), 'tributary-ingest-cpu-'))
const meta = new SqliteMetadataStore(join(dir, 'meta.db'))
const logs = new FileLogStore({ root: join(dir, 'streams'), groupCommitMs: 0 })
const streams = new Streams({ meta, logs, region: 'us-east-1', accountId: '000000000000', retentionHours: 24 })
await streams.init()
await streams.ensure('bench', 4)
const ingest = new Ingest({ streams, logs, autoCreateStreams: true, autoCreateShardCount: 4, autoCreateMaxPerDevice: 100, maxBatchRecords: 10000, maxDataBytes: 0 })
const payload = Buffer.alloc(100, 0x61)
const frames = Array.from({ length: batches }, (_, k) => codec.encodeBatch({
  epoch: 1n, sequence: k,
  records: Array.from({ length: 500 }, (_, i) => ({ partitionKey: `sensor-${(k * 500 + i) % 977}`, data: payload, producerTimeMs: 1_700_000_000_000 + i, clockSynced: true })),
}))
process.stderr.write(`ingesting ${batches} batches of 500 records, ${inflight} in flight (${codec.implementation})…\n`)
console.log('benchmark,records,seconds,records_per_s,cpu_us_per_record,codec')
const cpu0 = process.cpuUsage()
const t0 = performance.now()
let next = 0
await Promise.all(Array.from({ length: inflight }, async () => {
  while (next < batches) await ingest.ingestBatch('dev-1', 'bench', frames[next++]!)
}))
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const records = batches * 500
console.log(`ingest-in-process,${records},${seconds.toFixed(2)},${Math.round(records / seconds)},${((cpu.user + cpu.system) / records).toFixed(2)},${codec.implementation}`)
await logs.close()
await meta.close()
rmSync(dir, { recursive: true, force: true })
