/**
 * HLS: GetHLSStreamingSessionURL (`POST /getHLSStreamingSessionURL`, SigV4 like the other actions)
 * validates AWS's parameters, checks that the session would list something, and answers a URL on
 * the relay — `<endpoint>/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=…` — as AWS's shape is. The
 * GETs under `/hls/v1/` (master and media playlists, MP4 init and media fragments, TS fragments) are
 * authenticated by the session token alone, as AWS's are, so any HLS player can follow them.
 *
 * Media fragments are the stored ones with their decode time moved onto the session's clock
 * (retime.ts), per capture session, as AWS puts producer timestamps in its MP4 fragments.
 *
 * A media playlist request may carry `_HLS_msn=N` (a blocking reload, RFC 8216bis §6.2.5.2): it is
 * answered once segment N is listed, or after three target durations with what there is. Plain
 * reloads work as well.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { idOfFragmentNumber, type FragmentRecord } from '../catalog.js'
import { invalidArgument, streamNotFound, VideoApiError, VideoErrorType } from '../errors.js'
import type { VideoStore } from '../store.js'
import type { VideoStreams } from '../streams.js'
import { validate } from '../validate.js'
import type { Request, Response, Slots } from './answer.js'
import type { MediaReader } from './inits.js'
import { HLS_PATHS, HLS_PREFIX, masterPlaylist, mediaPlaylist } from './playlist.js'
import { SessionTokens, type ContainerFormat, type DiscontinuityMode, type HlsSession, type PlaybackMode } from './session-token.js'
import { checkRange, origin, SelectorType, StreamARN, StreamName, type Named, type Range } from './shapes.js'
import type { Playlist, Timelines } from './timeline.js'
import { withDecodeTime } from './retime.js'
import { toTransportStream } from './ts.js'

/** LIVE needs a fragment ingested this recently (AWS's 30 seconds). */
const LIVE_RECENT_MS = 30_000
/** How often a blocking reload looks again. */
const POLL_MS = 100

export const noFragments = (detail = '') => new VideoApiError(VideoErrorType.ResourceNotFoundException, `No fragments found in the stream for the streaming request.${detail}`)

export interface HlsContext {
  streams: VideoStreams
  store: VideoStore
  reader: MediaReader
  timelines: Timelines
  tokens: SessionTokens
  /** The relay's clock (ms). */
  now: () => number
  /** MPEG-TS remuxes (one ffmpeg each) running at once. */
  remuxes: Slots
  /** Counts a served request (action, outcome). */
  count: (action: string, outcome: string) => void
  log: (event: string, fields: Record<string, unknown>) => void
}

interface SessionRequest extends Named {
  PlaybackMode?: PlaybackMode
  HLSFragmentSelector?: { FragmentSelectorType?: string; TimestampRange?: Range }
  ContainerFormat?: ContainerFormat
  DiscontinuityMode?: DiscontinuityMode
  DisplayFragmentTimestamp?: 'ALWAYS' | 'NEVER'
  Expires?: number
  MaxMediaPlaylistFragmentResults?: number
}

