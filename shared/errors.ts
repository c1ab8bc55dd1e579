/**
 * Every error Tributary raises on purpose is one of these classes, with a stable string `code`
 * that callers and tests can act on. Codes never change meaning once published.
 */

export const ErrorCode = {
  // batch frame (wire)
  FRAME_TRUNCATED: 'FRAME_TRUNCATED',
  FRAME_BAD_MAGIC: 'FRAME_BAD_MAGIC',
  FRAME_BAD_VERSION: 'FRAME_BAD_VERSION',
  FRAME_BAD_CHECKSUM: 'FRAME_BAD_CHECKSUM',
  FRAME_BAD_FIELD: 'FRAME_BAD_FIELD',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  // records, by Kinesis's rules
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  PARTITION_KEY_INVALID: 'PARTITION_KEY_INVALID',
  HASH_KEY_INVALID: 'HASH_KEY_INVALID',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  STREAM_NOT_FOUND: 'STREAM_NOT_FOUND',
  STREAM_NOT_ACTIVE: 'STREAM_NOT_ACTIVE',
  STREAM_NAME_INVALID: 'STREAM_NAME_INVALID',
  // storage
  STORAGE_FULL: 'STORAGE_FULL',
  STORAGE_FAILED: 'STORAGE_FAILED',
  LOG_CORRUPT: 'LOG_CORRUPT',
  OFFSET_OUT_OF_RANGE: 'OFFSET_OUT_OF_RANGE',
  /** A cluster's shard log was written by another writer (or this one's end was stale): the records were refused, the end read again. */
  LOG_FENCED: 'LOG_FENCED',
  /** A device record (device, epoch, batch, index) is already in the cluster's shard log, at another offset. */
  LOG_DUPLICATE: 'LOG_DUPLICATE',
  /** The cluster's log (NATS JetStream) did not acknowledge in time or cannot be reached: the records may or may not be stored. */
  LOG_UNAVAILABLE: 'LOG_UNAVAILABLE',
  /** A record sealed at rest could not be opened (missing or different key, or tampered data). */
  DECRYPT_FAILED: 'DECRYPT_FAILED',
  // configuration and credentials
  CONFIG_INVALID: 'CONFIG_INVALID',
  AUTH_FAILED: 'AUTH_FAILED',
  NOT_AUTHORIZED: 'NOT_AUTHORIZED',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  /** A limit of the relay's (its shard limit, a device's auto-created streams) would be passed. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** A request to one of the relay's own routes (not the Kinesis API) that is malformed. */
  REQUEST_INVALID: 'REQUEST_INVALID',
  // serial ports
  SERIAL_ABSENT: 'SERIAL_ABSENT',
  SERIAL_BUSY: 'SERIAL_BUSY',
  SERIAL_DENIED: 'SERIAL_DENIED',
  SERIAL_FAILED: 'SERIAL_FAILED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export class TributaryError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A batch frame that cannot be decoded at all. */
export class FrameError extends TributaryError {}

/** One record that breaks Kinesis's rules; `index` is its place in the batch. */
export class RecordError extends TributaryError {
  readonly index: number
  constructor(code: ErrorCode, message: string, index: number) {
    super(code, message)
    this.index = index
  }
}

/** The relay cannot store right now (disk cap, failing disk); the producer keeps its data and retries. */
export class StorageError extends TributaryError {}

/**
 * The agent's outbox refused records: their stream is at its cap (reject-new), or the whole file is
 * at its cap and nothing more can be dropped. The producer keeps its data; `stream` names the stream.
 */
export class OutboxFullError extends TributaryError {
  readonly stream: string
  constructor(stream: string, message: string) {
    super(ErrorCode.STORAGE_FULL, message)
    this.stream = stream
  }
}

/** A stored record failed its checksum or the log structure is damaged. */
export class CorruptionError extends TributaryError {
  readonly file: string
  readonly position: number
  constructor(message: string, file: string, position: number) {
    super(ErrorCode.LOG_CORRUPT, message)
    this.file = file
    this.position = position
  }
}

/** A configuration value is wrong; `field` is its dotted path, e.g. `relay.mqttPort`. */
export class ConfigError extends TributaryError {
  readonly field: string
  constructor(field: string, message: string) {
    super(ErrorCode.CONFIG_INVALID, `${field}: ${message}`)
    this.field = field
  }
}

export class AuthError extends TributaryError {}

/** A serial port could not be opened or was lost; `path` is the port as configured. */
export class SerialError extends TributaryError {
  readonly path: string
  constructor(code: ErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, `${path}: ${message}`, options)
    this.path = path
  }
}
