import { ErrorCode, RecordError } from './errors.js'

/** Kinesis Data Streams limits that Tributary mirrors (FIELD-NOTES.md, "Limits to mirror"). */
export const Limits = {
  maxRecordBytes: 1024 * 1024,
  maxPartitionKeyChars: 256,
  maxPutRecordsCount: 500,
  maxPutRecordsBytes: 5 * 1024 * 1024,
  maxGetRecordsCount: 10_000,
  maxGetRecordsBytes: 10 * 1024 * 1024,
  iteratorTtlMs: 300_000,
  minRetentionHours: 24,
  maxRetentionHours: 8760,
  defaultBatchRecords: 500,
  defaultBatchBytes: 1024 * 1024,
  maxShardsPerStream: 1000,
} as const

export const MAX_HASH_KEY = (1n << 128n) - 1n

/** Partition key rule: 1..256 Unicode characters (counted as UTF-16 code units, as AWS's validator does). */
export function partitionKeyProblem(key: string): string | null {
  if (key.length < 1) return 'partition key must be at least 1 character'
  if (key.length > Limits.maxPartitionKeyChars) return `partition key must be at most ${Limits.maxPartitionKeyChars} characters`
  return null
}

export function parseExplicitHashKey(text: string): bigint | null {
  if (!/^(0|[1-9]\d{0,38})$/.test(text)) return null
  const value = BigInt(text)
  return value <= MAX_HASH_KEY ? value : null
}

/** Validates one decoded record by Kinesis's rules; returns null when it is acceptable. */
export function recordProblem(
  index: number,
  partitionKey: string,
  dataLength: number,
  explicitHashKey: bigint | undefined,
  maxRecordBytes: number = Limits.maxRecordBytes,
): RecordError | null {
  const keyProblem = partitionKeyProblem(partitionKey)
  if (keyProblem) return new RecordError(ErrorCode.PARTITION_KEY_INVALID, keyProblem, index)
  if (explicitHashKey !== undefined && (explicitHashKey < 0n || explicitHashKey > MAX_HASH_KEY)) {
    return new RecordError(ErrorCode.HASH_KEY_INVALID, 'explicit hash key is outside [0, 2^128-1]', index)
  }
  // Kinesis counts the partition key's bytes against the 1 MiB record limit.
  const size = dataLength + Buffer.byteLength(partitionKey)
  if (size > maxRecordBytes) {
    return new RecordError(ErrorCode.RECORD_TOO_LARGE, `record is ${size} bytes (data plus partition key), over the limit of ${maxRecordBytes}`, index)
  }
  return null
}
