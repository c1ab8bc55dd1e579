import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { ROOT } from '../helpers/relay.js'

/** Runs createLogger in a child process (it writes to a file descriptor), configured from that process's environment as the CLI does, and returns its stdout lines. */
async function raw(script: string, env: Record<string, string> = {}): Promise<string[]> {
  const clean = { ...process.env }
  delete clean.JOURNAL_STREAM
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { createLogger, loggerOptionsFromEnv } from ${JSON.stringify(join(ROOT, 'agent/log.ts'))}\nconst log = createLogger(loggerOptionsFromEnv(process.env))\n${script}`], { cwd: ROOT, env: { ...clean, ...env } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  await once(child, 'exit')
  return out.trim().split('\n')
}
async function logged(script: string): Promise<Record<string, unknown>[]> {
  return (await raw(script)).map((l) => JSON.parse(l) as Record<string, unknown>)
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
  const url = await logged(`log('uplink_error', { error: 'connect ECONNREFUSED mqtts://pump-7:s3cret@relay.example.com:8883', at: { url: 'mqtt://u:p@h:1' } })`)
  t.notMatch(JSON.stringify(url), /s3cret|u:p@/, 'credentials inside URLs are removed')
  t.match(url[0], { error: 'connect ECONNREFUSED mqtts://[redacted]@relay.example.com:8883' })
})

t.test('under journald each line carries its syslog priority, so journalctl -p works', async (t) => {
  const lines = await raw(`log('serial_open', { source: 'gps' }); log('serial_lost', { source: 'gps' })`, { JOURNAL_STREAM: '8:12345' })
  t.match(lines[0], /^<6>\{"level":"info"/)
  t.match(lines[1], /^<4>\{"level":"warn"/)
})
