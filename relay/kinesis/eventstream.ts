/**
 * The `application/vnd.amazon.eventstream` framing SubscribeToShard answers with. All integers
 * big-endian; both checksums are CRC-32 (zlib's, not CRC-32C).
 *
 * Message
 *
 * | offset | size | field        | notes                                               |
 * | -----: | ---: | ------------ | --------------------------------------------------- |
 * |      0 |    4 | totalLength  | whole message, this field and the trailing CRC included |
 * |      4 |    4 | headersLength| bytes of the headers section                        |
 * |      8 |    4 | preludeCrc   | CRC-32 of bytes [0, 8)                               |
 * |     12 |    … | headers      | headersLength bytes                                 |
 * |      … |    … | payload      | totalLength - headersLength - 16 bytes              |
 * |  end-4 |    4 | messageCrc   | CRC-32 of bytes [0, end-4)                          |
 *
 * Header: name length u8, name (UTF-8), value type u8, value. Type 7 (string) carries a u16 length.
 */
import { crc32 } from 'node:zlib'
import { KinesisError } from './errors.js'

export const PRELUDE_SIZE = 12
export const TRAILER_SIZE = 4
/** Largest message a decoder accepts (AWS's limit is 16 MiB). */
export const MAX_MESSAGE = 16 * 1024 * 1024

export const HeaderType = {
  boolTrue: 0,
  boolFalse: 1,
  byte: 2,
  short: 3,
  integer: 4,
  long: 5,
  bytes: 6,
  string: 7,
  timestamp: 8,
  uuid: 9,
} as const

export type HeaderValue = string | number | bigint | boolean | Buffer | Date

export interface EventMessage {
  headers: Record<string, HeaderValue>
  payload: Buffer
}

/** Encodes one message; header values here are always strings (type 7), which is all Kinesis sends. */
export function encodeMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8')
    const v = Buffer.from(value, 'utf8')
    const head = Buffer.alloc(1 + n.length + 1 + 2)
    head[0] = n.length
    n.copy(head, 1)
    head[1 + n.length] = HeaderType.string
    head.writeUInt16BE(v.length, 2 + n.length)
    parts.push(head, v)
  }
  const headerBytes = Buffer.concat(parts)
  const total = PRELUDE_SIZE + headerBytes.length + payload.length + TRAILER_SIZE
  const out = Buffer.alloc(total)
  out.writeUInt32BE(total, 0)
  out.writeUInt32BE(headerBytes.length, 4)
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8)
  headerBytes.copy(out, PRELUDE_SIZE)
  payload.copy(out, PRELUDE_SIZE + headerBytes.length)
  out.writeUInt32BE(crc32(out.subarray(0, total - TRAILER_SIZE)), total - TRAILER_SIZE)
  return out
}

/** An event (`:message-type: event`), as SubscribeToShard sends its initial response and each batch. */
export function eventMessage(eventType: string, payload: Buffer, contentType: string): Buffer {
  return encodeMessage({ ':event-type': eventType, ':content-type': contentType, ':message-type': 'event' }, payload)
}

/** An error inside the stream (`:message-type: exception`), in the shape the SDKs parse into the modelled error. */
export function exceptionMessage(error: KinesisError, payload: Buffer, contentType: string): Buffer {
  return encodeMessage({ ':exception-type': error.type, ':content-type': contentType, ':message-type': 'exception' }, payload)
}

export class EventStreamError extends Error {
  readonly code = 'EVENTSTREAM_INVALID'
  constructor(message: string) {
    super(message)
    this.name = 'EventStreamError'
  }
}

function decodeHeaders(buf: Buffer): Record<string, HeaderValue> {
  const headers: Record<string, HeaderValue> = {}
  let at = 0
  const need = (n: number) => { if (at + n > buf.length) throw new EventStreamError(`header runs past the headers section at byte ${at}`) }
  while (at < buf.length) {
    need(1)
    const nameLength = buf[at++]!
    need(nameLength + 1)
    const name = buf.toString('utf8', at, at + nameLength)
    at += nameLength
    const type = buf[at++]!
    switch (type) {
      case HeaderType.boolTrue: headers[name] = true; break
      case HeaderType.boolFalse: headers[name] = false; break
      case HeaderType.byte: need(1); headers[name] = buf.readInt8(at); at += 1; break
      case HeaderType.short: need(2); headers[name] = buf.readInt16BE(at); at += 2; break
      case HeaderType.integer: need(4); headers[name] = buf.readInt32BE(at); at += 4; break
      case HeaderType.long: need(8); headers[name] = buf.readBigInt64BE(at); at += 8; break
      case HeaderType.timestamp: need(8); headers[name] = new Date(Number(buf.readBigInt64BE(at))); at += 8; break
      case HeaderType.uuid: need(16); headers[name] = Buffer.from(buf.subarray(at, at + 16)); at += 16; break
      case HeaderType.bytes:
      case HeaderType.string: {
        need(2)
        const length = buf.readUInt16BE(at)
        at += 2
        need(length)
        headers[name] = type === HeaderType.string ? buf.toString('utf8', at, at + length) : Buffer.from(buf.subarray(at, at + length))
        at += length
        break
      }
      default:
        throw new EventStreamError(`unknown header value type ${type} for header ${JSON.stringify(name)}`)
    }
  }
  return headers
}

/**
 * A pure bytes-in, messages-out decoder: feed it chunks of any size (one byte at a time works);
 * it returns the messages completed so far and throws EventStreamError on a bad length or checksum.
 */
export class EventStreamDecoder {
  private buffered: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): EventMessage[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk
    const out: EventMessage[] = []
    for (;;) {
      const buf = this.buffered
      if (buf.length < PRELUDE_SIZE) break
      const total = buf.readUInt32BE(0)
      const headersLength = buf.readUInt32BE(4)
      if (crc32(buf.subarray(0, 8)) !== buf.readUInt32BE(8)) throw new EventStreamError('prelude checksum mismatch')
      if (total < PRELUDE_SIZE + TRAILER_SIZE + headersLength || total > MAX_MESSAGE) throw new EventStreamError(`message length ${total} is impossible`)
      if (buf.length < total) break
      if (crc32(buf.subarray(0, total - TRAILER_SIZE)) !== buf.readUInt32BE(total - TRAILER_SIZE)) throw new EventStreamError('message checksum mismatch')
      out.push({
        headers: decodeHeaders(buf.subarray(PRELUDE_SIZE, PRELUDE_SIZE + headersLength)),
        payload: Buffer.from(buf.subarray(PRELUDE_SIZE + headersLength, total - TRAILER_SIZE)),
      })
      this.buffered = buf.subarray(total)
    }
    return out
  }

  /** Bytes of an unfinished message still held. */
  pending(): number {
    return this.buffered.length
  }
}
