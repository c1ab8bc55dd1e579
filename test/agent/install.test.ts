/**
 * `tributary agent install` writes the unit and a starter config into the directories it is given,
 * says what it did, keeps an existing config, and never writes a password anywhere but where the
 * user keeps it.
 */
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { validateAgentConfig } from '../../agent/config.js'
import { parse } from 'yaml'

const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p))

const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), 'agent', ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
  })
})

t.test('install writes the unit and a starter config, says so, and the result is a valid service', async (t) => {
  const dir = tempDir(t)
  const units = join(dir, 'units')
  const etc = join(dir, 'etc')
  const r = await cli(['install', '--unit-dir', units, '--config-dir', etc, '--device', 'pi-kitchen', '--relay', 'mqtts://relay.example.com:8883'])
  t.equal(r.code, 0, r.stderr)
  const unitPath = join(units, 'tributary-agent.service')
  const configPath = join(etc, 'agent.yaml')
  t.match(r.stdout, `wrote ${configPath} (starter config: device pi-kitchen, relay mqtts://relay.example.com:8883`)
  t.match(r.stdout, `wrote ${unitPath} (Type=notify`)
  t.match(r.stdout, 'config check: ok')
  t.match(r.stdout, 'systemctl daemon-reload && systemctl enable --now tributary-agent')

  const unit = readFileSync(unitPath, 'utf8')
  t.match(unit, `ExecStart=${process.execPath} --max-semi-space-size=1 --max-old-space-size=64 --single-threaded ${join(ROOT, 'bin/tributary-agent.js')} run --config ${configPath}`)
  t.notMatch(unit, /@[A-Z]+@/, 'every placeholder filled')
  t.notMatch(unit, /LoadCredential/, 'no credential without --password-file')
  if (ANALYZE) t.equal(execFileSync(ANALYZE, ['verify', unitPath], { encoding: 'utf8' }).trim(), '', 'systemd-analyze verify passes')
  // CI installs systemd for this check; there, a missing systemd-analyze is a failure, not a skip.
  else if (process.env.CI) t.fail('systemd-analyze is not installed, so the unit was not verified')

  const config = validateAgentConfig(parse(readFileSync(configPath, 'utf8')))
  t.equal(config.device, 'pi-kitchen')
  t.equal(config.outbox.path, '/var/lib/tributary-agent/outbox.db', 'the outbox is in the StateDirectory')
  t.equal(statSync(configPath).mode & 0o777, 0o644)

  const check = await cli(['check', '--config', configPath])
  t.equal(check.code, 0, check.stderr)
  t.match(check.stdout, /ok — device pi-kitchen/)
})

t.test('a second install keeps the config the user edited and replaces the unit', async (t) => {
  const dir = tempDir(t)
  const args = ['install', '--unit-dir', join(dir, 'u'), '--config-dir', join(dir, 'e'), '--device', 'd1']
  t.equal((await cli(args)).code, 0)
  const configPath = join(dir, 'e', 'agent.yaml')
  writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('device: d1', 'device: edited'))
  const again = await cli(args)
  t.equal(again.code, 0)
  t.match(again.stdout, `kept ${configPath}`)
  t.match(again.stdout, `replaced ${join(dir, 'u', 'tributary-agent.service')}`)
  t.match(readFileSync(configPath, 'utf8'), 'device: edited')
})

t.test('--password-file hands the password to the agent as a systemd credential, never copying it', async (t) => {
  const dir = tempDir(t)
  const secret = join(dir, 'relay.password')
  writeFileSync(secret, 's3cret-pa55\n', { mode: 0o600 })
  const r = await cli(['install', '--unit-dir', join(dir, 'u'), '--config-dir', join(dir, 'e'), '--device', 'd2', '--password-file', secret])
  t.equal(r.code, 0, r.stderr)
  const unit = readFileSync(join(dir, 'u', 'tributary-agent.service'), 'utf8')
  const config = readFileSync(join(dir, 'e', 'agent.yaml'), 'utf8')
  t.match(unit, `LoadCredential=relay-password:${secret}`)
  t.match(config, 'passwordFile: /run/credentials/tributary-agent.service/relay-password')
  for (const text of [unit, config, r.stdout, r.stderr]) t.notMatch(text, 's3cret-pa55')
})

t.test('bad options are refused with the option named, and nothing is written', async (t) => {
  const dir = tempDir(t)
  const r = await cli(['install', '--unit-dir', join(dir, 'u'), '--config-dir', join(dir, 'e'), '--device', 'bad device!'])
  t.equal(r.code, 1)
  t.match(r.stderr, /CONFIG_INVALID: --device: must match/)
  t.notOk(existsSync(join(dir, 'u')) || existsSync(join(dir, 'e')))
  const missing = await cli(['install', '--unit-dir', join(dir, 'u'), '--config-dir', join(dir, 'e'), '--device', 'd', '--password-file', join(dir, 'nope')])
  t.match(missing.stderr, /--password-file: .*nope does not exist/)
})
