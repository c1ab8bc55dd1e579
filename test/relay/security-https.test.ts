/**
 * TLS on the HTTP port (issue 11, "Add"): with --https-cert/--https-key the port speaks TLS only,
 * HTTP/2 and HTTP/1.1 chosen by ALPN, and the AWS SDK (both handlers, trusting a test CA) and the
 * AWS CLI (--ca-bundle) work over it, signed. The certificates are made here by the openssl CLI: a
 * CA, and a server certificate it signs for 127.0.0.1 and localhost.
 */
import t from 'tap'
import https from 'node:https'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis'
import { NodeHttp2Handler, NodeHttpHandler } from '@smithy/node-http-handler'
import { spawnRelay, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { cli } from '../helpers/cli.js'
import { awsCliSkip, awsCliVersion, awsWith } from '../helpers/awscli.js'

const KEY = { accessKeyId: 'AKIDTLS', secretAccessKey: 'tls-secret' }

/** A CA and a server certificate it signs (SAN 127.0.0.1 and localhost), as PEM files in `dir`. */
function makeCertificates(dir: string) {
  const p = (name: string) => join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=Tributary test CA')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1')
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf'))
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') }
}

t.test('over TLS, the SDK signs and is served on HTTP/2 and on HTTP/1.1, chosen by ALPN', async (t) => {
  const files = makeCertificates(tempDir(t))
  const ca = readFileSync(files.ca)
  const relay = await testRelay(t, { accessKeys: [KEY], httpsCert: files.cert, httpsKey: files.key })
  t.equal(relay.httpTls, true)
  const endpoint = `https://127.0.0.1:${relay.httpPort}`

  for (const [name, requestHandler] of [
    ['http2', new NodeHttp2Handler({ nodeHttp2ConnectOptions: { ca } })],
    ['http1.1', new NodeHttpHandler({ httpsAgent: new https.Agent({ ca }) })],
  ] as const) {
    const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: KEY, requestHandler, maxAttempts: 1 })
    t.teardown(() => client.destroy())
    const StreamName = `tls-${name.replace('.', '')}`
    await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }))
    const put = await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'k', Data: Buffer.from('over tls') }))
    t.match(put.SequenceNumber, /^\d+$/, `${name}: PutRecord over TLS`)
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName }))
    t.equal(summary.StreamDescriptionSummary?.StreamStatus, 'ACTIVE')
  }

  // What each protocol negotiates: the server offers both.
  for (const protocol of ['h2', 'http/1.1']) {
    const socket = tls.connect({ host: '127.0.0.1', port: relay.httpPort, ca, ALPNProtocols: [protocol] })
    await new Promise((r) => socket.once('secureConnect', r))
    t.equal(socket.alpnProtocol, protocol, `ALPN ${protocol} is chosen when the client asks for it`)
    socket.destroy()
  }
  const session = http2.connect(endpoint, { ca })
  t.teardown(() => session.destroy())
  const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = session.request({ ':path': '/healthz' })
    let body = ''
    let status = 0
    req.on('response', (h) => { status = Number(h[':status']) })
    req.on('data', (d: Buffer) => { body += d })
    req.on('end', () => resolve({ status, body }))
    req.on('error', reject)
  })
  t.equal(health.status, 200, '/healthz over HTTP/2 and TLS')
})

t.test('with TLS on, cleartext is not served, and an untrusted certificate is refused by the client', async (t) => {
  const files = makeCertificates(tempDir(t))
  const relay = await testRelay(t, { httpsCert: files.cert, httpsKey: files.key })
  // A cleartext request gets no HTTP answer (the server expects a TLS ClientHello).
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect({ port: relay.httpPort, host: '127.0.0.1' })
    let got = ''
    socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => resolve(got))
    socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')
  })
  t.notMatch(answer, /HTTP\/1\.1 200/, 'no cleartext answer')
  await t.rejects(fetch(`https://127.0.0.1:${relay.httpPort}/healthz`), 'a client without the CA refuses the certificate')
})

t.test('the AWS CLI over TLS with --ca-bundle', { skip: awsCliSkip }, async (t) => {
  t.comment(awsCliVersion)
  const files = makeCertificates(tempDir(t))
  const relay = await testRelay(t, { accessKeys: [KEY], httpsCert: files.cert, httpsKey: files.key })
  const aws = awsWith(t, `https://127.0.0.1:${relay.httpPort}`, { id: KEY.accessKeyId, secret: KEY.secretAccessKey })
  const created = await aws('create-stream', '--stream-name', 'cli-tls', '--shard-count', '1', '--ca-bundle', files.ca)
  t.equal(created.code, 0, created.stderr)
  const put = await aws('put-record', '--stream-name', 'cli-tls', '--partition-key', 'k', '--data', 'aGVsbG8=', '--ca-bundle', files.ca)
  t.equal(put.code, 0, put.stderr)
  t.match(put.json, { ShardId: 'shardId-000000000000', SequenceNumber: /^\d+$/ })
  const listed = await aws('list-streams', '--ca-bundle', files.ca)
  t.same(listed.json?.StreamNames, ['cli-tls'])
  const untrusted = await aws('list-streams')
  t.not(untrusted.code, 0, 'without the CA bundle the CLI refuses the certificate')
  t.match(untrusted.stderr, /SSL|certificate/i)
})

t.test('the relay process announces https:// when its HTTP port speaks TLS', async (t) => {
  const dir = tempDir(t)
  const files = makeCertificates(dir)
  const relay = await spawnRelay(['--data-dir', join(dir, 'data'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--mqtt-tls-port', '0', '--http-port', '0', '--https-cert', files.cert, '--https-key', files.key])
  t.teardown(() => { relay.process.kill('SIGKILL') })
  t.match(relay.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/, 'the ready line names https://')
  const health = await new Promise<number>((resolve, reject) => {
    https.get(`${relay.endpoint}/healthz`, { ca: readFileSync(files.ca) }, (res) => { res.resume(); resolve(res.statusCode!) }).on('error', reject)
  })
  t.equal(health, 200, 'and serves there')
  // The tributary CLI over TLS trusts AWS_CA_BUNDLE's certificates, as the AWS CLI does.
  const endpoint = ['--endpoint', relay.endpoint]
  const created = await cli(['streams', 'create', 'over-tls', ...endpoint], '', 30_000, { AWS_CA_BUNDLE: files.ca })
  t.equal(created.code, 0, `tributary streams create over https://${created.stderr ? ` (${created.stderr.trim()})` : ''}`)
  const listed = await cli(['streams', 'list', ...endpoint], '', 30_000, { AWS_CA_BUNDLE: files.ca })
  t.match(listed.stdout, /over-tls/, 'and lists it')
  const added = await cli(['devices', 'add', 'dev-tls', '--data-dir', join(dir, 'data'), ...endpoint], '', 30_000, { AWS_CA_BUNDLE: files.ca })
  t.match(added.stdout, /device dev-tls added; its secret/, `tributary devices add over https:// too${added.stderr ? ` (${added.stderr.trim()})` : ''}`)
  const untrusted = await cli(['streams', 'list', ...endpoint])
  t.not(untrusted.code, 0, 'without the CA bundle the certificate is refused')
  t.match(untrusted.stderr, /certificate/i)
  relay.process.kill('SIGTERM')
  t.equal(await relay.exited, 0)
})
