/**
 * Binary parsers: frames split on a byte delimiter, frames of a fixed length, and length-prefixed
 * frames; the last two may start with sync bytes, which let them find the next frame after garbage.
 *
 * Length-prefixed layout (offsets from the first byte of the frame, sync bytes included):
 *
 *   | offset                    | size         | field                                        |
 *   | 0                         | sync.length  | sync bytes (optional)                        |
 *   | lengthOffset              | lengthBytes  | L, unsigned, lengthEndian                    |
 *   | lengthOffset+lengthBytes  | L+lengthAdjust | the rest of the frame (payload, checksum…)  |
 */
import { Splitter } from './splitter.js'
import { FramingError, excerpt, type Parser, type ParserConfig, type ParserSink } from './types.js'

export function delimiterParser(config: Extract<ParserConfig, { type: 'delimiter' }>, sink: ParserSink): Parser {
  const splitter = new Splitter(config.delimiter, config.maxFrameBytes, (frame) => {
    if (frame.length === 0) return
    sink.reading({ data: config.includeDelimiter ? Buffer.concat([frame, config.delimiter]) : Buffer.from(frame), fields: null })
  }, (head) => sink.error(FramingError.TOO_LONG, `frame over ${config.maxFrameBytes} bytes without a delimiter cut: ${excerpt(head)}`))
  return {
    push: (chunk) => splitter.push(chunk),
    reset: () => {
      const n = splitter.reset()
      if (n) sink.error(FramingError.PARTIAL, `${n} bytes of an unfinished frame discarded`)
    },
  }
}

type FrameConfig = Extract<ParserConfig, { type: 'fixed' | 'length-prefixed' }>

/** The frame's total length from its first bytes: a number, 'more' (need more bytes), or 'bad'. */
function frameLength(config: FrameConfig, buf: Buffer): number | 'more' | 'bad' {
  if (config.type === 'fixed') return config.frameBytes
  const end = config.lengthOffset + config.lengthBytes
  if (buf.length < end) return 'more'
  const at = config.lengthOffset
  const big = config.lengthEndian === 'big'
  const len = config.lengthBytes === 1 ? buf.readUInt8(at)
    : config.lengthBytes === 2 ? (big ? buf.readUInt16BE(at) : buf.readUInt16LE(at))
      : (big ? buf.readUInt32BE(at) : buf.readUInt32LE(at))
  const total = end + len + config.lengthAdjust
  return total < end || total > config.maxFrameBytes ? 'bad' : total
}

export function frameParser(config: FrameConfig, sink: ParserSink): Parser {
  let held: Buffer = Buffer.alloc(0)
  const sync = config.sync
  const what = config.type === 'fixed' ? 'frame' : 'length-prefixed frame'

  // Bytes skipped while looking for sync, reported as one run once sync is found (or the link resets),
  // so the report does not depend on how the bytes were chunked.
  let skipped = 0
  let skippedHead: Buffer = Buffer.alloc(0)
  const reportSkipped = (): void => {
    if (!skipped || !sync) return
    sink.error(FramingError.SYNC_LOST, `${skipped} bytes skipped looking for sync ${sync.toString('hex')}: ${excerpt(skippedHead, 16)}`)
    skipped = 0
    skippedHead = Buffer.alloc(0)
  }

  /** Drops bytes up to the next possible sync. */
  const resync = (from: number): void => {
    if (!sync) return
    let at = held.indexOf(sync, from)
    // A sync split across chunks: keep a tail that could be its beginning.
    if (at < 0) at = Math.max(from, held.length - (sync.length - 1))
    if (at > 0) {
      if (skippedHead.length < 16) skippedHead = Buffer.concat([skippedHead, held.subarray(0, Math.min(at, 16 - skippedHead.length))])
      skipped += at
      held = held.subarray(at)
    }
    if (held.length >= sync.length && held.subarray(0, sync.length).equals(sync)) reportSkipped()
  }

  return {
    push(chunk) {
      if (!chunk.length) return
      held = held.length ? Buffer.concat([held, chunk]) : chunk
      if (sync && !held.subarray(0, sync.length).equals(sync.subarray(0, Math.min(sync.length, held.length)))) resync(0)
      for (;;) {
        if (sync && held.length < sync.length) break
        reportSkipped()
        const total = frameLength(config, held)
        if (total === 'more') break
        if (total === 'bad') {
          sink.error(FramingError.BAD_LENGTH, `${what} length out of bounds (max ${'maxFrameBytes' in config ? config.maxFrameBytes : ''} bytes): ${excerpt(held.subarray(0, 16))}`)
          // Without sync bytes the only way on is one byte at a time.
          if (sync) resync(1)
          else held = held.subarray(1)
          continue
        }
        if (held.length < total) break
        sink.reading({ data: Buffer.from(held.subarray(0, total)), fields: null })
        held = held.subarray(total)
        if (sync && held.length) resync(0)
      }
      // Never keep a view into a large chunk: copy what is left (less than one frame).
      held = Buffer.from(held)
    },
    reset() {
      reportSkipped()
      if (held.length) sink.error(FramingError.PARTIAL, `${held.length} bytes of an unfinished ${what} discarded`)
      held = Buffer.alloc(0)
    },
  }
}
