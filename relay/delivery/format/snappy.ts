/**
 * Snappy's framing format, as Firehose writes `.snappy` objects (and as Hadoop, python-snappy and
 * `snzip -t framing` read them): the stream identifier chunk, then one chunk per ≤ 64 KiB of input,
 * each carrying the masked CRC-32C of its uncompressed bytes.
 *
 *   chunk = type (1 byte) | length of what follows (3 bytes, little-endian) | body
 *   0xff  stream identifier: body "sNaPpY"
 *   0x00  compressed:   masked CRC-32C (4 bytes LE) | snappy block
 *   0x01  uncompressed: masked CRC-32C (4 bytes LE) | the bytes (when compressing would not save)
 */
import { compress } from 'snappyjs'
import { codec } from '../../../hardware/index.js'

export const STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59])
export const CHUNK_COMPRESSED = 0x00
export const CHUNK_UNCOMPRESSED = 0x01
/** The framing format's limit on a chunk's uncompressed bytes. */
export const MAX_CHUNK_INPUT = 65_536
const CHUNK_HEADER = 4
const CRC_BYTES = 4
const MASK_DELTA = 0xa282ead8

/** The spec's mask: rotate right by 15 bits and add a constant, so CRCs of CRC-bearing data are not degenerate. */
export function maskedCrc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const crc = codec.crc32c(buf, 0, start, end)
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0
}

export function snappyFrame(input: Buffer): Buffer {
  const parts: Buffer[] = [STREAM_IDENTIFIER]
  for (let at = 0; at < input.length; at += MAX_CHUNK_INPUT) {
    const block = input.subarray(at, Math.min(at + MAX_CHUNK_INPUT, input.length))
    const compressed = compress(block)
    const stored = compressed.length < block.length ? compressed : block
    const header = Buffer.allocUnsafe(CHUNK_HEADER + CRC_BYTES)
    header.writeUInt8(stored === compressed ? CHUNK_COMPRESSED : CHUNK_UNCOMPRESSED, 0)
    header.writeUIntLE(CRC_BYTES + stored.length, 1, 3)
    header.writeUInt32LE(maskedCrc32c(block), CHUNK_HEADER)
    parts.push(header, stored)
  }
  return Buffer.concat(parts)
}
