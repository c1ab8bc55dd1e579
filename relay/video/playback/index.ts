/**
 * Playback of stored video (issue 13): HLS sessions and their GETs, GetClip, GetImages, GetMedia and
 * GetMediaForFragmentList. The Kinesis Video API (relay/video/api.ts) answers the POST actions
 * through `Playback`, the routes send `/hls/v1/…` to `serveHls`.
 */
import { createHmac } from 'node:crypto'
import type { VideoStore } from '../store.js'
import type { VideoStreams } from '../streams.js'
import { Slots, Streamed, type Request, type Response } from './answer.js'
import { getClip } from './clip.js'
import { hlsSessionUrl, serveHls, type HlsContext } from './hls.js'
import { getImages, ImageCache, type CacheEvent, type ImageAnswer } from './images.js'
import { MediaReader } from './inits.js'
import { getMedia, getMediaForFragmentList, type MediaContext } from './media.js'
import { SessionTokens } from './session-token.js'
import { Timelines } from './timeline.js'

export { Streamed, sinkOf, type Sink } from './answer.js'
export { HLS_PREFIX } from './playlist.js'
export type { ImageCacheStats } from './images.js'

/** Clips sent at once, GetMedia connections held at once, MPEG-TS remuxes at once. */
const MAX_CLIPS = 8
const MAX_FOLLOWERS = 64
const MAX_REMUXES = 4

export interface PlaybackOptions {
  streams: VideoStreams
  store: VideoStore
  /** 32 bytes, the HLS session tokens' key (derived from the relay's video token key). */
  sessionKey: Buffer
  /** The relay's clock (ms). */
  now: () => number
  count: (action: string, outcome: string) => void
  log: (event: string, fields: Record<string, unknown>) => void
  /** GetImages' cache lookups (frames decoded, images encoded), for the relay's metrics. */
  imageCache?: CacheEvent
  /** Bytes GetImages' caches hold at most: encoded images, decoded frames. */
  imageCacheBytes?: { images: number; frames: number }
}

export class Playback {
  private readonly hls: HlsContext
  private readonly media: MediaContext
  private readonly clips = new Slots(MAX_CLIPS)
  readonly images: ImageCache
  private readonly imageTokenKey: Buffer

  constructor(private readonly o: PlaybackOptions) {
    const reader = new MediaReader(o.store)
    const timelines = new Timelines(o.store, (row) => reader.initRow(row)?.id ?? null)
    this.hls = { streams: o.streams, store: o.store, reader, timelines, tokens: new SessionTokens(o.sessionKey, o.now), now: o.now, remuxes: new Slots(MAX_REMUXES), count: o.count, log: o.log }
    this.media = { streams: o.streams, store: o.store, reader, now: o.now, followers: new Slots(MAX_FOLLOWERS), log: o.log }
    this.images = new ImageCache(o.imageCacheBytes, o.imageCache)
    this.imageTokenKey = createHmac('sha256', o.sessionKey).update('getImages NextToken').digest()
  }

  getImages(body: unknown): Promise<{ Images: ImageAnswer[]; NextToken?: string }> {
    return getImages(body, { streams: this.o.streams, store: this.o.store, reader: this.hls.reader, cache: this.images, tokenKey: this.imageTokenKey })
  }

  hlsSessionUrl(body: unknown, endpoint: string): { HLSStreamingSessionURL: string } {
    return hlsSessionUrl(body, this.hls, endpoint)
  }

  clip(body: unknown): Promise<Streamed> {
    return getClip(body, { streams: this.o.streams, store: this.o.store, reader: this.hls.reader, clips: this.clips })
  }

  mediaForFragmentList(body: unknown): Streamed {
    return getMediaForFragmentList(body, this.media)
  }

  getMedia(body: unknown): Streamed {
    return getMedia(body, this.media)
  }

  /** `GET /hls/v1/…`: authenticated by its SessionToken alone. */
  serveHls(req: Request, res: Response): Promise<void> {
    return serveHls(req, res, this.hls)
  }
}
