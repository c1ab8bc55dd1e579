import t from 'tap'
import { ProducerTable, BATCH_MEMORY, EPOCHS_PER_DEVICE } from '../../relay/producers.js'

t.test('records are remembered per device, epoch, batch and index', async (t) => {
  const table = new ProducerTable()
  table.mark('d', 1n, 5, 3, 10)
  t.ok(table.has('d', 1n, 5, 3))
  t.notOk(table.has('d', 1n, 5, 4))
  t.notOk(table.has('d', 2n, 5, 3), 'another epoch is another producer')
  t.notOk(table.has('e', 1n, 5, 3), 'another device is another producer')
})

t.test('replay marks any index even when the batch size is not known yet', async (t) => {
  const table = new ProducerTable()
  // Replay learns a batch one record at a time, smallest index first.
  for (let i = 0; i < 500; i++) table.mark('d', 1n, 0, i, i + 1)
  for (let i = 0; i < 500; i++) if (!table.has('d', 1n, 0, i)) t.fail(`index ${i} forgotten`)
  t.pass('all 500 indexes remembered')
})

t.test('a snapshot restores the same table', async (t) => {
  const table = new ProducerTable()
  table.mark('d', 7n, 1, 0, 3)
  table.mark('d', 7n, 1, 2, 3)
  table.mark('x', 9n, 4, 499, 500)
  const copy = new ProducerTable()
  copy.load(JSON.parse(JSON.stringify(table.snapshot({ a: 1 }))))
  t.ok(copy.has('d', 7n, 1, 0) && copy.has('d', 7n, 1, 2) && copy.has('x', 9n, 4, 499))
  t.notOk(copy.has('d', 7n, 1, 1))
})

t.test(`only the last ${BATCH_MEMORY} batches of a producer are remembered`, async (t) => {
  const table = new ProducerTable()
  for (let s = 0; s <= BATCH_MEMORY + 10; s++) table.mark('d', 1n, s, 0, 1)
  t.notOk(table.has('d', 1n, 0, 0))
  t.notOk(table.has('d', 1n, 10, 0), 'the newest but 1024 is forgotten')
  t.ok(table.has('d', 1n, 11, 0), 'the newest 1024 are kept')
  t.ok(table.has('d', 1n, BATCH_MEMORY + 10, 0))
})

t.test('a batch older than the last 1024 stays forgotten when it arrives again, before and after a snapshot (the memory stays bounded)', async (t) => {
  const table = new ProducerTable()
  for (let s = 0; s <= BATCH_MEMORY + 76; s++) table.mark('d', 1n, s, 0, 1)
  table.mark('d', 1n, 5, 0, 1)
  t.notOk(table.has('d', 1n, 5, 0), 'a resend from far behind the newest is not kept')
  t.ok(table.has('d', 1n, 77, 0) && table.has('d', 1n, BATCH_MEMORY + 76, 0), 'the newest 1024 still are')
  const restored = new ProducerTable()
  restored.load(JSON.parse(JSON.stringify(table.snapshot({}))))
  restored.mark('d', 1n, 6, 0, 1)
  t.notOk(restored.has('d', 1n, 6, 0), 'nor after a restart from the snapshot')
  t.ok(restored.has('d', 1n, 77, 0) && restored.has('d', 1n, BATCH_MEMORY + 76, 0))
})

t.test(`a device's last ${EPOCHS_PER_DEVICE} epochs are remembered: a third forgets the first, before and after a snapshot`, async (t) => {
  const table = new ProducerTable()
  table.mark('d', 1n, 0, 0, 1)
  table.mark('d', 2n, 0, 0, 1)
  table.mark('other', 1n, 0, 0, 1)
  t.ok(table.has('d', 1n, 0, 0) && table.has('d', 2n, 0, 0), 'an old epoch and its successor are both remembered')
  t.equal(table.size, 3)
  const restored = new ProducerTable()
  restored.load(JSON.parse(JSON.stringify(table.snapshot({}))))
  for (const [what, tb] of [['running', table], ['restored', restored]] as const) {
    tb.mark('d', 3n, 0, 0, 1)
    t.notOk(tb.has('d', 1n, 0, 0), `${what}: the first epoch is forgotten`)
    t.ok(tb.has('d', 2n, 0, 0) && tb.has('d', 3n, 0, 0), `${what}: the last two are kept`)
    t.ok(tb.has('other', 1n, 0, 0), `${what}: another device keeps its epoch`)
    t.equal(tb.size, 3, `${what}: the table holds two producers of d and one of other`)
  }
})

