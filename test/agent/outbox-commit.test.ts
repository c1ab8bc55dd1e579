/**
 * The outbox's group commit (agent/outbox/commit.ts) through the Outbox, on a real SQLite file: when
 * records are committed, what the 'stored' and 'acked' events count, how acknowledged batches leave
 * with their records and bytes, what a failing disk and a full file answer, and the outbox clock that
 * every commit saves. The commit interval is long, so each test commits when it says so.
 */
import t from 'tap'
import { join } from 'node:path'
import { Outbox, type OutboxOptions } from '../../agent/outbox/index.js'
import { manualClock } from '../../hardware/index.js'
import type { StreamPolicy } from '../../agent/config.js'
import { tempDir } from '../helpers/tmp.js'

const policy = (name: string, p: Partial<StreamPolicy> = {}): StreamPolicy => ({ name, priority: 0, maxBytes: 0, maxAgeSeconds: 0, onFull: 'drop-oldest', ...p })

function outbox(t: { teardown(fn: () => unknown): void }, dir: string, o: Partial<OutboxOptions> = {}): Outbox {
  const box = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 64 << 20, synchronous: 'FULL', commitIntervalMs: 60_000, commitRows: 1000, policies: {}, ...o })
  t.teardown(() => box.close())
  return box
}

const rows = (stream: string, from: number, n: number, size = 10) =>
  Array.from({ length: n }, (_, i) => ({ stream, partitionKey: `k${(from + i) % 3}`, data: Buffer.from(String(from + i).padEnd(size, '.')) }))

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
async function state(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending'
  p.then(() => { s = 'resolved' }, () => { s = 'rejected' })
  await turn()
  await turn()
  return s
}

/** Every 'stored' and 'acked' event, in order. */
function events(box: Outbox): [string, number][] {
  const heard: [string, number][] = []
  box.on('stored', (n: number) => heard.push(['stored', n]))
  box.on('acked', (n: number) => heard.push(['acked', n]))
  return heard
}

t.test('records wait for the commit interval, unless commitRows of them have gathered: then they are committed at once', async (t) => {
  const box = outbox(t, tempDir(t), { commitRows: 10 })
  const heard = events(box)
  const first = box.enqueue(rows('s', 0, 6))
  const second = box.enqueue(rows('s', 6, 3))
  t.equal(await state(first), 'pending', '9 records wait for the interval')
  t.same(heard, [])
  const third = box.enqueue(rows('s', 9, 1))
  await Promise.all([first, second, third])
  t.same(heard, [['stored', 10]], 'the tenth commits all ten in one commit')
  t.equal(box.backlog(), 10)
  const fourth = box.enqueue(rows('s', 10, 9))
  t.equal(await state(fourth), 'pending', 'the count starts again after a commit')
  box.commit()
  await fourth
  t.same(heard, [['stored', 10], ['stored', 9]])
})

t.test("an acknowledged batch leaves with the next commit, with its records and bytes; 'acked' counts each batch once", async (t) => {
  const box = outbox(t, tempDir(t))
  const heard = events(box)
  const deadLetters: unknown[] = []
  box.on('deadLetter', (...a: unknown[]) => deadLetters.push(a))
  box.on('dropped', (...a: unknown[]) => deadLetters.push(a))
  const stored = box.enqueue(rows('s', 0, 30))
  box.commit()
  await stored
  const batches = [box.formBatch(10, 1 << 20)!, box.formBatch(10, 1 << 20)!, box.formBatch(10, 1 << 20)!]
  const bytesBefore = box.stats().streams.s!.bytes
  box.ack(batches[0]!.seq)
  box.ack(batches[0]!.seq) // the relay's answer to a resend of the same batch
  box.ack(batches[1]!.seq)
  box.ack(999) // no such batch
  t.same(box.formedBatches().map((b) => b.seq), [batches[2]!.seq], 'acknowledged batches are not resent while their deletion waits')
  t.equal(box.backlog(), 30, 'their records stay until the commit')
  box.commit()
  t.same(heard, [['stored', 30], ['acked', 2]], 'two batches left, each counted once')
  t.equal(box.backlog(), 10)
  t.equal(box.stats().streams.s!.bytes, bytesBefore / 3, 'the stream holds the bytes of one batch of three')
  t.same(box.formedBatches().map((b) => b.seq), [batches[2]!.seq])
  const more = box.enqueue(rows('s', 30, 1))
  box.commit()
  await more
  t.same(heard.slice(2), [['stored', 1]], 'a later commit acknowledges nothing')
  box.ack(batches[2]!.seq)
  box.commit()
  t.same([box.backlog(), box.stats().streams.s!.bytes], [1, 28], 'the record left after the last batch, and only its 28 bytes')
  t.same(deadLetters, [], 'and no record was dropped or dead-lettered on the way')
})

