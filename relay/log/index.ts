/** The shard-log storage engine the relay runs on: the embedded segment-file store, sealed at rest when a cipher is given. */
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { EncryptedLogStore } from './encrypted.js'
import { FileLogStore, type FileLogOptions } from './filelog.js'
import type { LogStore, RecordCipher } from './types.js'

export type { CorruptionReport, LogStore, ShardLog, ReadResult, RecordCipher, BatchSlice } from './types.js'

export interface OpenLogOptions extends FileLogOptions {
  /** Encryption at rest for the streams that have it on. */
  cipher?: RecordCipher
}

/** Without a key nothing is sealed, and a sealed record found on disk is refused, never served as data. */
const noKey = (stream: string) => new TributaryError(ErrorCode.DECRYPT_FAILED, `a record of stream ${stream} is encrypted and the relay has no key configured`)
const NO_KEY: RecordCipher = {
  seals: () => false,
  seal: () => null,
  open: (stream) => { throw noKey(stream) },
  openRecord: (stream) => { throw noKey(stream) },
}

export function openLogStore(options: OpenLogOptions): LogStore {
  const { cipher, ...files } = options
  return sealedLogStore(new FileLogStore(files), cipher)
}

/** Any store (the cluster's, on JetStream) behind the same encryption at rest. */
export function sealedLogStore(store: LogStore, cipher?: RecordCipher): LogStore {
  return new EncryptedLogStore(store, cipher ?? NO_KEY)
}