t.test('a batch is remembered while its producer has at most 1024 batches, however far apart their sequences; the next one forgets those more than 1024 behind the newest, before and after a snapshot', async (t) => {
  const table = new ProducerTable()
  // Sequence 0, then 1023 batches from 5000 on: 1024 batches, the oldest far behind.
  table.mark('d', 1n, 0, 0, 1)
  for (let s = 5000; s < 5000 + BATCH_MEMORY - 1; s++) table.mark('d', 1n, s, 0, 1)
  t.ok(table.has('d', 1n, 0, 0), `batch 0 is one of ${BATCH_MEMORY}: remembered`)
  const restored = new ProducerTable()
  restored.load(JSON.parse(JSON.stringify(table.snapshot({}))))
  for (const [what, tb] of [['running', table], ['restored', restored]] as const) {
    tb.mark('d', 1n, 5000 + BATCH_MEMORY - 1, 0, 1)
    t.notOk(tb.has('d', 1n, 0, 0), `${what}: a 1025th batch forgets batch 0`)
    t.ok(tb.has('d', 1n, 5000, 0) && tb.has('d', 1n, 5000 + BATCH_MEMORY - 1, 0), `${what}: the newest ${BATCH_MEMORY} are kept`)
  }
})

t.test('a restored table forgets exactly what the running one would, even when batches arrived out of order', async (t) => {
  const table = new ProducerTable()
  // The newest batch first, then 1023 old ones: the snapshot lists them in that order.
  table.mark('d', 1n, 10_000, 0, 1)
  for (let s = 0; s < BATCH_MEMORY - 1; s++) table.mark('d', 1n, s, 0, 1)
  const restored = new ProducerTable()
  restored.load(JSON.parse(JSON.stringify(table.snapshot({}))))
  for (const tb of [table, restored]) tb.mark('d', 1n, 2000, 0, 1)
  const kept = (tb: ProducerTable) => [0, 500, 1022, 2000, 10_000].filter((s) => tb.has('d', 1n, s, 0))
  t.same(kept(table), [10_000], 'the running table forgets every batch more than 1024 behind batch 10000, the one just marked too')
  t.same(kept(restored), kept(table), 'and so does the restored one')
})

t.test('marking no records of a batch remembers nothing: no new epoch, so no older epoch is forgotten', async (t) => {
  const table = new ProducerTable()
  table.mark('d', 1n, 0, 0, 1)
  table.mark('d', 2n, 0, 0, 1)
  table.markMany('d', 3n, 0, [], 5)
  t.ok(table.has('d', 1n, 0, 0) && table.has('d', 2n, 0, 0), 'both epochs are still remembered')
  t.equal(table.size, 2)
  t.equal(table.seen('d', 3n, 0), undefined, 'and the empty batch is not')
})

t.test('a snapshot holds one bit per record of a batch', async (t) => {
  const table = new ProducerTable()
  table.markMany('d', 1n, 0, Uint32Array.from([0, 31, 32, 499]), 500)
  const { producers } = table.snapshot({})
  const [[seq, words]] = Object.values(producers)[0]!
  t.equal(seq, 0)
  t.equal(words!.length, Math.ceil(500 / 32), '16 words of 32 bits for 500 records')
  t.same(words!.slice(0, 2), [0x8000_0001, 1], 'indexes 0 and 31 in the first word, 32 in the second')
})