t.test('a commit that fails on the disk refuses its producers with the cause, logs it, and leaves the outbox as it was', async (t) => {
  const logged: [string, Record<string, unknown> | undefined][] = []
  const box = outbox(t, tempDir(t), { log: (event, fields) => logged.push([event, fields]) })
  const before = box.enqueue(rows('s', 0, 5))
  box.commit()
  await before
  const batch = box.formBatch(5, 1 << 20)!
  // The next insert meets a failing disk.
  const records = (box as unknown as { records: { insert: (...a: unknown[]) => unknown } }).records
  const insert = records.insert.bind(records)
  const cause = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
  records.insert = () => { throw cause }
  const failing = box.enqueue(rows('s', 5, 3)).then(() => null, (err: Error) => err)
  box.ack(batch.seq)
  box.commit()
  t.match(await failing, { name: 'TributaryError', code: 'STORAGE_FAILED', message: 'outbox commit failed: disk I/O error' })
  t.equal((await failing)?.cause, cause)
  t.same(logged.filter(([event]) => event === 'outbox_commit_failed'), [['outbox_commit_failed', { error: 'disk I/O error' }]])
  t.equal(box.backlog(), 5, 'the acknowledged batch is still there: its deletion rode in the commit that failed')
  t.equal(box.stats().streams.s!.backlog, 5)
  records.insert = insert
  box.ack(batch.seq)
  const after = box.enqueue(rows('s', 5, 3))
  box.commit()
  t.equal((await after).length, 3, 'once the disk answers again, commits go on')
  t.equal(box.backlog(), 3)
})

t.test('at the file cap a reject-new stream is refused while a drop-oldest one in the same commit makes room', async (t) => {
  const maxBytes = 1 << 20
  const box = outbox(t, tempDir(t), { maxBytes, commitRows: 1_000_000, policies: { bulk: policy('bulk'), precious: policy('precious', { onFull: 'reject-new' }), fresh: policy('fresh') } })
  // Fill the file with a drop-oldest stream.
  for (let i = 0; ; i++) {
    const stored = box.enqueue(rows('bulk', i * 50, 50, 400))
    box.commit()
    const dropped = box.stats().drops.length > 0
    await stored.catch(() => {})
    if (dropped || i > 200) break
  }
  t.ok(box.stats().drops.some((d) => d.reason === 'outbox-full'), 'the file is at its cap')
  const precious = box.enqueue(rows('precious', 0, 50, 400)).then(() => null, (err: Error) => err)
  const bulk = box.enqueue(rows('bulk', 1_000_000, 50, 400))
  box.commit()
  t.match(await precious, { name: 'OutboxFullError', message: `the outbox is at its cap of ${maxBytes} bytes` }, 'the reject-new stream is refused')
  t.equal((await bulk).length, 50, 'the drop-oldest stream in the same commit is stored')
  t.equal(box.stats().streams.precious?.backlog ?? 0, 0, 'nothing of the refused stream was stored')
})

t.test('a file full of a reject-new stream refuses a drop-oldest stream that has nothing to drop, and stays usable', async (t) => {
  const maxBytes = 1 << 20
  const box = outbox(t, tempDir(t), { maxBytes, commitRows: 1_000_000, policies: { precious: policy('precious', { onFull: 'reject-new' }), fresh: policy('fresh') } })
  for (let i = 0; i < 200; i++) {
    const stored = box.enqueue(rows('precious', i * 50, 50, 400)).then(() => true, () => false)
    box.commit()
    if (!(await stored)) break
  }
  const held = box.backlog()
  const fresh = box.enqueue(rows('fresh', 0, 50, 400)).then(() => null, (err: Error) => err)
  box.commit()
  t.match(await fresh, { name: 'OutboxFullError', message: `the outbox is at its cap of ${maxBytes} bytes` }, 'refused as at the cap, in the commit that found it full')
  t.equal(box.backlog(), held, 'nothing stored was dropped for it')
  const batch = box.formBatch(500, 1 << 20)!
  box.ack(batch.seq)
  const later = box.enqueue(rows('fresh', 0, 5, 400))
  box.commit()
  t.equal((await later).length, 5, 'once a batch is acknowledged there is room again')
})

t.test('the outbox clock is saved with every commit and goes on from there after a restart', async (t) => {
  const dir = tempDir(t)
  const clock = manualClock()
  const a = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 8 << 20, synchronous: 'FULL', commitIntervalMs: 60_000, commitRows: 1000, policies: {}, clock })
  clock.advance(5_000)
  const stored = a.enqueue(rows('s', 0, 1))
  a.commit()
  await stored
  a.close()
  const b = outbox(t, dir, { clock: manualClock() })
  t.ok(b.monoNow() >= 5_000, `the clock resumes at the 5 s it had reached (${b.monoNow()} ms)`)
})
