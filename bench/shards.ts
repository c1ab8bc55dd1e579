/**
 * Does a group commit's cost grow with the shards it touches? The shard-log store alone, in
 * process: 10 writers each put 500 records with random keys (as PutRecords does: each record to the
 * shard its key hashes to) and wait for the commit, into one 4-shard stream and then into 10 streams
 * × 1,000 shards, with the write-ahead journal (the relay's default: one fdatasync per commit) and
 * without it (one fdatasync per touched segment). Prints records/s and the 10,000-shard rate as a
 * share of the 4-shard rate (issue 17's goal: ≥ 0.7). CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/shards.ts [seconds=8] [writers=10]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStore } from '../relay/log/filelog.js'
import type { ShardLog } from '../relay/log/types.js'

const seconds = Number(process.argv[2] ?? 8)
const writers = Number(process.argv[3] ?? 10)
const PER_REQUEST = 500
const payload = Buffer.alloc(100, 0x61)

/** Starts V8's CPU profiler on the write phase (SHARDS_PROFILE=path prefix); the function returned stops it and saves the profile. */
async function profiling(): Promise<(path: string) => Promise<void>> {
  const { Session } = await import('node:inspector/promises')
  const { writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return async (path) => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(path, JSON.stringify(profile))
    session.disconnect()
  }
}

/** The last run's CPU (user + system, all threads) per record, µs. */
let cpuPerRecord = 0

async function run(label: string, streams: number, shardsPerStream: number, journal: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-shards-'))
  const store = new FileLogStore({ root: join(dir, 'streams'), ...(journal ? { journalPath: join(dir, 'streams.journal'), journalBytes: Number(process.env.JOURNAL_BYTES ?? 32 * 1024 * 1024) } : {}) })
  const logs: ShardLog[][] = []
  for (let s = 0; s < streams; s++) {
    process.stderr.write(`\r${label}: opening stream ${s + 1}/${streams} (${shardsPerStream} shards)…`)
    logs.push(await Promise.all(Array.from({ length: shardsPerStream }, (_, i) => store.open(`stream-${s}`, `shardId-${String(i).padStart(12, '0')}`))))
  }
  process.stderr.write(`\r${label}: writing for ${seconds} s…${' '.repeat(30)}\n`)
  const profile = process.env.SHARDS_PROFILE ? await profiling() : null
  let records = 0
  const deadline = performance.now() + seconds * 1000
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    let request = 0
    while (performance.now() < deadline) {
      const stream = logs[(w + request++) % streams]!
      // Random keys hash uniformly over the stream's shards: group the request's records by shard.
      const byShard = new Map<number, number>()
      for (let i = 0; i < PER_REQUEST; i++) {
        const shard = Math.floor(Math.random() * shardsPerStream)
        byShard.set(shard, (byShard.get(shard) ?? 0) + 1)
      }
      for (const [shard, n] of byShard) {
        stream[shard]!.append(Array.from({ length: n }, (_, i) => ({ partitionKey: `k${i}`, data: payload, producerTimeMs: 0, flags: 0 })))
      }
      await store.commit()
      records += PER_REQUEST
    }
  }))
  const rate = records / ((performance.now() - t0) / 1000)
  const cpu = process.cpuUsage(cpu0)
  cpuPerRecord = (cpu.user + cpu.system) / records
  if (profile) await profile(`${process.env.SHARDS_PROFILE}-${streams}x${shardsPerStream}-${journal ? 'journal' : 'fsync'}.cpuprofile`)
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  return rate
}

console.log('benchmark,layout,journal,records_per_s,share_of_4_shards,cpu_us_per_record')
// SHARDS_JOURNAL=1 (or 0): only that mode, for a profile.
for (const journal of [true, false].filter((j) => process.env.SHARDS_JOURNAL === undefined || String(Number(j)) === process.env.SHARDS_JOURNAL)) {
  const name = journal ? 'journal' : 'fsync-per-segment'
  const small = await run(`${name}, 1 × 4 shards`, 1, 4, journal)
  console.log(`shards,1x4,${journal},${Math.round(small)},1.00,${cpuPerRecord.toFixed(2)}`)
  const large = await run(`${name}, 10 × 1,000 shards`, 10, 1000, journal)
  console.log(`shards,10x1000,${journal},${Math.round(large)},${(large / small).toFixed(2)},${cpuPerRecord.toFixed(2)}`)
}
