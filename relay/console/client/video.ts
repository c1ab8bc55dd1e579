/**
 * The video player page: one camera's stream LIVE or from a chosen time with hls.js (served by the
 * relay from its package, never a CDN), a timeline of where fragments exist and where the gaps are,
 * and GetImages thumbnails of the recorded minutes. Opened from the cameras page, or with
 * `?stream=NAME[&mode=LIVE|&from=MS]`.
 *
 * Its state is on `window.viewer` (errors hls.js and the video element reported, each with the
 * fragment it names and the buffered ranges and playhead at that moment; the mode; `latencyMs()`:
 * now minus the playhead's EXT-X-PROGRAM-DATE-TIME), which the soak tests read.
 */
import { $, api, el, wireLogout } from './common.js'

/** What the page uses of hls.js (loaded before this script as the global `Hls`). */
interface HlsPlayer {
  playingDate: Date | null
  on(event: string, fn: (event: string, data: HlsError) => void): void
  loadSource(url: string): void
  attachMedia(video: HTMLVideoElement): void
  destroy(): void
}
interface HlsError { type: string; details: string; fatal: boolean; frag?: { sn: number; start: number; duration: number } }
interface HlsClass {
  new (config: Record<string, unknown>): HlsPlayer
  Events: { ERROR: string; FRAG_BUFFERED: string; MANIFEST_PARSED: string }
}
declare const Hls: HlsClass

interface Span { startMs: number; endMs: number; fragments: number }
interface Timeline { spans: Span[]; gaps: { startMs: number; endMs: number }[] }
interface Range { from: number; to: number }
interface PlayerError { type: string; details: string; fatal: boolean; at: number; fragment?: unknown; buffered?: number[][]; currentTime?: number }

const video = $<HTMLVideoElement>('video')
const state = {
  errors: [] as PlayerError[],
  mode: null as string | null,
  stream: null as string | null,
  streams: [] as string[],
  hls: null as HlsPlayer | null,
  timeline: null as Timeline | null,
  range: null as Range | null,
  images: 0,
  fragmentsLoaded: 0,
  ready: false,
  playingDateMs: (): number | null => state.hls?.playingDate?.getTime() ?? null,
  latencyMs: (): number | null => {
    const p = state.playingDateMs()
    return p === null ? null : Date.now() - p
  },
}
;(window as unknown as { viewer: typeof state }).viewer = state

function status(text: string, isError = false): void {
  $('status').textContent = text
  $('status').className = isError ? 'error' : ''
}

function stopPlayer(): void {
  state.hls?.destroy()
  state.hls = null
  video.removeAttribute('src')
}

function play(mode: 'LIVE' | 'ON_DEMAND', fromMs = 0): Promise<void> | undefined {
  const name = state.stream
  if (!name) return
  // Producer timestamps (the camera's clock), LIVE too: AWS's default for LIVE is the server's arrival
  // time, which puts a discontinuity between every two fragments and hides the camera-to-screen delay.
  const req: Record<string, unknown> = { StreamName: name, PlaybackMode: mode, DisplayFragmentTimestamp: 'ALWAYS', Expires: 3600, HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP' } }
  if (mode === 'ON_DEMAND') {
    const end = Math.min(fromMs + 6 * 3600 * 1000, Date.now() + 60 * 1000)
    req.HLSFragmentSelector = { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: fromMs / 1000, EndTimestamp: end / 1000 } }
    req.MaxMediaPlaylistFragmentResults = 5000
  }
  status(`asking for an HLS session (${mode})...`)
  return api<{ HLSStreamingSessionURL: string }>('hls', req).then((r) => {
    stopPlayer()
    state.mode = mode
    const live = mode === 'LIVE'
    const hls = new Hls({
      lowLatencyMode: live, liveSyncDurationCount: 1, liveMaxLatencyDurationCount: 3, maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 30, enableWorker: true,
    })
    state.hls = hls
    hls.on(Hls.Events.ERROR, (_e, data) => {
      const buffered: number[][] = []
      for (let i = 0; i < video.buffered.length; i++) buffered.push([video.buffered.start(i), video.buffered.end(i)])
      const err: PlayerError = { type: data.type, details: data.details, fatal: data.fatal, at: Date.now(), buffered, currentTime: video.currentTime }
      if (data.frag) err.fragment = { sn: data.frag.sn, start: data.frag.start, duration: data.frag.duration }
      state.errors.push(err)
      if (data.fatal) status(`playback error: ${data.type} / ${data.details}`, true)
    })
    hls.on(Hls.Events.FRAG_BUFFERED, () => { state.fragmentsLoaded++ })
    hls.loadSource(r.HLSStreamingSessionURL)
    hls.attachMedia(video)
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      video.play().catch((err: Error) => { state.errors.push({ type: 'play', details: err.message, fatal: false, at: Date.now() }) })
    })
    status(live ? 'playing LIVE' : `playing from ${new Date(fromMs).toLocaleString()}`)
  }, (err: Error) => status(`cannot play ${name}: ${err.message}`, true))
}

video.addEventListener('error', () => {
  const e = video.error
  state.errors.push({ type: 'media', details: e ? `${e.code} ${e.message}` : 'unknown', fatal: true, at: Date.now() })
})

function timeRange(): Range {
  const seconds = Number($<HTMLSelectElement>('range').value)
  const to = Date.now()
  return { from: to - seconds * 1000, to }
}

function placeOn(e: HTMLElement, startMs: number, endMs: number, range: Range): void {
  const w = range.to - range.from
  e.style.left = `${(Math.max(0, startMs - range.from) / w) * 100}%`
  e.style.width = `${Math.max(0.1, ((Math.min(endMs, range.to) - Math.max(startMs, range.from)) / w) * 100)}%`
}