/** GetHLSStreamingSessionURL: the session's URL, or AWS's error for what it could not play. */
export function hlsSessionUrl(body: unknown, ctx: HlsContext, endpoint: string): { HLSStreamingSessionURL: string } {
  const r = validate<SessionRequest>(body, {
    StreamName, StreamARN,
    PlaybackMode: { type: 'string', enum: ['LIVE', 'LIVE_REPLAY', 'ON_DEMAND'] },
    HLSFragmentSelector: { type: 'structure', fields: {
      FragmentSelectorType: SelectorType,
      TimestampRange: { type: 'structure', fields: { StartTimestamp: { type: 'timestamp' }, EndTimestamp: { type: 'timestamp' } } },
    } },
    ContainerFormat: { type: 'string', enum: ['FRAGMENTED_MP4', 'MPEG_TS'] },
    DiscontinuityMode: { type: 'string', enum: ['ALWAYS', 'NEVER', 'ON_DISCONTINUITY'] },
    DisplayFragmentTimestamp: { type: 'string', enum: ['ALWAYS', 'NEVER'] },
    Expires: { type: 'integer', min: 300, max: 43_200 },
    MaxMediaPlaylistFragmentResults: { type: 'integer', min: 1, max: 5000 },
  })
  const mode = r.PlaybackMode ?? 'LIVE'
  const by = origin(r.HLSFragmentSelector?.FragmentSelectorType)
  const range = r.HLSFragmentSelector?.TimestampRange
  if (mode === 'LIVE' && range) throw invalidArgument('TimestampRange must not be set when PlaybackMode is LIVE.')
  if (mode !== 'LIVE') {
    if (!range) throw invalidArgument(`HLSFragmentSelector with a TimestampRange is required when PlaybackMode is ${mode}.`)
    if (range.StartTimestamp === undefined) throw invalidArgument('StartTimestamp is required when TimestampRange is set.')
    if (mode === 'ON_DEMAND' && range.EndTimestamp === undefined) throw invalidArgument('EndTimestamp is required when PlaybackMode is ON_DEMAND.')
    if (range.EndTimestamp !== undefined) checkRange(range.StartTimestamp, range.EndTimestamp)
  }
  const stream = ctx.streams.resolve(r.StreamName, r.StreamARN)
  const now = ctx.now()
  let firstId = 0
  if (mode === 'LIVE') {
    const recent = ctx.store.list({ streamId: stream.id, by: 'server', from: now - LIVE_RECENT_MS, limit: 1000 })
    if (recent.length === 0) throw noFragments(' A LIVE session needs a fragment ingested within the last 30 seconds.')
    firstId = Math.min(...recent.map((f) => f.id))
  } else if (ctx.store.list({ streamId: stream.id, by, from: range!.StartTimestamp, to: range!.EndTimestamp, limit: 1 }).length === 0) {
    throw noFragments()
  }
  const session: HlsSession = {
    id: SessionTokens.newId(), streamId: stream.id, mode, by,
    startMs: range?.StartTimestamp, endMs: range?.EndTimestamp,
    container: r.ContainerFormat ?? 'FRAGMENTED_MP4',
    // AWS's defaults: ALWAYS with server timestamps (they jitter), NEVER with producer timestamps.
    discontinuity: r.DiscontinuityMode ?? (by === 'server' ? 'ALWAYS' : 'NEVER'),
    displayTimestamps: r.DisplayFragmentTimestamp === 'ALWAYS',
    maxFragments: r.MaxMediaPlaylistFragmentResults ?? (mode === 'ON_DEMAND' ? 1000 : 5),
    createdMs: now, expiresMs: now + (r.Expires ?? 300) * 1000, firstId,
  }
  return { HLSStreamingSessionURL: `${endpoint}${HLS_PREFIX}${HLS_PATHS.master}?SessionToken=${ctx.tokens.seal(session)}` }
}

const ACTIONS: Record<string, string> = {
  [HLS_PATHS.master]: 'GetHLSMasterPlaylist',
  [HLS_PATHS.media]: 'GetHLSMediaPlaylist',
  [HLS_PATHS.init]: 'GetMP4InitFragment',
  [HLS_PATHS.fragment]: 'GetMP4MediaFragment',
  [HLS_PATHS.ts]: 'GetTSFragment',
}

/** Serves `GET /hls/v1/<resource>?SessionToken=…`. Errors are answered as the API's are (REST-JSON). */
export async function serveHls(req: Request, res: Response, ctx: HlsContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://relay')
  const name = url.pathname.slice(HLS_PREFIX.length)
  const action = ACTIONS[name]
  try {
    if (!action) throw new VideoApiError(VideoErrorType.ResourceNotFoundException, `No HLS resource at ${url.pathname}.`)
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new VideoApiError(VideoErrorType.UnknownOperationException, `${req.method} is not served at ${url.pathname}; use GET.`)
    const session = ctx.tokens.open(url.searchParams.get('SessionToken'))
    if (!ctx.streams.getById(session.streamId)) throw streamNotFound('the session\'s stream was deleted')
    const token = url.searchParams.get('SessionToken')!
    const mp4 = session.container === 'FRAGMENTED_MP4'
    switch (name) {
      case HLS_PATHS.master: {
        const p = ctx.timelines.playlist(session, ctx.now())
        if (p.entries.length === 0) throw noFragments()
        send(res, 200, 'application/vnd.apple.mpegurl', Buffer.from(masterPlaylist(token, p)), session.mode === 'ON_DEMAND')
        break
      }
      case HLS_PATHS.media: {
        const p = await playlistFor(session, url.searchParams.get('_HLS_msn'), ctx, res)
        if (p.entries.length === 0 && session.mode === 'ON_DEMAND') throw noFragments()
        send(res, 200, 'application/vnd.apple.mpegurl', Buffer.from(mediaPlaylist(session, token, p)), session.mode === 'ON_DEMAND')
        break
      }
      case HLS_PATHS.init: {
        if (!mp4) throw invalidArgument('This session\'s ContainerFormat is MPEG_TS: its media are at getTSFragment.ts.')
        const row = fragmentOf(session, url, ctx, 'init')
        send(res, 200, 'video/mp4', await ctx.reader.read(row), true)
        break
      }
      case HLS_PATHS.fragment: {
        if (!mp4) throw invalidArgument('This session\'s ContainerFormat is MPEG_TS: its media are at getTSFragment.ts.')
        const row = fragmentOf(session, url, ctx, 'media')
        send(res, 200, 'video/mp4', await retimed(row, session, ctx), true)
        break
      }
      case HLS_PATHS.ts: {
        if (mp4) throw invalidArgument('This session\'s ContainerFormat is FRAGMENTED_MP4: its media are at getMP4MediaFragment.mp4.')
        const row = fragmentOf(session, url, ctx, 'media')
        const initRow = ctx.reader.initRow(row) ?? fail(`Fragment ${url.searchParams.get('FragmentNumber')}'s init segment is no longer stored.`)
        if (!ctx.remuxes.take()) throw new VideoApiError(VideoErrorType.ClientLimitExceededException, `The relay is remuxing ${ctx.remuxes.max} TS fragments already; try again shortly.`)
        try {
          send(res, 200, 'video/mp2t', await toTransportStream(await ctx.reader.read(initRow), await retimed(row, session, ctx)), true)
        } finally {
          ctx.remuxes.release()
        }
        break
      }
    }
    ctx.count(action!, 'ok')
  } catch (caught) {
    // Retention deleted the file between the listing and the read.
    const err = (caught as NodeJS.ErrnoException).code === 'ENOENT' ? new VideoApiError(VideoErrorType.ResourceNotFoundException, 'The fragment is no longer stored.') : caught
    if (!(err instanceof VideoApiError)) ctx.log('video_hls_error', { resource: name, error: (err as Error).stack ?? String(err) })
    const answer = err instanceof VideoApiError ? err : new VideoApiError(VideoErrorType.InternalFailure, 'Internal service failure.')
    ctx.count(action ?? 'unknown', answer.type)
    if (res.headersSent) return void res.destroy()
    send(res, answer.status, 'application/json', Buffer.from(JSON.stringify(answer.toJSON())), false, { 'x-amzn-errortype': answer.type })
  }
}

