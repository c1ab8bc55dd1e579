/**
 * Records kept in chunks (agent/outbox/records.ts): every field comes back as it was stored, a
 * deletion that cuts a chunk keeps the rest under their ids, batches end on chunk boundaries, and the
 * batch sequence and the outbox clock, no longer written with every commit, carry on across a crash.
 */
import t from 'tap'
import { join } from 'node:path'
import { copyFileSync, existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { Outbox, type OutboxOptions } from '../../agent/outbox/index.js'
import { Records } from '../../agent/outbox/records.js'
import { migrate } from '../../agent/outbox/migrations.js'
import { manualClock } from '../../hardware/index.js'
import { seeded } from '../helpers/random.js'
import { tempDir } from '../helpers/tmp.js'

const open = (path: string, o: Partial<OutboxOptions> = {}) => new Outbox({ path, maxBytes: 64 << 20, synchronous: 'FULL', commitIntervalMs: 60_000, commitRows: 100_000, policies: {}, ...o })

/** The files a power cut leaves of an open outbox (the WAL index is in memory: the WAL is replayed on open). */
function crashImage(from: string, to: string): void {
  for (const suffix of ['', '-wal']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix)
}

t.test('every field of every record comes back as stored, across chunk cuts', async (t) => {
  const dir = tempDir(t)
  const db = new Database(join(dir, 'chunks.db'))
  t.teardown(() => db.close())
  migrate(db)
  const records = new Records(db)
  const random = seeded(7)
  let made: { id: number; stream: string; partitionKey: string; explicitHashKey: string | null; data: Buffer; capturedMs: number; clockSynced: boolean }[] = []
  for (let commit = 0; commit < 40; commit++) {
    const wall = 1_700_000_000_000 + commit * 1000 + (commit % 4 === 0 ? 0.5 : 0) // a fractional commit time now and then
    const rows = Array.from({ length: 1 + Math.floor(random() * 30) }, (_, i) => {
      const kind = Math.floor(random() * 5)
      return {
        stream: random() < 0.5 ? 'a' : 'b',
        partitionKey: kind === 0 ? 'ключ-ü' : `k${i}`,
        data: Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256))),
        ...(kind === 1 ? { explicitHashKey: '340282366920938463463374607431768211455' } : {}),
        // A capture time far from the commit's, a fractional one, one before it, none (the commit's).
        ...(kind === 2 ? { capturedMs: 12.5 } : kind === 3 ? { capturedMs: wall - 86_400_000 } : kind === 4 ? {} : { capturedMs: Math.floor(wall) + 3 }),
        ...(random() < 0.2 ? { clockSynced: false } : {}),
      }
    })
    const sizes = rows.map((r) => 10 + r.data.length)
    const ids = records.insert(rows, sizes, wall, commit * 1000, { records: 7, bytes: 1 << 20 })
    rows.forEach((r, i) => made.push({ id: ids[i]!, stream: r.stream, partitionKey: r.partitionKey, explicitHashKey: r.explicitHashKey ?? null, data: r.data, capturedMs: r.capturedMs ?? wall, clockSynced: r.clockSynced !== false }))
  }
  t.ok(made.every((r, i) => i === 0 || r.id > made[i - 1]!.id), 'ids rise in the order given')
  const read = (stream: string) => records.range(stream, 0, Number.MAX_SAFE_INTEGER)
  const expect = (stream: string) => made.filter((r) => r.stream === stream).map(({ stream: _s, ...r }) => r)
  t.same(read('a'), expect('a'), 'stream a, every field')
  t.same(read('b'), expect('b'), 'stream b, every field')

  // Deletions that cut chunks in the middle, at their heads and tails, and single records.
  const a = made.filter((r) => r.stream === 'a')
  const cuts = [[a[3]!.id, a[9]!.id], [a[20]!.id, a[20]!.id], [a[40]!.id, a[41]!.id]] as const
  for (const [first, last] of cuts) {
    const before = records.sumRange('a', first, last)
    records.deleteRange('a', first, last)
    t.same(records.sumRange('a', first, last), { n: 0, bytes: 0 }, `ids ${first}..${last} gone (${before.n} records)`)
    made = made.filter((r) => !(r.stream === 'a' && r.id >= first && r.id <= last))
  }
  t.same(read('a'), expect('a'), 'the rest of stream a is there under its ids, every field')
  t.same(read('b'), expect('b'), 'stream b untouched')
  t.same(records.perStream().sort((x, y) => x.stream.localeCompare(y.stream)).map((s) => [s.stream, s.count]), [['a', expect('a').length], ['b', expect('b').length]], 'the tallies agree')
  const one = made.find((r) => r.stream === 'b' && r.explicitHashKey)!
  t.same(records.one(one.id)?.data, one.data, 'one record by id')
  const sized = records.sizes('a', a[2]!.id, 5)
  t.same(sized.map((r) => r.id), [a[10]!.id, a[11]!.id, a[12]!.id, a[13]!.id, a[14]!.id].slice(0, sized.length), 'sizes after an id skip what was deleted')
})

