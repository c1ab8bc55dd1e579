import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

t.test('with a certificate and key the broker also serves MQTT over TLS, with the same ingest behind it', async (t) => {
  const dir = tempDir(t)
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  const relay = await testRelay(t, { tlsCert: cert, tlsKey: key, mqttTlsPort: 0 })
  t.ok(relay.mqttTlsPort, 'a TLS port is listening')
  const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${relay.mqttTlsPort}`, { clientId: 'tls-dev', protocolVersion: 4, reconnectPeriod: 0, ca: readFileSync(cert) })
  t.teardown(() => client.endAsync(true))
  const frame = codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: 'k', data: Buffer.from('over tls'), producerTimeMs: Date.now(), clockSynced: true }] })
  await client.publishAsync(topics.records('tls-dev', 'secure'), frame, { qos: 1 })
  const shard = relay.streams.get('secure')!.shards[0]!
  const { records } = await shard.log.read(0, 10, 1 << 20)
  t.same(records.map((r) => r.data.toString()), ['over tls'])
  await t.rejects(mqtt.connectAsync(`mqtts://127.0.0.1:${relay.mqttTlsPort}`, { clientId: 'x', reconnectPeriod: 0, connectTimeout: 3000 }), 'a client that does not trust the certificate cannot connect')
})
