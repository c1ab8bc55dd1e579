/**
 * `tributary healthcheck`, the container's HEALTHCHECK: exit 0 only when the relay on this machine
 * answers /healthz with 200, at the port and scheme its own settings give.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { cleanEnv } from '../helpers/cli.js'
import { freePort, ROOT, testRelay } from '../helpers/relay.js'

const ENTRY = join(ROOT, 'relay/cli/healthcheck.ts')

function healthcheck(env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout }))
  })
}

t.test('a healthy relay: exit 0, at the port TRIBUTARY_HTTP_PORT names', async (t) => {
  const relay = await testRelay(t)
  const run = await healthcheck({ TRIBUTARY_HTTP_PORT: String(relay.httpPort) })
  t.equal(run.code, 0)
  t.match(run.stdout, new RegExp(`^http://127\\.0\\.0\\.1:${relay.httpPort}/healthz 200 \\{"status":"ok"`))
  const byFlag = await healthcheck({}, ['--endpoint', relay.endpoint])
  t.equal(byFlag.code, 0, '--endpoint names another address')
})

t.test('no relay, or one that answers 503: exit 1, saying what it saw', async (t) => {
  const closed = await freePort()
  const none = await healthcheck({ TRIBUTARY_HTTP_PORT: String(closed) })
  t.equal(none.code, 1)
  t.match(none.stdout, `http://127.0.0.1:${closed}/healthz connect ECONNREFUSED`)

  const failing = createServer((_req, res) => { res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"failing","storage":"ENOSPC"}') })
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => failing.close())
  const port = (failing.address() as { port: number }).port
  const failingRun = await healthcheck({ TRIBUTARY_HTTP_PORT: String(port) })
  t.equal(failingRun.code, 1)
  t.match(failingRun.stdout, '503 {"status":"failing","storage":"ENOSPC"}')

  const tls = await healthcheck({ TRIBUTARY_HTTP_PORT: String(port), TRIBUTARY_HTTPS_CERT: '/etc/relay.pem' })
  t.equal(tls.code, 1, 'with TRIBUTARY_HTTPS_CERT it speaks TLS, which a plain HTTP server cannot answer')
  t.match(tls.stdout, `https://127.0.0.1:${port}/healthz`)
})
