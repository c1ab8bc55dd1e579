/**
 * Outbox files already on devices: one made before stop 30 (4 KiB pages, the schema's two
 * migrations, records, a formed batch not yet acknowledged, a dead letter) opens with every record,
 * its batch, its epoch and its page size kept, and goes on working; a new file gets 1 KiB pages.
 */
import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Outbox } from '../../agent/outbox/index.js'
import { MIGRATIONS } from '../../agent/outbox/migrations.js'
import { PAGE_SIZE } from '../../agent/outbox/store.js'
import { Records } from '../../agent/outbox/records.js'
import { tempDir } from '../helpers/tmp.js'

const open = (path: string) => new Outbox({ path, maxBytes: 64 * 1024 * 1024, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
const pageSize = (path: string) => {
  const db = new Database(path, { readonly: true })
  try { return db.pragma('page_size', { simple: true }) as number } finally { db.close() }
}

/** An outbox file of the schema before records moved into chunks (the first two migrations), empty. */
function oldSchema(path: string): Database.Database {
  const old = new Database(path)
  old.pragma('journal_mode = WAL')
  for (const [v, sql] of MIGRATIONS.slice(0, 2).entries()) { old.exec(sql as string); old.pragma(`user_version = ${v + 1}`) }
  return old
}

t.test('a new outbox file has 1 KiB pages', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const box = open(path)
  await box.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from('x') }])
  box.close()
  t.equal(PAGE_SIZE, 1024)
  t.equal(pageSize(path), 1024)
})

t.test('an outbox made before (4 KiB pages, records, a formed batch, a dead letter) opens with nothing lost and goes on', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const old = oldSchema(path)
  const insert = old.prepare('INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES (?, ?, NULL, ?, ?, 1, ?, ?)')
  for (let i = 1; i <= 3000; i++) insert.run(i % 2 ? 'a' : 'b', `k${i % 7}`, Buffer.from(`reading-${i}`), 1_700_000_000_000 + i, i, 20 + String(i).length)
  old.prepare('INSERT INTO batches (seq, stream, first_id, last_id, count, bytes) VALUES (41, ?, 1, 99, 50, 1400)').run('a')
  old.prepare("INSERT INTO meta (key, value) VALUES ('epoch', '123456789'), ('next_seq', '42'), ('mono_ms', '3000')").run()
  old.prepare("INSERT INTO dead_letters (stream, partition_key, data, captured_ms, code, message, batch_seq, batch_index, dead_ms, size) VALUES ('b', 'k', x'00', 1, 'RECORD_TOO_LARGE', 'too large', NULL, NULL, 5, 30)").run()
  old.close()
  t.equal(pageSize(path), 4096, 'the old file has 4 KiB pages')

  const box = open(path)
  t.teardown(() => box.close())
  t.equal(box.epoch, 123456789n, 'the producer epoch is kept')
  t.equal(box.backlog(), 3000, 'every record')
  t.same(box.formedBatches().map((b) => [b.seq, b.stream, b.firstId, b.lastId]), [[41, 'a', 1, 99]], 'the batch formed and not acknowledged, to resend first')
  t.equal(box.deadLetters(10, 0, false).length, 1, 'the dead letter')
  t.equal(pageSize(path + ''), 4096, 'the file keeps its page size')
  // It goes on: new records after the old ones, batches from where the old one ended, the old batch acknowledged.
  const ids = await box.enqueue([{ stream: 'a', partitionKey: 'k', data: Buffer.from('new') }])
  t.equal(ids[0], 3001)
  const next = box.formBatch(5000, 1 << 22)!
  t.match(next, { seq: 42, stream: 'a', firstId: 101 }, 'the next batch takes the next sequence, after the formed one')
  t.equal(next.lastId, 3001)
  box.ack(41)
  box.commit()
  t.equal(box.backlog(), 3001 - 50, 'the acknowledged batch left with its records')
})

/** An outbox file of the schema before chunks (the first two migrations), with `n` records of streams a and b. */
function oldOutbox(path: string, n: number): Database.Database {
  const old = oldSchema(path)
  const insert = old.prepare('INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  old.transaction(() => {
    for (let i = 1; i <= n; i++) {
      // Runs of ten records per commit (one mono_ms), alternating streams every 25, a hash key and an unsynced clock now and then.
      insert.run(Math.floor(i / 25) % 2 ? 'b' : 'a', `k${i % 7}`, i % 11 === 0 ? String(i) + '0'.repeat(30) : null, Buffer.from(`reading-${i}`), 1_700_000_000_000 + i + (i % 3 === 0 ? 0.25 : 0), i % 5 === 0 ? 0 : 1, Math.floor(i / 10), 20 + String(i).length)
    }
  })()
  return old
}

