export { codec, loadCodec, loadAddon, u128BEToBigint, readLogOffset, readLogArrival, readLogLength, logBatchSize, batchIdentity, BATCH_STRIDE, KEY_VALID_UTF8 } from './native/index.js'
export type { Addon, BatchScan, Codec, DecodedBatch, DecodedRecord, LogScan } from './native/index.js'
export { SerialLink, systemBinding, openError } from './serial/index.js'
export type { SerialLinkOptions, LinkState, LinkStats, LossReason, SerialBinding, SerialPortBinding, SerialOpenOptions } from './serial/index.js'
