/**
 * The relay's web console (`/console/…`): the devices, streams, cameras and delivery pages, and the
 * video player. The pages are in pages.ts, their scripts in client/ (built by build.ts).
 *
 * Auth, always (with or without access keys): the admin token (DATA_DIR/admin.token) is given once
 * on a login form, and the relay answers with a session cookie (HttpOnly, SameSite=Strict,
 * Path=/console, 12 hours on the relay's clock, HMAC-signed: cookie.ts). The pages' JSON calls go to
 * `POST /console/api/…`, which need the cookie and the header `X-Tributary-Console: 1` (a cross-site
 * form cannot send a custom header; SameSite=Strict keeps the cookie off cross-site requests anyway)
 * and call the relay in-process — the browser never signs SigV4. The HLS URL the player gets carries
 * its own expiring session token, as AWS's does. Pushed updates and the live tail are server-sent
 * events (`GET`, the cookie). The static assets (scripts, style, hls.js) hold no data and are served
 * without the cookie, so the login page can load its script.
 */
import { timingSafeEqual } from 'node:crypto'
import { BodyBudgetError, BodyTimeoutError, readBody, send, sendJson, type AnyRequest, type AnyResponse, type HttpGuard } from '../http.js'
import type { VideoApi } from '../video/api.js'
import type { VideoStore } from '../video/store.js'
import type { VideoStreams } from '../video/streams.js'
import { VideoApiError } from '../video/errors.js'
import type { Fleet } from '../fleet.js'
import type { Devices } from '../devices.js'
import type { StreamRates } from '../stream-rates.js'
import type { ShardLog } from '../log/types.js'
import type { DeliveryStreamDescription } from '../delivery/types.js'
import { ConsoleAssets } from './assets.js'
import { ConsoleCookies, cookieOf } from './cookie.js'
import { deliveryViews } from './overview.js'
import { CAMERAS_HTML, DELIVERY_HTML, DEVICES_HTML, LOGIN_HTML, STREAMS_HTML, VIDEO_HTML } from './pages.js'
import { timelineOf } from './timeline.js'
import type { CameraView, StreamView } from './views.js'

export const CONSOLE_PREFIX = '/console'
/** The header every console POST must carry (CSRF: a cross-site form cannot set it). */
export const CSRF_HEADER = 'x-tributary-console'
const MAX_BODY = 64 * 1024
/** A timeline covers at most this much (the page asks for 1 h, 6 h or 24 h). */
const MAX_TIMELINE_MS = 7 * 24 * 3600_000

/** The console API's calls that pass a JSON body to a Kinesis Video action. */
const ACTIONS: Record<string, string> = {
  '/console/api/streams': '/listStreams',
  '/console/api/describe': '/describeStream',
  '/console/api/fragments': '/listFragments',
  '/console/api/hls': '/getHLSStreamingSessionURL',
  '/console/api/images': '/getImages',
}

const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // hls.js runs its transmuxer in a blob: worker and plays through MSE (blob: media).
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}

/** Live tails open at once, how often each looks for new records, and how many it sends a look per shard (the rest are skipped, counted). */
const MAX_TAILS = 8
const TAIL_POLL_MS = 250
const TAIL_RECORDS = 100
/** Data shown of a tailed record: its first bytes. */
const TAIL_DATA_BYTES = 2048
/** A secret in an answer is kept by no cache. */
const NO_STORE = { 'cache-control': 'no-store' }
/** Pushed-event streams open at once (each a browser tab on a console page). */
const MAX_EVENT_STREAMS = 64
/** A comment line on every event stream this often, so that no proxy or guard takes it for idle. */
const EVENT_HEARTBEAT_MS = 10_000
const ASSETS = '/console/assets/'
const NOT_SIGNED_IN = { code: 'AUTH_FAILED', message: 'not signed in to the console (or the session expired): sign in with the admin token' }
const EVENT_STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

export interface ConsoleOptions {
  /** The devices page: registered devices and what their agents last said. */
  fleet?: { fleet: Fleet; devices: Devices }
  /** The streams page: each data stream's shards, incoming rates and readers, and its open shards' logs for a live tail. */
  dataStreams?: { views: () => Promise<StreamView[]>; rates: StreamRates; openShards: (stream: string) => { shardId: string; log: ShardLog }[] | null }
  /** The delivery page. */
  deliveries?: () => DeliveryStreamDescription[]
  api: VideoApi
  store: VideoStore
  streams: VideoStreams
  adminToken: string
  /** The relay's clock (ms): cookie expiry. */
  now: () => number
  guard: HttpGuard
}

export class ConsoleServer {
  private readonly cookies: ConsoleCookies
  private readonly token: Buffer
  private readonly assets = new ConsoleAssets()
  /** Server-sent event streams open now, by kind. */
  private readonly open = { tails: 0, events: 0 }

