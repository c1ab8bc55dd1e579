/**
 * The data directory's cap (maxDataBytes) counts shard logs and video together. Record ingest reads
 * the logs' byte total to apply it; this view of the log store answers that total with the video
 * store's bytes added, and forwards everything else untouched.
 */
import type { LogStore } from '../log/types.js'

export function countingVideo(logs: LogStore, videoBytes: () => number): LogStore {
  return {
    open: (stream, shard) => logs.open(stream, shard),
    get: (stream, shard) => logs.get(stream, shard),
    drop: (stream, shard) => logs.drop(stream, shard),
    commit: () => logs.commit(),
    enforceRetention: (retention, now) => logs.enforceRetention(retention, now),
    totalBytes: () => logs.totalBytes() + videoBytes(),
    corruptions: () => logs.corruptions(),
    close: () => logs.close(),
    get failed() { return logs.failed },
    checkWritable: () => logs.checkWritable(),
    onAppend: (listener) => logs.onAppend(listener),
  }
}
