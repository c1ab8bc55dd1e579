import type { OutputRecord } from '../types.js'

/** A record left out of an object, with Firehose's error code (it goes to the error prefix). */
export interface FailedRecord {
  record: OutputRecord
  code: string
  message: string
}
