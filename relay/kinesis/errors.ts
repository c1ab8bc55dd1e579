/**
 * Errors of the Kinesis API, by AWS's `__type` names. Each carries the HTTP status AWS answers
 * with and the message in AWS's wording.
 */

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
  /** Records sealed at rest that the relay's key cannot open (relay/kinesis/encryption.ts). */
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
