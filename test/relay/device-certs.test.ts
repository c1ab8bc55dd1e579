/**
 * Issue 11, device identity by X.509 client certificate on MQTT over TLS, performed against a real
 * relay on real sockets: a certificate from `tributary devices add --cert` makes its client the
 * device named by its CN; a certificate of another CA, a revoked one, an expired one, one whose CN
 * is not the client id, or one of a removed device is refused (with a password beside it too); a
 * revocation closes the live session; password devices keep working over TLS.
 */
import 'reflect-metadata' // before @peculiar/x509, as relay/device-ca.ts does
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import * as x509 from '@peculiar/x509'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { ConfigError } from '../../shared/errors.js'
import { resolveRelayConfig } from '../../shared/config.js'
import { createKeyAndRequest, DeviceCa, OWN_CA_FILE } from '../../relay/device-ca.js'
import { manualClock, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { cli } from '../helpers/cli.js'

type Relay = Awaited<ReturnType<typeof testRelay>>

/** A server certificate for 127.0.0.1 (openssl), as an operator would give the relay. */
function serverCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  return { cert, key }
}

async function tlsRelay(t: Test, settings: Parameters<typeof testRelay>[1] = {}, deps: Parameters<typeof testRelay>[2] = {}): Promise<Relay & { serverCa: Buffer }> {
  const dir = tempDir(t)
  const { cert, key } = serverCert(dir)
  const relay = await testRelay(t, { tlsCert: cert, tlsKey: key, mqttTlsPort: 0, allowAnonymous: false, ...settings }, deps)
  return Object.assign(relay, { serverCa: readFileSync(cert) })
}

async function admin(relay: Relay, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${relay.endpoint}${path}`, {
    method, headers: { authorization: `Bearer ${relay.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

/** A key and a certificate for `id`, signed by the relay through the admin API (as the CLI does it, in-process). */
async function issue(relay: Relay, id: string): Promise<{ key: string; cert: string; serial: string }> {
  const { keyPem, csrPem } = await createKeyAndRequest(id)
  const { status, json } = await admin(relay, 'POST', `/admin/devices/${id}/certificates`, { csr: csrPem })
  if (status !== 201) throw new Error(`issuing for ${id}: ${status} ${JSON.stringify(json)}`)
  return { key: keyPem, cert: String(json.certificate), serial: String(json.serial) }
}

interface Identity { key?: string | Buffer; cert?: string | Buffer; username?: string; password?: string }

function connect(relay: Relay & { serverCa: Buffer }, clientId: string, id: Identity): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtts://127.0.0.1:${relay.mqttTlsPort}`, {
    clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca: relay.serverCa, ...id,
  })
}

/** The CONNACK return code a refused connection got. */
async function refusedWith(t: Test, attempt: Promise<MqttClient>, what: string): Promise<number | undefined> {
  try {
    const client = await attempt
    await client.endAsync(true)
    t.fail(`${what}: connected`)
    return undefined
  } catch (err) {
    return (err as { code?: number }).code
  }
}

const batch = (sequence: number, data: string) => codec.encodeBatch({
  epoch: 3n, sequence, records: [{ partitionKey: 'k', data: Buffer.from(data), producerTimeMs: Date.now(), clockSynced: true }],
})

async function stored(relay: Relay, stream: string): Promise<string[]> {
  const s = relay.streams.get(stream)
  if (!s) return []
  const { records } = await s.shards[0]!.log.read(0, 100, 1 << 20)
  return records.map((r) => r.data.toString())
}

