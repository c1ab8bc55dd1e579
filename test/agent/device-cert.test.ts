/**
 * Issue 11, certificate devices end to end: a real agent process with the key and certificate that
 * `tributary devices add --cert` wrote connects over mqtts:// and its records arrive (read back through
 * the Kinesis API); revoked with `tributary devices revoke`, its live connection is closed, its
 * reconnects are refused and nothing more arrives; an agent holding another CA's certificate is
 * refused; a certificate of another device or a key of another certificate is a config error at start.
 */
import t, { type Test } from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateAgentConfig } from '../../agent/config.js'
import { createKeyAndRequest, DeviceCa } from '../../relay/device-ca.js'
import { ROOT, testRelay } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig, type ChildAgent } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { cli } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

type Relay = Awaited<ReturnType<typeof testRelay>>
interface Status { online: boolean; link: { state: string; lastError: string | null; reconnects: number }; outbox: { backlog: number } }

function serverCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  return { cert, key }
}

async function agentWith(t: Test, relay: Relay, serverCa: string, device: string, cert: string, key: string): Promise<ChildAgent> {
  const dir = tempDir(t)
  const config = writeAgentConfig(dir, {
    device,
    relay: { url: `mqtts://127.0.0.1:${relay.mqttTlsPort}`, ca: serverCa, cert, key },
    outbox: { path: join(dir, 'outbox.db') },
    // Quick reconnects, so refused attempts pile up fast.
    uplink: { backoffInitialMs: 20, backoffMaxMs: 100 },
    status: { port: 0 },
    streams: { telemetry: {} },
    sources: [{ type: 'put-api', port: 0 }],
  })
  const agent = await spawnAgent(config)
  t.teardown(async () => {
    agent.process.kill('SIGKILL')
    await agent.exited
  })
  return agent
}

