/**
 * The outbox file is one agent's: a second agent (another process, or a second start of the same
 * unit) is refused, and the refusal never makes the healthy file look damaged. Apart from the other
 * outbox tests because the refusal waits out SQLite's busy timeout (about 5 s).
 */
import t from 'tap'
import { join } from 'node:path'
import { readdirSync } from 'node:fs'
import { Outbox } from '../../agent/outbox/index.js'
import { tempDir } from '../helpers/tmp.js'

const rows = (stream: string, from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ stream, partitionKey: `k${(from + i) % 3}`, data: Buffer.from(String(from + i)) }))

function outbox(t: { teardown(fn: () => unknown): void }, dir: string): Outbox {
  const box = new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 64 * 1024 * 1024, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
  t.teardown(() => box.close())
  return box
}

t.test('a second agent cannot open an outbox that is in use, and a healthy outbox is never quarantined for it', async (t) => {
  const dir = tempDir(t)
  const first = outbox(t, dir)
  await first.enqueue(rows('s', 0, 3))
  t.throws(() => new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 8 << 20, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} }),
    { code: 'STORAGE_FAILED', message: /in use by another process/ })
  t.notOk(readdirSync(dir).some((n) => n.includes('corrupt')), 'nothing was moved aside')
  t.equal(first.backlog(), 3)
})
