import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { ROOT } from '../helpers/relay.js'

/** Runs createLogger in a child process (it writes to a file descriptor) and returns its stdout lines. */
async function logged(script: string): Promise<Record<string, unknown>[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(join(ROOT, 'agent/log.ts'))}\nconst log = createLogger()\n${script}`], { cwd: ROOT })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  await once(child, 'exit')
  return out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
}

t.test('one JSON line per event with level, time and event name; failures are warnings', async (t) => {
  const lines = await logged(`log('serial_open', { source: 'gps', baud: 9600 }); log('serial_lost', { source: 'gps', reason: 'path-gone' })`)
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 'info', event: 'serial_open', source: 'gps', baud: 9600 })
  t.match(lines[0]!.time, /^\d{4}-\d\d-\d\dT/)
  t.match(lines[1], { level: 'warn', event: 'serial_lost', reason: 'path-gone' })
})

t.test('secrets never reach the log, at any depth', async (t) => {
  const lines = await logged(`log('config', { relay: { url: 'mqtt://x', password: 'hunter2' }, token: 'abc', deep: { a: { secret: 's' } } })`)
  const text = JSON.stringify(lines)
  t.notMatch(text, 'hunter2')
  t.notMatch(text, '"abc"')
  t.notMatch(text, '"s"')
  t.match(lines[0], { relay: { url: 'mqtt://x', password: '[redacted]' }, token: '[redacted]' })
})
