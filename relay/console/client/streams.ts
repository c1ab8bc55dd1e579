/**
 * The streams page: each data stream with its status, retention and encryption; a picture of its
 * shards' hash-key ranges (open shards on top, the closed parents of splits and merges below them,
 * each as wide as its range); its incoming records and bytes per second over the last hour (two small
 * charts from the relay's ring of ten-second steps); its readers and how far behind they are; and a
 * live tail of one stream. Fetched again when the relay pushes a step, not polled.
 *
 * The page's state is on `window.streamsPage` (`streams`: as last fetched; `updates`: pushes seen;
 * `tail`: the live tail's records), which tests read.
 */
import type { ConsumerView, StreamView } from '../views.js'
import { $, ago, api, bytes, coalesced, count, el, pushed, rate, wireLogout } from './common.js'

interface TailRecord { shardId: string; offset: number; arrivalMs: number; partitionKey: string; bytes: number; data: string }
type TailEntry = TailRecord | { skipped: number; shardId: string }

const tail = { source: null as EventSource | null, stream: null as string | null, records: [] as TailEntry[], seen: 0 }
/** `now`: the relay's clock when the streams were fetched, against which positions are aged. */
const state = { streams: [] as StreamView[], now: 0, updates: 0, tail }
;(window as unknown as { streamsPage: typeof state }).streamsPage = state

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 360
const HEIGHT = 60

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v)
  return e
}

/**
 * One series over the hour as a bar per ten-second step (a stream that began a minute ago shows six),
 * the newest at the right edge, scaled to its own largest value.
 */
