/** The video part of the relay's /metrics, registered on the relay's registry. */
import type { Registry } from '../../shared/metrics.js'

export function videoMetrics(registry: Registry) {
  return {
    fragments: registry.counter('tributary_video_fragments_persisted_total', 'Video fragments and init segments stored, by stream and source (mqtt or putmedia).', ['stream', 'source']),
    bytes: registry.counter('tributary_video_bytes_persisted_total', 'Bytes of video fragments and init segments stored, by stream and source.', ['stream', 'source']),
    duplicates: registry.counter('tributary_video_duplicates_total', 'Fragments sent again and answered with the number they already had (nothing stored twice).', ['source']),
    errors: registry.counter('tributary_video_errors_total', 'Video fragments or chunks answered ERROR, by code.', ['code']),
    expired: registry.counter('tributary_video_pending_expired_total', 'Incomplete fragments dropped because no chunk came for the timeout.'),
    api: registry.counter('tributary_video_api_requests_total', 'Kinesis Video API requests, by action and outcome.', ['action', 'outcome']),
    imageCache: registry.counter('tributary_video_image_cache_total', 'GetImages: cache lookups of decoded key frames (kind frame) and encoded images (kind image), by outcome (hit or miss); ffmpeg decoding processes (kind ffmpeg), by outcome (ok or failed).', ['kind', 'outcome']),
  }
}
export type VideoMetrics = ReturnType<typeof videoMetrics>

/** Gauges read when /metrics is rendered. */
export function videoGauges(registry: Registry, read: { held: () => { fragments: number; bytes: number }; storedBytes: () => number; streams: () => number }): void {
  registry.gauge('tributary_video_pending_fragments', 'Incomplete video fragments held in memory (chunks still to come).', [], () => read.held().fragments)
  registry.gauge('tributary_video_pending_bytes', 'Bytes reserved for incomplete video fragments.', [], () => read.held().bytes)
  registry.gauge('tributary_video_storage_bytes', 'Bytes of stored video fragments and init segments.', [], read.storedBytes)
  registry.gauge('tributary_video_streams', 'Video streams on this relay.', [], read.streams)
}
