/**
 * Outbox enqueue with group commit at synchronous=FULL, beside a bare better-sqlite3 batched insert
 * loop (WAL, FULL, 1,000 rows per transaction) in the same run. CSV on stdout, progress on stderr.
 * Usage: npx tsx bench/outbox.ts [records=200000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Outbox } from '../agent/outbox/index.js'

const N = Number(process.argv[2] ?? 200_000)
const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-outbox-'))
const data = Buffer.alloc(100, 0x61)

function bare(): number {
  const db = new Database(join(dir, 'bare.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT, partition_key TEXT, explicit_hash_key TEXT, data BLOB, captured_ms REAL, clock_synced INTEGER, mono_ms REAL, size INTEGER)')
  const insert = db.prepare('INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  const batch = db.transaction((from: number) => {
    for (let i = from; i < from + 1000; i++) insert.run('s', `k${i % 64}`, null, data, Date.now(), 1, performance.now(), 120)
  })
  const started = performance.now()
  for (let i = 0; i < N; i += 1000) batch(i)
  const seconds = (performance.now() - started) / 1000
  db.close()
  return N / seconds
}

async function outbox(): Promise<number> {
  const box = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 4 * 1024 * 1024 * 1024, synchronous: 'FULL', commitIntervalMs: 100, commitRows: 1000, policies: {} })
  const started = performance.now()
  // Producers hand over 100 records at a time and wait for "stored", 50 at once.
  let next = 0
  const producer = async () => {
    while (next < N) {
      const from = next
      next += 100
      await box.enqueue(Array.from({ length: 100 }, (_, i) => ({ stream: 's', partitionKey: `k${(from + i) % 64}`, data })))
    }
  }
  await Promise.all(Array.from({ length: 50 }, producer))
  const seconds = (performance.now() - started) / 1000
  box.close()
  return N / seconds
}

process.stderr.write(`bare better-sqlite3, ${N} rows…\n`)
const bareRate = bare()
process.stderr.write(`outbox enqueue, ${N} records…\n`)
const outboxRate = await outbox()
console.log('benchmark,records,records_per_s,ratio_to_bare')
console.log(`sqlite-bare-batched-insert-full,${N},${Math.round(bareRate)},1.00`)
console.log(`outbox-enqueue-group-commit-full,${N},${Math.round(outboxRate)},${(outboxRate / bareRate).toFixed(2)}`)
rmSync(dir, { recursive: true, force: true })
