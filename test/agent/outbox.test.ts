import t from 'tap'
import { join } from 'node:path'
import { readFileSync, writeFileSync, statSync, readdirSync, truncateSync } from 'node:fs'
import Database from 'better-sqlite3'
import { Outbox, OutboxFullError, type OutboxOptions } from '../../agent/outbox/index.js'
import { manualClock } from '../../hardware/index.js'
import type { StreamPolicy } from '../../agent/config.js'
import { tempDir } from '../helpers/tmp.js'

const policy = (name: string, p: Partial<StreamPolicy> = {}): StreamPolicy => ({ name, priority: 0, maxBytes: 0, maxAgeSeconds: 0, onFull: 'drop-oldest', ...p })

function outbox(t: Tap, dir: string, o: Partial<OutboxOptions> = {}): Outbox {
  const box = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 64 * 1024 * 1024, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {}, ...o })
  t.teardown(() => box.close())
  return box
}
type Tap = { teardown(fn: () => unknown): void }

const rows = (stream: string, from: number, n: number, size = 10) =>
  Array.from({ length: n }, (_, i) => ({ stream, partitionKey: `k${(from + i) % 3}`, data: Buffer.from(String(from + i).padEnd(size, '.')) }))

t.test('records are stored only once committed, and survive a reopen with the same epoch', async (t) => {
  const dir = tempDir(t)
  const a = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 8 << 20, synchronous: 'FULL', commitIntervalMs: 50, commitRows: 1000, policies: {} })
  const ids = await a.enqueue(rows('s', 0, 10))
  t.equal(ids.length, 10)
  t.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!), 'ids follow capture order')
  const epoch = a.epoch
  a.close()
  const b = outbox(t, dir)
  t.equal(b.epoch, epoch, 'the producer epoch lives in the outbox')
  t.equal(b.backlog(), 10)
})

t.test('a formed batch keeps its identity across a restart and leaves only when acknowledged', async (t) => {
  const dir = tempDir(t)
  const a = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 8 << 20, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
  await a.enqueue(rows('s', 0, 25))
  const first = a.formBatch(10, 1 << 20)!
  const second = a.formBatch(10, 1 << 20)!
  t.same([first.seq, first.count, second.seq, second.count], [0, 10, 1, 10])
  const firstRows = a.rows(first).map((r) => r.data.toString())
  a.close() // as after a crash: nothing acknowledged
  const b = outbox(t, dir)
  t.same(b.formedBatches().map((x) => [x.seq, x.firstId, x.lastId]), [[0, first.firstId, first.lastId], [1, second.firstId, second.lastId]])
  t.same(b.rows(b.formedBatches()[0]!).map((r) => r.data.toString()), firstRows, 'the resend is the same batch')
  const third = b.formBatch(10, 1 << 20)!
  t.same([third.seq, third.count], [2, 5], 'new batches continue after the formed ones')
  b.ack(0)
  b.commit()
  t.equal(b.backlog(), 15)
  t.same(b.formedBatches().map((x) => x.seq), [1, 2])
})

t.test('drop-oldest at a stream cap keeps the newest data and counts exactly what it dropped', async (t) => {
  const dir = tempDir(t)
  // Each record takes 16 + 2 + 10 = 28 bytes; a cap of 28 * 100 holds exactly 100.
  const box = outbox(t, dir, { policies: { s: policy('s', { maxBytes: 2800 }) } })
  for (let i = 0; i < 300; i += 30) await box.enqueue(rows('s', i, 30))
  t.equal(box.backlog(), 100)
  const batch = box.formBatch(1000, 1 << 20)!
  const kept = box.rows(batch).map((r) => Number.parseInt(r.data.toString()))
  t.same(kept, Array.from({ length: 100 }, (_, i) => 200 + i), 'the newest 100 are kept, in order')
  t.same(box.stats().drops, [{ stream: 's', reason: 'stream-cap', count: 200 }])
})

