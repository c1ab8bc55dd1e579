/**
 * The agent's local endpoints against a web page on the device and DNS rebinding (issue 11): a real
 * agent process, attacked over real loopback sockets. A page can POST text/plain or a form to
 * 127.0.0.1 without a preflight, and a rebound name makes the page same-origin with the agent, so
 * Host and Origin decide; processes on the device (curl, fetch, the CLI) are served as before.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { execFile } from 'node:child_process'
import { writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, ROOT } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig, type ChildAgent } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One request with exactly these headers (Host included), over a fresh loopback connection. */
function send(port: number, o: { method?: string; path?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: o.method ?? 'POST', path: o.path ?? '/', headers: o.headers ?? {}, agent: false }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

const record = JSON.stringify({ StreamName: 's', PartitionKey: 'k', Data: Buffer.from('from a page').toString('base64') })

const cliRun = (args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/entry.ts'), ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
  })
})

async function backlog(agent: ChildAgent): Promise<number> {
  const s = await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json() as { outbox: { backlog: number } }
  return s.outbox.backlog
}

async function agentWith(t: { teardown(fn: () => unknown): void }, dir: string, putApi: Record<string, unknown> = {}, relay: Record<string, unknown> = {}): Promise<ChildAgent> {
  // The relay's port is closed: records stay in the outbox, where the test counts them.
  const config = writeAgentConfig(dir, {
    device: 'edge-sec', relay: { url: `mqtt://127.0.0.1:${await freePort()}`, ...relay },
    outbox: { path: join(dir, 'outbox.db') }, status: { port: 0 },
    streams: { s: {} }, sources: [{ type: 'put-api', port: 0, ...putApi }],
  })
  const agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })
  return agent
}