t.test('batches end on chunk boundaries when the limits allow, and their acknowledgement deletes whole chunks', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const box = open(path)
  t.teardown(() => box.close())
  // Three commits of 4, 4 and 4 records: a batch of at most 10 takes the first two chunks (8), not 10.
  for (let c = 0; c < 3; c++) {
    const p = box.enqueue(Array.from({ length: 4 }, (_, i) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`r${c * 4 + i}`) })))
    box.commit()
    await p
  }
  const first = box.formBatch(10, 1 << 20)!
  t.equal(first.count, 8, 'the batch stops at the end of the second chunk')
  const second = box.formBatch(10, 1 << 20)!
  t.equal(second.count, 4)
  // A chunk larger than a batch is cut, and the rest stays.
  const p = box.enqueue(Array.from({ length: 25 }, (_, i) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`big${i}`) })))
  box.commit()
  await p
  const cut = box.formBatch(10, 1 << 20)!
  t.equal(cut.count, 10, 'a chunk larger than a batch is cut')
  box.ack(first.seq)
  box.ack(cut.seq)
  box.commit()
  t.equal(box.backlog(), 4 + 15, 'the acknowledged batches left; the cut chunk kept its other 15')
  const rest = box.formBatch(100, 1 << 20)!
  t.same(box.rows(rest).map((r) => r.data.toString()), Array.from({ length: 15 }, (_, i) => `big${i + 10}`), 'in order, after the cut')
})

t.test('the batch sequence and the outbox clock carry on across a power cut, with no write of their own per commit', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'outbox.db')
  const clock = manualClock({ wallMs: 1_700_000_000_000 })
  const box = open(path, { clock })
  t.teardown(() => box.close())
  box.formInCommits({ slots: () => 1, maxRecords: 100, maxBytes: 1 << 20 })
  const seqs: number[] = []
  box.on('formed', () => { for (const b of box.formedBatches()) if (!seqs.includes(b.seq)) seqs.push(b.seq) })
  for (let i = 0; i < 5; i++) {
    clock.advance(1000)
    for (const b of box.formedBatches()) box.ack(b.seq)
    const p = box.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from(`r${i}`) }])
    box.commit()
    await p
  }
  t.same(seqs, [0, 1, 2, 3, 4], 'a batch formed with each commit, each acknowledged by the next')
  const cutWithBatch = join(dir, 'cut1.db')
  crashImage(path, cutWithBatch)
  // Acknowledge the last: no batch is left, and the next sequence must be kept elsewhere.
  clock.advance(1000)
  box.ack(4)
  box.commit()
  t.equal(box.backlog(), 0)
  const cutEmpty = join(dir, 'cut2.db')
  crashImage(path, cutEmpty)

  const a = open(cutWithBatch, { clock })
  t.teardown(() => a.close())
  t.equal(a.formedBatches().map((b) => b.seq).join(), '4', 'the unacknowledged batch is there to resend')
  t.ok(a.monoNow() >= 5000, `the clock carries on from the last chunk (${a.monoNow()} ms)`)
  const stored = a.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from('after') }])
  a.commit()
  await stored
  t.equal(a.formBatch(10, 1 << 20)!.seq, 5, 'the next batch takes the next sequence')

  const b = open(cutEmpty, { clock })
  t.teardown(() => b.close())
  t.equal(b.backlog(), 0)
  t.ok(b.monoNow() >= 5000, `with no chunk left the clock carries on from the meta row (${b.monoNow()} ms)`)
  const q = b.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from('after') }])
  b.commit()
  await q
  t.equal(b.formBatch(10, 1 << 20)!.seq, 5, 'no sequence the relay has seen is sent again')
})

