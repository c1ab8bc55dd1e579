/** JSON messages the relay and devices exchange besides batch frames. */
import type { ErrorCode } from './errors.js'

/** Published by the relay on `tributary/v1/{device}/rejects`. */
export interface RejectMessage {
  type: 'reject'
  stream: string
  /** The producer epoch as a decimal string (a u64). */
  epoch: string
  batchSequence: number
  /** Set when the whole batch is refused (its frame cannot be decoded, the stream is unknown, …). */
  code?: ErrorCode
  message?: string
  /** Records refused individually; the batch's other records were stored. */
  records: { index: number; code: ErrorCode; message: string }[]
  /** A plain record's refusal (a publish to …/put/…): the topic it was published to (epoch '0', batchSequence -1). */
  topic?: string
}

/** Published by the relay on the rejects topic just before it closes a connection it cannot serve. */
export interface UnavailableMessage {
  type: 'unavailable'
  stream: string
  epoch: string
  batchSequence: number
  code: ErrorCode
  message: string
}

export type RelayToDeviceMessage = RejectMessage | UnavailableMessage

/** Published retained by the agent on `tributary/v1/{device}/status`; the will sets `online: false`. */
export interface DeviceStatus {
  device: string
  online: boolean
  at: string
  [key: string]: unknown
}
