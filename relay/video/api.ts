/**
 * The Kinesis Video API on the relay's HTTP port, in AWS's REST-JSON form (`POST /createStream`, …,
 * `POST /listFragments`), so @aws-sdk/client-kinesis-video and -archived-media work with an endpoint
 * override. Requests are validated against each action's shape (validate.ts, AWS's wording), and
 * errors carry their type in `x-amzn-errortype` with `{"message": …}` as the body. SigV4 (signing
 * name `kinesisvideo`, `videoPolicy`) is checked by the HTTP routes before `serve` is called.
 */
import { randomUUID, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { LogFn } from '../observe.js'
import { fragmentNumberOf, type FragmentQuery, type FragmentRecord, type VideoStreamRecord } from './catalog.js'
import { invalidArgument, VideoApiError, VideoErrorType } from './errors.js'
import type { VideoMetrics } from './metrics.js'
import type { VideoStore } from './store.js'
import { MAX_RETENTION_HOURS, MAX_TAGS, type VideoStreams } from './streams.js'
import { validate, type Shape } from './validate.js'
import { Playback, sinkOf, Streamed } from './playback/index.js'

type Request = IncomingMessage | Http2ServerRequest
type Response = ServerResponse | Http2ServerResponse

/** What SigV4 requires of a Kinesis Video request (relay/kinesis/sigv4.ts's VerifyOptions): its signing name and region, the body signed. */
export function videoPolicy(region: string, now: number): { service: string; now: number; region: string; refuseUnsignedPayload: boolean } {
  return { service: 'kinesisvideo', now, region, refuseUnsignedPayload: true }
}

const JSON_TYPE = 'application/json'

// ---- shapes (the models' constraints) ----
const StreamName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 256 }
const StreamARN: Shape = { type: 'string', pattern: 'arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+', min: 1, max: 1024 }
const Version: Shape = { type: 'string', pattern: '[a-zA-Z0-9]+', min: 1, max: 64 }
const DeviceName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
const MediaType: Shape = { type: 'string', pattern: '[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*', min: 1, max: 128 }
const TagKey: Shape = { type: 'string', pattern: '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*', min: 1, max: 128 }
const TagValue: Shape = { type: 'string', pattern: '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*', min: 0, max: 256 }
const Tags: Shape = { type: 'map', key: TagKey, value: TagValue, min: 1, max: MAX_TAGS }
const NextToken: Shape = { type: 'string', pattern: '[a-zA-Z0-9+/=_.-]*', min: 0, max: 4096 }
const APINames = ['PUT_MEDIA', 'GET_MEDIA', 'LIST_FRAGMENTS', 'GET_MEDIA_FOR_FRAGMENT_LIST', 'GET_HLS_STREAMING_SESSION_URL', 'GET_DASH_STREAMING_SESSION_URL', 'GET_CLIP', 'GET_IMAGES'] as const

interface Named { StreamName?: string; StreamARN?: string }

interface ApiContext {
  streams: VideoStreams
  store: VideoStore
  tokens: VideoTokens
  /** The relay's own URL as the caller reached it. */
  endpoint: string
  playback: Playback
}

type Action = (body: unknown, ctx: ApiContext) => Promise<unknown> | unknown

const info = (s: VideoStreamRecord) => ({
  DeviceName: s.deviceName ?? undefined,
  StreamName: s.name,
  StreamARN: s.arn,
  MediaType: s.mediaType ?? undefined,
  // AWS names its own key when the stream was created without one.
  KmsKeyId: s.kmsKeyId ?? `arn:aws:kms:${s.arn.split(':')[3]}:${s.arn.split(':')[4]}:alias/aws/kinesisvideo`,
  Version: s.version,
  Status: s.status,
  CreationTime: s.createdMs / 1000,
  DataRetentionInHours: s.retentionHours,
})

const fragment = (r: FragmentRecord) => ({
  FragmentNumber: fragmentNumberOf(r.id),
  FragmentSizeInBytes: r.bytes,
  ProducerTimestamp: r.producerMs / 1000,
  ServerTimestamp: r.serverMs / 1000,
  FragmentLengthInMilliseconds: r.durationMs,
})

