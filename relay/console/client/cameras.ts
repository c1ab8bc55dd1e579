/**
 * The cameras page: a tile for every video stream, with a still of its newest video (GetImages) taken
 * again every few seconds while the tile is on screen, and how long ago that video arrived. A tile
 * opens the player, LIVE.
 *
 * Each refresh asks the relay for every camera's newest fragment (one cheap call), then asks GetImages
 * for one image of each visible tile whose newest fragment changed, one after another: a still costs
 * the relay a frame decode, so a page of 100 cameras never sends 100 at once, and a camera with no new
 * video costs nothing.
 *
 * The page's state is on `window.camerasPage` (`cameras`: as last fetched; `images`: stills shown,
 * by camera), which tests read.
 */
import type { CameraView } from '../views.js'
import { $, ago, api, el, wireLogout } from './common.js'

/** How often the tiles are refreshed. */
const REFRESH_MS = 3000
/** A camera whose newest video arrived longer ago than this is shown as stale. */
const STALE_MS = 30_000

interface Tile { box: HTMLElement; image: HTMLImageElement; caption: HTMLElement; shownFragmentMs: number | null; visible: boolean }

const tiles = new Map<string, Tile>()
const state = { cameras: [] as CameraView[], now: 0, images: {} as Record<string, number>, refreshes: 0 }
;(window as unknown as { camerasPage: typeof state }).camerasPage = state

const visibility = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const name = (entry.target as HTMLElement).dataset.camera
    const tile = name === undefined ? undefined : tiles.get(name)
    if (tile) tile.visible = entry.isIntersecting
  }
})

function tileOf(camera: CameraView): Tile {
  let tile = tiles.get(camera.name)
  if (tile) return tile
  const box = el('a', 'tile')
  box.href = `/console/video?stream=${encodeURIComponent(camera.name)}&mode=LIVE`
  box.dataset.camera = camera.name
  box.setAttribute('aria-label', `${camera.name}: play live`)
  const image = el('img')
  image.alt = `the newest still of ${camera.name}`
  image.width = 320
  image.height = 180
  const caption = el('span', 'tile-caption')
  box.append(image, el('span', 'tile-name', camera.name), caption)
  tile = { box, image, caption, shownFragmentMs: null, visible: true }
  tiles.set(camera.name, tile)
  visibility.observe(box)
  return tile
}

function render(): void {
  const grid = $('cameras')
  const names = new Set(state.cameras.map((c) => c.name))
  for (const [name, tile] of tiles) {
    if (names.has(name)) continue
    visibility.unobserve(tile.box)
    tiles.delete(name)
  }
  grid.replaceChildren(...state.cameras.map((c) => {
    const tile = tileOf(c)
    const age = c.newest ? state.now - c.newest.serverMs : null
    tile.box.classList.toggle('stale', age === null || age > STALE_MS)
    tile.caption.textContent = age === null ? 'no video yet' : `${c.device ? `${c.device} · ` : ''}video ${ago(age)} ago`
    return tile.box
  }))
  const live = state.cameras.filter((c) => c.newest && state.now - c.newest.serverMs <= STALE_MS).length
  $('summary').textContent = `${state.cameras.length}${state.cameras.length === 1 ? ' camera' : ' cameras'}, ${live} sending`
  if (!state.cameras.length) grid.appendChild(el('p', 'facts', 'No video streams on this relay yet.'))
}

interface Image { ImageContent?: string }

/** A still from the last seconds of the camera's newest fragment, in the producer's time. */
async function still(c: CameraView, tile: Tile): Promise<void> {
  const newest = c.newest
  if (!newest || tile.shownFragmentMs === newest.producerMs) return
  const end = newest.producerMs + newest.durationMs
  const r = await api<{ Images?: Image[] }>('images', {
    StreamName: c.name, ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: Math.max(newest.producerMs, end - 1000) / 1000, EndTimestamp: end / 1000,
    SamplingInterval: 1000, Format: 'JPEG', WidthPixels: 320, MaxResults: 1,
  })
  const content = r.Images?.find((i) => i.ImageContent)?.ImageContent
  if (!content) return
  tile.image.src = `data:image/jpeg;base64,${content}`
  tile.shownFragmentMs = newest.producerMs
  state.images[c.name] = (state.images[c.name] ?? 0) + 1
}

async function refresh(): Promise<void> {
  try {
    const j = await api<{ now: number; cameras: CameraView[] }>('cameras')
    state.cameras = j.cameras
    state.now = j.now
    $('error').textContent = ''
    render()
    for (const c of state.cameras) {
      const tile = tiles.get(c.name)
      // A tile off screen, or in a tab in the background, costs the relay nothing.
      if (tile?.visible && !document.hidden) await still(c, tile).catch(() => { /* no image for this fragment (yet): the tile keeps its last */ })
    }
    state.refreshes++
  } catch (err) {
    $('error').textContent = `could not load the cameras: ${(err as Error).message}`
  }
  setTimeout(() => { void refresh() }, REFRESH_MS)
}

wireLogout()
void refresh()
