import t from 'tap'
import { startSimulated } from '../../agent/sources/simulated.js'
import { manualClock } from '../../hardware/index.js'
import type { OutboxInput } from '../../agent/outbox/index.js'

t.test('simulated sensors give one reading per sensor on each tick of the clock, and none once stopped', async (t) => {
  const clock = manualClock()
  const stored: OutboxInput[][] = []
  const source = startSimulated({ type: 'simulated', stream: 'env', rateHz: 10, sensors: [{ id: 't1', kind: 'temperature' }, { id: 'v1', kind: 'vibration' }] }, clock, async (rows) => { stored.push(rows) }, (err) => t.fail(err.message))
  clock.advance(99)
  t.equal(stored.length, 0, 'nothing before the first tick')
  clock.advance(201)
  t.equal(stored.length, 3, 'three ticks in 300 ms at 10 Hz')
  t.same(stored[0]!.map((r) => [r.stream, r.partitionKey]), [['env', 't1'], ['env', 'v1']])
  t.match(JSON.parse(stored[2]![0]!.data.toString()), { sensor: 't1', kind: 'temperature', n: 2, celsius: Number })
  t.equal(stored[0]![0]!.capturedMs, clock.wallMs() - 200, 'captured at the tick, on the wall clock')
  source.stop()
  clock.advance(1000)
  t.equal(stored.length, 3)
})
