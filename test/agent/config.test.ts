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
    [{ ...base, sources: [{ type: 'camera' }] }, 'sources[0].type', /simulated, put-api/],
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
