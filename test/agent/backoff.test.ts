import t from 'tap'
import { Backoff } from '../../agent/uplink/index.js'

t.test('reconnect waits double from the first step to the cap, with equal jitter, until progress resets them', async (t) => {
  let r = 0
  const backoff = new Backoff(100, 1000, () => r)
  t.same(Array.from({ length: 6 }, () => backoff.next()), [50, 100, 200, 400, 500, 500], 'no jitter: half of each step')
  r = 0.999999
  t.ok(Math.abs(backoff.next() - 1000) < 0.01, 'the most jitter: the whole step')
  backoff.reset()
  r = 0.5
  t.equal(backoff.next(), 75, 'after progress, the first step again')
})

t.test('the step stops growing past 2^20 attempts, without overflow', async (t) => {
  const backoff = new Backoff(1, Number.MAX_SAFE_INTEGER, () => 0)
  let last = 0
  for (let i = 0; i < 100; i++) last = backoff.next()
  t.equal(last, 2 ** 20 / 2)
})
