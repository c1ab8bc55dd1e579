/** The relay's metrics, in one place, for /metrics; and its event log. */
import { Registry } from '../shared/metrics.js'

export type LogFn = (event: string, fields?: Record<string, unknown>) => void

/** JSON lines on stderr, one per event. */
export const jsonLog: LogFn = (event, fields = {}) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n')
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