t.test('reject-new at a stream cap refuses new records with a clear error and loses nothing stored', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir, { policies: { s: policy('s', { maxBytes: 2800, onFull: 'reject-new' }) } })
  await box.enqueue(rows('s', 0, 100))
  await t.rejects(box.enqueue(rows('s', 100, 1)), { name: 'OutboxFullError', code: 'STORAGE_FULL', message: /stream s holds 2800 bytes.*cap of 2800/ })
  t.equal(box.backlog(), 100)
  const kept = box.rows(box.formBatch(1000, 1 << 20)!).map((r) => Number.parseInt(r.data.toString()))
  t.same(kept, Array.from({ length: 100 }, (_, i) => i), 'everything stored before is still there')
  t.same(box.stats().drops, [], 'a refusal is not a drop')
})

t.test('at the whole file cap, drop-oldest streams make room and reject-new streams are refused', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir, { maxBytes: 1 << 20, policies: { bulk: policy('bulk'), precious: policy('precious', { onFull: 'reject-new' }) } })
  let refused = 0
  let stored = 0
  for (let i = 0; i < 120; i++) {
    await box.enqueue(rows('bulk', i * 50, 50, 400)).then(() => { stored += 50 }, () => {})
  }
  const size = statSync(join(dir, 'outbox.db')).size
  t.ok(size <= 1 << 20, `the file stays at or under its cap (${size} bytes)`)
  const drops = box.stats().drops.find((d) => d.reason === 'outbox-full')
  t.ok(drops && drops.count > 0, `old bulk records were dropped to make room (${drops?.count})`)
  t.equal(box.backlog() + drops!.count, stored, 'every record is either in the outbox or counted as dropped')
  await box.enqueue(rows('precious', 0, 50, 400)).catch((err) => { if (err instanceof OutboxFullError) refused++ })
  t.equal(refused, 1, 'a reject-new stream is refused when the file is full')
})

t.test('acknowledged batches leave in the same commit as new records, and at the file cap they make the room', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir, { maxBytes: 1 << 20, policies: { precious: policy('precious', { onFull: 'reject-new' }) } })
  // Fill the file with a reject-new stream until it refuses.
  for (let i = 0; i < 200; i++) {
    const ok = await box.enqueue(rows('precious', i * 50, 50, 400)).then(() => true, () => false)
    if (!ok) break
  }
  await t.rejects(box.enqueue(rows('precious', 1_000_000, 50, 400)), { name: 'OutboxFullError' }, 'the file is full')
  // The relay acknowledges most of it; new records handed over before the commit that deletes them fit.
  const batches: number[] = []
  for (;;) {
    const b = box.formBatch(500, 1 << 20)
    if (!b) break
    batches.push(b.seq)
  }
  for (const seq of batches.slice(0, -1)) box.ack(seq)
  const late = box.enqueue(rows('precious', 2_000_000, 50, 400))
  await t.resolves(late, 'new records are stored once acknowledged ones make room')
  t.same(box.formedBatches().map((b) => b.seq), batches.slice(-1), 'every acknowledged batch left')
  t.equal(box.backlog(), box.formedBatches()[0]!.count + 50, 'the backlog is the unacknowledged batch plus the new records')
  t.same(box.stats().drops, [], 'nothing was dropped for it')
})

t.test('a record the relay rejects goes to the dead-letter table; the rest of its batch is delivered', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir)
  await box.enqueue(rows('s', 0, 5))
  const b = box.formBatch(10, 1 << 20)!
  box.deadLetter(b.seq, [{ index: 2, code: 'PARTITION_KEY_INVALID', message: 'bad key' }])
  box.ack(b.seq)
  box.commit()
  t.equal(box.backlog(), 0)
  const dead = box.deadLetters()
  t.equal(dead.length, 1)
  t.match(dead[0], { stream: 's', code: 'PARTITION_KEY_INVALID', batchSeq: b.seq, batchIndex: 2 })
  t.equal(dead[0]?.data?.toString().replace(/\.+$/, ''), '2')
})

t.test('a record too large for any batch is dead-lettered at once and does not block the others', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir)
  await box.enqueue([...rows('s', 0, 1), { stream: 's', partitionKey: 'big', data: Buffer.alloc(5000) }, ...rows('s', 1, 2)])
  const first = box.formBatch(10, 2000)!
  t.equal(first.count, 1)
  const second = box.formBatch(10, 2000)!
  t.same(box.rows(second).map((r) => r.partitionKey), ['k1', 'k2'], 'the records behind it go on')
  t.match(box.deadLetters(), [{ partitionKey: 'big', code: 'RECORD_TOO_LARGE' }])
})

