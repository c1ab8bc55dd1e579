/**
 * The delivery page: each delivery stream with where it reads and where it delivers, how fresh its
 * sink is (the age of the oldest record not yet delivered, Firehose's DataFreshness), its backlog,
 * what it has delivered, and its failures by error code with the last error. Fetched again at each
 * ten-second step the relay pushes, not polled.
 *
 * The page's state is on `window.deliveryPage` (`deliveries`: as last fetched), which tests read.
 */
import type { DeliveryView } from '../views.js'
import { $, ago, api, bytes, coalesced, count, el, pushed, wireLogout } from './common.js'

const state = { deliveries: [] as DeliveryView[], now: 0, updates: 0 }
;(window as unknown as { deliveryPage: typeof state }).deliveryPage = state

/** Freshness past a minute is marked, past five minutes more so (Firehose's default buffering is up to 5 min). */
function freshnessClass(s: number): string {
  return s < 60 ? '' : s < 300 ? 'late' : 'very-late'
}

function render(): void {
  const body = el('tbody')
  for (const d of state.deliveries) {
    const tr = el('tr', freshnessClass(d.freshnessSeconds))
    tr.dataset.delivery = d.name
    const th = el('th', '', d.name)
    th.scope = 'row'
    tr.appendChild(th)
    tr.appendChild(el('td', '', d.status))
    tr.appendChild(el('td', '', d.source))
    tr.appendChild(el('td', '', d.destination))
    tr.appendChild(el('td', 'num', d.backlogRecords === 0 ? 'caught up' : ago(d.freshnessSeconds * 1000)))
    tr.appendChild(el('td', 'num', count(d.backlogRecords)))
    tr.appendChild(el('td', 'num', `${count(d.recordsDelivered)} (${bytes(d.bytesDelivered)})`))
    tr.appendChild(el('td', '', d.lastDeliveryMs === null ? 'never' : `${ago(state.now - d.lastDeliveryMs)} ago`))
    const failures = Object.entries(d.failuresByCode)
    const failed = Object.entries(d.recordsFailed)
    const cell = el('td', failures.length ? 'bad' : '', failures.length ? failures.map(([code, n]) => `${code}: ${n}`).join(', ') : 'none')
    if (failed.length) cell.appendChild(el('div', 'facts', `records to the error output: ${failed.map(([type, n]) => `${type} ${n}`).join(', ')}`))
    if (d.lastError) cell.appendChild(el('div', 'facts', `last: ${d.lastError.code}: ${d.lastError.message} (${ago(state.now - d.lastError.atMs)} ago)`))
    tr.appendChild(cell)
    body.appendChild(tr)
  }
  const table = $<HTMLTableElement>('deliveries')
  table.replaceChild(body, table.tBodies[0]!)
  const failing = state.deliveries.filter((d) => Object.keys(d.failuresByCode).length).length
  $('summary').textContent = `${state.deliveries.length}${state.deliveries.length === 1 ? ' delivery stream' : ' delivery streams'}${failing ? `, ${failing} with failures` : ''}`
  $('empty').hidden = state.deliveries.length > 0
}

const load = coalesced(() => api<{ now: number; deliveries: DeliveryView[] }>('deliveries').then((j) => {
  state.deliveries = j.deliveries
  state.now = j.now
  $('error').textContent = ''
  render()
}, (err: Error) => { $('error').textContent = `could not load the delivery streams: ${err.message}` }))

wireLogout()
pushed({ streams: () => { state.updates++; load() } }, load)
load()
