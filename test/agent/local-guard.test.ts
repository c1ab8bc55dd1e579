/**
 * The checks in front of the agent's local endpoints, one request's headers at a time: which Host
 * names are this agent's (loopback, the bind address, allowedHosts, the machine's own addresses
 * when bound to a wildcard), and the order Origin, Host, token, content type. The attacks against a
 * running agent are in security.test.ts.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { networkInterfaces } from 'node:os'
import { localGuard, parseHost, type GuardOptions } from '../../agent/local-guard.js'

const PORT = 4569
const guard = (o: Partial<GuardOptions> = {}) => localGuard({ bindHost: '127.0.0.1', allowedHosts: [], token: null, json: false, ...o }, () => PORT)
const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage
const code = (g: ReturnType<typeof guard>, headers: Record<string, string>) => g(req(headers))?.code ?? 'served'

t.test('Host values parse into a lower-case name and a port, or not at all', async (t) => {
  t.same(parseHost('LocalHost:4569'), { name: 'localhost', port: 4569 })
  t.same(parseHost('[::1]:80'), { name: '::1', port: 80 })
  t.same(parseHost('127.0.0.1'), { name: '127.0.0.1', port: null })
  for (const bad of ['', 'a b', 'x:y', '[evil.example]:1', 'user@127.0.0.1:4569', '127.0.0.1:4569/x', '::1:4569']) t.equal(parseHost(bad), null, JSON.stringify(bad))
})

t.test('loopback names and addresses with the listening port are served; anything else is refused', async (t) => {
  const g = guard()
  for (const host of [`127.0.0.1:${PORT}`, `localhost:${PORT}`, `LOCALHOST:${PORT}`, `127.1.2.3:${PORT}`, `[::1]:${PORT}`]) t.equal(code(g, { host }), 'served', host)
  for (const host of [`evil.example:${PORT}`, `localhost.:${PORT}`, `127.0.0.1.nip.io:${PORT}`, `10.0.0.1:${PORT}`, `127.0.0.1:${PORT + 1}`, '127.0.0.1', `[::2]:${PORT}`]) t.equal(code(g, { host }), 'HOST_REFUSED', host)
  t.equal(code(g, {}), 'HOST_MISSING')
  t.equal(code(localGuard({ bindHost: '127.0.0.1', allowedHosts: [], token: null, json: false }, () => 80), { host: 'localhost' }), 'served', 'no port in Host means 80')
})

t.test('the bind address and allowedHosts are served too; a wildcard bind serves the machine\'s own addresses', async (t) => {
  t.equal(code(guard({ bindHost: 'edge-1.lan' }), { host: `Edge-1.LAN:${PORT}` }), 'served', 'a named bind address')
  t.equal(code(guard({ allowedHosts: ['metrics.lan', 'fd00::5'] }), { host: `metrics.lan:${PORT}` }), 'served')
  t.equal(code(guard({ allowedHosts: ['metrics.lan', 'fd00::5'] }), { host: `[fd00::5]:${PORT}` }), 'served')
  t.equal(code(guard({ allowedHosts: ['metrics.lan'] }), { host: `evil.lan:${PORT}` }), 'HOST_REFUSED')
  const own = Object.values(networkInterfaces()).flat().find((a) => a && !a.internal && a.family === 'IPv4')
  if (own) {
    t.equal(code(guard({ bindHost: '0.0.0.0' }), { host: `${own.address}:${PORT}` }), 'served', `bound to 0.0.0.0, reached at ${own.address}`)
    t.equal(code(guard(), { host: `${own.address}:${PORT}` }), 'HOST_REFUSED', 'bound to loopback, the same address is not this server')
  } else t.comment('no non-loopback IPv4 address here: the wildcard case is not checked')
  t.equal(code(guard({ bindHost: '0.0.0.0' }), { host: `0.0.0.0:${PORT}` }), 'HOST_REFUSED', 'the wildcard itself is no host name')
})

t.test('Origin is refused before anything else; then Host, the token, the content type', async (t) => {
  const g = guard({ token: 't'.repeat(16), json: true })
  const ok = { host: `127.0.0.1:${PORT}`, authorization: `Bearer ${'t'.repeat(16)}`, 'content-type': 'application/x-amz-json-1.0' }
  t.equal(code(g, ok), 'served')
  t.equal(code(g, { ...ok, origin: 'http://127.0.0.1:4569' }), 'ORIGIN_REFUSED', 'even a same-host origin: no page is served')
  t.equal(code(g, { origin: 'x', host: 'evil' }), 'ORIGIN_REFUSED')
  t.equal(code(g, { ...ok, host: 'evil', authorization: '' }), 'HOST_REFUSED', 'Host before the token: a rebound page learns nothing of it')
  t.equal(code(g, { ...ok, authorization: 'Bearer x', 'content-type': 'text/plain' }), 'TOKEN_REFUSED')
  t.equal(code(g, { ...ok, 'content-type': 'Application/JSON; charset=utf-8' }), 'served')
  t.equal(code(g, { ...ok, 'content-type': 'application/jsonp' }), 'CONTENT_TYPE_REFUSED')
  t.equal(code(g, { ...ok, 'content-type': 'text/plain; application/json' }), 'CONTENT_TYPE_REFUSED')
  t.match(g(req({ ...ok, host: 'evil.example:4569' })), { status: 403, type: 'AccessDeniedException', message: /"evil\.example:4569" is not this agent's .*127\.0\.0\.1:4569/ })
  t.match(g(req({ ...ok, 'content-type': '' })), { status: 415, message: /\(none\) is refused: send application\/json/ })
})
