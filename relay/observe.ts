/** The relay's metrics, in one place, for /metrics; and its event log. */
import { Registry } from '../shared/metrics.js'

export type LogFn = (event: string, fields?: Record<string, unknown>) => void

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/**
 * The level of every event that is not `info`, in one place. `error`: the relay failed at something
 * it should do (a bug, a broken disk, data that cannot be delivered); `warn`: something outside the
 * relay went wrong and the relay coped (a device's bad batch or broken connection, a failed login, a
 * sink that refused and is retried); `debug`: routine events too frequent to show by default.
 */
const EVENT_LEVELS: Record<string, LogLevel> = {
  api_error: 'error',
  http_error: 'error',
  firehose_api_error: 'error',
  video_api_error: 'error',
  video_api_stream_error: 'error',
  video_hls_error: 'error',
  video_ingest_error: 'error',
  log_corruption: 'error',
  storage_failed: 'error',
  storage_resume_error: 'error',
  batch_not_stored: 'error',
  record_not_stored: 'error',
  snapshot_error: 'error',
  retention_error: 'error',
  video_retention_error: 'error',
  cluster_sync_error: 'error',
  mqtt_redis_error: 'error',
  delivery_stopped_on_error: 'error',
  delivery_stream_start_failed: 'error',
  delivery_backing_stream_delete_failed: 'error',
  delivery_records_expired: 'error',
  auth_failed: 'warn',
  batch_rejected: 'warn',
  record_rejected: 'warn',
  packet_too_large: 'warn',
  connection_refused: 'warn',
  connection_lost: 'warn',
  client_closed: 'warn',
  subscribe_refused: 'warn',
  publish_refused: 'warn',
  putmedia_error: 'warn',
  secret_file_mode: 'warn',
  cluster_lease_lost: 'warn',
  cluster_disconnect: 'warn',
  delivery_failure: 'warn',
  delivery_shard_error: 'warn',
  http_connections: 'warn',
  access_keys_reload_failed: 'warn',
  client_disconnected: 'debug',
  session_taken_over: 'debug',
  http_idle: 'debug',
}

/** The level an event is logged at. */
export function levelOf(event: string): LogLevel {
  return EVENT_LEVELS[event] ?? 'info'
}

/** JSON lines on stderr (or `write`), one per event at `minLevel` or above, each with its level. */
export function jsonLogger(minLevel: LogLevel = 'info', write: (line: string) => void = (line) => { process.stderr.write(line) }): LogFn {
  const least = LOG_LEVELS.indexOf(minLevel)
  return (event, fields = {}) => {
    const level = levelOf(event)
    if (LOG_LEVELS.indexOf(level) < least) return
    write(JSON.stringify({ time: new Date().toISOString(), ...fields, level, event }) + '\n')
  }
}

/**
 * Holds the lines one source (a device, an address) may log to `burst` per window, so that a device
 * reconnecting in a loop cannot flood the log. The first line after a quiet spell says how many were
 * held back (`suppressed`). Windows run on `now` (the relay's clock); sources are forgotten once
 * their window has passed, and at most `maxSources` are tracked (the oldest goes first).
 */
export class LogLimiter {
  private readonly sources = new Map<string, { windowStart: number; lines: number; suppressed: number }>()

  constructor(private readonly o: { now: () => number; windowMs: number; burst: number; maxSources?: number }) {}

  /** Logs through `log` unless `source` has used its lines for this window. */
  log(log: (event: string, fields: Record<string, unknown>) => void, source: string, event: string, fields: Record<string, unknown>): void {
    const now = this.o.now()
    const key = `${event}\u0000${source}`
    let s = this.sources.get(key)
    if (s && now - s.windowStart >= this.o.windowMs) {
      const suppressed = s.suppressed
      this.sources.delete(key)
      s = undefined
      if (suppressed > 0) fields = { ...fields, suppressed }
    }
    if (!s) {
      if (this.sources.size >= (this.o.maxSources ?? 10_000)) this.sweep(now)
      s = { windowStart: now, lines: 0, suppressed: 0 }
      this.sources.set(key, s)
    }
    if (s.lines < this.o.burst) {
      s.lines++
      log(event, fields)
    } else {
      s.suppressed++
    }
  }

  /** Sources tracked now. */
  size(): number {
    return this.sources.size
  }

  private sweep(now: number): void {
    for (const [key, s] of this.sources) if (now - s.windowStart >= this.o.windowMs) this.sources.delete(key)
    // Still full: the oldest go (a Map iterates in insertion order).
    for (const key of this.sources.keys()) {
      if (this.sources.size < (this.o.maxSources ?? 10_000)) break
      this.sources.delete(key)
    }
  }
}

export function relayMetrics() {
  const registry = new Registry()
  return {
    registry,
    recordsIn: registry.counter('tributary_records_in_total', 'Records stored, by stream and source (mqtt or api).', ['stream', 'source']),
    bytesIn: registry.counter('tributary_bytes_in_total', 'Data bytes stored, by stream and source.', ['stream', 'source']),
    recordsOut: registry.counter('tributary_records_out_total', 'Records served by GetRecords, by stream.', ['stream']),
    bytesOut: registry.counter('tributary_bytes_out_total', 'Data bytes served by GetRecords, by stream.', ['stream']),
    ingestLatency: registry.histogram('tributary_ingest_latency_seconds', 'From receiving a batch or PutRecord(s) to its records being durable.',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], ['source']),
    commitRecords: registry.histogram('tributary_group_commit_records', 'Records made durable by one group commit (one fsync per shard file).',
      [1, 10, 50, 100, 500, 1000, 5000, 10000, 50000]),
    commitSeconds: registry.histogram('tributary_group_commit_seconds', 'Time to write and fsync one group commit.',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1]),
    rejections: registry.counter('tributary_rejections_total', 'Records, batches or requests refused, by error code.', ['code']),
    corruptions: registry.counter('tributary_log_corruptions_total', 'Damaged regions found in shard logs (never served).'),
    apiRequests: registry.counter('tributary_api_requests_total', 'Kinesis API requests, by action and outcome.', ['action', 'outcome']),
    firehoseRequests: registry.counter('tributary_firehose_requests_total', 'Firehose API requests, by action and outcome.', ['action', 'outcome']),
  }
}
export type RelayMetrics = ReturnType<typeof relayMetrics>
