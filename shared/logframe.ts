/**
 * A record as stored in a shard log segment. All integers little-endian.
 * Encoding and scanning live in `hardware/native`; the relay's segment store writes these.
 *
 * Log record (LOG_HEADER_SIZE = 64 bytes, then the variable parts)
 *
 * | offset | size | field          | notes                                                      |
 * | -----: | ---: | -------------- | ---------------------------------------------------------- |
 * |      0 |    4 | frameLength    | whole record in bytes, this field included                 |
 * |      4 |    4 | crc32c         | CRC-32C of bytes [8, frameLength)                          |
 * |      8 |    8 | offset         | u64 log offset (≤ 2^53-1), the sequence number's counter   |
 * |     16 |    8 | arrivalMs      | f64, relay wall-clock at append (ApproximateArrivalTimestamp) |
 * |     24 |    8 | producerTimeMs | f64, the producer's clock (0 when the producer gave none)   |
 * |     32 |    1 | flags          | bit 0 clock synced; bit 1 explicit hash key; bit 2 from a device; bit 3 data sealed at rest |
 * |     33 |    1 | reserved       | 0                                                          |
 * |     34 |    2 | keyLength      | bytes of the UTF-8 partition key                           |
 * |     36 |    2 | deviceLength   | bytes of the UTF-8 device id (0 unless flags bit 2)        |
 * |     38 |    2 | batchIndex     | the record's index in its producer batch                   |
 * |     40 |    8 | producerEpoch  | u64                                                        |
 * |     48 |    8 | batchSequence  | u64                                                        |
 * |     56 |    8 | reserved       | 0                                                          |
 * |     64 |    … | partitionKey   | keyLength bytes                                            |
 * |      … |    … | deviceId       | deviceLength bytes                                         |
 * |      … |    … | data           | the rest                                                   |
 *
 * The producer identity (device, epoch, batch sequence, index) travels with every record so the
 * relay can rebuild its idempotency state from the log after kill -9.
 */

export const LOG_HEADER_SIZE = 64
export const LOG_OFF_LENGTH = 0
export const LOG_OFF_CRC = 4
export const LOG_OFF_OFFSET = 8
export const LOG_OFF_ARRIVAL = 16
export const LOG_OFF_PRODUCER_TIME = 24
export const LOG_OFF_FLAGS = 32
export const LOG_OFF_KEY_LENGTH = 34
export const LOG_OFF_DEVICE_LENGTH = 36
export const LOG_OFF_BATCH_INDEX = 38
export const LOG_OFF_EPOCH = 40
export const LOG_OFF_BATCH_SEQ = 48
/** The checksum covers everything from here to the end of the record. */
export const LOG_CRC_START = 8
/** Largest record the log accepts; anything longer in a length field is damage. */
export const LOG_MAX_FRAME = 2 * 1024 * 1024

export const LogFlag = {
  clockSynced: 1,
  explicitHashKey: 2,
  fromDevice: 4,
  /** `data` is sealed (AES-256-GCM by relay/encryption.ts, through the log wrapper relay/log/encrypted.ts); readers see it opened. */
  encrypted: 8,
} as const

/** What an appender supplies for one record. */
export interface LogRecordInput {
  partitionKey: string
  data: Uint8Array
  producerTimeMs: number
  flags: number
  device?: string
  epoch?: bigint
  batchSequence?: number
  batchIndex?: number
}

/** A record read back from the log. */
export interface LogRecord {
  offset: number
  arrivalMs: number
  producerTimeMs: number
  flags: number
  partitionKey: string
  device: string
  epoch: bigint
  batchSequence: number
  batchIndex: number
  data: Buffer
}