t.test('the relay makes its own device CA at the first start with MQTT over TLS, private to its owner, and keeps it', async (t) => {
  const dir = tempDir(t)
  const tls = serverCert(tempDir(t))
  const config = { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, dataDir: dir }
  const first = await testRelay(t, config)
  const path = join(dir, OWN_CA_FILE)
  t.equal(statSync(path).mode & 0o777, 0o600, 'device-ca.pem is mode 600')
  const text = readFileSync(path, 'utf8')
  t.match(text, /BEGIN CERTIFICATE[\s\S]+BEGIN PRIVATE KEY/, 'it holds the certificate and the key')
  const ca = new x509.X509Certificate(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(text)![0])
  t.ok(ca.getExtension(x509.BasicConstraintsExtension)?.ca, 'a CA certificate')
  const issued = await issue(first, 'dev-keep')
  await first.close()
  await testRelay(t, config)
  t.equal(readFileSync(path, 'utf8'), text, 'a restart keeps the same CA')
  t.ok(new x509.X509Certificate(issued.cert).verify({ publicKey: await ca.publicKey.export() }), 'and certificates it signed verify against it')

  const noTls = tempDir(t)
  await testRelay(t, { dataDir: noTls })
  t.throws(() => statSync(join(noTls, OWN_CA_FILE)), 'no CA is made without MQTT over TLS')
})