const ACTIONS: Record<string, { name: string; run: Action }> = {
  '/createStream': {
    name: 'CreateStream',
    run: (body, { streams }) => {
      const r = validate<{ StreamName: string; DeviceName?: string; MediaType?: string; KmsKeyId?: string; DataRetentionInHours?: number; Tags?: Record<string, string> }>(body, {
        StreamName: { ...StreamName, required: true }, DeviceName, MediaType, KmsKeyId: { type: 'string', min: 1, max: 2048 },
        DataRetentionInHours: { type: 'integer', min: 0 }, Tags,
        StreamStorageConfiguration: { type: 'structure', fields: { DefaultStorageTier: { type: 'string', enum: ['HOT', 'WARM'] } } },
      })
      if ((r.DataRetentionInHours ?? 0) > MAX_RETENTION_HOURS) throw invalidArgument(`DataRetentionInHours must be at most ${MAX_RETENTION_HOURS}.`)
      const stream = streams.create({ name: r.StreamName, retentionHours: r.DataRetentionInHours ?? 0, deviceName: r.DeviceName, mediaType: r.MediaType, kmsKeyId: r.KmsKeyId, tags: r.Tags })
      return { StreamARN: stream.arn }
    },
  },
  '/describeStream': {
    name: 'DescribeStream',
    run: (body, { streams }) => {
      const r = validate<Named>(body, { StreamName, StreamARN })
      return { StreamInfo: info(streams.resolve(r.StreamName, r.StreamARN)) }
    },
  },
  '/listStreams': {
    name: 'ListStreams',
    run: (body, { streams, tokens }) => {
      const r = validate<{ MaxResults?: number; NextToken?: string; StreamNameCondition?: { ComparisonOperator?: string; ComparisonValue?: string } }>(body, {
        MaxResults: { type: 'integer', min: 1, max: 10_000 }, NextToken,
        StreamNameCondition: { type: 'structure', fields: { ComparisonOperator: { type: 'string', enum: ['BEGINS_WITH'] }, ComparisonValue: { ...StreamName, required: true } } },
      })
      const after = r.NextToken ? tokens.decode<{ after: string }>(r.NextToken).after : null
      const prefix = r.StreamNameCondition?.ComparisonValue ?? ''
      const limit = r.MaxResults ?? 10_000
      const matching = streams.list().filter((s) => s.name.startsWith(prefix) && (after === null || s.name > after))
      const page = matching.slice(0, limit)
      return { StreamInfoList: page.map(info), ...(matching.length > limit ? { NextToken: tokens.encode({ after: page[page.length - 1]!.name }) } : {}) }
    },
  },
  '/deleteStream': {
    name: 'DeleteStream',
    run: async (body, { streams }) => {
      const r = validate<{ StreamARN: string; CurrentVersion?: string }>(body, { StreamARN: { ...StreamARN, required: true }, CurrentVersion: Version })
      await streams.delete(streams.resolve(undefined, r.StreamARN), r.CurrentVersion)
      return {}
    },
  },
  '/updateDataRetention': {
    name: 'UpdateDataRetention',
    run: (body, { streams }) => {
      const r = validate<Named & { CurrentVersion: string; Operation: 'INCREASE_DATA_RETENTION' | 'DECREASE_DATA_RETENTION'; DataRetentionChangeInHours: number }>(body, {
        StreamName, StreamARN, CurrentVersion: { ...Version, required: true },
        Operation: { type: 'string', required: true, enum: ['INCREASE_DATA_RETENTION', 'DECREASE_DATA_RETENTION'] },
        DataRetentionChangeInHours: { type: 'integer', required: true, min: 1 },
      })
      streams.updateRetention(streams.resolve(r.StreamName, r.StreamARN), r.CurrentVersion, r.Operation, r.DataRetentionChangeInHours)
      return {}
    },
  },
  '/updateStream': {
    name: 'UpdateStream',
    run: (body, { streams }) => {
      const r = validate<Named & { CurrentVersion: string; DeviceName?: string; MediaType?: string }>(body, {
        StreamName, StreamARN, CurrentVersion: { ...Version, required: true }, DeviceName, MediaType,
      })
      streams.updateStream(streams.resolve(r.StreamName, r.StreamARN), r.CurrentVersion, { deviceName: r.DeviceName, mediaType: r.MediaType })
      return {}
    },
  },
  '/tagStream': {
    name: 'TagStream',
    run: (body, { streams }) => {
      const r = validate<Named & { Tags: Record<string, string> }>(body, { StreamName, StreamARN, Tags: { ...Tags, required: true } })
      streams.tag(streams.resolve(r.StreamName, r.StreamARN), r.Tags)
      return {}
    },
  },
  '/untagStream': {
    name: 'UntagStream',
    run: (body, { streams }) => {
      const r = validate<Named & { TagKeyList: string[] }>(body, { StreamName, StreamARN, TagKeyList: { type: 'list', required: true, member: { type: 'string', min: 1, max: 128 }, min: 1, max: 50 } })
      streams.untag(streams.resolve(r.StreamName, r.StreamARN), r.TagKeyList)
      return {}
    },
  },
  '/listTagsForStream': {
    name: 'ListTagsForStream',
    run: (body, { streams }) => {
      const r = validate<Named & { NextToken?: string }>(body, { StreamName, StreamARN, NextToken })
      // At most 50 tags: one page holds them all.
      return { Tags: streams.tags(streams.resolve(r.StreamName, r.StreamARN)) }
    },
  },
  '/getDataEndpoint': {
    name: 'GetDataEndpoint',
    run: (body, { streams, endpoint }) => {
      const r = validate<Named & { APIName: string }>(body, { StreamName, StreamARN, APIName: { type: 'string', required: true, enum: APINames } })
      streams.resolve(r.StreamName, r.StreamARN)
      // One relay serves every API: its own URL, whichever is asked.
      return { DataEndpoint: endpoint }
    },
  },
  '/listFragments': {
    name: 'ListFragments',
    run: (body, { streams, store, tokens }) => {
      const r = validate<Named & { MaxResults?: number; NextToken?: string; FragmentSelector?: { FragmentSelectorType: 'PRODUCER_TIMESTAMP' | 'SERVER_TIMESTAMP'; TimestampRange: { StartTimestamp: number; EndTimestamp: number } } }>(body, {
        StreamName, StreamARN, MaxResults: { type: 'integer', min: 1, max: 1000 }, NextToken: { ...NextToken, min: 1 },
        FragmentSelector: {
          type: 'structure',
          fields: {
            FragmentSelectorType: { type: 'string', required: true, enum: ['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP'] },
            TimestampRange: { type: 'structure', required: true, fields: { StartTimestamp: { type: 'timestamp', required: true }, EndTimestamp: { type: 'timestamp', required: true } } },
          },
        },
      })
      const stream = streams.resolve(r.StreamName, r.StreamARN)
      const limit = r.MaxResults ?? 100
      let query: Omit<FragmentQuery, 'limit'>
      if (r.NextToken) {
        const held = tokens.decode<{ stream: string } & Omit<FragmentQuery, 'limit' | 'streamId'>>(r.NextToken)
        if (held.stream !== stream.id) throw invalidArgument('The NextToken was issued for another stream.')
        query = { streamId: stream.id, by: held.by, from: held.from, to: held.to, after: held.after }
      } else {
        const selector = r.FragmentSelector
        const range = selector?.TimestampRange
        if (range && range.StartTimestamp > range.EndTimestamp) throw invalidArgument('StartTimestamp must be before or equal to EndTimestamp.')
        query = selector
          ? { streamId: stream.id, by: selector.FragmentSelectorType === 'PRODUCER_TIMESTAMP' ? 'producer' : 'server', from: range!.StartTimestamp, to: range!.EndTimestamp }
          : { streamId: stream.id, by: 'number' }
      }
      // One more than asked says whether another page follows.
      const rows = store.list({ ...query, limit: limit + 1 })
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      const next = rows.length > limit && last
        ? tokens.encode({ stream: stream.id, by: query.by, from: query.from, to: query.to, after: { at: query.by === 'producer' ? last.producerMs : query.by === 'server' ? last.serverMs : last.id, id: last.id } })
        : undefined
      return { Fragments: page.map(fragment), ...(next ? { NextToken: next } : {}) }
    },
  },
  // Playback (issue 13): relay/video/playback/.
  '/getHLSStreamingSessionURL': { name: 'GetHLSStreamingSessionURL', run: (body, { playback, endpoint }) => playback.hlsSessionUrl(body, endpoint) },
  '/getClip': { name: 'GetClip', run: (body, { playback }) => playback.clip(body) },
  '/getMediaForFragmentList': { name: 'GetMediaForFragmentList', run: (body, { playback }) => playback.mediaForFragmentList(body) },
  '/getMedia': { name: 'GetMedia', run: (body, { playback }) => playback.getMedia(body) },
  '/getImages': { name: 'GetImages', run: (body, { playback }) => playback.getImages(body) },
}

