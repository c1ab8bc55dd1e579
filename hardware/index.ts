export { codec, loadCodec, loadAddon, u128BEToBigint, readLogOffset, readLogArrival, readLogLength } from './native/index.js'
export type { Addon, Codec, DecodedBatch, DecodedRecord, LogScan } from './native/index.js'
