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
