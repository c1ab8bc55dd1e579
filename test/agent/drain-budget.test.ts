import t from 'tap'
import { DrainBudget } from '../../agent/uplink/index.js'
import { manualClock } from '../../hardware/index.js'

t.test('the drain rate cap lets one batch go at once, then the rate, and batches stay whole', async (t) => {
  const clock = manualClock()
  const budget = new DrainBudget(1000, 200, clock)
  t.equal(budget.waitMs(), 0, 'the bucket starts with one batch')
  budget.spend(200)
  t.equal(budget.waitMs(), 1, 'then it waits for the next record')
  let sent = 0
  for (let ms = 0; ms < 1000; ms++) {
    clock.advance(1)
    if (budget.waitMs() === 0) { budget.spend(200); sent += 200 }
  }
  t.equal(sent, 1000, 'a second of clock lets a second of records go, in whole batches')
  t.ok(budget.waitMs() > 0, 'and the next waits')
})

t.test('a bucket holds at most a second of records, so an idle hour is no licence to flood', async (t) => {
  const clock = manualClock()
  const budget = new DrainBudget(100, 10, clock)
  clock.advance(3_600_000)
  let sent = 0
  while (budget.waitMs() === 0) { budget.spend(10); sent += 10 }
  t.equal(sent, 100)
})

t.test('a rate of 0 is no cap', async (t) => {
  const budget = new DrainBudget(0, 500, manualClock())
  for (let i = 0; i < 100; i++) budget.spend(500)
  t.equal(budget.waitMs(), 0)
})
