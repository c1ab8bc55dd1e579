/** The shard-log storage engine the relay runs on: the embedded segment-file store, sealed at rest when a cipher is given. */
import { EncryptedLogStore } from './encrypted.js'
import { FileLogStore, type FileLogOptions } from './filelog.js'
import type { LogStore, RecordCipher } from './types.js'

export type { CorruptionReport, LogStore, ShardLog, ReadResult, RecordCipher, BatchSlice } from './types.js'

export interface OpenLogOptions extends FileLogOptions {
  /** Encryption at rest for the streams that have it on. */
  cipher?: RecordCipher
}

export function openLogStore(options: OpenLogOptions): LogStore {
  const { cipher, ...files } = options
  const store = new FileLogStore(files)
  return cipher ? new EncryptedLogStore(store, cipher) : store
}
