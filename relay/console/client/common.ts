/**
 * What every console page shares: its elements by id, the console API, the pushed events, sign-out,
 * and how numbers and ages are written. Bundled into each page's script (relay/console/build.ts).
 */

/** The element with this id; a page without it is a bug in the page, not a state to handle. */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id)
  if (!found) throw new Error(`the page has no #${id}`)
  return found as T
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (cls) e.className = cls
  if (text !== undefined) e.textContent = text
  return e
}

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message)
  }
}

/**
 * A console API call: a JSON POST with the CSRF header. Signed out (401), the page reloads into the
 * sign-in form; an error answer throws its message and status.
 */
export async function api<T>(name: string, body: unknown = {}): Promise<T> {
  const r = await fetch(`/console/api/${name}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-tributary-console': '1' },
    body: JSON.stringify(body),
  })
  if (r.status === 401) {
    location.reload()
    throw new ApiError('signed out', 401)
  }
  const j = (await r.json()) as T & { message?: string; Message?: string }
  if (!r.ok) throw new ApiError(j.message ?? j.Message ?? `HTTP ${r.status}`, r.status)
  return j
}

/** The sign-out button every page's header carries. */
export function wireLogout(): void {
  $('logout').addEventListener('click', () => {
    void fetch('/console/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-tributary-console': '1' } }).then(() => location.reload())
  })
}

/**
 * The relay's pushed events (`/console/api/events`): `device` when a device's status changes,
 * `streams` at each ten-second step of the rates. `onOpen` runs on every (re)connection, so a page
 * catches up on what it missed while disconnected.
 */
export function pushed(handlers: Partial<Record<'device' | 'streams', () => void>>, onOpen: () => void): EventSource {
  const events = new EventSource('/console/api/events')
  for (const [name, run] of Object.entries(handlers)) events.addEventListener(name, () => run())
  events.addEventListener('open', onOpen)
  return events
}

/**
 * `load` at most once at a time, and runs started at least `minGapMs` apart: a call while one runs
 * or waits makes one more run after it, however many calls came (a fleet's status changes arrive far
 * faster than a page needs to fetch the list again).
 */
export function coalesced(load: () => Promise<void>, minGapMs = 0): () => void {
  let running = false
  let again = false
  let waiting = false
  let lastStart = -Infinity
  const run = (): void => {
    if (running) {
      again = true
      return
    }
    if (waiting) return
    const wait = lastStart + minGapMs - Date.now()
    if (wait > 0) {
      waiting = true
      setTimeout(() => {
        waiting = false
        run()
      }, wait)
      return
    }
    running = true
    lastStart = Date.now()
    void load().finally(() => {
      running = false
      if (again) {
        again = false
        run()
      }
    })
  }
  return run
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : n.toLocaleString()
}

/** An age or a duration in the largest unit that reads well: "42 s", "3 min", "2 h 5 min", "3 d". */
export function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–'
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d`
}

/** A rate: "7.5", "42", "1.2k", "3.4M". */
export function rate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  return n.toFixed(n < 10 ? 1 : 0)
}

/** Bytes: "512 B", "1.5 KB", "3.2 MB" (powers of 1,000, as rates are read). */
export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`
  if (n >= 1000) return `${(n / 1000).toFixed(1)} KB`
  return `${Math.round(n)} B`
}

export function button(text: string, label: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', '', text)
  b.type = 'button'
  b.setAttribute('aria-label', label)
  b.addEventListener('click', onClick)
  return b
}