  constructor(private readonly o: ConsoleOptions) {
    this.cookies = new ConsoleCookies(o.adminToken, o.now)
    this.token = Buffer.from(o.adminToken)
  }

  /** Whether `path` is the console's. */
  static owns(path: string): boolean {
    return path === CONSOLE_PREFIX || path.startsWith(`${CONSOLE_PREFIX}/`)
  }

  private signedIn(req: AnyRequest): boolean {
    return this.cookies.valid(cookieOf(req.headers.cookie))
  }

  async serve(req: AnyRequest, res: AnyResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET'
    if (method === 'GET' || method === 'HEAD') return this.get(req, res, path)
    if (method !== 'POST') return sendJson(res, 405, { code: 'NOT_FOUND', message: `${method} ${path} is not a console operation` }, 'application/json', { allow: 'GET, POST' })
    // Checked on the headers, before a byte of the body is read.
    if (req.headers[CSRF_HEADER] !== '1') return sendJson(res, 403, { code: 'AUTH_FAILED', message: `console POSTs need the header ${CSRF_HEADER}: 1` })
    const login = path === '/console/login'
    if (!login && path !== '/console/logout' && !this.signedIn(req)) return sendJson(res, 401, NOT_SIGNED_IN)
    let body: Buffer | null
    try {
      body = await readBody(req, MAX_BODY, this.o.guard)
    } catch (err) {
      if (err instanceof BodyTimeoutError) return
      if (err instanceof BodyBudgetError) return sendJson(res, 503, { code: 'SERVICE_UNAVAILABLE', message: 'the relay is holding too many request bytes; retry' }, 'application/json', { 'retry-after': '1' })
      throw err
    }
    if (body === null) return sendJson(res, 413, { code: 'REQUEST_INVALID', message: `console requests are at most ${MAX_BODY} bytes` })
    const secure = 'encrypted' in req.socket && Boolean(req.socket.encrypted)
    if (login) return this.login(res, body, secure)
    if (path === '/console/logout') return send(res, 204, 'text/plain', '', { 'set-cookie': this.cookies.clear(secure) })
    if (path === '/console/api/timeline') return this.timeline(res, body)
    if (path === '/console/api/devices') return this.devices(res)
    if (path === '/console/api/streams-overview') {
      if (!this.o.dataStreams) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'this relay has no streams page' })
      return sendJson(res, 200, { now: this.o.now(), streams: await this.o.dataStreams.views() })
    }
    if (path === '/console/api/deliveries') {
      if (!this.o.deliveries) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'this relay has no delivery page' })
      return sendJson(res, 200, { now: this.o.now(), deliveries: deliveryViews(this.o.deliveries()) })
    }
    if (path === '/console/api/cameras') return sendJson(res, 200, { now: this.o.now(), cameras: this.cameras() })
    if (path.startsWith('/console/api/devices/')) return this.manage(res, path.slice('/console/api/devices/'.length), body)
    const action = ACTIONS[path]
    if (!action) return sendJson(res, 404, { code: 'NOT_FOUND', message: `no console route POST ${path}` })
    return this.o.api.serve(req, res, action, body)
  }

  private async get(req: AnyRequest, res: AnyResponse, path: string): Promise<void> {
    const page = (html: string) => send(res, 200, 'text/html; charset=utf-8', this.signedIn(req) ? html : LOGIN_HTML, PAGE_HEADERS)
    switch (path) {
      case '/console':
      case '/console/':
        return send(res, 302, 'text/plain', '', { location: this.o.fleet ? '/console/devices' : '/console/cameras' })
      case '/console/video': return page(VIDEO_HTML)
      case '/console/cameras': return page(CAMERAS_HTML)
      case '/console/devices':
        if (!this.o.fleet) break
        return page(DEVICES_HTML)
      case '/console/streams':
        if (!this.o.dataStreams) break
        return page(STREAMS_HTML)
      case '/console/delivery':
        if (!this.o.deliveries) break
        return page(DELIVERY_HTML)
      case '/console/api/events': return this.events(req, res)
      case '/console/api/tail': return this.tail(req, res)
    }
    if (path.startsWith(ASSETS)) {
      const asset = await this.assets.get(path.slice(ASSETS.length))
      if (asset) return send(res, 200, asset.type, asset.body, { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' })
    }
    return sendJson(res, 404, { code: 'NOT_FOUND', message: `no console page ${path}` })
  }

  /** Every video stream with its newest fragment (one indexed row each): the cameras page's tiles. */
  private cameras(): CameraView[] {
    // By name, as VideoStreams lists them.
    return this.o.streams.list().filter((s) => s.status !== 'DELETING').map((s) => {
      const newest = this.o.store.catalog.newest(s.id)
      return { name: s.name, device: s.deviceName, newest: newest ? { producerMs: newest.producerMs, serverMs: newest.serverMs, durationMs: newest.durationMs } : null }
    })
  }

  private async devices(res: AnyResponse): Promise<void> {
    if (!this.o.fleet) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'this relay has no devices page' })
    sendJson(res, 200, { now: this.o.now(), devices: await this.o.fleet.fleet.list(this.o.fleet.devices) })
  }

  /**
   * A live tail of one data stream (`GET /console/api/tail?stream=NAME`, the session cookie): its
   * records as they arrive, from the end of each open shard (a shard made by a split later is
   * followed from its start), as server-sent `record` events with the first 2 KiB of their data in
   * base64. Looked for every 250 ms, only while someone is looking; past 100 records a look in a
   * shard the rest are skipped (a `skipped` event says how many) so the tail never falls behind.
   */
  private tail(req: AnyRequest, res: AnyResponse): void {
    if (!this.signedIn(req)) return sendJson(res, 401, NOT_SIGNED_IN)
    const streams = this.o.dataStreams
    if (!streams) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'this relay has no streams page' })
    const name = new URL(req.url ?? '/', 'http://relay').searchParams.get('stream') ?? ''
    const first = streams.openShards(name)
    if (!first) return sendJson(res, 404, { code: 'NOT_FOUND', message: `no data stream ${JSON.stringify(name)}` })
    let ended = false
    let timer: NodeJS.Timeout | undefined
    const write = this.eventStream(req, res, 'tails', `${MAX_TAILS} live tails are open; close one`, () => {
      ended = true
      clearInterval(timer)
    })
    if (!write) return
    // Where each shard is read from next: the end of those open now; a shard seen later, from its start.
    const next = new Map(first.map((s) => [s.shardId, s.log.endOffset()]))
    let looking = false
    const look = async () => {
      if (looking || ended) return
      looking = true
      try {
        for (const { shardId, log } of streams.openShards(name) ?? []) {
          const from = next.get(shardId) ?? log.startOffset()
          const end = log.endOffset()
          if (end <= from) { next.set(shardId, from); continue }
          const { records, nextOffset } = await log.read(from, TAIL_RECORDS, 1024 * 1024)
          for (const r of records) {
            write(`event: record\ndata: ${JSON.stringify({ shardId, offset: r.offset, arrivalMs: r.arrivalMs, partitionKey: r.partitionKey, bytes: r.data.length, data: r.data.subarray(0, TAIL_DATA_BYTES).toString('base64') })}\n\n`)
          }
          const behind = end - nextOffset
          if (behind > 0) write(`event: skipped\ndata: ${JSON.stringify({ shardId, records: behind })}\n\n`)
          next.set(shardId, Math.max(nextOffset, end))
        }
      } catch {
        // A shard deleted or expired under the tail: the next look takes the stream as it is then.
      } finally {
        looking = false
      }
    }
    timer = setInterval(() => { void look() }, TAIL_POLL_MS)
  }

  /**
   * Adds, rotates or removes a device (`/console/api/devices/add|rotate|remove`, `{"id": …}`, for
   * rotate also `graceSeconds`): what `tributary devices` does through the admin API. A new secret
   * is in the answer, once; it is never stored.
   */
  private async manage(res: AnyResponse, op: string, body: Buffer): Promise<void> {
    const fleet = this.o.fleet
    if (!fleet || !['add', 'rotate', 'remove'].includes(op)) return sendJson(res, 404, { code: 'NOT_FOUND', message: `no console route POST /console/api/devices/${op}` })
    let r: { id?: unknown; graceSeconds?: unknown }
    try {
      r = JSON.parse(body.toString() || '{}') as typeof r
    } catch {
      return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'the body must be JSON: {"id": "<device id>"}' })
    }
    const id = r?.id
    if (typeof id !== 'string') return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'the body must be {"id": "<device id>"}' })
    const grace = r.graceSeconds ?? 0
    if (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0) return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'graceSeconds must be a whole number of seconds' })
    try {
      if (op === 'add') {
        const secret = await fleet.devices.add(id)
        return sendJson(res, 201, { id, secret }, 'application/json', NO_STORE)
      }
      if (op === 'rotate') {
        const { secret, previousUntilMs } = await fleet.devices.rotate(id, grace * 1000)
        return sendJson(res, 200, { id, secret, previousValidUntil: previousUntilMs === null ? null : new Date(previousUntilMs).toISOString() }, 'application/json', NO_STORE)
      }
      // The fleet hears of each change from the device registry (relay.ts), whoever made it.
      await fleet.devices.remove(id)
      return sendJson(res, 200, { id, removed: true })
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'CONFIG_INVALID') return sendJson(res, 400, { code, message: (err as Error).message })
      if (code === 'CONFLICT') return sendJson(res, 409, { code, message: (err as Error).message })
      if (code === 'NOT_FOUND') return sendJson(res, 404, { code, message: (err as Error).message })
      throw err
    }
  }

  /**
   * Server-sent events (`GET /console/api/events`, the session cookie): `event: device` with the
   * device's id whenever its status changes. A GET, but it only reads, and the cookie is SameSite=Strict.
   */
  private events(req: AnyRequest, res: AnyResponse): void {
    if (!this.signedIn(req)) return sendJson(res, 401, NOT_SIGNED_IN)
    if (!this.o.fleet) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'this relay has no devices page' })
    const stop: (() => void)[] = []
    const write = this.eventStream(req, res, 'events', `${MAX_EVENT_STREAMS} console event streams are open; close a tab`, () => { for (const fn of stop) fn() })
    if (!write) return
    const fleet = this.o.fleet.fleet
    const unsubscribeDevices = fleet.subscribe((device) => { write(`event: device\ndata: ${JSON.stringify({ device })}\n\n`) })
    // Each rates step (10 s): the streams and delivery pages fetch their figures again.
    const unsubscribeStreams = this.o.dataStreams?.rates.onStep(() => { write('event: streams\ndata: {}\n\n') }) ?? (() => {})
    const heartbeat = setInterval(() => write(': \n\n'), EVENT_HEARTBEAT_MS)
    stop.push(unsubscribeDevices, unsubscribeStreams, () => clearInterval(heartbeat))
  }

  /**
   * Starts a server-sent event stream of `kind` (at most MAX_TAILS tails, MAX_EVENT_STREAMS event
   * streams open at once; past that 503 with `refusal`): its writer, or null when refused. `onEnd`
   * runs once, when either side closes it.
   */
  private eventStream(req: AnyRequest, res: AnyResponse, kind: 'tails' | 'events', refusal: string, onEnd: () => void): ((text: string) => void) | null {
    const limit = kind === 'tails' ? MAX_TAILS : MAX_EVENT_STREAMS
    if (this.open[kind] >= limit) {
      sendJson(res, 503, { code: 'SERVICE_UNAVAILABLE', message: refusal }, 'application/json', { 'retry-after': '5' })
      return null
    }
    this.open[kind]++
    res.writeHead(200, EVENT_STREAM_HEADERS)
    // Either protocol's response writes a string the same way.
    const write = (text: string) => { (res as { write(chunk: string): boolean }).write(text) }
    write('retry: 3000\n\n')
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      this.open[kind]--
      onEnd()
    }
    res.once('close', end)
    req.once('close', end)
    return write
  }

  private login(res: AnyResponse, body: Buffer, secure: boolean): void {
    let token: unknown
    try {
      token = (JSON.parse(body.toString() || '{}') as { token?: unknown }).token
    } catch {
      return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'the login body must be JSON: {"token": "<admin token>"}' })
    }
    if (typeof token !== 'string') return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'the login body must be {"token": "<admin token>"}' })
    const given = Buffer.from(token.trim())
    if (this.token.length === 0 || given.length !== this.token.length || !timingSafeEqual(given, this.token)) {
      return sendJson(res, 401, { code: 'AUTH_FAILED', message: 'admin token wrong' })
    }
    send(res, 204, 'text/plain', '', { 'set-cookie': this.cookies.header(this.cookies.issue(), secure), 'cache-control': 'no-store' })
  }

  /** `{StreamName, StartTimestamp, EndTimestamp}` (seconds, as the API's timestamps) → where the fragments are. */
  private timeline(res: AnyResponse, body: Buffer): void {
    let r: { StreamName?: unknown; StartTimestamp?: unknown; EndTimestamp?: unknown }
    try {
      r = JSON.parse(body.toString() || '{}') as typeof r
    } catch {
      return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'the timeline body must be JSON' })
    }
    const { StreamName: name, StartTimestamp: start, EndTimestamp: end } = r ?? {}
    if (typeof name !== 'string') return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'StreamName must be a string' })
    if (typeof start !== 'number' || typeof end !== 'number' || !Number.isFinite(start) || !Number.isFinite(end)) return sendJson(res, 400, { code: 'REQUEST_INVALID', message: 'StartTimestamp and EndTimestamp must be numbers (seconds since the epoch)' })
    if (end < start || (end - start) * 1000 > MAX_TIMELINE_MS) return sendJson(res, 400, { code: 'REQUEST_INVALID', message: `EndTimestamp must be after StartTimestamp and at most ${MAX_TIMELINE_MS / 3600_000} h after it` })
    let streamId: string
    try {
      streamId = this.o.streams.resolve(name, undefined).id
    } catch (err) {
      if (err instanceof VideoApiError) return sendJson(res, err.status, { code: err.type, message: err.message })
      throw err
    }
    sendJson(res, 200, timelineOf(this.o.store, streamId, Math.round(start * 1000), Math.round(end * 1000)))
  }
}
