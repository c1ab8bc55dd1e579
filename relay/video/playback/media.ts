/**
 * Matroska for Kinesis Video consumers: GetMediaForFragmentList (`POST /getMediaForFragmentList`,
 * the listed fragments in the order asked) and GetMedia (`POST /getMedia`, from a StartSelector on,
 * then following the stream as fragments are persisted). Each fragment is one Matroska document
 * (mkv.ts) tagged as AWS tags them; GetMedia adds after each cluster the milliseconds behind now and
 * a continuation token — the fragment's own number — from which CONTINUATION_TOKEN resumes after it.
 *
 * StartSelector, as this relay reads AWS's types: EARLIEST (the oldest fragment kept), NOW (the
 * fragments persisted after the request), FRAGMENT_NUMBER (from AfterFragmentNumber, that fragment
 * included: "from where you want GetMedia to start"), SERVER_TIMESTAMP / PRODUCER_TIMESTAMP (from the
 * fragment holding StartTimestamp, else the first after it), CONTINUATION_TOKEN (after the fragment
 * the token names). From its start, GetMedia follows ingest order.
 *
 * GetMedia waits for new fragments by looking at the catalog every 100 ms, and ends once none has
 * come for 20 s of the relay's clock (or when the stream is deleted, or the client goes).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { fragmentNumberOf, idOfFragmentNumber, type FragmentRecord } from '../catalog.js'
import { invalidArgument, VideoApiError, VideoErrorType } from '../errors.js'
import type { VideoStore } from '../store.js'
import type { VideoStreams } from '../streams.js'
import { validate } from '../validate.js'
import { ClientGone, Streamed, type Sink, type Slots } from './answer.js'
import type { MediaReader } from './inits.js'
import { mkvFragment, tagTime } from './mkv.js'
import { FragmentNumber, StreamARN, StreamName, type Named } from './shapes.js'

/** AWS answers GetMedia and GetMediaForFragmentList as WebM (Matroska). */
export const MKV_TYPE = 'video/webm'
export const MAX_FRAGMENT_LIST = 1000
/** GetMedia ends after this long (the relay's clock) without a new fragment. */
export const GET_MEDIA_IDLE_MS = 20_000
const POLL_MS = 100
const PAGE = 16
/** How far back a timestamp start looks for the fragment that holds it (longer fragments start after it). */
const HOLDING_LOOKBACK_MS = 60_000

export interface MediaContext {
  streams: VideoStreams
  store: VideoStore
  reader: MediaReader
  now: () => number
  /** GetMedia connections held at once. */
  followers: Slots
  log: (event: string, fields: Record<string, unknown>) => void
}

function fragmentTags(row: FragmentRecord): Record<string, string> {
  return {
    AWS_KINESISVIDEO_FRAGMENT_NUMBER: fragmentNumberOf(row.id),
    AWS_KINESISVIDEO_SERVER_TIMESTAMP: tagTime(row.serverMs),
    AWS_KINESISVIDEO_PRODUCER_TIMESTAMP: tagTime(row.producerMs),
  }
}

async function render(ctx: MediaContext, row: FragmentRecord, after?: Record<string, string>): Promise<Buffer | null> {
  const initRow = ctx.reader.initRow(row)
  if (!initRow) return null
  const m = await ctx.reader.media(row)
  // Cluster times: the session's media time on the producer's clock (continuous within a session).
  const anchor = await ctx.reader.anchor(row, 'producer')
  const firstPts = m.samples.decodeTime + (m.samples.runs[0]?.offsets[0] ?? 0)
  const startMs = anchor.ms + (firstPts * 1000) / m.init.info.timescale
  return mkvFragment({ init: m.init, samples: m.samples, data: m.data, startMs, tags: fragmentTags(row), after })
}

export function getMediaForFragmentList(body: unknown, ctx: MediaContext): Streamed {
  const r = validate<Named & { Fragments: string[] }>(body, {
    StreamName, StreamARN, Fragments: { type: 'list', required: true, member: FragmentNumber, min: 1, max: MAX_FRAGMENT_LIST },
  })
  const stream = ctx.streams.resolve(r.StreamName, r.StreamARN)
  const rows = r.Fragments.map((number) => {
    const id = idOfFragmentNumber(number)
    const row = id === null ? undefined : ctx.store.catalog.fragmentById(stream.id, id)
    if (!row || row.sequence === 0) throw new VideoApiError(VideoErrorType.ResourceNotFoundException, `Fragment ${number} is not in stream ${stream.name}.`)
    return row
  })
  return new Streamed(MKV_TYPE, async (sink) => {
    for (const row of rows) {
      const doc = await render(ctx, row)
      if (doc) await sink.write(doc)
    }
  })
}

interface StartSelector {
  StartSelectorType: 'FRAGMENT_NUMBER' | 'SERVER_TIMESTAMP' | 'PRODUCER_TIMESTAMP' | 'NOW' | 'EARLIEST' | 'CONTINUATION_TOKEN'
  AfterFragmentNumber?: string
  StartTimestamp?: number
  ContinuationToken?: string
}

