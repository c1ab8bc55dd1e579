import t from 'tap'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { loadAgentConfig, validateAgentConfig } from '../../agent/config.js'
import { tempDir } from '../helpers/tmp.js'

const base = { device: 'dev-1', relay: { url: 'mqtt://relay.example:1883' } }

t.test('defaults fill in everything a minimal config leaves out', async (t) => {
  const c = validateAgentConfig(base)
  t.equal(c.outbox.synchronous, 'FULL')
  t.equal(c.outbox.commitIntervalMs, 100)
  t.equal(c.uplink.batchRecords, 500)
  t.equal(c.uplink.batchBytes, 1024 * 1024)
  t.equal(c.relay.maxInflight, 8)
  t.equal(c.relay.username, '', 'no password: anonymous')
  t.equal(validateAgentConfig({ ...base, relay: { ...base.relay, password: 's' } }).relay.username, 'dev-1', 'with a password the device id is the username')
})

t.test('every mistake is named by its field', async (t) => {
  const bad: [unknown, string, RegExp][] = [
    [{}, 'device', /required/],
    [{ ...base, device: 'has space' }, 'device', /must match/],
    [{ ...base, relay: { url: 'http://x' } }, 'relay.url', /mqtt:\/\//],
    [{ ...base, relay: { ...base.relay, maxInflight: 0 } }, 'relay.maxInflight', /between 1 and 1000/],
    [{ ...base, outbox: { synchronous: 'OFF' } }, 'outbox.synchronous', /FULL, NORMAL/],
    [{ ...base, outbox: { maxBytes: 'big' } }, 'outbox.maxBytes', /integer/],
    [{ ...base, uplink: { batchBytes: 8 * 1024 * 1024 } }, 'uplink.batchBytes', /maxPacketBytes/],
    [{ ...base, streams: { s: { onFull: 'panic' } } }, 'streams.s.onFull', /drop-oldest, reject-new/],
    [{ ...base, streams: { 'bad name!': {} } }, 'streams.bad name!', /must match/],
    [{ ...base, streams: { s: { prio: 1 } } }, 'streams.s.prio', /not a setting/],
    [{ ...base, sources: [{ type: 'simulated', stream: 'nope' }] }, 'sources[0].stream', /not under streams/],
    [{ ...base, sources: [{ type: 'webcam' }] }, 'sources[0].type', /simulated, put-api, serial, camera/],
    [{ ...base, surprise: true }, 'surprise', /not a setting/],
  ]
  for (const [config, field, message] of bad) {
    t.throws(() => validateAgentConfig(config), { name: 'ConfigError', field, message }, field)
  }
})

t.test('a config file that is not YAML is refused with its path', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'agent.yaml')
  writeFileSync(file, 'device: [unclosed')
  t.throws(() => loadAgentConfig(file), { field: 'config', message: /not valid YAML/ })
  t.throws(() => loadAgentConfig(join(dir, 'missing.yaml')), { field: 'config', message: /cannot read/ })
})

t.test('a put API token is at least 16 printable characters, from token or tokenFile (not both)', async (t) => {
  const dir = tempDir(t)
  const put = (extra: object) => ({ ...base, sources: [{ type: 'put-api', ...extra }] })
  const file = join(dir, 'token')
  writeFileSync(file, '0123456789abcdef0123\n')
  const source = (extra: object) => validateAgentConfig(put(extra)).sources[0]
  t.match(source({}), { token: null, tokenFile: '', allowedHosts: [] }, 'no token by default')
  t.match(source({ tokenFile: file }), { token: '0123456789abcdef0123', tokenFile: file }, 'read from the file, trimmed')
  t.match(source({ token: 'x'.repeat(16) }), { token: 'x'.repeat(16), tokenFile: '' })
  t.match(validateAgentConfig(put({ tokenFile: join(dir, 'missing') }), { skipFiles: true }).sources[0], { tokenFile: join(dir, 'missing') }, 'check --skip-files does not read it')
  const bad: [object, string, RegExp][] = [
    [{ token: 'short' }, 'sources[0].token', /at least 16 characters \(got 5\).*openssl rand/],
    [{ token: '' }, 'sources[0].token', /at least 16/],
    [{ token: 'has a space in it, long enough' }, 'sources[0].token', /printable ASCII without spaces/],
    [{ token: 'x'.repeat(16), tokenFile: file }, 'sources[0].token', /not both/],
    [{ tokenFile: join(dir, 'missing') }, 'sources[0].tokenFile', /cannot be read/],
    [{ allowedHosts: 'edge.lan' }, 'sources[0].allowedHosts', /list of host names/],
    [{ allowedHosts: ['edge.lan:4569'] }, 'sources[0].allowedHosts', /without ports/],
  ]
  for (const [extra, field, message] of bad) t.throws(() => validateAgentConfig(put(extra)), { name: 'ConfigError', field, message }, JSON.stringify(extra))
  writeFileSync(file, 'too-short\n')
  t.throws(() => validateAgentConfig(put({ tokenFile: file })), { field: 'sources[0].tokenFile', message: /at least 16/ }, 'a short token in the file is named by the file setting')
  t.same(validateAgentConfig({ ...base, status: { allowedHosts: ['edge-1.lan', '10.0.0.5'] } }).status.allowedHosts, ['edge-1.lan', '10.0.0.5'])
})