t.test('a web page cannot write records through the put API, and a process on the device still can', async (t) => {
  const dir = tempDir(t)
  const agent = await agentWith(t, dir)
  const port = agent.putApiPort!
  const host = `127.0.0.1:${port}`

  // The simple requests a page sends without a preflight: text/plain, a form, none at all.
  for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const a = await send(port, { path: '/PutRecord', headers: { host, 'content-type': type }, body: record })
    t.equal(a.status, 415, `${type} is refused`)
    t.match(JSON.parse(a.body), { __type: 'UnsupportedMediaTypeException', code: 'CONTENT_TYPE_REFUSED', message: /application\/json/ })
  }
  const untyped = await send(port, { path: '/PutRecord', headers: { host }, body: record })
  t.equal(untyped.status, 415, 'no content type at all is refused')

  // A page that sends JSON from another origin (after its preflight, or with no-cors): Origin is set.
  for (const method of ['POST', 'OPTIONS']) {
    const a = await send(port, { method, path: '/PutRecord', headers: { host, 'content-type': 'application/json', origin: 'http://evil.example' }, body: method === 'POST' ? record : undefined })
    t.equal(a.status, 403, `${method} with a foreign Origin is refused`)
    t.match(JSON.parse(a.body), { __type: 'AccessDeniedException', code: 'ORIGIN_REFUSED', message: /web pages/ })
    t.equal(a.headers['access-control-allow-origin'], undefined, 'and no CORS header lets the page read anything')
  }
  const nullOrigin = await send(port, { path: '/PutRecord', headers: { host, 'content-type': 'application/json', origin: 'null' }, body: record })
  t.equal(nullOrigin.status, 403, 'Origin: null (a sandboxed frame, a file: page) is refused too')

  // DNS rebinding: evil.example now resolves to 127.0.0.1, the page is same-origin and sends no Origin.
  for (const h of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`, 'evil.example']) {
    const a = await send(port, { path: '/PutRecord', headers: { host: h, 'content-type': 'application/json' }, body: record })
    t.equal(a.status, 403, `Host ${h} is refused`)
    t.match(JSON.parse(a.body), { __type: 'AccessDeniedException', code: 'HOST_REFUSED', message: /DNS rebinding/ })
  }
  const otherPort = await send(port, { path: '/PutRecord', headers: { host: `127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}`, 'content-type': 'application/json' }, body: record })
  t.equal(otherPort.status, 403, 'a loopback Host with another port is refused (a page on another local port, rebound)')
  const garbage = await send(port, { path: '/PutRecord', headers: { host: 'a b/c', 'content-type': 'application/json' }, body: record })
  t.equal(garbage.status, 400)
  t.match(JSON.parse(garbage.body), { code: 'HOST_MISSING' })

  t.equal(await backlog(agent), 0, 'none of it stored a record')

  // A refusal costs no body: 1 MiB declared, none sent, and the answer comes at once and closes.
  const refusedEarly = await new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/PutRecord', agent: false, headers: { host, 'content-type': 'text/plain', 'content-length': String(1 << 20) } }, (res) => {
      res.resume()
      resolve({ status: res.statusCode!, connection: res.headers.connection })
      req.destroy()
    })
    req.on('error', (err) => { if (!req.destroyed) reject(err) })
    req.flushHeaders()
  })
  t.same(refusedEarly, { status: 415, connection: 'close' }, 'refused on the headers, before any body')

  // A client that hangs up in the middle of a body costs the agent nothing but that request.
  await new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /PutRecord HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"StreamName":`, () => { socket.resetAndDestroy(); resolve() })
    })
  })
  const queried = await send(port, { path: '/PutRecord?x=1', headers: { host, 'content-type': 'application/json' }, body: record })
  t.equal(queried.status, 200, 'a query string does not change the operation (and the agent is still up)')

  // The device's own processes: the test helper (x-amz-json-1.1), fetch with JSON, localhost, curl.
  t.equal((await putRecords(port, 's', [{ key: 'k', data: 'helper' }])).status, 200)
  const fetched = await fetch(`http://127.0.0.1:${port}/PutRecord`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: record })
  t.equal(fetched.status, 200, await fetched.text())
  const byName = await send(port, { path: '/PutRecord', headers: { host: `localhost:${port}`, 'content-type': 'application/json; charset=utf-8' }, body: record })
  t.equal(byName.status, 200, 'Host localhost with the port is served')
  const curl = await new Promise<string>((resolve) => execFile('curl', ['-s', '-w', ' %{http_code}', `http://localhost:${port}/PutRecord`, '-H', 'content-type: application/json', '-d', record], (_e, stdout) => resolve(stdout)))
  t.match(curl, /"Stored":true.* 200$/, 'curl with a JSON content type is served')
  const curlForm = await new Promise<string>((resolve) => execFile('curl', ['-s', '-w', ' %{http_code}', `http://127.0.0.1:${port}/PutRecord`, '-d', record], (_e, stdout) => resolve(stdout)))
  t.match(curlForm, /CONTENT_TYPE_REFUSED.* 415$/, 'curl -d alone sends a form type, and is told what to send')
  t.equal(await backlog(agent), 5, 'exactly the five local puts are stored')
})

t.test('a rebound page cannot read the status server, and the CLI still can', async (t) => {
  const dir = tempDir(t)
  const agent = await agentWith(t, dir)
  const port = agent.statusPort
  for (const path of ['/dead-letters?data=1', '/status', '/metrics']) {
    const rebound = await send(port, { method: 'GET', path, headers: { host: `evil.example:${port}` } })
    t.equal(rebound.status, 403, `${path} with a foreign Host is refused`)
    t.match(JSON.parse(rebound.body), { code: 'HOST_REFUSED' })
    t.notMatch(rebound.body, /edge-sec|tributary_agent/, 'and says nothing of the agent')
    const fromPage = await send(port, { method: 'GET', path, headers: { host: `127.0.0.1:${port}`, origin: 'http://evil.example' } })
    t.equal(fromPage.status, 403, `${path} with an Origin is refused`)
    t.match(JSON.parse(fromPage.body), { code: 'ORIGIN_REFUSED' })
  }
  const posted = await send(port, { path: '/status', headers: { host: `127.0.0.1:${port}` }, body: 'x' })
  t.equal(posted.status, 405, 'the status server answers GET only')
  t.equal((await fetch(`http://127.0.0.1:${port}/dead-letters?data=1`)).status, 200, 'fetch from the device is served')
  t.equal((await send(port, { method: 'GET', path: '/status', headers: { host: `[::ffff:127.0.0.1]:${port}` } })).status, 200, 'a loopback address in any spelling is served')
  const cli = await cliRun(['agent', 'status', '--url', `http://localhost:${port}`])
  t.equal(cli.status, 0, cli.stderr)
  t.match(cli.stdout, /device edge-sec: /)
})

