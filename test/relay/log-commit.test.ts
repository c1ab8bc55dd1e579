/**
 * The shard log's group commit (relay/log/commit.ts) on its own, over stand-in shard logs whose
 * flushes the test lets finish: one flush per dirty log per commit, waiters answered only after it,
 * the commit's records reported, a delay that gathers commits, close waiting for a running flush, and
 * a failed flush failing the store for good. The real stores run it in log-contract.test.ts.
 */
import t from 'tap'
import { GroupCommit, type Flushable } from '../../relay/log/commit.js'

/** A shard log whose flushes wait until the test settles them. */
class StandIn implements Flushable {
  pending = 0
  flushed = 0
  discarded = 0
  private gates: { resolve: () => void; reject: (err: Error) => void }[] = []
  /** When true, flushes finish at once. */
  auto = true
  constructor(readonly name: string) {}
  pendingRecords(): number {
    return this.pending
  }
  flush(): Promise<void> {
    if (this.auto) return this.done()
    return new Promise<void>((resolve, reject) => this.gates.push({ resolve, reject })).then(() => this.done())
  }
  private async done(): Promise<void> {
    this.flushed++
    this.pending = 0
  }
  discardPending(): void {
    this.discarded++
    this.pending = 0
  }
  get waiting(): number {
    return this.gates.length
  }
  release(): void {
    this.gates.shift()?.resolve()
  }
  fail(err: Error): void {
    this.gates.shift()?.reject(err)
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
/** A promise's state without waiting for it. */
async function settled(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending'
  p.then(() => { state = 'resolved' }, () => { state = 'rejected' })
  await turn()
  return state
}

t.test('one flush per dirty log answers every commit called before it, and onCommit hears its records', async (t) => {
  const heard: [number, number][] = []
  const commits = new GroupCommit(0, (records, ms) => heard.push([records, ms]))
  const a = new StandIn('a')
  const b = new StandIn('b')
  a.pending = 3
  b.pending = 4
  commits.enqueue(a)
  commits.enqueue(b)
  commits.enqueue(a)
  const before = performance.now()
  await Promise.all([commits.commit(), commits.commit(), commits.commit()])
  const took = performance.now() - before
  t.same([a.flushed, b.flushed], [1, 1], 'each log flushed once for three commits')
  t.equal(heard.length, 1)
  t.equal(heard[0]![0], 7, 'onCommit hears the 7 records made durable')
  t.ok(heard[0]![1] >= 0 && heard[0]![1] <= took, `and how long the commit took (${heard[0]![1]} of ${took} ms)`)
  await commits.commit()
  t.same([a.flushed, b.flushed], [1, 1], 'a commit with nothing appended flushes nothing')
  t.equal(heard.length, 1, 'and reports no commit of no records')
})

t.test('a commit is answered only after the flush holding its appends has finished', async (t) => {
  const commits = new GroupCommit(0)
  const a = new StandIn('a')
  a.auto = false
  a.pending = 1
  commits.enqueue(a)
  const first = commits.commit()
  await turn()
  t.equal(a.waiting, 1, 'the flush is running')
  // Appended while the first flush runs: it needs a flush of its own.
  a.pending = 2
  commits.enqueue(a)
  const second = commits.commit()
  t.equal(await settled(first), 'pending', 'not answered while its flush runs')
  a.release()
  t.equal(await settled(first), 'resolved')
  t.equal(await settled(second), 'pending', 'the later commit waits for the next flush')
  await turn()
  t.equal(a.waiting, 1, 'which starts once the first has finished')
  a.release()
  await second
  t.equal(a.flushed, 2)
})

t.test('with a delay, commits called within it share one flush, and close flushes them at once', async (t) => {
  const commits = new GroupCommit(60_000)
  const a = new StandIn('a')
  a.pending = 1
  commits.enqueue(a)
  const first = commits.commit()
  await turn()
  a.pending = 2
  commits.enqueue(a)
  const second = commits.commit()
  await turn()
  t.equal(a.flushed, 0, 'nothing is flushed while the delay runs')
  await commits.close()
  t.equal(a.flushed, 1, 'close flushed both commits in one go')
  t.equal(await settled(first), 'resolved')
  t.equal(await settled(second), 'resolved')
})

t.test('close waits for a running flush to finish', async (t) => {
  const commits = new GroupCommit(0)
  const a = new StandIn('a')
  a.auto = false
  a.pending = 1
  commits.enqueue(a)
  const committed = commits.commit()
  await turn()
  t.equal(a.waiting, 1, 'the flush is running')
  const closed = commits.close()
  t.equal(await settled(closed), 'pending', 'close has not returned while it runs')
  a.release()
  await closed
  t.equal(await settled(committed), 'resolved')
  t.equal(a.flushed, 1)
})

t.test('a log forgotten before the commit is not flushed', async (t) => {
  const commits = new GroupCommit(0)
  const kept = new StandIn('kept')
  const gone = new StandIn('gone')
  kept.pending = gone.pending = 1
  commits.enqueue(kept)
  commits.enqueue(gone)
  commits.forget(gone)
  await commits.commit()
  t.same([kept.flushed, gone.flushed], [1, 0])
})

t.test('a failed flush fails the store: every waiter hears why, pending appends are dropped, nothing more is accepted', async (t) => {
  const commits = new GroupCommit(0)
  const bad = new StandIn('bad')
  const good = new StandIn('good')
  bad.auto = false
  bad.pending = good.pending = 2
  commits.enqueue(bad)
  commits.enqueue(good)
  const first = commits.commit().then(() => null, (err: Error) => err)
  await turn()
  // Appended while the failing flush runs.
  const late = new StandIn('late')
  late.pending = 1
  commits.enqueue(late)
  const second = commits.commit().then(() => null, (err: Error) => err)
  const cause = new Error('EIO: i/o error')
  bad.fail(cause)
  for (const err of [await first, await second]) {
    t.match(err, { code: 'STORAGE_FAILED', message: 'shard storage failed: EIO: i/o error' })
    t.equal(err?.cause, cause, 'the disk error is the cause')
  }
  t.same([bad.discarded, good.discarded, late.discarded], [1, 1, 1], 'every log with pending appends dropped them')
  t.equal(late.flushed, 0, 'nothing appended after the failure was flushed')
  t.equal(commits.failed, cause)
  t.throws(() => commits.checkWritable(), { code: 'STORAGE_FAILED', message: 'shard storage failed: EIO: i/o error', cause })
  await t.rejects(commits.commit(), { code: 'STORAGE_FAILED', message: 'shard storage failed: EIO: i/o error' }, 'a later commit is refused at once')
  await commits.close()
  t.equal(late.flushed, 0, 'close does not flush a failed store')
})
