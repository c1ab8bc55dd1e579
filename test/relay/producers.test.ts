import t from 'tap'
import { ProducerTable, BATCH_MEMORY } from '../../relay/producers.js'

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
  t.ok(table.has('d', 1n, BATCH_MEMORY + 10, 0))
  t.ok(table.has('d', 1n, 11, 0))
})