/** Where GetMedia starts: the id after which it sends (exclusive). */
function startOf(sel: StartSelector, streamId: string, ctx: MediaContext): { afterId: number } {
  const { store } = ctx
  const need = (what: keyof StartSelector) => {
    if (sel[what] === undefined) throw invalidArgument(`${what} is required when StartSelectorType is ${sel.StartSelectorType}.`)
  }
  switch (sel.StartSelectorType) {
    case 'EARLIEST':
      return { afterId: 0 }
    case 'NOW':
      return { afterId: newestId(store, streamId, ctx.now()) }
    case 'FRAGMENT_NUMBER': {
      need('AfterFragmentNumber')
      const id = idOfFragmentNumber(sel.AfterFragmentNumber!)
      if (id === null || !store.catalog.fragmentById(streamId, id)) throw new VideoApiError(VideoErrorType.ResourceNotFoundException, `Fragment ${sel.AfterFragmentNumber} is not in the stream.`)
      return { afterId: id - 1 }
    }
    case 'CONTINUATION_TOKEN': {
      need('ContinuationToken')
      const id = idOfFragmentNumber(sel.ContinuationToken!)
      if (id === null) throw invalidArgument(`ContinuationToken ${sel.ContinuationToken} is not one this relay gave.`)
      return { afterId: id }
    }
    case 'SERVER_TIMESTAMP':
    case 'PRODUCER_TIMESTAMP': {
      need('StartTimestamp')
      const by = sel.StartSelectorType === 'SERVER_TIMESTAMP' ? 'server' : 'producer'
      const at = sel.StartTimestamp!
      const time = (f: FragmentRecord) => (by === 'server' ? f.serverMs : f.producerMs)
      const before = store.list({ streamId, by, from: at - HOLDING_LOOKBACK_MS, to: at, limit: 1000 })
      const holding = before.filter((f) => time(f) <= at && at < time(f) + f.durationMs).pop()
      const first = holding ?? store.list({ streamId, by, from: at, limit: 1 })[0]
      // Nothing at or after it yet: what comes next.
      return { afterId: first ? first.id - 1 : newestId(store, streamId, ctx.now()) }
    }
  }
}

/** The id of the newest fragment (0 when there is none), found among recent ones first. */
function newestId(store: VideoStore, streamId: string, now: number): number {
  for (const back of [60_000, 3_600_000, 86_400_000, Infinity]) {
    let max = 0
    let after: { at: number; id: number } | undefined
    for (;;) {
      const rows = store.list({ streamId, by: back === Infinity ? 'number' : 'server', from: back === Infinity ? undefined : now - back, after, limit: 1000 })
      for (const r of rows) max = Math.max(max, r.id)
      const last = rows[rows.length - 1]
      if (!last || rows.length < 1000) break
      after = back === Infinity ? { at: last.id, id: last.id } : { at: last.serverMs, id: last.id }
    }
    if (max > 0) return max
  }
  return 0
}

export function getMedia(body: unknown, ctx: MediaContext): Streamed {
  const r = validate<Named & { StartSelector: StartSelector }>(body, {
    StreamName, StreamARN,
    StartSelector: { type: 'structure', required: true, fields: {
      StartSelectorType: { type: 'string', required: true, enum: ['FRAGMENT_NUMBER', 'SERVER_TIMESTAMP', 'PRODUCER_TIMESTAMP', 'NOW', 'EARLIEST', 'CONTINUATION_TOKEN'] },
      AfterFragmentNumber: FragmentNumber,
      StartTimestamp: { type: 'timestamp' },
      ContinuationToken: { type: 'string', pattern: '[a-zA-Z0-9_\\.\\-]+', min: 1, max: 128 },
    } },
  })
  const stream = ctx.streams.resolve(r.StreamName, r.StreamARN)
  const start = startOf(r.StartSelector, stream.id, ctx)
  if (!ctx.followers.take()) throw new VideoApiError(VideoErrorType.ClientLimitExceededException, `The relay holds ${ctx.followers.max} GetMedia connections already; try again later.`)
  return new Streamed(MKV_TYPE, async (sink: Sink) => {
    try {
      let after = start.afterId
      let lastNew = ctx.now()
      while (!sink.signal.aborted && ctx.streams.getById(stream.id)) {
        const rows = ctx.store.list({ streamId: stream.id, by: 'number', after: { at: after, id: after }, limit: PAGE })
        for (const row of rows) {
          after = row.id
          const now = ctx.now()
          lastNew = now
          const doc = await render(ctx, row, {
            AWS_KINESISVIDEO_MILLIS_BEHIND_NOW: String(Math.max(0, Math.round(now - row.serverMs))),
            AWS_KINESISVIDEO_CONTINUATION_TOKEN: fragmentNumberOf(row.id),
          }).catch((err: NodeJS.ErrnoException) => {
            // Retention took it between listing and reading: go on with the next.
            if (err.code === 'ENOENT') return null
            throw err
          })
          if (doc) await sink.write(doc)
        }
        if (rows.length) continue
        if (ctx.now() - lastNew >= GET_MEDIA_IDLE_MS) break
        await sleep(POLL_MS, undefined, { signal: sink.signal }).catch(() => {})
      }
    } catch (err) {
      if (!(err instanceof ClientGone)) throw err
    } finally {
      ctx.followers.release()
    }
  })
}
