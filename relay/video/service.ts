/**
 * Video streams on a relay, assembled: the catalog (its own tables in meta.db), the fragment files
 * under `<dataDir>/video`, the streams, the store, the MQTT ingest and the Kinesis Video API, with
 * their metrics and their share of the housekeeping (retention by age, expiry of incomplete
 * fragments), all on the relay's clock.
 */
import { join } from 'node:path'
import { codec, every, type Clock } from '../../hardware/index.js'
import type { RelayConfig } from '../../shared/config.js'
import type { Registry } from '../../shared/metrics.js'
import type { VideoAck } from '../../shared/video.js'
import type { LogFn } from '../observe.js'
import { VideoApi, VideoTokens } from './api.js'
import { PutMedia } from './putmedia.js'
import { SqliteVideoCatalog } from './catalog-sqlite.js'
import { FragmentFiles } from './files.js'
import { VideoIngest } from './ingest.js'
import { mp4Parser } from './media.js'
import { videoGauges, videoMetrics, type VideoMetrics } from './metrics.js'
import { VideoStore } from './store.js'
import { VideoStreams } from './streams.js'

/** Video streams one relay may hold (CreateStream past it: AccountStreamLimitExceededException). */
const MAX_VIDEO_STREAMS = 10_000
/** How often incomplete fragments are checked for expiry. */
const EXPIRY_CHECK_MS = 1000
/** How often retention runs (as for the shard logs). */
const RETENTION_MS = 60_000
/** PutMedia connections served at once (each runs an ffmpeg). */
const MAX_PUTMEDIA = 16

export interface VideoServiceOptions {
  config: RelayConfig
  metaPath: string
  clock: Clock
  registry: Registry
  log: LogFn
  /** Bytes of the shard logs, which the data directory's cap counts with video. */
  logBytes: () => number
  tokenKey: Buffer
  /** Publishes an ack on the device's video-acks topic. */
  publish: (device: string, ack: VideoAck) => Promise<void>
  /** Closes a device's connections (a store in the background found the relay cannot store now). */
  disconnect?: (device: string) => void
}

export interface VideoService {
  streams: VideoStreams
  store: VideoStore
  ingest: VideoIngest
  api: VideoApi
  putMedia: PutMedia
  metrics: VideoMetrics
  /** Resolves once the retention run under way (if any) has deleted its files. */
  idle(): Promise<void>
  /** Stops the timers, waits for the stores under way, and closes the catalog. */
  close(): Promise<void>
}

export async function openVideo(o: VideoServiceOptions): Promise<VideoService> {
  const { config, clock, log } = o
  const now = () => clock.wallMs()
  const catalog = new SqliteVideoCatalog(o.metaPath)
  const files = new FragmentFiles(join(config.dataDir, 'video'))
  const streams = new VideoStreams({ catalog, files, region: config.region, accountId: config.accountId, now, liveBufferMs: config.videoLiveBufferSeconds * 1000, maxStreams: MAX_VIDEO_STREAMS })
  const store = new VideoStore({ catalog, files, streams, parser: mp4Parser, now, otherBytes: o.logBytes, maxDataBytes: config.maxDataBytes })
  const swept = await store.open()
  if (swept > 0) log('video_files_swept', { files: swept })
  const metrics = videoMetrics(o.registry)
  const ingest = new VideoIngest({
    store, streams, clock, codec, log,
    limits: {
      maxPerDevice: config.videoMaxPendingFragments, maxBytesPerDevice: config.videoMaxPendingBytes,
      maxFragments: config.videoMaxPendingFragmentsTotal, maxBytes: config.videoMaxPendingBytesTotal, timeoutMs: config.videoPendingTimeoutMs,
    },
    autoCreateStreams: config.autoCreateStreams,
    autoCreateMaxPerDevice: config.autoCreateMaxPerDevice,
    autoCreateRetentionHours: config.retentionHours,
    publish: o.publish,
    disconnect: o.disconnect,
    onPersisted: (stream, bytes, duplicate) => {
      if (duplicate) return metrics.duplicates.inc({ source: 'mqtt' })
      metrics.fragments.inc({ stream, source: 'mqtt' })
      metrics.bytes.inc({ stream, source: 'mqtt' }, bytes)
    },
    onError: (code) => metrics.errors.inc({ code }),
    onExpired: () => metrics.expired.inc(),
  })
  videoGauges(o.registry, { held: () => ingest.held(), storedBytes: () => store.totalBytes(), streams: () => streams.list().length })
  const api = new VideoApi({ streams, store, tokens: new VideoTokens(o.tokenKey, now), metrics, log })
  const putMedia = new PutMedia({ streams, store, metrics, log, now, maxConcurrent: MAX_PUTMEDIA })
  let retention: Promise<void> = Promise.resolve()
  const timers = [
    every(clock, EXPIRY_CHECK_MS, () => { ingest.expire() }),
    every(clock, RETENTION_MS, () => {
      // One run at a time: a run still deleting files is followed, not overlapped.
      retention = retention.then(() => store.enforceRetention()).then(
        (freed) => { if (freed) log('video_retention', { freedBytes: freed }) },
        (err: Error) => log('video_retention_error', { error: err.message }))
    }),
  ]
  return {
    streams, store, ingest, api, putMedia, metrics,
    idle: () => retention,
    close: async () => {
      for (const cancel of timers) cancel()
      await ingest.settled()
      catalog.close()
    },
  }
}
