/**
 * The clock (the agent's and the relay's): the system clock and the manual stand-in keep one contract (timers fire once,
 * in due order, never early, and can be cancelled; `every` repeats until stopped), and the manual
 * clock moves only when told.
 */
import t from 'tap'
import { every, manualClock, runningTime, systemClock, type Clock } from '../../hardware/index.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Lets `ms` of the clock's time pass: by hand for the manual clock, by waiting for the system one. */
type Pass = (ms: number) => Promise<void>

function contract(name: string, make: () => { clock: Clock; pass: Pass }): void {
  t.test(`${name}: a timer fires once, not before its time, and a cancelled one never`, async (t) => {
    const { clock, pass } = make()
    const fired: string[] = []
    const start = clock.monoMs()
    let firedAt = -1
    clock.after(30, () => { fired.push('b'); firedAt = clock.monoMs() - start })
    clock.after(10, () => fired.push('a'))
    const cancel = clock.after(20, () => fired.push('cancelled'))
    cancel()
    await pass(60)
    t.same(fired, ['a', 'b'], 'in due order, each once')
    t.ok(firedAt >= 30, `not early (${firedAt} ms)`)
  })

  t.test(`${name}: every repeats until stopped`, async (t) => {
    const { clock, pass } = make()
    let n = 0
    const stop = every(clock, 10, () => { n++ })
    await pass(55)
    t.ok(n >= 2, `it repeats (${n} ticks)`)
    stop()
    const after = n
    await pass(50)
    t.equal(n, after, 'none after stop')
  })
}

contract('the system clock', () => ({ clock: systemClock, pass: async (ms) => { await sleep(ms + 20) } }))
contract('the manual clock', () => {
  const clock = manualClock()
  return { clock, pass: async (ms) => clock.advance(ms) }
})

t.test('the manual clock moves only when told, each timer running at its own time', async (t) => {
  const clock = manualClock({ wallMs: 1_000_000 })
  const seen: number[] = []
  clock.after(100, () => seen.push(clock.monoMs()))
  clock.after(250, () => seen.push(clock.monoMs()))
  await sleep(20)
  t.same(seen, [], 'real time does not move it')
  t.equal(clock.nextDueMs(), 100)
  clock.advance(300)
  t.same(seen, [100, 250], 'each timer saw its own due time')
  t.equal(clock.monoMs(), 300)
  t.equal(clock.wallMs(), 1_000_300, 'the wall clock moves with it')
  clock.jumpWall(-5000)
  t.same([clock.wallMs(), clock.monoMs()], [995_300, 300], 'a wall jump leaves monotonic time alone')
  t.equal(clock.nextDueMs(), null)
  let ticks = 0
  const stop = every(clock, 10, () => { ticks++ })
  clock.advance(55)
  stop()
  t.equal(ticks, 5, 'a 10 ms period ticks 5 times in 55 ms')
})

t.test('running time goes on from what was carried over, on monotonic time only', async (t) => {
  const clock = manualClock()
  const now = runningTime(clock, 5000)
  t.equal(now(), 5000)
  clock.advance(250)
  clock.jumpWall(86_400_000)
  t.equal(now(), 5250)
})

t.test('a system-clock wait longer than one Node timer holds (24.8 days) neither fires early nor warns', async (t) => {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.name)
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  let fired = 0
  const cancel = systemClock.after(365 * 24 * 3600 * 1000, () => { fired++ })
  await new Promise((r) => setTimeout(r, 50))
  cancel()
  t.equal(fired, 0, 'a year-long wait has not fired')
  t.same(warnings, [], 'and no TimeoutOverflowWarning')
})