t.test('a certificate from devices add --cert is the device its CN names; password devices still work over TLS', async (t) => {
  const relay = await tlsRelay(t)
  const out = tempDir(t)
  const run = await cli(['devices', 'add', 'dev-cert', '--cert', '--out', out, '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.equal(run.code, 0, `devices add --cert exits 0 (stderr: ${run.stderr})`)
  t.match(run.stdout, /device dev-cert added with a new certificate, serial [0-9A-F]+/)
  const keyPath = join(out, 'dev-cert.key')
  t.equal(statSync(keyPath).mode & 0o777, 0o600, 'the key file is mode 600')
  const key = readFileSync(keyPath)
  const cert = readFileSync(join(out, 'dev-cert.crt'))
  t.equal(new x509.X509Certificate(cert).subject, 'CN=dev-cert', "the certificate's subject is the device")
  const again = await cli(['devices', 'add', 'dev-cert', '--cert', '--out', out, '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.not(again.code, 0, 'an existing key file is never overwritten')
  t.match(again.stderr, /dev-cert\.key exists/)
  t.same(readFileSync(keyPath), key, 'and is left as it was')

  const client = await connect(relay, 'dev-cert', { key, cert })
  t.teardown(() => client.endAsync(true))
  await client.publishAsync(topics.records('dev-cert', 'by-cert'), batch(0, 'signed'), { qos: 1 })
  t.same(await stored(relay, 'by-cert'), ['signed'], 'its batch is stored')
  const cut = new Promise<void>((resolve) => client.once('close', () => resolve()))
  client.publish(topics.records('dev-other', 'by-cert'), batch(1, 'as another'), { qos: 1 }, () => {})
  await cut
  t.same(await stored(relay, 'by-cert'), ['signed'], 'it may publish only as itself: as another device its connection is closed and nothing stored')

  const printed = await cli(['devices', 'add', 'dev-print', '--cert', '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.equal(printed.code, 0, `without --out (stderr: ${printed.stderr})`)
  t.match(printed.stderr, /private key \(shown only now\)/)
  const printedKey = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----/.exec(printed.stdout)?.[0]
  const printedCert = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(printed.stdout)?.[0]
  t.ok(printedKey && printedCert, 'the key and the certificate are printed')
  const second = await connect(relay, 'dev-print', { key: printedKey!, cert: printedCert! })
  await second.endAsync(true)

  const { json } = await admin(relay, 'POST', '/admin/devices', { id: 'dev-pass' })
  const byPassword = await connect(relay, 'dev-pass', { username: 'dev-pass', password: String(json.secret) })
  await byPassword.publishAsync(topics.records('dev-pass', 'by-password'), batch(0, 'over tls'), { qos: 1 })
  await byPassword.endAsync(true)
  t.same(await stored(relay, 'by-password'), ['over tls'], 'a password device over TLS, presenting no certificate, is stored as before')
  t.equal(await refusedWith(t, connect(relay, 'dev-pass', { username: 'dev-pass', password: 'wrong' }), 'wrong password'), 4, 'and a wrong password is still refused')
})

t.test('a certificate of another CA is refused, a password beside it too', async (t) => {
  const relay = await tlsRelay(t)
  const { json } = await admin(relay, 'POST', '/admin/devices', { id: 'dev-x' })
  // Another relay's device CA: a real CA, with its own name and key, that this relay does not trust.
  const other = await DeviceCa.open({ dataDir: tempDir(t), certFile: '', keyFile: '', certDays: 1, now: Date.now })
  const { keyPem, csrPem } = await createKeyAndRequest('dev-x')
  const foreign = await other.issue('dev-x', csrPem)
  t.equal(await refusedWith(t, connect(relay, 'dev-x', { key: keyPem, cert: foreign.certificatePem }), 'foreign CA'), 5, 'not authorized')
  t.equal(await refusedWith(t, connect(relay, 'dev-x', { key: keyPem, cert: foreign.certificatePem, username: 'dev-x', password: String(json.secret) }), 'foreign CA with password'), 5,
    'not authorized even with the right password: a bad certificate is not passed over')

  // A certificate signed by a CA of the same name and a different key.
  const caText = readFileSync(join(relay.config.dataDir, OWN_CA_FILE), 'utf8')
  const caName = new x509.X509Certificate(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(caText)![0]).subject
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const forgerKeys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const forged = await x509.X509CertificateGenerator.create({
    serialNumber: '0A', subject: 'CN=dev-x', issuer: caName, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    publicKey: (await new x509.Pkcs10CertificateRequest(csrPem).publicKey.export()), signingKey: forgerKeys.privateKey, signingAlgorithm: alg,
  })
  t.equal(await refusedWith(t, connect(relay, 'dev-x', { key: keyPem, cert: forged.toString('pem') }), 'forged issuer name'), 5, 'a certificate naming the CA but not signed by it is refused')
})

t.test("a certificate whose CN is not the client id is refused, and so is another username; an expired one is refused", async (t) => {
  const relay = await tlsRelay(t)
  const a = await issue(relay, 'dev-a')
  await issue(relay, 'dev-b')
  t.equal(await refusedWith(t, connect(relay, 'dev-b', { key: a.key, cert: a.cert }), 'client id of another device'), 2, "dev-a's certificate cannot take dev-b's client id (identifier rejected)")
  t.equal(await refusedWith(t, connect(relay, 'dev-a', { key: a.key, cert: a.cert, username: 'dev-b', password: 'x' }), 'username of another device'), 5, 'nor name dev-b as its username')

  // Signed by the relay's own CA (its key is in the data directory), but already past its end.
  const caText = readFileSync(join(relay.config.dataDir, OWN_CA_FILE), 'utf8')
  const caCert = new x509.X509Certificate(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(caText)![0])
  const caKey = await crypto.subtle.importKey('pkcs8', Buffer.from(/-----BEGIN PRIVATE KEY-----([^-]+)-----END PRIVATE KEY-----/.exec(caText)![1]!, 'base64'), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  const { keyPem, csrPem } = await createKeyAndRequest('dev-a')
  const expired = await x509.X509CertificateGenerator.create({
    serialNumber: '7B', subject: 'CN=dev-a', issuer: caCert.subject, notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000),
    publicKey: await new x509.Pkcs10CertificateRequest(csrPem).publicKey.export(), signingKey: caKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  })
  t.equal(await refusedWith(t, connect(relay, 'dev-a', { key: keyPem, cert: expired.toString('pem') }), 'expired'), 5, 'an expired certificate of the right CA is refused')
})

t.test('a revoked certificate is refused and its live session closed within 1 s; removing the device revokes the rest', async (t) => {
  const relay = await tlsRelay(t)
  const first = await issue(relay, 'dev-r')
  const second = await issue(relay, 'dev-r')
  const live = await connect(relay, 'dev-r', first)
  const closed = new Promise<void>((resolve) => live.once('close', () => resolve()))
  const out = await cli(['devices', 'revoke', 'dev-r', '--serial', first.serial.toLowerCase(), '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.equal(out.code, 0, `devices revoke exits 0 (stderr: ${out.stderr})`)
  t.match(out.stdout, `revoked 1 certificate(s) of dev-r: ${first.serial}`)
  let timer: NodeJS.Timeout | undefined
  const inTime = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), 1000) })])
  clearTimeout(timer)
  t.ok(inTime, 'the session on the revoked certificate is closed within 1 s of the revoke command')
  await live.endAsync(true)
  t.equal(await refusedWith(t, connect(relay, 'dev-r', first), 'revoked'), 5, 'the revoked certificate is refused')
  const other = await connect(relay, 'dev-r', second)
  t.pass("the device's other certificate still works")

  const listed = await admin(relay, 'GET', '/admin/devices/dev-r/certificates')
  t.same((listed.json.certificates as { serial: string; revokedMs: number | null }[]).map((c) => [c.serial, c.revokedMs !== null]).sort(),
    [[first.serial, true], [second.serial, false]].sort(), 'listed with their revocation')

  const otherClosed = new Promise<void>((resolve) => other.once('close', () => resolve()))
  t.equal((await admin(relay, 'DELETE', '/admin/devices/dev-r')).status, 200)
  await otherClosed
  t.pass("removing the device closes its certificate session")
  await other.endAsync(true)
  await admin(relay, 'POST', '/admin/devices', { id: 'dev-r' })
  t.equal(await refusedWith(t, connect(relay, 'dev-r', second), 'after removal'), 5, 'and its certificates stay revoked when the id is added again')

  // A serial the relay did not issue (signed elsewhere by the same CA) can be revoked ahead of use.
  const ahead = await admin(relay, 'POST', '/admin/devices/dev-r/revoke', { serial: '0d:ea:db:ee:f0' })
  t.same(ahead.json.revoked, ['DEADBEEF0'], 'kept normalized: upper case, no separators or leading zeros')
})

t.test("a certificate session is closed when the certificate ends, on the relay's clock", async (t) => {
  const clock = manualClock()
  // A day: the manual clock runs every housekeeping timer at each of its times on the way, so a
  // longer jump costs millions of callbacks. (Waits past setTimeout's 2^31-1 ms are the system
  // clock's to take in steps: test/hardware/clock.test.ts.)
  const relay = await tlsRelay(t, { deviceCertDays: 1 }, { clock })
  const issued = await issue(relay, 'dev-e')
  const notAfterMs = new x509.X509Certificate(issued.cert).notAfter.getTime()
  const live = await connect(relay, 'dev-e', issued)
  t.teardown(() => live.endAsync(true))
  let closed = false
  live.once('close', () => { closed = true })
  clock.advance(notAfterMs - clock.now() - 1_000)
  await live.publishAsync(topics.records('dev-e', 'until-end'), batch(0, 'before the end'), { qos: 1 })
  t.notOk(closed, 'open until its notAfter')
  const cut = new Promise<void>((resolve) => live.once('close', () => resolve()))
  clock.advance(1_000)
  await cut
  t.pass('closed at its notAfter')
  t.same(await stored(relay, 'until-end'), ['before the end'])
})

t.test('the admin API refuses bad certificate requests with clear 4xx errors and issues nothing', async (t) => {
  const relay = await tlsRelay(t)
  const bad = async (path: string, body: unknown, status: number, message: RegExp) => {
    const res = await admin(relay, 'POST', path, body)
    t.equal(res.status, status, `${JSON.stringify(body)} → ${status}`)
    t.match(String(res.json.message), message)
  }
  await bad('/admin/devices/dev-1/certificates', {}, 400, /"csr"/)
  await bad('/admin/devices/dev-1/certificates', { csr: 'not pem' }, 400, /not a PEM certificate request/)
  const { csrPem } = await createKeyAndRequest('dev-1')
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  der[der.length - 10] ^= 1 // a flipped bit in the signature
  await bad('/admin/devices/dev-1/certificates', { csr: `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n` }, 400, /not signed by its own key/)
  await bad('/admin/devices/bad%20id/certificates', { csr: csrPem }, 400, /must match/)
  t.same((await admin(relay, 'GET', '/admin/devices')).json.devices, [], 'no device was registered by a refused request')
  await bad('/admin/devices/dev-1/revoke', { serial: 'xyz' }, 400, /hexadecimal/)
  await bad('/admin/devices/dev-1/revoke', { serial: 12 }, 400, /string/)
  await bad('/admin/devices/dev-none/revoke', {}, 404, /does not exist/)
  const a = await issue(relay, 'dev-1')
  await bad('/admin/devices/dev-2/revoke', { serial: a.serial }, 409, /certificate of device dev-1/)

  const plain = await testRelay(t)
  const res = await fetch(`${plain.endpoint}/admin/devices/dev-1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${plain.adminToken}` }, body: JSON.stringify({ csr: csrPem }) })
  t.equal(res.status, 400, 'a relay without MQTT over TLS issues no certificates')
  t.match(((await res.json()) as { message: string }).message, /--tls-cert/)
})