/** Every record of an outbox, by stream, formed into batches and read back (the batches are then left formed). */
function readAll(box: Outbox): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (let b = box.formBatch(10_000, 64 << 20); b; b = box.formBatch(10_000, 64 << 20)) {
    const list = out.get(b.stream) ?? []
    for (const r of box.rows(b)) list.push(`${r.id}|${r.partitionKey}|${r.explicitHashKey}|${r.data.toString()}|${r.capturedMs}|${r.clockSynced}`)
    out.set(b.stream, list)
  }
  return out
}

const expected = (n: number, from = 1) => {
  const out = new Map<string, string[]>()
  for (let i = from; i <= n; i++) {
    const stream = Math.floor(i / 25) % 2 ? 'b' : 'a'
    const list = out.get(stream) ?? []
    list.push(`${i}|k${i % 7}|${i % 11 === 0 ? String(i) + '0'.repeat(30) : null}|reading-${i}|${1_700_000_000_000 + i + (i % 3 === 0 ? 0.25 : 0)}|${i % 5 !== 0}`)
    out.set(stream, list)
  }
  return out
}

t.test('a backlog of the schema before chunks moves into chunks in steps, every field of every record kept', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  oldOutbox(path, 45_000).close()
  const box = open(path)
  t.teardown(() => box.close())
  t.equal(box.backlog(), 45_000)
  const all = readAll(box)
  const want = expected(45_000)
  t.equal(all.get('a')?.length, want.get('a')!.length)
  t.same(all, want, 'ids, keys, hash keys, data, capture times and clock flags, in order')
  const db = new Database(path, { readonly: true, fileMustExist: true })
  t.teardown(() => db.close())
})

t.test('a move into chunks cut off between its steps carries on at the next start, losing and repeating nothing', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const old = oldOutbox(path, 30_000)
  // The state a power cut leaves after the first step: the chunk table made, ids 1..20,000 moved.
  old.exec(`CREATE TABLE chunks (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, count INTEGER NOT NULL, bytes INTEGER NOT NULL,
    mono_ms REAL NOT NULL, wall_ms REAL NOT NULL, sizes BLOB NOT NULL, body BLOB NOT NULL, crc INTEGER NOT NULL);
    CREATE INDEX chunks_by_stream ON chunks (stream, id);`)
  const moved = new Records(old)
  const rows = old.prepare('SELECT * FROM records WHERE id <= 20000 ORDER BY id').all() as { id: number; stream: string; partition_key: string; explicit_hash_key: string | null; data: Buffer; captured_ms: number; clock_synced: number; mono_ms: number; size: number }[]
  for (const r of rows) {
    const ids = moved.insert([{ stream: r.stream, partitionKey: r.partition_key, data: r.data, capturedMs: r.captured_ms, clockSynced: r.clock_synced === 1, ...(r.explicit_hash_key ? { explicitHashKey: r.explicit_hash_key } : {}) }], [r.size], r.captured_ms, r.mono_ms, { records: 500, bytes: 1 << 20 })
    if (ids[0] !== r.id) throw new Error(`moved under id ${ids[0]}, not ${r.id}`)
  }
  old.exec('DELETE FROM records WHERE id <= 20000')
  old.close()
  const box = open(path)
  t.teardown(() => box.close())
  t.equal(box.backlog(), 30_000, 'every record, once')
  t.same(readAll(box), expected(30_000), 'every field of every record')
})

t.test('records of up to a megabyte move into chunks a bounded number of bytes at a time, each kept', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const old = oldSchema(path)
  const insert = old.prepare("INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES ('big', 'k', NULL, ?, 1, 1, 1, ?)")
  const big = (i: number) => Buffer.alloc(1_000_000, i)
  for (let i = 1; i <= 40; i++) insert.run(big(i), 1_000_000 + 20)
  old.close()
  const box = open(path)
  t.teardown(() => box.close())
  t.equal(box.backlog(), 40)
  const all = readAll(box).get('big')!
  t.equal(all.length, 40)
  const batch = box.formedBatches()
  const rows = batch.flatMap((b) => box.rows(b))
  t.ok(rows.every((r, i) => r.data.equals(big(i + 1))), 'every megabyte as it was')
})
