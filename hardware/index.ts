export { codec, loadCodec, u128BEToBigint, readLogOffset, readLogArrival, readLogLength } from './native/index.js'
export type { Codec, DecodedBatch, DecodedRecord, LogScan } from './native/index.js'