t.test("the operator's own device CA: with its key the relay signs; without it the relay verifies and refuses to sign", async (t) => {
  const dir = tempDir(t)
  const caFile = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=Fleet CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' })
  execFileSync('chmod', ['600', caKey])
  const signing = await tlsRelay(t, { deviceCaCert: caFile, deviceCaKey: caKey })
  const issued = await issue(signing, 'dev-op')
  const ok = await connect(signing, 'dev-op', issued)
  await ok.endAsync(true)
  t.pass('a certificate the relay signed with the operator CA connects')
  t.throws(() => statSync(join(signing.config.dataDir, OWN_CA_FILE)), 'and the relay made no CA of its own')

  const verifying = await tlsRelay(t, { deviceCaCert: caFile })
  await admin(verifying, 'POST', '/admin/devices', { id: 'dev-op' })
  const res = await admin(verifying, 'POST', '/admin/devices/dev-op/certificates', { csr: (await createKeyAndRequest('dev-op')).csrPem })
  t.equal(res.status, 400)
  t.match(String(res.json.message), /cannot sign/)
  // Signed elsewhere (here with openssl, as an offline CA would).
  const out = tempDir(t)
  const csr = join(out, 'd.csr')
  const key = join(out, 'd.key')
  const cert = join(out, 'd.crt')
  const ext = join(out, 'ext.cnf')
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\n')
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=dev-op'], { stdio: 'ignore' })
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', '0x1234', '-days', '1', '-out', cert, '-extfile', ext], { stdio: 'ignore' })
  const offline = await connect(verifying, 'dev-op', { key: readFileSync(key), cert: readFileSync(cert) })
  await offline.endAsync(true)
  t.pass('a certificate the offline CA signed connects')
  t.same((await admin(verifying, 'POST', '/admin/devices/dev-op/revoke', { serial: '1234' })).json.revoked, ['1234'])
  t.equal(await refusedWith(t, connect(verifying, 'dev-op', { key: readFileSync(key), cert: readFileSync(cert) }), 'revoked offline cert'), 5, 'and once its serial is revoked it is refused')
})

