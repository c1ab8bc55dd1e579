/**
 * The agent says when its own setup exposes its credentials (issue 11): a relay password file (or
 * put API token file) its group or every user can read, and a password sent in clear over mqtt:// to
 * another machine. In the log at start (at warning level), in /status, and in `agent status`,
 * `agent check` and `agent install`; a safe setup says nothing.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateAgentConfig } from '../../agent/config.js'
import { securityWarnings } from '../../agent/warnings.js'
import { startAgent } from '../../agent/agent.js'
import { createLogger } from '../../agent/log.js'
import { loadCodec } from '../../hardware/index.js'
import { freePort, ROOT } from '../helpers/relay.js'
import { spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'

const cliRun = (args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
  })
})

function secret(dir: string, name: string, mode: number): string {
  const path = join(dir, name)
  writeFileSync(path, 'a-device-secret-0123456789\n')
  chmodSync(path, mode)
  return path
}

const codes = (raw: object) => securityWarnings(validateAgentConfig(raw)).map((w) => w.code)

t.test('a password file readable by others is named with its mode and the fix', async (t) => {
  const dir = tempDir(t)
  const relay = (passwordFile: string) => ({ device: 'd1', relay: { url: 'mqtts://relay.example:8883', passwordFile } })
  t.same(codes(relay(secret(dir, 'private', 0o600))), [], '0600: nothing to say')
  t.same(codes(relay(secret(dir, 'owner-only', 0o400))), [], '0400: nothing to say')
  const group = securityWarnings(validateAgentConfig(relay(secret(dir, 'group', 0o640))))
  t.match(group, [{ code: 'SECRET_FILE_READABLE', message: /relay password file .*group.*\(mode 0640\): chmod 600 / }])
  const world = securityWarnings(validateAgentConfig(relay(secret(dir, 'world', 0o644))))
  t.match(world, [{ code: 'SECRET_FILE_READABLE', message: /readable by every user \(mode 0644\)/ }])
  const token = securityWarnings(validateAgentConfig({ device: 'd1', relay: { url: 'mqtts://relay.example:8883' }, sources: [{ type: 'put-api', tokenFile: secret(dir, 'token', 0o604) }] }))
  t.match(token, [{ code: 'SECRET_FILE_READABLE', message: /put API token file/ }], 'the put API token file too')
})

t.test('a device certificate key readable by others is named (relay.key)', async (t) => {
  const dir = tempDir(t)
  const config = (key: string) => validateAgentConfig({ device: 'd1', relay: { url: 'mqtts://relay.example:8883', cert: join(dir, 'd1.crt'), key } }, { skipFiles: true })
  t.match(securityWarnings(config(secret(dir, 'loose.key', 0o644))), [{ code: 'SECRET_FILE_READABLE', message: /private key \(relay\.key\) .*loose\.key is readable by every user \(mode 0644\): chmod 600/ }])
  t.same(securityWarnings(config(secret(dir, 'tight.key', 0o600))), [], 'mode 600 says nothing')
})

t.test('a password over plain mqtt:// to another machine is a warning; over mqtts:// or to loopback it is not', async (t) => {
  const base = (url: string, password?: string) => ({ device: 'd1', relay: { url, ...(password ? { password } : {}) } })
  t.match(securityWarnings(validateAgentConfig(base('mqtt://relay.example:1883', 's3cret'))), [{ code: 'PASSWORD_IN_CLEAR', message: /relay\.example:1883 in clear over mqtt:\/\/.*use mqtts:\/\// }])
  t.same(codes(base('mqtt://192.0.2.7:1883', 's3cret')), ['PASSWORD_IN_CLEAR'], 'an address on the network')
  t.same(codes(base('mqtt://user:pw@relay.example:1883')), ['PASSWORD_IN_CLEAR'], 'a password inside the URL')
  t.same(codes(base('mqtts://relay.example:8883', 's3cret')), [], 'TLS')
  t.same(codes(base('mqtt://relay.example:1883')), [], 'no password (anonymous): nothing to read')
  for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', '[::1]']) t.same(codes(base(`mqtt://${host}:1883`, 's3cret')), [], `loopback ${host}`)
})

t.test('the warnings are logged at start at warning level and shown by /status, agent status and agent check', async (t) => {
  const dir = tempDir(t)
  const raw = {
    device: 'edge-warn',
    // 192.0.2.0/24 is TEST-NET: never reached, so the uplink only tries.
    relay: { url: 'mqtt://192.0.2.1:1883', passwordFile: secret(dir, 'password', 0o644) },
    outbox: { path: join(dir, 'outbox.db') }, status: { port: 0 }, streams: { s: {} },
  }
  const logFile = join(dir, 'agent.log')
  const fd = openSync(logFile, 'w')
  t.teardown(() => closeSync(fd))
  const agent = await startAgent(validateAgentConfig(raw), { log: createLogger({ fd }), codec: loadCodec(process.env) })
  await agent.stop()
  const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const warned = lines.filter((l) => l.event === 'security_warning')
  t.match(warned, [
    { level: 'warn', code: 'SECRET_FILE_READABLE', message: /mode 0644/ },
    { level: 'warn', code: 'PASSWORD_IN_CLEAR', message: /192\.0\.2\.1:1883/ },
  ])
  t.ok(lines.findIndex((l) => l.event === 'security_warning') < lines.findIndex((l) => l.event === 'agent_started'), 'before the agent says it started')
  t.notMatch(readFileSync(logFile, 'utf8'), /a-device-secret/, 'and the password itself is nowhere in the log')

  const config = writeAgentConfig(dir, { ...raw, outbox: { path: join(dir, 'outbox2.db') } })
  const child = await spawnAgent(config)
  t.teardown(() => { child.process.kill('SIGKILL') })
  const status = await (await fetch(`http://127.0.0.1:${child.statusPort}/status`)).json() as { warnings: { code: string }[] }
  t.same(status.warnings.map((w) => w.code), ['SECRET_FILE_READABLE', 'PASSWORD_IN_CLEAR'], '/status carries them')
  const shown = await cliRun(['agent', 'status', '--url', `http://127.0.0.1:${child.statusPort}`])
  t.equal(shown.status, 0, shown.stderr)
  t.match(shown.stdout, /WARNING SECRET_FILE_READABLE: the relay password file .* is readable by every user \(mode 0644\): chmod 600/)
  t.match(shown.stdout, /WARNING PASSWORD_IN_CLEAR: the relay password goes to 192\.0\.2\.1:1883 in clear/)
  const checked = await cliRun(['agent', 'check', '--config', config])
  t.equal(checked.status, 0, checked.stderr)
  t.match(checked.stdout, /warning: SECRET_FILE_READABLE: .*\nwarning: PASSWORD_IN_CLEAR: /)

  chmodSync(join(dir, 'password'), 0o600)
  const safe = writeAgentConfig(dir, { ...raw, relay: { ...raw.relay, url: `mqtts://127.0.0.1:${await freePort()}` }, outbox: { path: join(dir, 'outbox3.db') } })
  const quiet = await cliRun(['agent', 'check', '--config', safe])
  t.equal(quiet.status, 0, quiet.stderr)
  t.notMatch(quiet.stdout, /warning/, 'a safe setup says nothing')
})

t.test('agent install warns about a password file others can read', async (t) => {
  const dir = tempDir(t)
  const args = (file: string, sub: string) => ['agent', 'install', '--unit-dir', join(dir, sub, 'u'), '--config-dir', join(dir, sub, 'e'), '--device', 'd1', '--password-file', file]
  const open = await cliRun(args(secret(dir, 'open', 0o644), 'a'))
  t.equal(open.status, 0, open.stderr)
  t.match(open.stdout, /warning: SECRET_FILE_READABLE: the password file .*open is readable by every user \(mode 0644\): chmod 600/)
  const closed = await cliRun(args(secret(dir, 'closed', 0o600), 'b'))
  t.equal(closed.status, 0, closed.stderr)
  t.notMatch(closed.stdout, /warning/)
})

t.test('endpoints bound beyond loopback are named: the status server always, the put API without a token', async (t) => {
  const base = { device: 'd1', relay: { url: 'mqtts://relay.example:8883' } }
  t.same(codes({ ...base, sources: [{ type: 'put-api' }] }), [], 'the defaults (127.0.0.1) say nothing')
  t.match(securityWarnings(validateAgentConfig({ ...base, status: { host: '0.0.0.0' } })), [{ code: 'OPEN_TO_NETWORK', message: /status server listens on 0\.0\.0\.0: .*dead-lettered records/ }])
  t.match(securityWarnings(validateAgentConfig({ ...base, sources: [{ type: 'put-api', host: '::' }] })), [{ code: 'OPEN_TO_NETWORK', message: /put API listens on :: without a token: .*tokenFile/ }])
  t.same(codes({ ...base, sources: [{ type: 'put-api', host: '0.0.0.0', token: 'x'.repeat(16) }] }), [], 'with a token the put API may listen on the network')
  t.same(codes({ ...base, status: { host: 'localhost' }, sources: [{ type: 'put-api', host: '::1' }] }), [], 'loopback names and addresses')
})
