/**
 * Dynamic partitioning with one long-running jq (Debian's jq 1.6): one answer per record, in
 * order; records jq cannot use are errors for those records only; bad expressions are refused at
 * start; a killed jq is replaced on the next call.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import type { Test } from 'tap'
import { JqPartitioner } from '../../relay/delivery/format/index.js'
import type { OutputRecord } from '../../relay/delivery/types.js'
import { manualClock } from '../../hardware/index.js'

const JQ = '/usr/bin/jq'
const skip = existsSync(JQ) ? false : `${JQ} is not installed (apt-get install jq)`

function record(data: string, i = 0): OutputRecord {
  return { shardId: 'shardId-000000000000', sequenceNumber: String(i), partitionKey: 'pk', arrivalMs: 0, data: Buffer.from(data), partitionKeys: {} }
}
const records = (...data: string[]) => data.map(record)

async function partitioner(t: Test, keys: Record<string, string>): Promise<JqPartitioner> {
  const p = await JqPartitioner.create(keys)
  t.teardown(() => p.close())
  return p
}

t.test('each record gets its keys: strings as they are, numbers and booleans as JSON text', { skip }, async (t) => {
  const p = await partitioner(t, { customer: '.customer.id', year: '.when | split("-")[0]', big: '.n', flag: '.f' })
  t.same(await p.keys(records(
    '{"customer":{"id":"c-1"},"when":"2024-05-01","n":12,"f":true}',
    '{"customer":{"id":"c/2 é"},"when":"1999-01-01","n":1.5e3,"f":false}',
  )), [
    { customer: 'c-1', year: '2024', big: '12', flag: 'true' },
    { customer: 'c/2 é', year: '1999', big: '1500', flag: 'false' },
  ])
})

t.test('records jq cannot use are errors for those records alone, in their place', { skip }, async (t) => {
  const p = await partitioner(t, { a: '.a', b: '.b' })
  const answers = await p.keys(records(
    '{"a":"x","b":"y"}',
    'not json at all',
    '',
    '{"a":"x"}',
    '{"a":{"deep":1},"b":"y"}',
    '{"a":[1],"b":"y"}',
    '{"a":null,"b":"y"}',
    '{"a":"","b":"y"}',
    '[1,2,3]',
    '{"a":"spread\\nover",\n"b":\n"lines"}',
    '{"a":"broken\nline',
    '{"a":"last","b":"z"}',
  ))
  t.equal(answers.length, 12)
  t.same(answers[0], { a: 'x', b: 'y' })
  t.match(answers[1], { error: /not JSON/ })
  t.match(answers[2], { error: /not JSON/ })
  t.match(answers[3], { error: /^b is null or missing$/ })
  t.match(answers[4], { error: /^a is an object, not a scalar$/ })
  t.match(answers[5], { error: /^a is an array, not a scalar$/ })
  t.match(answers[6], { error: /^a is null or missing$/ })
  t.match(answers[7], { error: /^a is an empty string$/ })
  t.match(answers[8], { error: /^a: Cannot index array/ })
  t.same(answers[9], { a: 'spread\nover', b: 'lines' }, 'a record over several lines is re-serialised on one')
  t.match(answers[10], { error: /not JSON/ })
  t.same(answers[11], { a: 'last', b: 'z' })
})

t.test('an expression that gives several values, or none, is an error naming its key', { skip }, async (t) => {
  const p = await partitioner(t, { many: '.xs[]', none: 'empty' })
  const [answer] = await p.keys(records('{"xs":[1,2]}'))
  t.match(answer, { error: /^many gave 2 values, not one$/ })
  const p2 = await partitioner(t, { none: '.xs[]' })
  t.match((await p2.keys(records('{"xs":[]}')))[0], { error: /^none gave 0 values, not one$/ })
})

t.test('calls made at once are answered each with its own records, in order', { skip }, async (t) => {
  const p = await partitioner(t, { i: '.i' })
  const calls = Array.from({ length: 20 }, (_, c) => p.keys(Array.from({ length: 500 }, (_, i) => record(c % 3 === 0 && i % 7 === 0 ? 'bad' : `{"i":${c * 1000 + i}}`))))
  const answers = await Promise.all(calls)
  answers.forEach((list, c) => list.forEach((a, i) => {
    if (c % 3 === 0 && i % 7 === 0) { if (!('error' in a)) t.fail(`call ${c} record ${i} should be an error`) }
    else if ((a as Record<string, string>)['i'] !== String(c * 1000 + i)) t.fail(`call ${c} record ${i} got ${JSON.stringify(a)}`)
  }))
  t.pass('every answer matched its record')
  t.same(await p.keys([]), [], 'no records, no answers')
})

t.test('a bad expression is refused at start, naming the key and the expression', { skip }, async (t) => {
  await t.rejects(JqPartitioner.create({ ok: '.a', broken: '.a | | .b' }), { name: 'FormatError', code: 'JQ_BAD_EXPRESSION', message: /partition key "broken": the jq expression "\.a \| \| \.b" does not compile/ })
  await t.rejects(JqPartitioner.create({ sneaky: '.a, input' }), { code: 'JQ_BAD_EXPRESSION', message: /uses input/ })
  await t.rejects(JqPartitioner.create({ unknown: 'nosuchfunction(1)' }), { code: 'JQ_BAD_EXPRESSION', message: /"unknown"/ })
  await t.rejects(JqPartitioner.create({}), { code: 'JQ_BAD_EXPRESSION' })
  await t.rejects(JqPartitioner.create({ a: '.a' }, { jqPath: '/nonexistent/jq' }), { code: 'JQ_UNAVAILABLE' })
})

t.test('a killed jq is replaced on the next call, which still answers', { skip }, async (t) => {
  const p = await partitioner(t, { a: '.a' })
  t.same(await p.keys(records('{"a":"before"}')), [{ a: 'before' }])
  const first = p.pid!
  process.kill(first, 'SIGKILL')
  // Not waiting for the exit: the call may reach the dying jq first, and must still be answered.
  t.same(await p.keys(records('{"a":"after"}', 'bad')).then((a) => a.map((x) => 'error' in x ? 'error' : x)), [{ a: 'after' }, 'error'])
  t.not(p.pid, first, 'a new jq')
  // And killed again while idle, after its exit is seen.
  const second = p.pid!
  const exited = new Promise<void>((resolve) => {
    const poll = setInterval(() => { try { process.kill(second, 0) } catch { clearInterval(poll); resolve() } }, 5)
  })
  process.kill(second, 'SIGKILL')
  await exited
  t.same(await p.keys(records('{"a":"again"}')), [{ a: 'again' }])
})

t.test('a jq killed in the middle of a call is replaced, and the call still gets every answer in order', { skip }, async (t) => {
  const p = await partitioner(t, { i: '.i' })
  const n = 100_000
  const before = p.pid
  const call = p.keys(Array.from({ length: n }, (_, i) => record(`{"i":${i}}`)))
  // Whenever the kill lands (before, during or after the answers), the outcome is the same.
  setTimeout(() => { if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL') }, 20)
  const answers = await call
  t.equal(answers.length, n)
  t.not(p.pid, before, 'jq was replaced')
  t.equal(answers.findIndex((a, i) => (a as Record<string, string>)['i'] !== String(i)), -1, 'every answer is its own record\'s')
})

t.test('close ends jq, and later calls are refused', { skip }, async (t) => {
  const p = await JqPartitioner.create({ a: '.a' })
  const pid = p.pid!
  await p.close()
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the process is gone')
  await t.rejects(p.keys(records('{"a":1}')), { code: 'JQ_UNAVAILABLE' })
})

t.test('an expression cannot read the relay\'s environment: $ENV and env are refused, and jq runs with none', { skip }, async (t) => {
  await t.rejects(JqPartitioner.create({ k: '$ENV.SECRET' }), { name: 'FormatError', code: 'JQ_BAD_EXPRESSION', message: /partition key "k": .* uses \$ENV: the relay's environment is not for partition keys/ })
  await t.rejects(JqPartitioner.create({ k: '.a', leak: 'env | keys[0]' }), { code: 'JQ_BAD_EXPRESSION', message: /partition key "leak": .* uses env/ })
  await t.rejects(JqPartitioner.create({ k: '"\\(env.HOME)"' }), { code: 'JQ_BAD_EXPRESSION', message: /uses env/ })
  // A field named env is a field, not the environment.
  const p = await partitioner(t, { e: '.env' })
  t.same(await p.keys(records('{"env":"prod"}')), [{ e: 'prod' }])
  process.env['TRIBUTARY_JQ_TEST_SECRET'] = 'hunter2'
  t.teardown(() => { delete process.env['TRIBUTARY_JQ_TEST_SECRET'] })
  const q = await partitioner(t, { a: '.a' })
  // tap's process-info hook adds its own variables (and NODE_OPTIONS) to every child it sees spawned.
  const names = readFileSync(`/proc/${q.pid!}/environ`, 'utf8').split('\0').filter((v) => v !== '').map((v) => v.split('=')[0]!)
  t.same(names.filter((n) => !n.startsWith('_TAPJS_') && n !== 'NODE_OPTIONS'), [], 'the running jq has none of the relay\'s environment')
  t.same(await q.keys(records('{"a":"still answers"}')), [{ a: 'still answers' }])
})

t.test('a call that jq never finishes is rejected at its deadline, jq is killed, and the calls after it are answered', { skip }, async (t) => {
  const clock = manualClock()
  const p = await JqPartitioner.create({ k: 'if .hang then last(range(1e12)) else .a end' }, { clock, callTimeoutMs: 5_000 })
  t.teardown(() => p.close())
  const hung = p.pid!
  const stuck = p.keys(records('{"a":"fine"}', '{"hang":true}', '{"a":"never reached"}'))
  const behind = p.keys(records('{"a":"behind"}'))
  let settled = false
  stuck.then(() => { settled = true }, () => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(settled, false, 'jq really spins on the record')
  clock.advance(4_999)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(settled, false, 'not before the deadline')
  clock.advance(10)
  await t.rejects(stuck, { name: 'JqTimeoutError', code: 'JQ_UNAVAILABLE', timeoutMs: 5_000.3, message: /no answer for record 2 of the call within 5000 ms; it was killed/ })
  t.same(await behind, [{ k: 'behind' }], 'the call behind it goes to a new jq')
  t.not(p.pid, hung)
  t.throws(() => process.kill(hung, 0), { code: 'ESRCH' }, 'the spinning jq is gone')
  t.same(await p.keys(records('{"a":"later"}')), [{ k: 'later' }])
})

t.test('a call\'s deadline grows with its records, and counts from when it is the oldest waiting', { skip }, async (t) => {
  const clock = manualClock()
  const p = await JqPartitioner.create({ k: 'if .hang then last(range(1e12)) else .a end' }, { clock, callTimeoutMs: 1_000 })
  t.teardown(() => p.close())
  const big = p.keys([...Array.from({ length: 20_000 }, (_, i) => record(`{"a":"${i}"}`)), record('{"hang":true}')])
  let settled = false
  big.catch(() => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 300))
  clock.advance(2_500)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(settled, false, '20,001 records get 1 s + 2 s')
  clock.advance(600)
  await t.rejects(big, { name: 'JqTimeoutError', timeoutMs: 1_000 + 20_001 * 0.1 })
})

t.test('close kills a jq that does not finish within the grace period, and rejects what was pending', { skip }, async (t) => {
  const clock = manualClock()
  const p = await JqPartitioner.create({ k: 'if .hang then last(range(1e12)) else .a end' }, { clock, callTimeoutMs: 600_000, closeGraceMs: 1_000 })
  const pid = p.pid!
  const stuck = p.keys(records('{"hang":true}'))
  stuck.catch(() => {})
  let closed = false
  const closing = p.close().then(() => { closed = true })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(closed, false, 'close waits for jq first')
  clock.advance(1_000)
  await closing
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the process is gone')
  await t.rejects(stuck, { code: 'JQ_UNAVAILABLE' })
})
