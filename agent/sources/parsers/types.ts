/**
 * Parsers turn the bytes of a serial line into readings. They know nothing about ports: each is a pure
 * byte-in/event-out machine (fed one byte or a megabyte at a time, the result is the same), and each
 * bounds what it holds, so garbage or a flood with no delimiter costs a counted error, never memory.
 */

/** One reading: the record's data, and the fields a partition key may be taken from. */
export interface Reading {
  data: Buffer
  fields: Record<string, unknown> | null
}

/** Why bytes were discarded. Codes are stable: they label counters and log lines. */
export const FramingError = {
  /** A line or frame grew past its bound without a delimiter; it is cut and its bytes discarded. */
  TOO_LONG: 'TOO_LONG',
  /** An NMEA sentence whose checksum is missing or wrong. */
  BAD_CHECKSUM: 'BAD_CHECKSUM',
  /** A line that is not what the parser expects (not NMEA, not JSON, wrong CSV column count, ...). */
  MALFORMED: 'MALFORMED',
  /** Bytes that are not UTF-8 where text is expected (often a baud-rate mismatch). */
  BAD_ENCODING: 'BAD_ENCODING',
  /** Bytes skipped while looking for a binary frame's sync bytes. */
  SYNC_LOST: 'SYNC_LOST',
  /** A length-prefixed frame whose length is outside its bounds. */
  BAD_LENGTH: 'BAD_LENGTH',
  /** A partial line or frame thrown away because the link was lost or closed under it. */
  PARTIAL: 'PARTIAL',
} as const
export type FramingError = (typeof FramingError)[keyof typeof FramingError]

export interface ParserSink {
  reading(r: Reading): void
  /** `detail` is short and safe to log: at most a small excerpt of the offending bytes. */
  error(code: FramingError, detail: string): void
}

export interface Parser {
  push(chunk: Buffer): void
  /** Forgets a partial line or frame (the link was lost); reports it as PARTIAL when there was one. */
  reset(): void
}

export type ParserConfig =
  | { type: 'lines'; maxLineBytes: number }
  | { type: 'nmea'; maxLineBytes: number; requireChecksum: boolean }
  | { type: 'json'; maxLineBytes: number }
  | { type: 'csv'; maxLineBytes: number; columns: string[] | null; separator: string }
  | { type: 'kv'; maxLineBytes: number }
  | { type: 'delimiter'; delimiter: Buffer; maxFrameBytes: number; includeDelimiter: boolean }
  | { type: 'fixed'; frameBytes: number; sync: Buffer | null }
  | { type: 'length-prefixed'; sync: Buffer | null; lengthOffset: number; lengthBytes: 1 | 2 | 4; lengthEndian: 'big' | 'little'; lengthAdjust: number; maxFrameBytes: number }

/** A short, printable excerpt of bytes for an error message. */
export function excerpt(bytes: Buffer, max = 40): string {
  const shown = bytes.subarray(0, max)
  const text = /^[\x20-\x7e]*$/.test(shown.toString('latin1')) ? JSON.stringify(shown.toString('latin1')) : `0x${shown.toString('hex')}`
  return bytes.length > max ? `${text}… (${bytes.length} bytes)` : text
}