/** The paths this API answers (POST only). */
export const VIDEO_API_PATHS: ReadonlySet<string> = new Set(Object.keys(ACTIONS))

/**
 * Paging tokens: base64url of a 16-byte HMAC tag and the JSON position (letters, digits, `-` and `_`
 * only, as the models' NextToken patterns allow), so a token cannot be edited; they last 5 minutes.
 */
export class VideoTokens {
  constructor(private readonly key: Buffer, readonly now: () => number) {}

  /** A key of its own for `purpose` (32 bytes), derived from this one. */
  derive(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`derive:${purpose}`).digest()
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update('video').update(body).digest().subarray(0, 16)
  }

  encode(position: object): string {
    const body = Buffer.from(JSON.stringify({ ...position, t: this.now() }))
    return Buffer.concat([this.mac(body), body]).toString('base64url')
  }

  decode<T>(token: string): T {
    const raw = Buffer.from(token, 'base64url')
    const body = raw.subarray(16)
    const mac = raw.subarray(0, 16)
    if (raw.length <= 16 || !timingSafeEqual(mac, this.mac(body))) throw invalidArgument('Invalid NextToken.')
    const value = JSON.parse(body.toString()) as T & { t: number }
    if (this.now() - value.t > 300_000) throw invalidArgument('The NextToken has expired.')
    return value
  }
}

