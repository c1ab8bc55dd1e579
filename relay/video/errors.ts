/**
 * Errors of the Kinesis Video API, by AWS's names, with the HTTP status AWS's models give each
 * (@aws-sdk/client-kinesis-video's and -archived-media's schemas). REST-JSON answers name the type
 * in the `x-amzn-errortype` header and carry `{"message": …}` in the body, as AWS does.
 */

export const VideoErrorType = {
  InvalidArgumentException: 'InvalidArgumentException',
  ResourceNotFoundException: 'ResourceNotFoundException',
  ResourceInUseException: 'ResourceInUseException',
  ClientLimitExceededException: 'ClientLimitExceededException',
  AccountStreamLimitExceededException: 'AccountStreamLimitExceededException',
  TagsPerResourceExceededLimitException: 'TagsPerResourceExceededLimitException',
  VersionMismatchException: 'VersionMismatchException',
  NotAuthorizedException: 'NotAuthorizedException',
  /** SigV4 failures keep the names relay/kinesis/sigv4.ts gives them (AWS's common errors). */
  MissingAuthenticationTokenException: 'MissingAuthenticationTokenException',
  UnrecognizedClientException: 'UnrecognizedClientException',
  InvalidSignatureException: 'InvalidSignatureException',
  IncompleteSignatureException: 'IncompleteSignatureException',
  SerializationException: 'SerializationException',
  UnknownOperationException: 'UnknownOperationException',
  ServiceUnavailable: 'ServiceUnavailable',
  InternalFailure: 'InternalFailure',
} as const
export type VideoErrorType = (typeof VideoErrorType)[keyof typeof VideoErrorType]

const STATUS: Partial<Record<VideoErrorType, number>> = {
  ResourceNotFoundException: 404,
  NotAuthorizedException: 401,
  MissingAuthenticationTokenException: 403,
  UnknownOperationException: 404,
  ServiceUnavailable: 503,
  InternalFailure: 500,
}

export class VideoApiError extends Error {
  readonly type: VideoErrorType
  readonly status: number
  /** `status` overrides the type's own (a body refused as too large is 413 whatever its type). */
  constructor(type: VideoErrorType, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options)
    this.type = type
    this.name = type
    this.status = options?.status ?? STATUS[type] ?? 400
  }

  /** The answer's headers and body. */
  get headers(): Record<string, string> {
    return { 'x-amzn-errortype': this.type }
  }

  toJSON(): { message: string } {
    return { message: this.message }
  }
}

export const invalidArgument = (message: string) => new VideoApiError(VideoErrorType.InvalidArgumentException, message)
export const streamNotFound = (what: string) => new VideoApiError(VideoErrorType.ResourceNotFoundException, `The requested stream is not found or not active: ${what}`)
