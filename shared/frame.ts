/**
 * The batch frame: one per MQTT payload on `tributary/v1/{device}/records/{stream}`.
 * All integers little-endian. Encoding and decoding live in `hardware/native` (C with a
 * byte-identical TypeScript fallback); this module owns the layout and the value rules.
 *
 * Batch header (HEADER_SIZE = 32 bytes)
 *
 * | offset | size | field          | notes                                                     |
 * | -----: | ---: | -------------- | --------------------------------------------------------- |
 * |      0 |    2 | magic          | 0x54 0x42 ("TB")                                          |
 * |      2 |    1 | version        | FRAME_VERSION (1)                                         |
 * |      3 |    1 | flags          | reserved, 0                                               |
 * |      4 |    4 | crc32c         | CRC-32C of bytes [12, 12 + bodyLength)                    |
 * |      8 |    4 | bodyLength     | bytes after this field's end minus the epoch/seq: total - 12 |
 * |     12 |    8 | producerEpoch  | u64, created with the device's outbox                     |
 * |     20 |    8 | batchSequence  | u64 (≤ 2^53-1), increasing per epoch                       |
 * |     28 |    4 | recordCount    | u32, ≥ 1                                                  |
 * |     32 |    … | records        | recordCount records, back to back                        |
 *
 * Record (RECORD_HEADER_SIZE = 16 bytes, then the variable parts)
 *
 * | offset | size | field          | notes                                                     |
 * | -----: | ---: | -------------- | --------------------------------------------------------- |
 * |      0 |    1 | flags          | bit 0: device clock synchronised; bit 1: explicit hash key |
 * |      1 |    1 | reserved       | 0                                                         |
 * |      2 |    2 | keyLength      | bytes of the UTF-8 partition key, 1..1024                 |
 * |      4 |    4 | dataLength     | bytes of data, ≤ MAX_FRAME_DATA                           |
 * |      8 |    8 | producerTimeMs | f64, device wall-clock milliseconds since the epoch       |
 * |     16 |   16 | explicitHashKey| u128 big-endian, present only when flags bit 1 is set     |
 * |  16/32 |    … | partitionKey   | keyLength bytes                                           |
 * |      … |    … | data           | dataLength bytes                                          |
 *
 * The CRC covers the whole body (epoch onwards), so a flipped bit anywhere after the length is
 * caught; the length itself is checked against the payload size.
 */

export const FRAME_MAGIC_0 = 0x54
export const FRAME_MAGIC_1 = 0x42
export const FRAME_VERSION = 1
export const HEADER_SIZE = 32
export const OFF_MAGIC = 0
export const OFF_VERSION = 2
export const OFF_FLAGS = 3
export const OFF_CRC = 4
export const OFF_BODY_LENGTH = 8
export const OFF_EPOCH = 12
export const OFF_BATCH_SEQ = 20
export const OFF_RECORD_COUNT = 28
/** The CRC and the body length both start counting here. */
export const BODY_START = 12

export const RECORD_HEADER_SIZE = 16
export const REC_OFF_FLAGS = 0
export const REC_OFF_KEY_LENGTH = 2
export const REC_OFF_DATA_LENGTH = 4
export const REC_OFF_TIME = 8
export const REC_OFF_HASH_KEY = 16
export const HASH_KEY_SIZE = 16

export const RecordFlag = {
  clockSynced: 1,
  explicitHashKey: 2,
} as const

/** Structural limits the decoder enforces before allocating anything. */
export const MAX_KEY_BYTES = 1024
/** The decoder accepts data up to this size so that an oversize record can be named and rejected. */
export const MAX_FRAME_DATA = 16 * 1024 * 1024
export const MAX_FRAME_BYTES = 256 * 1024 * 1024

/** A record as the agent produces it. */
export interface BatchRecord {
  partitionKey: string
  data: Uint8Array
  /** 128-bit hash key, when the producer chose the shard itself. */
  explicitHashKey?: bigint
  producerTimeMs: number
  clockSynced: boolean
}

export interface Batch {
  epoch: bigint
  sequence: number
  records: BatchRecord[]
}