function drawTimeline(): Promise<void> {
  const range = timeRange()
  return api<Timeline>('timeline', { StreamName: state.stream, StartTimestamp: range.from / 1000, EndTimestamp: range.to / 1000 }).then((t) => {
    state.timeline = t
    // Drawn from the first recorded video in the chosen range (a minute of video in an empty day stays visible).
    const first = t.spans[0]
    if (first) range.from = Math.max(range.from, first.startMs - Math.max(2000, (range.to - first.startMs) / 50))
    const box = $('timeline')
    for (const n of box.querySelectorAll('.span, .gap')) n.remove()
    for (const s of t.spans) {
      const d = el('div', 'span')
      d.title = `${new Date(s.startMs).toLocaleString()} – ${new Date(s.endMs).toLocaleString()} (${s.fragments} fragments)`
      placeOn(d, s.startMs, s.endMs, range)
      box.appendChild(d)
    }
    for (const g of t.gaps) {
      const d = el('div', 'gap')
      d.title = `gap: ${new Date(g.startMs).toLocaleString()} – ${new Date(g.endMs).toLocaleString()}`
      placeOn(d, g.startMs, g.endMs, range)
      box.appendChild(d)
    }
    $('tl-from').textContent = new Date(range.from).toLocaleString()
    $('tl-to').textContent = new Date(range.to).toLocaleString()
    state.range = range
  }, (err: Error) => status(`timeline: ${err.message}`, true))
}

interface Image { TimeStamp: number | string; ImageContent?: string }

let thumbsGeneration = 0
// GetImages covers at most 300 s a call: the 5 minutes from a chosen time, or the last 5 recorded.
function drawThumbs(fromMs?: number): void {
  const strip = $('thumbs')
  strip.textContent = ''
  const t = state.timeline
  const first = t?.spans[0]
  const lastSpan = t?.spans[t.spans.length - 1]
  if (!first || !lastSpan) return
  const last = lastSpan.endMs
  const from = fromMs ?? Math.max(first.startMs, last - 300 * 1000)
  const to = Math.min(from + 300 * 1000, Math.max(last, from + 1000))
  const interval = Math.max(200, Math.ceil((to - from) / 12))
  const shown = state.stream
  const generation = ++thumbsGeneration
  api<{ Images?: Image[] }>('images', {
    StreamName: shown, ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: from / 1000, EndTimestamp: to / 1000,
    SamplingInterval: interval, Format: 'JPEG', WidthPixels: 160, MaxResults: 12,
  }).then((r) => {
    if (shown !== state.stream || generation !== thumbsGeneration) return
    for (const img of r.Images ?? []) {
      if (!img.ImageContent) continue
      const fig = el('button', 'still')
      fig.type = 'button'
      const image = el('img')
      image.src = `data:image/jpeg;base64,${img.ImageContent}`
      const at = typeof img.TimeStamp === 'number' ? img.TimeStamp * 1000 : Date.parse(img.TimeStamp)
      image.alt = `${shown} at ${new Date(at).toLocaleTimeString()}`
      fig.appendChild(image)
      fig.appendChild(el('span', '', new Date(at).toLocaleTimeString()))
      fig.addEventListener('click', () => { void play('ON_DEMAND', at) })
      strip.appendChild(fig)
      state.images++
    }
  }, () => { /* GetImages unavailable (404) or nothing to show: the strip stays empty. */ })
}

function chooseStream(name: string): Promise<void> {
  state.stream = name
  stopPlayer()
  return drawTimeline().then(() => drawThumbs())
}

$('timeline').addEventListener('click', (e) => {
  if (!state.range) return
  const box = $('timeline').getBoundingClientRect()
  const at = Math.round(state.range.from + ((e.clientX - box.left) / box.width) * (state.range.to - state.range.from))
  void play('ON_DEMAND', at)
  drawThumbs(at)
})
$('stream').addEventListener('change', () => { void chooseStream($<HTMLSelectElement>('stream').value) })
$('range').addEventListener('change', () => { void drawTimeline().then(() => drawThumbs()) })
$('live').addEventListener('click', () => { void play('LIVE') })
$('play-from').addEventListener('click', () => {
  const v = $<HTMLInputElement>('from').value
  if (v) void play('ON_DEMAND', new Date(v).getTime())
})
wireLogout()

// The playhead on the timeline, from the program date time of what plays.
setInterval(() => {
  const p = state.playingDateMs()
  const r = state.range
  const head = $('playhead')
  if (p === null || !r || p < r.from || p > r.to) {
    head.style.display = 'none'
    return
  }
  head.style.display = 'block'
  head.style.left = `${((p - r.from) / (r.to - r.from)) * 100}%`
}, 500)

api<{ StreamInfoList?: { StreamName: string }[] }>('streams').then((r) => {
  const select = $<HTMLSelectElement>('stream')
  state.streams = (r.StreamInfoList ?? []).map((s) => s.StreamName)
  for (const name of state.streams) {
    const o = el('option', '', name)
    o.value = name
    select.appendChild(o)
  }
  const wanted = new URLSearchParams(location.search).get('stream')
  if (wanted && state.streams.includes(wanted)) select.value = wanted
  if (select.value) return chooseStream(select.value)
  status('no video streams on this relay yet')
}).then(() => {
  const q = new URLSearchParams(location.search)
  if (q.get('mode') === 'LIVE') void play('LIVE')
  else if (q.get('from')) void play('ON_DEMAND', Number(q.get('from')))
  state.ready = true
}, (err: Error) => {
  status(`listing streams: ${err.message}`, true)
  state.ready = true
})

// For a test or the browser's console: viewerPlay('LIVE') or viewerPlay('ON_DEMAND', ms).
;(window as unknown as { viewerPlay: typeof play }).viewerPlay = play