t.test('the age limit runs on the outbox clock: a wall-clock jump changes nothing', async (t) => {
  const dir = tempDir(t)
  const clock = manualClock()
  const box = outbox(t, dir, { clock, policies: { s: policy('s', { maxAgeSeconds: 60 }) } })
  await box.enqueue(rows('s', 0, 10))
  clock.jumpWall(86_400_000) // a day forward
  clock.advance(30_000)
  t.equal(box.expire(), 0, 'a day of wall clock is not age')
  await box.enqueue(rows('s', 10, 10))
  clock.jumpWall(-2 * 86_400_000) // two days back
  clock.advance(31_000)
  t.equal(box.expire(), 10, 'only the first ten are past 60 s of outbox time')
  t.same(box.stats().drops, [{ stream: 's', reason: 'expired', count: 10 }])
  const kept = box.rows(box.formBatch(100, 1 << 20)!).map((r) => Number.parseInt(r.data.toString()))
  t.same(kept, Array.from({ length: 10 }, (_, i) => 10 + i), 'order is capture order, whatever the wall clock said')
})

for (const damage of ['truncated', 'byte-flipped'] as const) {
  t.test(`a ${damage} outbox is quarantined, an alarm raised, and a fresh one works`, async (t) => {
    const dir = tempDir(t)
    const path = join(dir, 'outbox.db')
    const a = new Outbox({ path, maxBytes: 8 << 20, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
    for (let i = 0; i < 20; i++) await a.enqueue(rows('s', i * 100, 100, 200))
    a.close()
    if (damage === 'truncated') truncateSync(path, Math.floor(statSync(path).size / 3))
    else {
      const buf = readFileSync(path)
      // A page's head (a B-tree page's type and first freeblock, an overflow page's next page) and
      // a byte of its content, every 4 KiB after the first. SQLite checks structure, not content.
      for (let i = 4096; i < buf.length; i += 4096) for (const at of [1, 100]) buf[i + at] = buf[i + at]! ^ 0xff
      writeFileSync(path, buf)
    }
    const box = outbox(t, dir)
    t.match(box.alarms, [{ code: 'OUTBOX_QUARANTINED' }])
    t.ok(readdirSync(dir).some((n) => n.startsWith('outbox.db.corrupt-')), 'the damaged file is kept aside')
    await box.enqueue(rows('s', 0, 5))
    t.equal(box.backlog(), 5, 'the fresh outbox works')
    box.close()
    const check = new Database(path, { readonly: true })
    t.equal(check.pragma('quick_check', { simple: true }), 'ok')
    check.close()
  })
}

t.test('after an outage the higher-priority stream drains first', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir, { policies: { bulk: policy('bulk', { priority: 1 }), alarms: policy('alarms', { priority: 10 }) } })
  await box.enqueue(rows('bulk', 0, 30))
  await box.enqueue(rows('alarms', 0, 5))
  const order = [box.formBatch(10, 1 << 20)!, box.formBatch(10, 1 << 20)!].map((b) => b.stream)
  t.same(order, ['alarms', 'bulk'])
})

t.test('a partly rejected batch is resent unchanged; its refused records are dead-lettered once', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir)
  await box.enqueue(rows('s', 0, 3))
  const b = box.formBatch(10, 1 << 20)!
  box.deadLetter(b.seq, [{ index: 1, code: 'PARTITION_KEY_INVALID', message: 'bad key' }])
  t.same(box.rows(box.formedBatches()[0]!).map((r) => r.data.toString().replace(/\.+$/, '')), ['0', '1', '2'], 'before the PUBACK, the batch is what it was')
  box.deadLetter(b.seq, [{ index: 1, code: 'PARTITION_KEY_INVALID', message: 'bad key' }])
  box.ack(b.seq)
  box.commit()
  t.equal(box.deadLetters().length, 1, 'refused again on the resend, recorded once')
  t.match(box.stats().deadLetters, [{ stream: 's', code: 'PARTITION_KEY_INVALID', count: 1 }])
  t.equal(box.backlog(), 0)
})

