/** The shard-log storage engine the relay runs on: the embedded segment-file store. */
import { FileLogStore, type FileLogOptions } from './filelog.js'
import type { LogStore } from './types.js'

export type { CorruptionReport, LogStore, ShardLog, ReadResult, RecordCipher, BatchSlice } from './types.js'

export function openLogStore(options: FileLogOptions): LogStore {
  return new FileLogStore(options)
}