function chart(values: number[], what: string, format: (n: number) => string): HTMLElement {
  const figure = el('figure', 'chart-box')
  const max = Math.max(1, ...values)
  const last = values.length ? values[values.length - 1]! : 0
  const box = svg('svg', { class: `chart ${what.replace(/\W+/g, '-')}`, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${what} over the last hour; now ${format(last)}, at most ${format(max)}` })
  box.appendChild(svg('line', { x1: '0', x2: String(WIDTH), y1: String(HEIGHT - 1), y2: String(HEIGHT - 1) }))
  const offset = WIDTH - values.length
  values.forEach((v, i) => {
    if (v <= 0) return
    const h = Math.max(1, (v / max) * (HEIGHT - 6))
    box.appendChild(svg('rect', { x: String(offset + i), y: (HEIGHT - 1 - h).toFixed(1), width: '1', height: h.toFixed(1) }))
  })
  figure.appendChild(box)
  figure.appendChild(el('figcaption', '', `${what}: now ${format(last)}, peak ${format(max)}`))
  return figure
}

function shardPicture(s: StreamView): HTMLElement {
  const shards = el('div', 'shards')
  shards.setAttribute('role', 'list')
  shards.setAttribute('aria-label', `shards of ${s.name} by hash-key range`)
  for (const sh of s.shards) {
    const d = el('div', `shard${sh.open ? '' : ' closed'}`, sh.shardId.replace('shardId-', ''))
    d.setAttribute('role', 'listitem')
    d.dataset.shard = sh.shardId
    d.style.left = `${(sh.from * 100).toFixed(4)}%`
    d.style.width = `${((sh.to - sh.from) * 100).toFixed(4)}%`
    d.title = `${sh.shardId} (${sh.open ? 'open' : 'closed'}), ${sh.records} records${sh.parent ? `, from ${sh.parent}${sh.adjacentParent ? ` and ${sh.adjacentParent}` : ''}` : ''}`
    shards.appendChild(d)
  }
  return shards
}

const KIND = { 'fan-out': 'enhanced fan-out', checkpoints: 'checkpoints', delivery: 'delivery stream' } as const

function readers(s: StreamView): HTMLElement {
  if (!s.consumers.length) return el('p', 'facts readers-none', 'No readers registered or checkpointing.')
  const table = el('table', 'readers')
  table.setAttribute('aria-label', `readers of ${s.name}`)
  const head = el('tr')
  for (const h of ['Reader', 'Kind', 'Status', 'Shards followed', 'Records behind', 'Oldest unread', 'Position moved']) {
    const th = el('th', /behind|Shards|Oldest/.test(h) ? 'num' : '', h)
    th.scope = 'col'
    head.appendChild(th)
  }
  table.appendChild(el('thead')).appendChild(head)
  const body = table.appendChild(el('tbody'))
  const now = state.now
  for (const c of s.consumers) {
    const tr = el('tr', behindClass(c))
    tr.dataset.consumer = c.name
    const th = el('th', '', c.name)
    th.scope = 'row'
    tr.appendChild(th)
    tr.appendChild(el('td', '', KIND[c.kind]))
    tr.appendChild(el('td', '', c.status))
    tr.appendChild(el('td', 'num', count(c.shardsFollowed)))
    tr.appendChild(el('td', 'num', count(c.behindRecords)))
    tr.appendChild(el('td', 'num', c.behindMs === null ? '–' : c.behindRecords === 0 ? 'caught up' : ago(c.behindMs)))
    tr.appendChild(el('td', '', c.updatedMs === null ? (c.kind === 'fan-out' ? (c.shardsFollowed ? 'subscribed' : 'not subscribed') : '–') : `${ago(now - c.updatedMs)} ago`))
    body.appendChild(tr)
  }
  return table
}

/** A reader a minute or more behind is marked; five minutes, more so. */
function behindClass(c: ConsumerView): string {
  if (c.behindMs === null || c.behindMs < 60_000) return ''
  return c.behindMs < 300_000 ? 'late' : 'very-late'
}

function render(): void {
  const out = document.createDocumentFragment()
  for (const s of state.streams) {
    const box = el('section', 'stream')
    box.dataset.stream = s.name
    box.setAttribute('aria-label', `stream ${s.name}`)
    const title = el('div', 'stream-title')
    title.appendChild(el('h2', '', s.name))
    const tailButton = el('button', '', 'Tail')
    tailButton.type = 'button'
    tailButton.setAttribute('aria-label', `live tail of ${s.name}`)
    tailButton.addEventListener('click', () => startTail(s.name))
    title.appendChild(tailButton)
    box.appendChild(title)
    const open = s.shards.filter((sh) => sh.open).length
    const records = s.incoming.recordsPerSecond
    const now = records.length ? records[records.length - 1]! : 0
    box.appendChild(el('p', 'facts', `${s.status} · ${s.mode} · ${open}${open === 1 ? ' open shard of ' : ' open shards of '}${s.shards.length} · retention ${s.retentionHours} h · ${s.encrypted ? 'encrypted' : 'not encrypted'} · now ${rate(now)} records/s`))
    box.appendChild(shardPicture(s))
    const charts = el('div', 'charts')
    charts.appendChild(chart(s.incoming.recordsPerSecond, 'records per second', rate))
    charts.appendChild(chart(s.incoming.bytesPerSecond, 'bytes per second', (n) => `${bytes(n)}/s`))
    box.appendChild(charts)
    box.appendChild(readers(s))
    out.appendChild(box)
  }
  $('streams').replaceChildren(out)
  $('summary').textContent = `${state.streams.length}${state.streams.length === 1 ? ' stream' : ' streams'}`
}

// The live tail: one stream at a time, the newest record first, at most 200 kept on the page.
function hex(raw: string): string {
  const out: string[] = []
  for (let i = 0; i < raw.length; i++) out.push(raw.charCodeAt(i).toString(16).padStart(2, '0'))
  return out.join(' ')
}

function shown(r: TailRecord): string {
  const raw = atob(r.data)
  if ($<HTMLInputElement>('tail-hex').checked) return hex(raw)
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(raw, (c) => c.charCodeAt(0)))
  } catch {
    return hex(raw)
  }
}

function drawTail(): void {
  const list = document.createDocumentFragment()
  for (const r of tail.records) {
    const li = el('li')
    if ('skipped' in r) {
      li.textContent = `${r.skipped} records skipped in ${r.shardId} (the tail keeps up with the newest)`
    } else {
      li.appendChild(el('span', 'meta', `${new Date(r.arrivalMs).toISOString().slice(11, 23)} ${r.shardId.replace('shardId-', '')} #${r.offset} ${r.partitionKey} (${r.bytes} B)`))
      li.appendChild(document.createTextNode(shown(r)))
    }
    list.appendChild(li)
  }
  $('tail-records').replaceChildren(list)
  $('tail-count').textContent = `${tail.seen} records since the tail began`
}

function stopTail(): void {
  tail.source?.close()
  tail.source = null
  $('tail').hidden = true
}

function startTail(name: string): void {
  stopTail()
  tail.stream = name
  tail.records = []
  tail.seen = 0
  $('tail-stream').textContent = name
  $('tail').hidden = false
  drawTail()
  const source = tail.source = new EventSource(`/console/api/tail?stream=${encodeURIComponent(name)}`)
  source.addEventListener('record', (e) => {
    tail.records.unshift(JSON.parse((e as MessageEvent<string>).data) as TailRecord)
    tail.seen++
    if (tail.records.length > 200) tail.records.length = 200
    drawTail()
  })
  source.addEventListener('skipped', (e) => {
    const j = JSON.parse((e as MessageEvent<string>).data) as { records: number; shardId: string }
    tail.records.unshift({ skipped: j.records, shardId: j.shardId })
    drawTail()
  })
}

$('tail-stop').addEventListener('click', stopTail)
$('tail-hex').addEventListener('change', drawTail)
wireLogout()

const load = coalesced(() => api<{ now: number; streams: StreamView[] }>('streams-overview').then((j) => {
  state.streams = j.streams
  state.now = j.now
  $('error').textContent = ''
  render()
}, (err: Error) => { $('error').textContent = `could not load the streams: ${err.message}` }))

pushed({ streams: () => { state.updates++; load() } }, load)
load()