async function status(agent: ChildAgent): Promise<Status> {
  return (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json() as Promise<Status>
}

/** Polls the agent's /status until `ok` holds; `what` names the wait in the failure. */
async function until(agent: ChildAgent, what: string, ok: (s: Status) => boolean, timeoutMs = 30_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await status(agent)
    if (ok(s)) return s
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last status ${JSON.stringify(s)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function arrived(relay: Relay, stream: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const data = relay.streams.get(stream) ? (await readStream(relay.endpoint, stream)).map((r) => r.data) : []
    if (data.length >= count) return data
    if (Date.now() > deadline) throw new Error(`only ${data.length} of ${count} records arrived in ${stream}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('an agent with a certificate from devices add --cert delivers over mqtts://; revoked, it is cut off and refused', async (t) => {
  const tls = serverCert(tempDir(t))
  const relay = await testRelay(t, { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, allowAnonymous: false })
  const out = tempDir(t)
  const added = await cli(['devices', 'add', 'edge-cert', '--cert', '--out', out, '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.equal(added.code, 0, `devices add --cert (stderr: ${added.stderr})`)
  const agent = await agentWith(t, relay, tls.cert, 'edge-cert', join(out, 'edge-cert.crt'), join(out, 'edge-cert.key'))

  t.equal((await putRecords(agent.putApiPort!, 'telemetry', [{ key: 'k', data: 'one' }, { key: 'k', data: 'two' }])).status, 200)
  t.same(await arrived(relay, 'telemetry', 2), ['one', 'two'], 'its records arrive, read back through the Kinesis API')
  const before = await until(agent, 'connected', (s) => s.online)

  const revoked = await cli(['devices', 'revoke', 'edge-cert', '--endpoint', relay.endpoint, '--token', relay.adminToken])
  t.equal(revoked.code, 0, `devices revoke (stderr: ${revoked.stderr})`)
  t.match(revoked.stdout, /revoked 1 certificate\(s\) of edge-cert/)
  const after = await until(agent, 'refused after the revocation', (s) => !s.online && s.link.reconnects >= before.link.reconnects + 2 && /not authorized/i.test(s.link.lastError ?? ''))
  t.match(after.link.lastError, /not authorized/i, 'its live connection was closed and every reconnect is refused')

  t.equal((await putRecords(agent.putApiPort!, 'telemetry', [{ key: 'k', data: 'three' }])).status, 200, 'the agent still takes records')
  const later = await until(agent, 'more refused reconnects', (s) => s.link.reconnects >= after.link.reconnects + 3 && s.outbox.backlog >= 1)
  t.equal(later.online, false)
  t.same((await readStream(relay.endpoint, 'telemetry')).map((r) => r.data), ['one', 'two'], 'and none reaches the relay: it waits in the outbox')
})

t.test("an agent holding another CA's certificate for a registered device is refused and delivers nothing", async (t) => {
  const tls = serverCert(tempDir(t))
  const relay = await testRelay(t, { tlsCert: tls.cert, tlsKey: tls.key, mqttTlsPort: 0, allowAnonymous: false })
  await fetch(`${relay.endpoint}/admin/devices`, { method: 'POST', headers: { authorization: `Bearer ${relay.adminToken}` }, body: JSON.stringify({ id: 'edge-forged' }) })
  const other = await DeviceCa.open({ dataDir: tempDir(t), certFile: '', keyFile: '', certDays: 1, now: Date.now })
  const { keyPem, csrPem } = await createKeyAndRequest('edge-forged')
  const dir = tempDir(t)
  writeFileSync(join(dir, 'd.crt'), (await other.issue('edge-forged', csrPem)).certificatePem)
  writeFileSync(join(dir, 'd.key'), keyPem, { mode: 0o600 })
  const agent = await agentWith(t, relay, tls.cert, 'edge-forged', join(dir, 'd.crt'), join(dir, 'd.key'))
  t.equal((await putRecords(agent.putApiPort!, 'telemetry', [{ key: 'k', data: 'forged' }])).status, 200)
  const s = await until(agent, 'refused attempts', (s) => s.link.reconnects >= 3 && /not authorized/i.test(s.link.lastError ?? ''))
  t.equal(s.online, false, 'never connected')
  t.equal(relay.streams.get('telemetry'), undefined, 'nothing arrived: not even the stream was created')
})

t.test('relay.cert and relay.key are checked at start, with the field named', async (t) => {
  const dir = tempDir(t)
  const ca = await DeviceCa.open({ dataDir: tempDir(t), certFile: '', keyFile: '', certDays: 1, now: Date.now })
  const mine = await createKeyAndRequest('dev-1')
  const theirs = await createKeyAndRequest('dev-2')
  const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text, { mode: 0o600 }); return p }
  const cert1 = file('dev-1.crt', (await ca.issue('dev-1', mine.csrPem)).certificatePem)
  const key1 = file('dev-1.key', mine.keyPem)
  const cert2 = file('dev-2.crt', (await ca.issue('dev-2', theirs.csrPem)).certificatePem)
  const key2 = file('dev-2.key', theirs.keyPem)
  const relay = (extra: object, url = 'mqtts://relay.example:8883') => ({ device: 'dev-1', relay: { url, ...extra } })

  const ok = validateAgentConfig(relay({ cert: cert1, key: key1, ca: cert1 }))
  t.same([ok.relay.cert, ok.relay.key, ok.relay.username], [cert1, key1, ''], 'a matching pair is taken; no username is sent')
  const bad: [object, string, RegExp, string?][] = [
    [{ cert: cert1 }, 'relay.key', /is required with relay.cert/],
    [{ key: key1 }, 'relay.cert', /is required with relay.key/],
    [{ cert: cert1, key: key1 }, 'relay.cert', /must be mqtts:\/\//, 'mqtt://relay.example:1883'],
    [{ cert: join(dir, 'missing.crt'), key: key1 }, 'relay.cert', /cannot be read/],
    [{ cert: key1, key: key1 }, 'relay.cert', /not a PEM certificate/],
    [{ cert: cert2, key: key2 }, 'relay.cert', /certificate of "dev-2" \(its CN\), not of this device "dev-1"/],
    [{ cert: cert1, key: key2 }, 'relay.key', /is not the private key of/],
    [{ cert: cert1, key: cert1 }, 'relay.key', /not a PEM private key/],
    [{ cert: 7, key: key1 }, 'relay.cert', /must be a string/],
  ]
  for (const [extra, field, message, url] of bad) {
    t.throws(() => validateAgentConfig(relay(extra, url)), { field, message }, `${JSON.stringify(extra)} → ${field}`)
  }
  t.same(validateAgentConfig(relay({ cert: join(dir, 'missing.crt'), key: join(dir, 'missing.key') }), { skipFiles: true }).relay.cert, join(dir, 'missing.crt'), 'skipFiles checks no file')

  // The agent process itself refuses to start with another device's certificate, naming the field.
  const config = writeAgentConfig(dir, { ...relay({ cert: cert2, key: key2 }), outbox: { path: join(dir, 'o.db') }, status: { port: 0 } })
  const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), 'agent', 'run', '--config', config], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr })
    })
  })
  t.not(run.code, 0, 'agent run exits non-zero')
  t.match(run.stderr, /relay\.cert/, `and says why: ${run.stderr.trim()}`)
})