t.test('a chunk whose bytes changed on the storage is dropped, counted and raised; the rest flows on', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const a = open(path)
  for (let c = 0; c < 4; c++) {
    const p = a.enqueue(Array.from({ length: 5 }, (_, i) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`c${c}-r${i}`) })))
    a.commit()
    await p
  }
  // The fourth chunk goes into a batch before the damage: a formed batch all of whose records are lost.
  a.formBatch(5, 1 << 20)
  a.close()
  const db = new Database(path)
  const chunks = db.prepare('SELECT id, body FROM chunks ORDER BY id').all() as { id: number; body: Buffer }[]
  t.equal(chunks.length, 4)
  const flipped = Buffer.from(chunks[1]!.body)
  flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0x20 // a data byte: only the checksum tells
  db.prepare('UPDATE chunks SET body = ? WHERE id = ?').run(flipped, chunks[1]!.id)
  db.prepare("UPDATE chunks SET sizes = x'ffff' WHERE id = ?").run(chunks[2]!.id) // a sizes table that runs off its end
  const first = Buffer.from(chunks[0]!.body)
  first[0] = 0x7f // the first key's length now runs past the body
  db.prepare('UPDATE chunks SET body = ? WHERE id = ?').run(first, chunks[0]!.id)
  db.close()

  const logged: string[] = []
  const box = open(path, { log: (event) => { logged.push(event) } })
  t.teardown(() => box.close())
  const dropped: [string, string, number][] = []
  box.on('dropped', (stream, reason, n) => dropped.push([stream, reason, n]))
  const formed = box.formedBatches()
  t.equal(formed.length, 1, 'the batch formed before the damage')
  // The formed batch is chunk 0 (5 records): its key length is damaged, so nothing of it can be sent.
  t.same(box.rows(formed[0]!), [], 'a batch whose every chunk is damaged comes back empty')
  box.ack(formed[0]!.seq)
  const next = box.formBatch(100, 1 << 20)!
  t.same(box.rows(next).map((r) => r.data.toString()), ['c3-r0', 'c3-r1', 'c3-r2', 'c3-r3', 'c3-r4'], 'the undamaged chunk is sent')
  t.same(dropped, [['s', 'damaged', 5], ['s', 'damaged', 5], ['s', 'damaged', 5]], 'each damaged chunk is dropped and counted')
  t.match(box.alarms, [{ code: 'OUTBOX_DAMAGED' }])
  t.ok(logged.includes('outbox_chunk_damaged'))
  t.match(box.stats(), { drops: [{ stream: 's', reason: 'damaged', count: 15 }] })
  box.ack(next.seq)
  const p = box.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from('after') }])
  box.commit()
  await p
  t.equal(box.backlog(), 1, 'new records are stored; the damaged and the sent are gone')
})

t.test('acknowledging a batch whose chunks were dropped as damaged leaves the batch before it whole', async (t) => {
  const path = join(tempDir(t), 'outbox.db')
  const a = open(path)
  // Two chunks of 5 with a record between them that no batch can hold: it is dead-lettered when the
  // second batch is formed, leaving a gap in the ids between the two batches' chunks.
  for (const rows of [[0, 5], [1, 1], [2, 5]]) {
    const [c, n] = rows as [number, number]
    const p = a.enqueue(Array.from({ length: n }, (_, i) => ({ stream: 's', partitionKey: 'k', data: c === 1 ? Buffer.alloc(1000) : Buffer.from(`c${c}-r${i}`) })))
    a.commit()
    await p
  }
  const first = a.formBatch(5, 400)!
  const second = a.formBatch(5, 400)!
  t.equal(second.firstId, first.lastId + 2, 'a gap of one id between the batches')
  a.close()
  const db = new Database(path)
  const [, damaged] = db.prepare('SELECT id, body FROM chunks ORDER BY id').all() as { id: number; body: Buffer }[]
  const body = Buffer.from(damaged!.body)
  body[body.length - 2] = body[body.length - 2]! ^ 1
  db.prepare('UPDATE chunks SET body = ? WHERE id = ?').run(body, damaged!.id)
  db.close()
  const box = open(path)
  t.teardown(() => box.close())
  t.same(box.rows(second), [], 'the second batch lost its only chunk')
  box.ack(second.seq)
  box.commit()
  t.same(box.rows(first).map((r) => r.data.toString()), ['c0-r0', 'c0-r1', 'c0-r2', 'c0-r3', 'c0-r4'], 'the first batch is whole')
  t.same(box.stats().drops, [{ stream: 's', reason: 'damaged', count: 5 }], 'only the damaged chunk was dropped')
  t.equal(box.backlog(), 5)
})