t.test('device CA settings are checked before the relay starts', async (t) => {
  t.throws(() => resolveRelayConfig({}, {}, { deviceCaKey: '/k' }), new ConfigError('deviceCaKey', 'needs deviceCaCert, the certificate of that key'))
  t.throws(() => resolveRelayConfig({}, { TRIBUTARY_DEVICE_CA_CERT: '/c' }, {}), { field: 'deviceCaCert', message: /set tlsCert and tlsKey/ })
  const tls = serverCert(tempDir(t))
  const dir = tempDir(t)
  const someCa = await DeviceCa.open({ dataDir: tempDir(t), certFile: '', keyFile: '', certDays: 1, now: Date.now })
  writeFileSync(join(dir, 'leaf.crt'), (await someCa.issue('dev-leaf', (await createKeyAndRequest('dev-leaf')).csrPem)).certificatePem)
  await t.rejects(testRelay(t, { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, deviceCaCert: join(dir, 'leaf.crt') }), { message: /not a CA certificate/ }, 'a certificate that is no CA is refused')
  await t.rejects(testRelay(t, { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, deviceCaCert: join(dir, 'missing.crt') }), { message: /cannot read/ })
  const own = tempDir(t)
  writeFileSync(join(own, OWN_CA_FILE), '', { mode: 0o600 })
  await t.rejects(testRelay(t, { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, dataDir: own }), { message: /must hold the CA's certificate and its private key/ }, 'an empty device-ca.pem is refused, not replaced')
})