/** A fragment's bytes with its decode time on the session's clock (retime.ts). */
async function retimed(row: FragmentRecord, s: HlsSession, ctx: HlsContext): Promise<Buffer> {
  const m = await ctx.reader.media(row)
  const anchor = await ctx.reader.anchor(row, s.by)
  return withDecodeTime(m.data, m.samples.decodeTime + anchor.ticks)
}

function fail(message: string): never {
  throw new VideoApiError(VideoErrorType.ResourceNotFoundException, message)
}

/** The fragment (or init segment) a request names, if it is the session's to serve. */
function fragmentOf(s: HlsSession, url: URL, ctx: HlsContext, kind: 'init' | 'media'): FragmentRecord {
  const number = url.searchParams.get('FragmentNumber')
  if (!number) throw invalidArgument('FragmentNumber is required.')
  const id = idOfFragmentNumber(number)
  const row = id === null ? undefined : ctx.store.catalog.fragmentById(s.streamId, id)
  if (!row || (kind === 'init') !== (row.sequence === 0)) fail(`Fragment ${number} is not in this stream${row ? ` as ${kind === 'init' ? 'an init segment' : 'a media fragment'}` : ''}.`)
  if (kind === 'media') {
    const t = s.by === 'producer' ? row.producerMs : row.serverMs
    // Only the session's media is served (AWS: nothing outside the requested window).
    const inside = s.mode === 'LIVE' ? row.id >= s.firstId : t >= s.startMs! && (s.endMs === undefined || t <= s.endMs)
    if (!inside) fail(`Fragment ${number} is outside this session.`)
  }
  return row
}

/** The media playlist; with `_HLS_msn`, once that segment is listed (or three target durations have passed). */
async function playlistFor(s: HlsSession, msnParam: string | null, ctx: HlsContext, res: Response): Promise<Playlist> {
  let p = ctx.timelines.playlist(s, ctx.now())
  if (msnParam === null || s.mode === 'ON_DEMAND') return p
  const msn = Number(msnParam)
  if (!Number.isInteger(msn) || msn < 0) throw invalidArgument(`_HLS_msn must be a non-negative integer, not ${JSON.stringify(msnParam)}.`)
  const target = Math.max(1, ...p.entries.map((e) => Math.ceil(e.durationMs / 1000)))
  // A real-time bound: it keeps a waiting request from holding the connection, whatever the relay's clock says.
  const deadline = Date.now() + 3 * target * 1000
  const gone = new AbortController()
  res.once('close', () => gone.abort())
  while (!p.ended && p.mediaSequence + p.entries.length - 1 < msn && Date.now() < deadline && !gone.signal.aborted) {
    await sleep(POLL_MS, undefined, { signal: gone.signal }).catch(() => {})
    p = ctx.timelines.playlist(s, ctx.now())
  }
  return p
}

function send(res: Response, status: number, type: string, body: Buffer, immutable: boolean, headers: Record<string, string> = {}): void {
  if (res.destroyed) return
  res.writeHead(status, {
    'content-type': type, 'content-length': String(body.length), 'x-amzn-requestid': randomUUID(),
    // The token is the credential: any page may play it (AWS answers with CORS open too).
    'access-control-allow-origin': '*',
    'cache-control': immutable ? 'private, max-age=300' : 'no-cache',
    ...headers,
  })
  res.end(body)
}