export interface VideoApiOptions {
  streams: VideoStreams
  store: VideoStore
  tokens: VideoTokens
  metrics: VideoMetrics
  log: LogFn
}

export class VideoApi {
  private readonly o: VideoApiOptions
  private readonly playback: Playback

  constructor(options: VideoApiOptions) {
    this.o = options
    this.playback = new Playback({
      streams: options.streams, store: options.store, sessionKey: options.tokens.derive('hls-session'), now: options.tokens.now,
      count: (action, outcome) => options.metrics.api.inc({ action, outcome }), log: options.log,
      imageCache: (kind, outcome) => options.metrics.imageCache.inc({ kind, outcome }),
    })
  }

  private stream(res: Response, label: string, answer: Streamed): Promise<void> {
    return streamAnswer(res, label, answer, this.o.log)
  }

  /** `GET /hls/v1/…` (HLS playlists and media): authenticated by the session token, not SigV4. */
  serveHls(req: Request, res: Response): Promise<void> {
    return this.playback.serveHls(req, res)
  }

  /**
   * Answers `POST <path>` with `body`, read (and its signature verified, when the relay has access
   * keys) by the routes.
   */
  async serve(req: Request, res: Response, path: string, body: Buffer): Promise<void> {
    const action = ACTIONS[path]
    const label = action?.name ?? 'unknown'
    try {
      if (!action || req.method !== 'POST') throw new VideoApiError(VideoErrorType.UnknownOperationException, `No operation at ${req.method} ${path}.`)
      let input: unknown
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'))
      } catch {
        throw new VideoApiError(VideoErrorType.SerializationException, 'The request body is not JSON.')
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new VideoApiError(VideoErrorType.SerializationException, 'The request body must be a JSON object.')
      const host = String(req.headers[':authority'] ?? req.headers.host ?? '')
      const scheme = 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http'
      const result = await action.run(input, { streams: this.o.streams, store: this.o.store, tokens: this.o.tokens, endpoint: `${scheme}://${host}`, playback: this.playback })
      this.o.metrics.api.inc({ action: label, outcome: 'ok' })
      if (result instanceof Streamed) return await this.stream(res, label, result)
      respond(res, 200, JSON.stringify(result))
    } catch (err) {
      if (!(err instanceof VideoApiError)) this.o.log('video_api_error', { action: label, error: (err as Error).stack ?? String(err) })
      const answer = err instanceof VideoApiError ? err : new VideoApiError(VideoErrorType.InternalFailure, 'Internal service failure.')
      this.o.metrics.api.inc({ action: label, outcome: answer.type })
      sendVideoError(res, answer)
    }
  }
}

/** A media body: headers now, then the body as it is made; a failure after the headers cuts the connection. */
async function streamAnswer(res: Response, label: string, answer: Streamed, log: LogFn): Promise<void> {
  const length: Record<string, string> = answer.length === undefined ? {} : { 'content-length': String(answer.length) }
  res.writeHead(200, { 'content-type': answer.contentType, 'x-amzn-requestid': randomUUID(), ...length })
  try {
    await answer.send(sinkOf(res))
    res.end()
  } catch (err) {
    if ((err as Error).name !== 'ClientGone') log('video_api_stream_error', { action: label, error: (err as Error).stack ?? String(err) })
    res.destroy()
  }
}

function respond(res: Response, status: number, body: string, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(body)
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': String(payload.length), 'x-amzn-requestid': randomUUID(), ...headers })
  res.end(payload)
}

/** An error as AWS's REST-JSON answers it. */
export function sendVideoError(res: Response, error: VideoApiError, headers: Record<string, string> = {}): void {
  respond(res, error.status, JSON.stringify(error.toJSON()), { ...error.headers, ...headers })
}
