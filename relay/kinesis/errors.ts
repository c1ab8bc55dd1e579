/**
 * Errors of the Kinesis API, by AWS's `__type` names. Each carries the HTTP status AWS answers
 * with and the message in AWS's wording.
 */
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { PositionProblem } from '../reader.js'

export const KinesisErrorType = {
  ValidationException: 'ValidationException',
  SerializationException: 'SerializationException',
  InvalidArgumentException: 'InvalidArgumentException',
  ResourceNotFoundException: 'ResourceNotFoundException',
  ResourceInUseException: 'ResourceInUseException',
  LimitExceededException: 'LimitExceededException',
  ExpiredIteratorException: 'ExpiredIteratorException',
  ExpiredNextTokenException: 'ExpiredNextTokenException',
  ProvisionedThroughputExceededException: 'ProvisionedThroughputExceededException',
  UnknownOperationException: 'UnknownOperationException',
  /** Records sealed at rest that the relay's key cannot open (relay/encryption.ts). */
  KMSAccessDeniedException: 'KMSAccessDeniedException',
  AccessDeniedException: 'AccessDeniedException',
  MissingAuthenticationTokenException: 'MissingAuthenticationTokenException',
  UnrecognizedClientException: 'UnrecognizedClientException',
  InvalidSignatureException: 'InvalidSignatureException',
  IncompleteSignatureException: 'IncompleteSignatureException',
  InternalFailure: 'InternalFailure',
  /** The name SubscribeToShard's event stream models an internal failure under. */
  InternalFailureException: 'InternalFailureException',
  ServiceUnavailable: 'ServiceUnavailable',
} as const
export type KinesisErrorType = (typeof KinesisErrorType)[keyof typeof KinesisErrorType]

const STATUS: Partial<Record<KinesisErrorType, number>> = {
  MissingAuthenticationTokenException: 403,
  UnrecognizedClientException: 400,
  InvalidSignatureException: 400,
  IncompleteSignatureException: 400,
  AccessDeniedException: 400,
  InternalFailure: 500,
  InternalFailureException: 500,
  ServiceUnavailable: 503,
}

export class KinesisError extends Error {
  readonly type: KinesisErrorType
  readonly status: number
  constructor(type: KinesisErrorType, message: string) {
    super(message)
    this.type = type
    this.name = type
    this.status = STATUS[type] ?? 400
  }
  toJSON(): { __type: string; message: string } {
    return { __type: this.type, message: this.message }
  }
}

/**
 * AWS's wording for the messages that name a stream, shard or consumer of an account: the one place
 * the "under account" phrase is built.
 */
export class AwsWording {
  constructor(readonly account: string, readonly region: string) {}

  /** "Stream NAME under account ACCOUNT", the phrase most of these messages start with. */
  Stream(name: string): string {
    return `Stream ${name} under account ${this.account}`
  }

  /** The same within a sentence: "stream NAME under account ACCOUNT". */
  stream(name: string): string {
    return `stream ${name} under account ${this.account}`
  }

  streamNotFound(name: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `${this.Stream(name)} not found.`)
  }

  /** ListStreamConsumers with a StreamCreationTimestamp that is not the stream's. */
  streamCreatedAtNotFound(name: string, createdMs: number): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Stream ${name} created at ${createdMs} under account ${this.account} not found.`)
  }

  streamArnNotFound(arn: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Stream with ARN ${arn} not found.`)
  }

  notActive(name: string, status: string): KinesisError {
    return new KinesisError('ResourceInUseException', `${this.Stream(name)} not ACTIVE, instead in state ${status}`)
  }

  shardNotFound(shardId: string, stream: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Shard ${shardId} in ${this.stream(stream)} does not exist`)
  }

  consumerNotFound(consumer: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Consumer ${consumer} under account ${this.account} not found.`)
  }

  rateExceeded(shardId: string, stream: string): KinesisError {
    return new KinesisError('ProvisionedThroughputExceededException', `Rate exceeded for shard ${shardId} in ${this.stream(stream)}.`)
  }

  shardLimitExceeded(limit: number, current: number, extra: number): KinesisError {
    return new KinesisError('LimitExceededException',
      `This request would exceed the shard limit for the account ${this.account} in ${this.region}. Current shard count for the account: ${current}. Limit: ${limit}. Number of additional shards that would have resulted from this request: ${extra}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.`)
  }

  /** A StartingSequenceNumber that cannot start a read of this shard (GetShardIterator, SubscribeToShard). */
  badStartingSequence(text: string, action: string, shardId: string, stream: string, problem: PositionProblem): KinesisError {
    if (problem.kind === 'other-shard') {
      return new KinesisError('InvalidArgumentException', `Invalid StartingSequenceNumber. It encodes shardId-${String(problem.shardIndex).padStart(12, '0')}, while it was used in a call to a shard with ${shardId}`)
    }
    const why = problem.kind === 'other-stream' ? ' because it did not come from this stream' : ''
    return new KinesisError('InvalidArgumentException', `StartingSequenceNumber ${text} used in ${action} on shard ${shardId} in ${this.stream(stream)} is invalid${why}.`)
  }

  timestampInFuture(timestampMs: number, nowMs: number): KinesisError {
    return new KinesisError('InvalidArgumentException', `The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ${timestampMs}, currentTimestampInMillis: ${nowMs}`)
  }
}

/**
 * The one mapping from the relay's own errors to the API's. `response`: the answer to a request
 * (storage trouble is a 503 the SDKs retry); `event`: inside an event stream, where only the
 * modelled exceptions reach an SDK as themselves. Null: a bug, which the caller logs and answers
 * with InternalFailure.
 */
export function toKinesisError(err: unknown, where: 'response' | 'event'): KinesisError | null {
  if (err instanceof KinesisError) return err
  if (err instanceof StorageError) return new KinesisError(where === 'response' ? 'ServiceUnavailable' : 'InternalFailureException', err.message)
  if (err instanceof TributaryError && err.code === ErrorCode.STREAM_NOT_FOUND) return new KinesisError('ResourceNotFoundException', err.message)
  if (err instanceof TributaryError && err.code === ErrorCode.DECRYPT_FAILED) return new KinesisError('KMSAccessDeniedException', err.message)
  return where === 'event' ? new KinesisError('InternalFailureException', (err as Error)?.message ?? 'Internal service failure.') : null
}
