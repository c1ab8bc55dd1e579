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
import { tempDir } from '../helpers/tmp.js'

const open = (path: string) => new Outbox({ path, maxBytes: 64 * 1024 * 1024, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
const pageSize = (path: string) => {
  const db = new Database(path, { readonly: true })
  try { return db.pragma('page_size', { simple: true }) as number } finally { db.close() }
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
  const old = new Database(path)
  old.pragma('journal_mode = WAL')
  // The schema as it was before records moved into chunks: the first two migrations.
  for (const [v, sql] of MIGRATIONS.slice(0, 2).entries()) { old.exec(sql as string); old.pragma(`user_version = ${v + 1}`) }
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
