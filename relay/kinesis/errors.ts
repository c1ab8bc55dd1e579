/**
 * Errors of the Kinesis API, by AWS's `__type` names, and the one place their wording lives. Each
 * error carries the HTTP status AWS answers with and the message in AWS's wording: `AwsWording` for
 * the messages that name an account's stream, shard or consumer, plain builders (grouped by action
 * family) for the rest, and `toKinesisError`, the one mapping from the relay's own errors.
 */
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { PositionProblem } from '../reader.js'
import { ShardLimitError } from '../streams.js'

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

/** AWS's statuses where not 400. An unsigned request's MissingAuthenticationTokenException is 400 in JSON and CBOR (403 only in the XML of a wrong method: frontdoor.ts). */
const STATUS: Partial<Record<KinesisErrorType, number>> = {
  UnrecognizedClientException: 400,
  InvalidSignatureException: 400,
  IncompleteSignatureException: 400,
  AccessDeniedException: 400,
  InternalFailure: 500,
  InternalFailureException: 500,
  ServiceUnavailable: 503,
}

/**
 * One refusal of the API. An empty message is left out of the body, as AWS leaves it out of the
 * front door's refusals ({"__type":"UnknownOperationException"}).
 */
export class KinesisError extends Error {
  readonly type: KinesisErrorType
  readonly status: number
  constructor(type: KinesisErrorType, message = '') {
    super(message)
    this.type = type
    this.name = type
    this.status = STATUS[type] ?? 400
  }
  /** The error body: AWS spells the member `Message` in a SerializationException and `message` in every other. */
  toJSON(): Record<string, string> {
    if (!this.message) return { __type: this.type }
    return { __type: this.type, [this.type === 'SerializationException' ? 'Message' : 'message']: this.message }
  }
}

const invalid = (message: string) => new KinesisError('InvalidArgumentException', message)

/** The two tag changes, as the "%" refusal names them ("Failed to add tags to …"). */
export type TagChange = 'add' | 'remove'
const TAG_VERB: Record<TagChange, string> = { add: 'add tags to', remove: 'remove tags from' }

/**
 * AWS's wording for the messages that name a stream, shard or consumer of an account: the one place
 * the "under account" phrase is built.
 */
export class AwsWording {
  constructor(readonly account: string, readonly region: string) {}

  /** "Stream NAME under account ACCOUNT", the phrase most of these messages start with. */
  private Stream(name: string): string {
    return `Stream ${name} under account ${this.account}`
  }

  /** The same within a sentence: "stream NAME under account ACCOUNT". */
  private stream(name: string): string {
    return `stream ${name} under account ${this.account}`
  }

  // Streams, shards and consumers that a request names.

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

  // Reads (GetShardIterator, SubscribeToShard).

  /** A StartingSequenceNumber that cannot start a read of this shard (GetShardIterator, SubscribeToShard). */
  badStartingSequence(text: string, action: string, shardId: string, stream: string, problem: PositionProblem): KinesisError {
    if (problem.kind === 'other-shard') {
      return invalid(`Invalid StartingSequenceNumber. It encodes shardId-${String(problem.shardIndex).padStart(12, '0')}, while it was used in a call to a shard with ${shardId}`)
    }
    const why = problem.kind === 'other-stream' ? ' because it did not come from this stream' : ''
    return invalid(`StartingSequenceNumber ${text} used in ${action} on shard ${shardId} in ${this.stream(stream)} is invalid${why}.`)
  }

  timestampInFuture(timestampMs: number, nowMs: number): KinesisError {
    return invalid(`The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ${timestampMs}, currentTimestampInMillis: ${nowMs}`)
  }

  // Streams: CreateStream, DeleteStream, UpdateStreamMode.

  streamExists(name: string): KinesisError {
    return new KinesisError('ResourceInUseException', `${this.Stream(name)} already exists.`)
  }

  /** DeleteStream without EnforceConsumerDeletion on a stream with registered consumers. */
  streamHasConsumers(name: string): KinesisError {
    return new KinesisError('ResourceInUseException',
      `DeleteStream can't delete ${this.account}:${name} because there are consumers associated with this data stream. To delete ${name} anyway, set the EnforceConsumerDeletion parameter to true to force the deletion of all the consumers that are associated with it.`)
  }

  alreadyInMode(name: string, mode: string): KinesisError {
    return invalid(`${this.Stream(name)} is already in ${mode} mode.`)
  }