t.test('dead letters are bounded: the oldest go first and are counted', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir, { maxBytes: 1 << 20 })
  for (let i = 0; i < 30; i++) {
    await box.enqueue(rows('s', i * 10, 10, 2000))
    const b = box.formBatch(100, 1 << 20)!
    box.deadLetter(b.seq, null, { code: 'STREAM_NOT_FOUND', message: 'no such stream' })
    box.ack(b.seq)
    box.commit()
  }
  const kept = box.deadLetters(1000, 0, false).length
  t.ok(kept < 300 && kept > 0, `${kept} of 300 dead letters kept under a tenth of the outbox`)
  t.match(box.stats().drops, [{ stream: '(dead letters)', reason: 'dead-letter-cap', count: 300 - kept }])
  await box.enqueue(rows('s', 1000, 10))
  t.equal(box.backlog(), 10, 'the outbox keeps accepting records')
})

t.test('expiry walks only the old end of a large backlog', async (t) => {
  const dir = tempDir(t)
  const clock = manualClock()
  const box = outbox(t, dir, { clock, policies: { s: policy('s', { maxAgeSeconds: 10 }) } })
  for (let i = 0; i < 50; i++) await box.enqueue(rows('s', i * 1000, 1000))
  clock.advance(11_000)
  await box.enqueue(rows('s', 50_000, 1000))
  t.equal(box.expire(), 50_000, 'every old record goes, in chunks')
  t.equal(box.backlog(), 1000)
  t.equal(box.expire(), 0)
})

t.test('an acknowledged batch\'s deletion rides with the next commit of records, or goes alone within a second; records never wait for it', async (t) => {
  const box = outbox(t, tempDir(t), { commitIntervalMs: 5 })
  await box.enqueue(rows('s', 0, 10))
  const first = box.formBatch(500, 1 << 20)!
  box.ack(first.seq)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(box.backlog(), 10, 'after 200 ms the acknowledged records are still there (no commit of their own yet)')
  // Records arriving now commit within their own interval (the sooner deadline re-arms the timer) and take the deletion with them.
  await box.enqueue(rows('s', 10, 5))
  t.equal(box.backlog(), 5, 'the deletion rode with them')
  const second = box.formBatch(500, 1 << 20)!
  box.ack(second.seq)
  const t0 = performance.now()
  while (box.backlog() > 0) await new Promise((r) => setTimeout(r, 20))
  t.ok(performance.now() - t0 >= 900, 'alone, a deletion is committed after about a second')
})

t.test('batches formed inside the records\' commit: on disk when the records are, within the uplink\'s slots and limits', async (t) => {
  const dir = tempDir(t)
  const box = outbox(t, dir)
  let slots = 2
  box.formInCommits({ slots: () => slots, maxRecords: 4, maxBytes: 1 << 20 })
  let formedEvents = 0
  box.on('formed', (n: number) => { formedEvents += n })
  await box.enqueue(rows('s', 0, 10))
  const formed = box.formedBatches()
  t.same(formed.map((b) => b.count), [4, 4], 'two batches of at most 4 records, as many as the slots')
  t.equal(formedEvents, 2, 'announced once committed')
  // No slots (the uplink is not connected, or its window is full): nothing formed in the commit.
  slots = 0
  await box.enqueue(rows('s', 10, 3))
  t.equal(box.formedBatches().length, 2)
  // The rest is formed as before, on the uplink's own call.
  const next = box.formBatch(500, 1 << 20)!
  t.equal(next.count, 2 + 3, 'the records not yet in a batch, in order')
  t.equal(next.firstId, formed[1]!.lastId + 1)
  // A restart finds the batches formed in the commits as they were: their identities were committed.
  box.close()
  const again = outbox(t, dir)
  t.same(again.formedBatches().map((b) => [b.seq, b.firstId, b.lastId]), [...formed, next].map((b) => [b.seq, b.firstId, b.lastId]))
})
