/** A delivery stream's processing pieces: object encoding, prefix templates, jq partitioning. */
export { encodeObject, encodeObjectAsync, checkFormat } from './encode.js'
export type { EncodedObject } from './encode.js'
export type { FailedRecord } from './types.js'
export { encodeCsv, csvField } from './csv.js'
export { encodeParquet } from './parquet.js'
export { compressSync, compressAsync, COMPRESSED } from './compress.js'
export { snappyFrame, maskedCrc32c, STREAM_IDENTIFIER, MAX_CHUNK_INPUT } from './snappy.js'
export {
  resolvePrefix, checkPrefix, parsePrefix, prefixUses, defaultTimePrefix, objectPrefix, objectKey, batchRandomString, formatTimestamp,
} from './prefix.js'
export type { PrefixValues, PrefixPart, DatePart } from './prefix.js'
export { JqPartitioner, JqTimeoutError, jqProgram, parseJqAnswer } from './jq.js'
export type { JqPartitionerOptions, PartitionKeys, PartitionAnswer, SpawnJq } from './jq.js'
export { FormatError, FormatErrorCode, RecordErrorCode } from './errors.js'
