/**
 * The agent's storage write meter (agent/wear.ts): bytes written since start and today (UTC days),
 * a projection per day from the last hour's rate, and the budget warning, on an injected clock and
 * an injected write count; then a real agent whose status and CLI show it, warning once over budget.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { validateAgentConfig } from '../../agent/config.js'
import { startAgent } from '../../agent/agent.js'
import { WriteMeter, procWriteBytes } from '../../agent/wear.js'
import { loadCodec, manualClock } from '../../hardware/index.js'
import { ROOT } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const MB = 1e6
const MIN = 60_000

t.test('no meter where the write count cannot be read', async (t) => {
  t.equal(WriteMeter.start(manualClock(), 4096, () => null), null)
  t.type(procWriteBytes(), 'number', 'this process\'s /proc/self/io is read on Linux')
})

t.test('written since start, a projection from the last hour only, after a first minute', async (t) => {
  const clock = manualClock({ wallMs: Date.UTC(2026, 11, 7, 10, 0) })
  let bytes = 5 * MB
  const meter = WriteMeter.start(clock, 4096, () => bytes)!
  t.match(meter.status(), { writtenBytes: 0, projectedMBPerDay: null, overBudget: false })
  // 1 MB a minute for 30 minutes.
  for (let i = 0; i < 30; i++) { clock.advance(MIN); bytes += MB; meter.sample() }
  t.match(meter.status(), { writtenBytes: 30 * MB, projectedMBPerDay: 1440 }, '1 MB a minute is 1,440 MB a day')
  // Then 10 MB a minute for 90 minutes: the first 30 minutes leave the window.
  for (let i = 0; i < 90; i++) { clock.advance(MIN); bytes += 10 * MB; meter.sample() }
  t.match(meter.status(), { writtenBytes: 930 * MB, projectedMBPerDay: 14_400 }, 'the last hour\'s rate only')
})

t.test('today counts from the start of the UTC day (or from the start, whichever is later)', async (t) => {
  const clock = manualClock({ wallMs: Date.UTC(2026, 11, 7, 23, 30) })
  let bytes = 0
  const meter = WriteMeter.start(clock, 4096, () => bytes)!
  for (let i = 0; i < 20; i++) { clock.advance(MIN); bytes += MB; meter.sample() }
  t.match(meter.status(), { writtenTodayBytes: 20 * MB, todaySince: '2026-12-07T23:30:00.000Z' })
  for (let i = 0; i < 20; i++) { clock.advance(MIN); bytes += MB; meter.sample() }
  // The minute sampled at 00:00 is the new day's (bytes between two samples are not split): 10 MB after it, 11 with it.
  t.match(meter.status(), { writtenBytes: 40 * MB, writtenTodayBytes: 11 * MB, todaySince: '2026-12-08T00:00:00.000Z' }, 'after midnight, today starts again')
})

t.test('over budget only with ten minutes sampled, and never with a budget of 0', async (t) => {
  const clock = manualClock()
  let bytes = 0
  const meter = WriteMeter.start(clock, 100, () => bytes)!
  const none = WriteMeter.start(clock, 0, () => bytes)!
  // 1 MB a minute: 1,440 MB a day, over a budget of 100.
  for (let i = 0; i < 9; i++) { clock.advance(MIN); bytes += MB; meter.sample(); none.sample() }
  t.match(meter.status(), { projectedMBPerDay: 1440, overBudget: false }, 'nine minutes: not yet')
  clock.advance(MIN)
  bytes += MB
  t.match(meter.status(), { overBudget: true, budgetMBPerDay: 100 }, 'ten minutes: over')
  t.match(none.status(), { projectedMBPerDay: 1440, overBudget: false, budgetMBPerDay: 0 }, 'no budget, no warning')
})

t.test('a real agent shows its storage writes in its status and CLI, and warns once over budget', async (t) => {
  const dir = tempDir(t)
  const clock = manualClock({ wallMs: Date.UTC(2026, 11, 7, 12, 0) })
  let bytes = 0
  const logs: { event: string; fields: unknown }[] = []
  const agent = await startAgent(validateAgentConfig({
    device: 'edge-wear', relay: { url: 'mqtt://127.0.0.1:1' }, outbox: { path: join(dir, 'outbox.db'), writeBudgetMBPerDay: 500 },
    status: { port: 0 }, streams: { s: {} }, sources: [],
  }), { log: (event, fields) => logs.push({ event, fields }), codec: loadCodec(process.env), clock, writeBytes: () => bytes })
  t.teardown(() => agent.stop())
  t.match(agent.status().storage, { writtenBytes: 0, projectedMBPerDay: null, budgetMBPerDay: 500, overBudget: false })
  // 2 MB a minute (2,880 MB a day) for 12 minutes, sampled by the agent's own timer.
  for (let i = 0; i < 12; i++) { bytes += 2 * MB; clock.advance(MIN) }
  t.match(agent.status().storage, { writtenBytes: 24 * MB, projectedMBPerDay: 2880, overBudget: true })
  t.equal(logs.filter((l) => l.event === 'write_budget_exceeded').length, 1, 'logged once when it crossed')
  const cli = await new Promise<string>((resolve) => execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), 'agent', 'status', '--url', `http://127.0.0.1:${agent.statusPort}`], { cwd: ROOT, encoding: 'utf8' }, (_err, stdout) => resolve(stdout)))
  t.match(cli, /storage writes: today 24\.0 MB \(since 2026-12-07T12:00:00\.000Z\), projected 2880\.0 MB\/day \(budget 500 MB\/day\)/)
  t.match(cli, /WARNING WRITE_BUDGET_EXCEEDED: the agent writes 2880\.0 MB a day to storage, over its budget of 500 MB/)
  const metrics = await (await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`)).text()
  t.match(metrics, /tributary_agent_storage_projected_mb_per_day 2880\n/)
})

t.test('a status asked for many times a second keeps the samples few', async (t) => {
  const clock = manualClock()
  let bytes = 0
  const meter = WriteMeter.start(clock, 0, () => bytes)!
  for (let i = 0; i < 3600 * 10; i++) { clock.advance(100); bytes += 1000; meter.status() }
  const kept = (meter as unknown as { samples: unknown[] }).samples.length
  t.ok(kept <= 2 * 3600 + 2, `an hour of ten calls a second kept ${kept} samples (at most two a second, not 36,000)`)
  t.equal(meter.status().projectedMBPerDay, 864, '10 kB a second is 864 MB a day')
})
