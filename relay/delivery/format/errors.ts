/** Failures of the format layer that a caller can act on, each with a stable `code`. */
export const FormatErrorCode = {
  /** A prefix template has an expression Firehose does not know, or a malformed one. */
  PREFIX_INVALID: 'PREFIX_INVALID',
  /** A prefix names a partition key the record does not have. */
  PARTITION_KEY_MISSING: 'PARTITION_KEY_MISSING',
  /** A jq expression of dynamic partitioning does not compile (or uses what would break the stream). */
  JQ_BAD_EXPRESSION: 'JQ_BAD_EXPRESSION',
  /** jq cannot be started, or died while answering. */
  JQ_UNAVAILABLE: 'JQ_UNAVAILABLE',
} as const
export type FormatErrorCode = (typeof FormatErrorCode)[keyof typeof FormatErrorCode]

export class FormatError extends Error {
  readonly code: FormatErrorCode
  constructor(code: FormatErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FormatError'
    this.code = code
  }
}

/** Firehose's error codes for records that fail processing (they go to the error prefix). */
export const RecordErrorCode = {
  /** Not JSON, not a JSON object, or a value that does not fit its column. */
  malformedData: 'DataFormatConversion.MalformedData',
  /** The configured schema cannot describe the data. */
  invalidSchema: 'DataFormatConversion.InvalidSchema',
  /** A partition key could not be extracted from the record. */
  metadataExtractionFailed: 'DynamicPartitioning.MetadataExtractionFailed',
} as const
