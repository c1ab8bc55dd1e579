/**
 * The console's devices page (`/console/devices`) without a browser: registered devices with what
 * their agents last published on their retained status topic, online until the MQTT will says
 * otherwise, and a pushed event (server-sent, `/console/api/events`) when a device's status changes.
 * Nothing of it answers without the session cookie.
 */
import t from 'tap'
import mqtt from 'mqtt'
import { gzipSync } from 'node:zlib'
import { testRelay } from '../helpers/relay.js'
import { CONSOLE_HEADERS as HEADER, consoleCookie as signIn } from '../helpers/console.js'
import type { DeviceView as View } from '../../relay/console/views.js'

async function addDevice(endpoint: string, token: string, id: string): Promise<string> {
  const r = await fetch(`${endpoint}/admin/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ id }) })
  return ((await r.json()) as { secret: string }).secret
}


async function devices(endpoint: string, cookie: string): Promise<View[]> {
  const r = await fetch(`${endpoint}/console/api/devices`, { method: 'POST', headers: { ...HEADER, cookie }, body: '{}' })
  if (r.status !== 200) throw new Error(`devices answered ${r.status}`)
  return ((await r.json()) as { devices: View[] }).devices
}

/** The `device` events of a server-sent event stream, as they arrive. */
async function eventStream(endpoint: string, cookie: string, signal: AbortSignal): Promise<{ status: number; next: () => Promise<string> }> {
  const r = await fetch(`${endpoint}/console/api/events`, { headers: { cookie }, signal })
  if (r.status !== 200) return { status: r.status, next: () => Promise.reject(new Error('no stream')) }
  const reader = r.body!.getReader()
  let text = ''
  return {
    status: r.status,
    next: async () => {
      for (;;) {
        const m = /event: device\ndata: (.*)\n\n/.exec(text)
        if (m) {
          text = text.slice(m.index + m[0].length)
          return (JSON.parse(m[1]!) as { device: string }).device
        }
        const { value, done } = await reader.read()
        if (done) throw new Error('the event stream ended')
        text += Buffer.from(value).toString()
      }
    },
  }
}

const until = async (what: string, check: () => Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('devices with their agents\' status, online until the will says offline, pushed as they change', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: false, httpHost: '127.0.0.1' })
  const token = relay.adminToken
  const secret = await addDevice(relay.endpoint, token, 'pump-7')
  await addDevice(relay.endpoint, token, 'silent-1')

  // Nothing without the cookie: the page is the login form, the API and the event stream answer 401.
  const page = await (await fetch(`${relay.endpoint}/console/devices`)).text()
  t.match(page, /<form id="login">/)
  t.equal((await fetch(`${relay.endpoint}/console/api/devices`, { method: 'POST', headers: HEADER, body: '{}' })).status, 401)
  t.equal((await fetch(`${relay.endpoint}/console/api/events`)).status, 401)
  t.equal((await fetch(`${relay.endpoint}/console/api/devices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 403, 'a POST without the CSRF header is refused')

  const cookie = await signIn(relay.endpoint, token)
  t.match(await (await fetch(`${relay.endpoint}/console/devices`, { headers: { cookie } })).text(), /<table id="devices">/, 'signed in: the devices page')
  t.equal((await fetch(`${relay.endpoint}/console`, { redirect: 'manual' })).headers.get('location'), '/console/devices', 'the console opens on its devices page')
  const before = await devices(relay.endpoint, cookie)
  t.same(before.map((d) => [d.id, d.registered, d.online, d.lastSeenMs]), [['pump-7', true, null, null], ['silent-1', true, null, null]], 'registered, not heard from yet')

  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const events = await eventStream(relay.endpoint, cookie, abort.signal)
  t.equal(events.status, 200)

  const statusTopic = 'tributary/v1/pump-7/status'
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, {
    clientId: 'pump-7', username: 'pump-7', password: secret, reconnectPeriod: 0,
    will: { topic: statusTopic, payload: Buffer.from(JSON.stringify({ device: 'pump-7', online: false, at: new Date().toISOString() })), qos: 1, retain: true },
  })
  t.teardown(() => client.end(true))
  await client.publishAsync(statusTopic, JSON.stringify({
    device: 'pump-7', online: true, at: new Date().toISOString(),
    link: { state: 'connected', lastPubackWallMs: Date.now() },
    outbox: { backlog: 42, streams: { s: { backlog: 42, bytes: 4200, oldestAgeSeconds: 3.5, priority: 0 } }, drops: [{ stream: 's', reason: 'expired', count: 2 }, { stream: 't', reason: 'expired', count: 1 }], deadLetters: [{ stream: 's', code: 'X', count: 4 }], alarms: [{ code: 'DISK_FULL', message: 'm', atMs: 1 }] },
    serial: { gps: { readings: 5, link: { state: 'open' } } },
    video: { cameras: { door: { state: 'capturing' } } },
  }), { qos: 1, retain: true })
  t.equal(await events.next(), 'pump-7', 'the status change is pushed')
  const online = (await devices(relay.endpoint, cookie)).find((d) => d.id === 'pump-7')!
  t.match(online, {
    registered: true, online: true, backlog: 42, oldestAgeMs: 3500, drops: { expired: 3 }, deadLetters: 4, link: 'connected',
    serial: [{ name: 'gps', state: 'open', readings: 5 }], cameras: [{ name: 'door', state: 'capturing' }], alarms: ['DISK_FULL'],
  })
  t.ok(online.lastSeenMs !== null)

  // A status that is not JSON changes nothing.
  await client.publishAsync(statusTopic, 'not json', { qos: 1 })
  t.equal((await devices(relay.endpoint, cookie)).find((d) => d.id === 'pump-7')!.online, true)

  // The connection is lost: the broker publishes the will, and the page hears of it.
  client.stream.destroy()
  t.equal(await events.next(), 'pump-7', 'the will is pushed')
  await until('pump-7 offline', async () => (await devices(relay.endpoint, cookie)).find((d) => d.id === 'pump-7')!.online === false)
  t.pass('offline once the will is published')

  // A change made elsewhere (the admin API, as `tributary devices remove` does) reaches the page too.
  const removed = await fetch(`${relay.endpoint}/admin/devices/pump-7`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
  t.equal(removed.status, 200)
  t.equal(await events.next(), 'pump-7', 'the removal is pushed')
  t.same((await devices(relay.endpoint, cookie)).map((d) => d.id), ['silent-1'], 'and the device, with what it last said, is gone')
})