t.test('with a token, the put API serves only requests that carry it', async (t) => {
  const dir = tempDir(t)
  const tokenFile = join(dir, 'put-token')
  const token = 'a'.repeat(20) + '0123456789abcdef'
  writeFileSync(tokenFile, token + '\n')
  chmodSync(tokenFile, 0o600)
  const agent = await agentWith(t, dir, { tokenFile })
  const port = agent.putApiPort!
  const put = (authorization?: string) => send(port, { path: '/PutRecord', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: record })
  const none = await put()
  t.equal(none.status, 401)
  t.match(JSON.parse(none.body), { __type: 'UnrecognizedClientException', code: 'TOKEN_REFUSED', message: /required/ })
  for (const wrong of [`Bearer ${token.slice(0, -1)}x`, `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, 'Bearer']) {
    t.equal((await put(wrong)).status, 401, `${wrong.slice(0, 12)}… is refused`)
  }
  t.equal(await backlog(agent), 0)
  t.equal((await put(`Bearer ${token}`)).status, 200, 'the right token is served')
  t.equal((await put(`bearer  ${token}`)).status, 200, 'the scheme is case-insensitive')
  t.equal(await backlog(agent), 2)
})

t.test('large bodies held open cannot run the agent out of memory: past the budget a put is answered 503 at once', async (t) => {
  const dir = tempDir(t)
  const agent = await agentWith(t, dir)
  const port = agent.putApiPort!
  const host = `127.0.0.1:${port}`
  // Two bodies of the largest size (12 MiB) declared and barely begun: the whole budget. With
  // Expect: 100-continue the agent says Continue as it takes the request, so the test knows both
  // are held before it goes on.
  const hogs = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /PutRecords HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${12 * 1024 * 1024}\r\nexpect: 100-continue\r\n\r\n`)
    })
    socket.once('data', (d: Buffer) => { if (/^HTTP\/1\.1 100/.test(d.toString())) { socket.write('{"StreamName":"s","Records":['); resolve(socket) } else reject(new Error(d.toString())) })
    socket.on('error', () => {})
  })))
  const refused = await send(port, { path: '/PutRecord', headers: { host, 'content-type': 'application/json' }, body: record })
  t.equal(refused.status, 503, 'a small put is refused while the budget is held')
  t.equal(refused.headers['retry-after'], '1', 'with Retry-After, which SDKs honour')
  t.match(JSON.parse(refused.body), { __type: 'ServiceUnavailable', code: 'LIMIT_EXCEEDED', message: /retry shortly/ })
  const closed = hogs.map((s) => new Promise((resolve) => s.once('close', resolve)))
  for (const s of hogs) s.destroy()
  await Promise.all(closed)
  // The server sees the hang-ups a moment after the client: the budget comes back then.
  let status = 0
  for (let i = 0; i < 200 && status !== 200; i++) {
    status = (await send(port, { path: '/PutRecord', headers: { host, 'content-type': 'application/json' }, body: record })).status
    if (status !== 200) await new Promise((r) => setTimeout(r, 25))
  }
  t.equal(status, 200, 'once the hogs hang up, puts are served again')
  t.equal(await backlog(agent), 1, 'and only that put was stored')
})