  // Consumers.

  /** A ConsumerName that the stream named by StreamARN has no consumer of. */
  consumerOfStreamNotFound(consumer: string, stream: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Consumer ${consumer} under ${this.stream(stream)} not found.`)
  }

  consumerExists(consumer: string, stream: string): KinesisError {
    return new KinesisError('ResourceInUseException', `Consumer ${consumer} under ${this.stream(stream)} already exists.`)
  }

  consumerLimitExceeded(stream: string, max: number): KinesisError {
    return new KinesisError('LimitExceededException', `${this.Stream(stream)} already has the maximum of ${max} registered consumers.`)
  }

  // Encryption.

  /** StopStreamEncryption with a KeyId other than the one the stream is encrypted with. */
  keyIdMismatch(keyId: string, currentKeyId: string | null, stream: string): KinesisError {
    return invalid(`KeyId ${keyId} does not match the key ${currentKeyId} that ${this.stream(stream)} is encrypted with.`)
  }

  // Resharding: SplitShard, MergeShards, UpdateShardCount.

  onDemandNotReshardable(stream: string): KinesisError {
    return new KinesisError('ValidationException', `Request is invalid. ${this.Stream(stream)} is in On-Demand mode.`)
  }

  /**
   * "Could not find shard …": resharding's wording for a shard the stream does not have (reads say
   * shardNotFound), and every action's for an id that names no shard at all (shardid.ts), which
   * is then quoted as given.
   */
  couldNotFindShard(shardId: string, stream: string): KinesisError {
    return new KinesisError('ResourceNotFoundException', `Could not find shard ${shardId} in ${this.stream(stream)}.`)
  }

  shardAlreadyMergedOrSplit(shardId: string, stream: string): KinesisError {
    return invalid(`Shard ${shardId} in ${this.stream(stream)} has already been merged or split, and thus is not eligible for merging or splitting.`)
  }

  /** A reshard of a stream that another change holds. */
  streamBeingChanged(stream: string): KinesisError {
    return new KinesisError('ResourceInUseException', `${this.Stream(stream)} is being changed by another request.`)
  }

  splitKeyOutOfRange(key: string, shardId: string, hashStart: string, hashEnd: string, stream: string): KinesisError {
    return invalid(`NewStartingHashKey ${key} used in SplitShard() on shard ${shardId} in ${this.stream(stream)} is not both greater than one plus the shard's StartingHashKey ${hashStart} and less than the shard's EndingHashKey ${hashEnd}.`)
  }

  notAdjacent(a: string, b: string, stream: string): KinesisError {
    return invalid(`Shards ${a} and ${b} in ${this.stream(stream)} are not an adjacent pair of shards eligible for merging`)
  }

  private updateShardCountFailed(stream: string, why: string, current: number, target: number): KinesisError {
    return new KinesisError('LimitExceededException', `UpdateShardCount failed for ${this.stream(stream)}. ${why} Current open shard count: ${current}. Target shard count: ${target}.`)
  }

  scaleUpBeyondDouble(stream: string, current: number, target: number): KinesisError {
    return this.updateShardCountFailed(stream, 'Cannot scale up to more than double the current shard count.', current, target)
  }

  scaleDownBelowHalf(stream: string, current: number, target: number): KinesisError {
    return this.updateShardCountFailed(stream, 'Cannot scale down below half the current shard count.', current, target)
  }

  scaleBeyondStreamShardLimit(stream: string, current: number, target: number, max: number): KinesisError {
    return this.updateShardCountFailed(stream, `Cannot scale up to more than ${max} shards in a stream.`, current, target)
  }

  scalingsPerDayExceeded(stream: string, current: number, target: number, max: number): KinesisError {
    return this.updateShardCountFailed(stream, `Cannot scale a stream more than ${max} times in a rolling 24-hour period.`, current, target)
  }

  // Tags.

  /** What a stream tag change was trying to do, for `illegalTagCharacters`. */
  tagChangeOnStream(change: TagChange, stream: string): string {
    return `${TAG_VERB[change]} ${this.stream(stream)}`
  }

  tagsPerStreamExceeded(stream: string, max: number): KinesisError {
    return invalid(`Failed to add tags to ${this.stream(stream)} because a given stream cannot have more than ${max} tags associated with it.`)
  }
}

// The messages that name no account, by action family. Where two actions word the same refusal
// differently, both wordings stand side by side.

// The endpoint (api.ts, frontdoor.ts): AWS names the problem by type alone.
export const unknownOperation = () => new KinesisError('UnknownOperationException')
/** A body that is empty, is not JSON (or CBOR), or is not a structure where the request belongs. */
export const unreadableBody = () => new KinesisError('SerializationException')
export const internalFailure = () => new KinesisError('InternalFailure', 'Internal service failure.')

// The stream a request names (context.ts).
export const streamNameArnMismatch = (name: string, arn: string) => invalid(`StreamName ${name} and StreamARN ${arn} do not refer to the same stream.`)
export const streamNameOrArnMissing = () => invalid('Either StreamName or StreamARN should be provided.')

// Paging tokens (tokens.ts, ListStreamConsumers).
export const invalidNextToken = () => invalid('Invalid NextToken.')
export const nextTokenExpired = (action: string) => new KinesisError('ExpiredNextTokenException', `The timestamp of the ${action} NextToken is expired.`)

// Shard iterators (iterator.ts).
export const invalidShardIterator = () => invalid('Invalid ShardIterator.')

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** An instant as java.util.Date#toString prints it in UTC ("Sun Mar 01 12:00:00 UTC 2026"), as AWS's messages do. */
function javaDate(ms: number): string {
  const d = new Date(ms)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`
}

export const iteratorExpired = (createdMs: number, nowMs: number, ttlMs: number) => new KinesisError('ExpiredIteratorException',
  `Iterator expired. The iterator was created at time ${javaDate(createdMs)} while right now it is ${javaDate(nowMs)} which is further in the future than the tolerated delay of ${ttlMs} milliseconds.`)

// Where a read starts: GetShardIterator's and SubscribeToShard's wordings of the same two refusals.
const mustEitherSequence = (type: string, what: string) => invalid(
  `Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified ${type} and ${what}.`)
export const iteratorTypeNeedsSequence = (type: string) => mustEitherSequence(type, 'no StartingSequenceNumber')
export const iteratorTypeForbidsSequence = (type: string) => mustEitherSequence(type, 'also a StartingSequenceNumber')
export const positionTypeNeedsSequence = (type: string) => invalid(`StartingPosition of type ${type} requires a SequenceNumber.`)
export const positionTypeForbidsSequence = (type: string) => invalid(`StartingPosition of type ${type} must not have a SequenceNumber.`)
export const atTimestampWithoutTimestamp = () => invalid('Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.')

// SubscribeToShard.
export const consumerNotActive = (arn: string, status: string) => new KinesisError('ResourceInUseException', `Consumer ${arn} is not in ACTIVE state (it is ${status}).`)
export const subscriptionBusy = (arn: string, shardId: string) => new KinesisError('ResourceInUseException', `Another active subscription exists for this consumer: ${arn} on shard ${shardId}.`)
export const subscriptionTakenOver = (arn: string, shardId: string) => new KinesisError('ResourceInUseException', `A newer subscription for consumer ${arn} on shard ${shardId} took over.`)
export const consumerDeregistered = (arn: string) => new KinesisError('ResourceNotFoundException', `Consumer ${arn} was deregistered.`)

// Consumers.
export const consumerArnNotOfStream = (consumerArn: string, streamArn: string) => invalid(`ConsumerARN ${consumerArn} does not belong to stream ${streamArn}.`)
export const consumerNameArnMismatch = (name: string, arn: string) => invalid(`ConsumerName ${name} and ConsumerARN ${arn} do not refer to the same consumer.`)
export const consumerRefMissing = () => invalid('Either ConsumerARN or both ConsumerName and StreamARN must be provided.')

// Streams and ListShards.
export const shardCountWithOnDemand = () => new KinesisError('ValidationException', 'ShardCount must not be specified for streams in ON_DEMAND mode.')
export const nextTokenWith = (member: 'StreamName' | 'ExclusiveStartShardId' | 'StreamCreationTimestamp') => invalid(`NextToken and ${member} cannot be provided together.`)
export const nextTokenOrStreamNameMissing = () => invalid('Either NextToken or StreamName should be provided.')
export const filterNeedsTimestamp = (type: string) => invalid(`Timestamp must be provided for ShardFilter of type ${type}.`)
export const filterForbidsTimestamp = () => invalid('Timestamp can only be provided for ShardFilter of type AT_TIMESTAMP or FROM_TIMESTAMP.')
export const filterNeedsShardId = () => invalid('ShardId must be provided for ShardFilter of type AFTER_SHARD_ID.')
export const filterForbidsShardId = () => invalid('ShardId can only be provided for ShardFilter of type AFTER_SHARD_ID.')

// PutRecord(s).
export const hashKeyOutOfRange = (text: string) => invalid(`Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${text}`)
export const recordsTooLarge = () => invalid('Records size exceeds 5 MB limit')

// Retention.
export const retentionTooShort = (hours: number, min: number) => invalid(`Minimum allowed retention period is ${min} hours. Requested retention period (${hours} hours) is too short.`)
export const retentionTooLong = (hours: number, max: number) => invalid(`Maximum allowed retention period is ${max} hours. Requested retention period (${hours} hours) is too long.`)
export const retentionBelowCurrent = (hours: number, stream: string, current: number) => invalid(
  `Requested retention period (${hours} hours) for stream ${stream} can not be shorter than existing retention period (${current} hours). Use DecreaseRetentionPeriod API.`)
export const retentionAboveCurrent = (hours: number, stream: string, current: number) => invalid(
  `Requested retention period (${hours} hours) for stream ${stream} can not be longer than existing retention period (${current} hours). Use IncreaseRetentionPeriod API.`)

// Encryption.
export const invalidKeyId = (keyId: string) => invalid(
  `Invalid KeyId ${keyId}. Specify a KMS key by its key ID, key ARN, alias name (alias/...) or alias ARN, for example alias/aws/kinesis.`)
export const encryptionTypeNotKms = (type: string, action: string) => invalid(`Encryption type ${type} is not valid for ${action}. The only supported encryption type is KMS.`)

// Tags. `what` is what the change was trying to do: AwsWording.tagChangeOnStream or TagAttempt.
export const TagAttempt = {
  onConsumer: (change: TagChange, arn: string) => `${TAG_VERB[change]} consumer ${arn}`,
  registerConsumer: (name: string) => `register consumer ${name} with tags`,
} as const
/** AWS refuses `%` with its own wording. */
export const illegalTagCharacters = (what: string) => invalid(
  `Failed to ${what} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.`)
export const invalidTagCharacters = () => invalid('Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.')
export const tagsPerConsumerExceeded = (arn: string, max: number) => invalid(
  `Failed to add tags to consumer ${arn} because a given resource cannot have more than ${max} tags associated with it.`)
/** Tributary's own tag (relay/throughput.ts), in the same voice. */
export const throughputTagValue = (tag: string, value: string) => invalid(`Tag ${tag} must be "on" or "off", not ${JSON.stringify(value)}.`)

// Resource policies.
export const policyNotJson = (detail: string) => invalid(`Policy is not a valid JSON document: ${detail}`)
export const policyWithoutStatement = () => invalid('Policy must be a JSON object with a Statement.')
export const policyNotFound = (arn: string) => new KinesisError('ResourceNotFoundException', `No resource policy found for resource ARN ${arn}.`)

/**
 * The one mapping from the relay's own errors to the API's. `response`: the answer to a request
 * (storage trouble is a 503 the SDKs retry); `event`: inside an event stream, where only the
 * modelled exceptions reach an SDK as themselves. Null: a bug, which the caller logs and answers
 * with InternalFailure.
 */
export function toKinesisError(err: unknown, where: 'response' | 'event'): KinesisError | null {
  if (err instanceof KinesisError) return err
  if (err instanceof StorageError) return new KinesisError(where === 'response' ? 'ServiceUnavailable' : 'InternalFailureException', err.message)
  // The domain's shard limit (every path that creates shards), in AWS's wording.
  if (err instanceof ShardLimitError) return new AwsWording(err.accountId, err.region).shardLimitExceeded(err.limit, err.current, err.extra)
  if (err instanceof TributaryError && err.code === ErrorCode.STREAM_NOT_FOUND) return new KinesisError('ResourceNotFoundException', err.message)
  if (err instanceof TributaryError && err.code === ErrorCode.DECRYPT_FAILED) return new KinesisError('KMSAccessDeniedException', err.message)
  return where === 'event' ? new KinesisError('InternalFailureException', (err as Error)?.message ?? 'Internal service failure.') : null
}
