export { codec, loadCodec, loadAddon, u128BEToBigint, readLogOffset, readLogArrival, readLogLength } from './native/index.js'
export type { Addon, Codec, DecodedBatch, DecodedRecord, LogScan } from './native/index.js'
export { SerialLink, systemBinding, openError } from './serial/index.js'
export type { SerialLinkOptions, LinkState, LinkStats, LossReason, SerialBinding, SerialPortBinding, SerialOpenOptions } from './serial/index.js'
