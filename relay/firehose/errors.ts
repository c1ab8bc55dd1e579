/**
 * Errors of the Firehose API, by AWS's `__type` names, and the one place their wording lives:
 * `FirehoseWording` for the messages that name a delivery stream of an account, plain builders for
 * the rest, and `toFirehoseError`, the one mapping from the relay's own errors (and from the
 * Kinesis layer's validation, protocol and SigV4 errors, which Firehose shares).
 */
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import { FormatError, FormatErrorCode } from '../delivery/format/errors.js'
import { DeliveryConfigError } from '../delivery/types.js'
import { KinesisError } from '../kinesis/errors.js'

export const FirehoseErrorType = {
  InvalidArgumentException: 'InvalidArgumentException',
  ResourceNotFoundException: 'ResourceNotFoundException',
  ResourceInUseException: 'ResourceInUseException',
  LimitExceededException: 'LimitExceededException',
  ServiceUnavailableException: 'ServiceUnavailableException',
  /** Constraint violations of the request's shape, as every AWS JSON service words them (validate.ts). */
  ValidationException: 'ValidationException',
  SerializationException: 'SerializationException',
  UnknownOperationException: 'UnknownOperationException',
  InternalFailure: 'InternalFailure',
} as const
export type FirehoseErrorType = (typeof FirehoseErrorType)[keyof typeof FirehoseErrorType]

const STATUS: Partial<Record<string, number>> = { InternalFailure: 500, ServiceUnavailableException: 503 }

export class FirehoseError extends Error {
  readonly type: string
  readonly status: number
  constructor(type: FirehoseErrorType, message: string, status?: number) {
    super(message)
    this.type = type
    this.name = type
    this.status = status ?? STATUS[type] ?? 400
  }
  toJSON(): { __type: string; message: string } {
    return { __type: this.type, message: this.message }
  }
}

export const invalidArgument = (message: string) => new FirehoseError('InvalidArgumentException', message)

/** AWS's wording for the messages that name a delivery stream of an account. */
export class FirehoseWording {
  constructor(readonly account: string, readonly region: string) {}

  notFound(name: string): FirehoseError {
    return new FirehoseError('ResourceNotFoundException', `Firehose ${name} under account ${this.account} not found.`)
  }

  exists(name: string): FirehoseError {
    return new FirehoseError('ResourceInUseException', `Firehose ${name} under accountId ${this.account} already exists.`)
  }

  notDirectPut(name: string): FirehoseError {
    return invalidArgument(`This operation is not permitted on KinesisStreamAsSource type DeliveryStream ${name} under account ${this.account}.`)
  }

  notActive(name: string, status: string): FirehoseError {
    return new FirehoseError('ResourceInUseException', `Firehose ${name} under account ${this.account} is not ACTIVE, instead in state ${status}.`)
  }

  /** PutRecord(Batch) to a delivery stream being created or deleted (PutRecord models no ResourceInUseException). */
  putNotActive(name: string, status: string): FirehoseError {
    return new FirehoseError('ResourceNotFoundException', `Firehose ${name} under account ${this.account} is not ACTIVE, instead in state ${status}.`)
  }

  /** Delivery streams declared in the relay's config are the config's to change. */
  declared(name: string): FirehoseError {
    return new FirehoseError('ResourceInUseException', `Firehose ${name} under account ${this.account} is declared in the relay's config file; change it there.`)
  }

  tooManyTags(name: string, max: number): FirehoseError {
    return new FirehoseError('LimitExceededException', `Firehose ${name} under account ${this.account} cannot have more than ${max} tags.`)
  }
}

// The endpoint.
export const unknownOperation = (action: string) => new FirehoseError('UnknownOperationException', `Operation ${action} is not supported by Tributary's Firehose API.`)
export const missingTarget = () => new FirehoseError('UnknownOperationException', 'Missing or malformed X-Amz-Target header.')
export const internalFailure = () => new FirehoseError('InternalFailure', 'Internal service failure.')

// PutRecord(Batch).
export const batchTooLarge = (bytes: number, max: number) => invalidArgument(`Records size ${bytes} bytes exceeds the ${max} bytes limit of a PutRecordBatch request.`)

/**
 * The one mapping from the relay's errors to the API's. Null: a bug, which the caller logs and
 * answers with InternalFailure.
 */
export function toFirehoseError(err: unknown): FirehoseError | null {
  if (err instanceof FirehoseError) return err
  // The shared lower layers (validate.ts, protocol.ts, sigv4.ts) speak the common AWS error types.
  if (err instanceof KinesisError) return new FirehoseError(err.type as FirehoseErrorType, err.message, err.status)
  if (err instanceof DeliveryConfigError) return invalidArgument(err.message)
  // The format layer refuses a bad prefix or jq query of a create: the caller's to fix, not to retry.
  // Only jq not running is the relay's trouble, and worth a retry.
  if (err instanceof FormatError) {
    return err.code === FormatErrorCode.JQ_UNAVAILABLE ? new FirehoseError('ServiceUnavailableException', err.message) : invalidArgument(err.message)
  }
  if (err instanceof StorageError) return new FirehoseError('ServiceUnavailableException', err.message)
  if (err instanceof TributaryError) {
    switch (err.code) {
      case ErrorCode.NOT_FOUND:
      case ErrorCode.STREAM_NOT_FOUND: return new FirehoseError('ResourceNotFoundException', err.message)
      case ErrorCode.CONFLICT: return new FirehoseError('ResourceInUseException', err.message)
      case ErrorCode.LIMIT_EXCEEDED: return new FirehoseError('LimitExceededException', err.message)
      case ErrorCode.CONFIG_INVALID:
      case ErrorCode.REQUEST_INVALID:
      case ErrorCode.RECORD_TOO_LARGE:
      case ErrorCode.BATCH_TOO_LARGE: return invalidArgument(err.message)
      case ErrorCode.STORAGE_FULL:
      case ErrorCode.STORAGE_FAILED: return new FirehoseError('ServiceUnavailableException', err.message)
      default: return null
    }
  }
  return null
}
