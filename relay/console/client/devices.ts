/**
 * The devices page: every device with online or offline (from its retained status and MQTT will),
 * when it was last heard from, its backlog and oldest record, drops, dead letters, link state, version,
 * serial sensors and cameras. Sortable by any column, filtered by a text box; fetched again when the
 * relay pushes a change, not polled. Devices are added, rotated and removed here (a secret shown once).
 *
 * The page's state is on `window.devicesPage` (`rows`: the devices as last fetched; `updates`: pushes
 * seen), which tests read.
 */
import type { DeviceView } from '../views.js'
import { $, ago, api, button, coalesced, count, el, pushed, wireLogout } from './common.js'

type Row = DeviceView & { dropped: number }
type SortKey = keyof Row

const state = {
  rows: [] as DeviceView[],
  updates: 0,
  sort: { key: 'id' as SortKey, dir: 1 },
  /** The relay's clock when the rows were fetched, advanced locally between fetches. */
  now: 0,
  loadedAt: 0,
}
;(window as unknown as { devicesPage: typeof state }).devicesPage = state

const stateOf = (d: DeviceView) => (d.online === true ? 'online' : d.online === false ? 'offline' : 'unknown')
const droppedOf = (d: DeviceView) => Object.values(d.drops).reduce((n, v) => n + v, 0)
const healthy = (s: string) => s === 'open' || s === 'capturing' || s === 'running'

function cell(row: HTMLElement, text: string, cls = '', title = ''): HTMLTableCellElement {
  const td = el('td', cls, text)
  if (title) td.title = title
  row.appendChild(td)
  return td
}

function matches(d: DeviceView, filter: string): boolean {
  if (!filter) return true
  const parts = [d.id, stateOf(d), d.link ?? '', d.version ?? '', ...d.serial.map((s) => `${s.name} ${s.state}`), ...d.cameras.map((c) => `${c.name} ${c.state}`), ...d.alarms]
  return parts.join(' ').toLowerCase().includes(filter)
}

function compare(a: Row, b: Row): number {
  const { key, dir } = state.sort
  const x = a[key]
  const y = b[key]
  if (x === y) return a.id < b.id ? -1 : 1
  if (x === null || x === undefined) return 1
  if (y === null || y === undefined) return -1
  return ((x as number | string) < (y as number | string) ? -1 : 1) * dir
}

function render(): void {
  const now = state.now || Date.now()
  const filter = $<HTMLInputElement>('filter').value.trim().toLowerCase()
  const rows: Row[] = state.rows.filter((d) => matches(d, filter)).map((d) => ({ ...d, dropped: droppedOf(d) }))
  rows.sort(compare)
  const body = el('tbody')
  for (const d of rows) {
    const tr = el('tr')
    tr.dataset.device = d.id
    const th = el('th', '', d.id + (d.registered ? '' : ' (unregistered)'))
    th.scope = 'row'
    tr.appendChild(th)
    cell(tr, '').appendChild(el('span', `state ${stateOf(d)}`, stateOf(d)))
    cell(tr, d.lastSeenMs === null ? 'never' : `${ago(now - d.lastSeenMs)} ago`, '', d.lastSeenMs === null ? '' : new Date(d.lastSeenMs).toISOString())
    cell(tr, count(d.backlog), 'num')
    cell(tr, d.oldestAgeMs === null ? '–' : ago(d.oldestAgeMs), 'num')
    cell(tr, count(d.dropped), 'num', Object.entries(d.drops).map(([k, v]) => `${k}: ${v}`).join(', '))
    cell(tr, count(d.deadLetters), 'num')
    cell(tr, d.link ?? '–')
    cell(tr, d.version ?? '–')
    const parts = cell(tr, '')
    for (const p of [...d.serial, ...d.cameras]) parts.appendChild(el('span', `chip${healthy(p.state) ? '' : ' bad'}`, `${p.name}: ${p.state}`))
    for (const a of d.alarms) parts.appendChild(el('span', 'chip bad', a))
    const actions = cell(tr, '')
    if (d.registered) {
      actions.appendChild(button('Rotate', `rotate the secret of ${d.id}`, () => {
        if (!confirm(`Rotate the secret of ${d.id}? The old one stops working at once.`)) return
        api<{ id: string; secret: string }>('devices/rotate', { id: d.id }).then((j) => { showSecret(j.id, j.secret); load() }, fail)
      }))
      actions.appendChild(button('Remove', `remove ${d.id}`, () => {
        if (!confirm(`Remove ${d.id}? It is disconnected and can no longer connect.`)) return
        api('devices/remove', { id: d.id }).then(load, fail)
      }))
    }
    body.appendChild(tr)
  }
  const table = $<HTMLTableElement>('devices')
  table.replaceChild(body, table.tBodies[0]!)
  const online = state.rows.filter((d) => d.online === true).length
  const total = state.rows.length
  $('summary').textContent = `${total}${total === 1 ? ' device, ' : ' devices, '}${online} online${rows.length !== total ? `, ${rows.length} shown` : ''}`
}

function fail(err: Error): void {
  $('error').textContent = err.message
}

function showSecret(id: string, secret: string): void {
  $('secret-device').textContent = id
  $('secret-value').textContent = secret
  $('secret').hidden = false
}

$('secret-done').addEventListener('click', () => {
  $('secret-value').textContent = ''
  $('secret').hidden = true
})
$('add-device').addEventListener('submit', (e) => {
  e.preventDefault()
  const input = $<HTMLInputElement>('new-id')
  api<{ id: string; secret: string }>('devices/add', { id: input.value.trim() }).then((j) => {
    input.value = ''
    $('error').textContent = ''
    showSecret(j.id, j.secret)
    load()
  }, fail)
})

// At most one fetch of the list a second: with a thousand agents a status changes several times a second.
const load = coalesced(() => api<{ now: number; devices: DeviceView[] }>('devices').then((j) => {
  state.rows = j.devices
  state.now = j.now
  state.loadedAt = Date.now()
  $('error').textContent = ''
  render()
}, (err: Error) => { $('error').textContent = `could not load the devices: ${err.message}` }), 1000)

for (const b of document.querySelectorAll<HTMLButtonElement>('#devices th[data-key] button')) {
  b.addEventListener('click', () => {
    const th = b.parentElement!
    const key = th.dataset.key as SortKey
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 }
    for (const h of document.querySelectorAll('#devices th[data-key]')) h.removeAttribute('aria-sort')
    th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending')
    render()
  })
}
$('filter').addEventListener('input', render)
wireLogout()

// Pushed: the relay says which device changed; the list is fetched again (coalesced while a fetch runs).
pushed({ device: () => { state.updates++; load() } }, load)
// "Last seen" ages between pushes.
setInterval(() => {
  if (!state.loadedAt) return
  state.now += Date.now() - state.loadedAt
  state.loadedAt = Date.now()
  render()
}, 5000)
load()
