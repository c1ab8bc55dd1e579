import t from 'tap'
import { readFileSync } from 'node:fs'
import { relaySchema, resolveRelayConfig } from '../../shared/config.js'
import { ConfigError } from '../../shared/errors.js'

t.test('defaults apply when nothing is set', async (t) => {
  const c = resolveRelayConfig()
  t.equal(c.mqttPort, 1883)
  t.equal(c.httpPort, 4567)
  t.equal(c.httpHost, '127.0.0.1', 'without access keys the HTTP port is loopback only')
  t.equal(c.allowAnonymous, false)
  t.equal(c.retentionHours, 24)
})

t.test('flags beat the environment, which beats the file', async (t) => {
  const c = resolveRelayConfig({ 'mqtt-port': '2000' }, { TRIBUTARY_MQTT_PORT: '3000', TRIBUTARY_HTTP_PORT: '4000' }, { mqttPort: 5000, httpPort: 6000, retentionHours: 48 })
  t.equal(c.mqttPort, 2000)
  t.equal(c.httpPort, 4000)
  t.equal(c.retentionHours, 48)
})

t.test('access keys open the HTTP port beyond loopback', async (t) => {
  const c = resolveRelayConfig({}, { TRIBUTARY_ACCESS_KEYS: 'AKID1:s3cret,AKID2:other' })
  t.same(c.accessKeys, [{ accessKeyId: 'AKID1', secretAccessKey: 's3cret' }, { accessKeyId: 'AKID2', secretAccessKey: 'other' }])
  t.equal(c.httpHost, '0.0.0.0')
})

t.test('a bad value is refused with an error naming its field and source', async (t) => {
  t.throws(() => resolveRelayConfig({ 'mqtt-port': 'abc' }), { name: 'ConfigError', field: '--mqtt-port', message: /--mqtt-port: must be an integer/ })
  t.throws(() => resolveRelayConfig({}, { TRIBUTARY_HTTP_PORT: '70000' }), { field: 'TRIBUTARY_HTTP_PORT', message: /at most 65535/ })
  t.throws(() => resolveRelayConfig({}, {}, { retentionHours: 'a day' }), { field: 'retentionHours' })
  t.throws(() => resolveRelayConfig({}, {}, { mqttPrt: 1 }), { field: 'mqttPrt', message: /not a relay setting/ })
  t.throws(() => resolveRelayConfig({}, {}, { tlsCert: '/x.pem' }), { field: 'tlsKey' })
  t.throws(() => resolveRelayConfig({}, {}, { accessKeys: [{ accessKeyId: 'bad id!', secretAccessKey: 'x' }] }), { field: 'accessKeys[0].accessKeyId' })
  t.throws(() => resolveRelayConfig({}, {}, { allowAnonymous: 'maybe' }), ConfigError)
})

t.test('docs/relay-settings.md names every setting with its flag, environment variable and config key', async (t) => {
  const doc = readFileSync(new URL('../../docs/relay-settings.md', import.meta.url), 'utf8')
  const missing = Object.entries(relaySchema).filter(([key, f]) => !doc.includes(`| \`--${f.flag}\` | \`${f.env}\` | \`${key}\` |`)).map(([key]) => key)
  t.same(missing, [], 'no setting is missing from the table')
})

t.test('cluster settings: NATS URLs, replicas only with a cluster, a name fit for JetStream', async (t) => {
  const ok = resolveRelayConfig({ cluster: 'nats://a:4222, nats://b:4222', replicas: '3', 'cluster-name': 'fleet-1' })
  t.equal(ok.cluster, 'nats://a:4222, nats://b:4222')
  t.equal(ok.replicas, 3)
  t.equal(ok.clusterName, 'fleet-1')
  t.equal(resolveRelayConfig().cluster, '', 'the embedded relay by default')
  t.throws(() => resolveRelayConfig({ cluster: 'http://a:4222' }), { name: 'ConfigError', field: 'cluster', message: /NATS server URLs/ })
  t.throws(() => resolveRelayConfig({}, { TRIBUTARY_CLUSTER: 'nats://a:4222,' }), { field: 'cluster' })
  t.throws(() => resolveRelayConfig({ replicas: '3' }), { field: 'replicas', message: /set cluster/ })
  t.throws(() => resolveRelayConfig({ cluster: 'nats://a:4222', replicas: '6' }), { field: '--replicas', message: /at most 5/ })
  t.throws(() => resolveRelayConfig({ cluster: 'nats://a:4222', 'cluster-name': 'a.b' }), { field: 'clusterName' })
})
