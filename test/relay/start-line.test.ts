/**
 * The relay's start line tells the operator whether its HTTP API checks signatures, and when it does
 * not, whether the API answers only this machine or anyone who reaches the address it listens on
 * (the container listens on 0.0.0.0).
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { ROOT, spawnUntilReady } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

async function startLine(t: Test, args: string[]): Promise<string> {
  const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', tempDir(t), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', ...args], 'tributary relay ready')
  child.kill('SIGTERM')
  await exited
  return ready
}

t.test('without access keys on loopback: sigv4 off, loopback only', async (t) => {
  t.match(await startLine(t, ['--http-host', '127.0.0.1']), / sigv4=off \(loopback only\)/)
})

t.test('without access keys on every address: the line says the API is open', async (t) => {
  const line = await startLine(t, ['--http-host', '0.0.0.0'])
  t.match(line, / sigv4=off \(the API is open to anyone who reaches 0\.0\.0\.0: set access keys\)/)
  t.notMatch(line, /loopback only/)
})

t.test('with access keys: sigv4 on', async (t) => {
  t.match(await startLine(t, ['--access-keys', 'AKIDSTART:start-line-secret-0123456789']), / sigv4=on/)
})