t.test('devices are added, rotated and removed from the console, the secret shown once, with clear errors', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: false, httpHost: '127.0.0.1' })
  const cookie = await signIn(relay.endpoint, relay.adminToken)
  const call = async (op: string, body: unknown, headers: Record<string, string> = { ...HEADER, cookie }) => {
    const r = await fetch(`${relay.endpoint}/console/api/devices/${op}`, { method: 'POST', headers, body: JSON.stringify(body) })
    return { status: r.status, json: (await r.json()) as Record<string, unknown>, cache: r.headers.get('cache-control') }
  }
  t.equal((await call('add', { id: 'x' }, HEADER)).status, 401, 'not without the cookie')
  t.equal((await call('add', { id: 'x' }, { 'content-type': 'application/json', cookie })).status, 403, 'not without the CSRF header')
  const added = await call('add', { id: 'tank-2' })
  t.equal(added.status, 201)
  t.match(added.json, { id: 'tank-2', secret: /^[A-Za-z0-9_-]{32}$/ })
  t.equal(added.cache, 'no-store', 'no cache keeps the answer with the secret')
  t.match(await call('add', { id: 'tank-2' }), { status: 409, json: { code: 'CONFLICT', message: /already exists/ } })
  t.match(await call('add', { id: 'bad id!' }), { status: 400, json: { code: 'CONFIG_INVALID', message: /must match/ } })
  t.match(await call('add', {}), { status: 400, json: { code: 'REQUEST_INVALID' } })
  t.match(await call('frobnicate', { id: 'tank-2' }), { status: 404 })

  // The secret shown connects; a rotation's new one does, the old one no longer.
  const connect = (password: string) => mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'tank-2', username: 'tank-2', password, reconnectPeriod: 0, connectTimeout: 5000 })
  const first = await connect(added.json.secret as string)
  await first.endAsync()
  const rotated = await call('rotate', { id: 'tank-2' })
  t.equal(rotated.status, 200)
  t.not(rotated.json.secret, added.json.secret)
  await t.rejects(connect(added.json.secret as string), 'the old secret is refused after a rotation')
  const second = await connect(rotated.json.secret as string)
  await second.endAsync()
  t.ok((await devices(relay.endpoint, cookie)).some((d) => d.id === 'tank-2' && d.registered))
  t.match(await call('remove', { id: 'tank-2' }), { status: 200, json: { removed: true } })
  t.notOk((await devices(relay.endpoint, cookie)).some((d) => d.id === 'tank-2'), 'gone from the list')
  t.match(await call('remove', { id: 'tank-2' }), { status: 404, json: { code: 'NOT_FOUND' } })
})

t.test('what the console serves stays under 1 MB gzipped', async (t) => {
  const relay = await testRelay(t, { httpHost: '127.0.0.1' })
  const cookie = await signIn(relay.endpoint, relay.adminToken)
  let gzipped = 0
  const pages = ['devices', 'streams', 'cameras', 'delivery', 'video'].map((p) => `/console/${p}`)
  const assets = ['login', 'devices', 'streams', 'cameras', 'delivery', 'video', 'hls.min'].map((a) => `/console/assets/${a}.js`)
  for (const path of [...pages, ...assets, '/console/assets/console.css']) {
    const r = await fetch(`${relay.endpoint}${path}`, { headers: { cookie } })
    t.equal(r.status, 200, path)
    gzipped += gzipSync(Buffer.from(await r.arrayBuffer()), { level: 9 }).length
  }
  t.ok(gzipped < 1024 * 1024, `${Math.round(gzipped / 1024)} KiB gzipped in all`)
})

t.test('with --console false the relay serves no console and follows no status for it', async (t) => {
  const relay = await testRelay(t, { httpHost: '127.0.0.1', console: false })
  for (const path of ['/console', '/console/devices', '/console/assets/devices.js']) {
    const r = await fetch(`${relay.endpoint}${path}`)
    t.equal(r.status, 404, path)
    t.match(await r.json(), { code: 'NOT_FOUND', message: /no console \(it runs with --console false\)/ })
  }
  const login = await fetch(`${relay.endpoint}/console/login`, { method: 'POST', headers: { 'x-tributary-console': '1', 'content-type': 'application/json' }, body: JSON.stringify({ token: relay.adminToken }) })
  t.equal(login.status, 404, 'not even a sign-in')
  t.equal((await fetch(`${relay.endpoint}/healthz`)).status, 200, 'the rest of the relay answers')
})
