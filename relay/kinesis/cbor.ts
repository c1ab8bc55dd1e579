/**
 * A small, strict CBOR codec (RFC 8949) for the Kinesis `application/x-amz-cbor-1.1` protocol, which
 * the Java SDK (hence KCL) speaks by default.
 *
 * Each data item starts with one byte: the major type in the top 3 bits, "additional information"
 * in the low 5 (§3):
 *
 * | major | meaning            | argument                          |
 * | ----: | ------------------ | --------------------------------- |
 * |     0 | unsigned integer   | the value                         |
 * |     1 | negative integer   | -1 - value                        |
 * |     2 | byte string        | length, or 31 = indefinite chunks |
 * |     3 | text string (UTF-8)| length, or 31 = indefinite chunks |
 * |     4 | array              | count, or 31 = until break        |
 * |     5 | map                | pairs, or 31 = until break        |
 * |     6 | tag                | tag number, one item follows      |
 * |     7 | simple / float     | 20 false, 21 true, 22 null, 23 undefined, 25/26/27 half/single/double, 31 break |
 *
 * Additional information 0–23 is the argument itself; 24/25/26/27 mean it follows in 1/2/4/8
 * bytes (big-endian); 28–30 are reserved. Decoding is total: every input either decodes or throws
 * a CborError naming the problem and its byte offset; lengths are checked against the bytes present
 * before anything is allocated.
 */

export const CborErrorCode = {
  TRUNCATED: 'CBOR_TRUNCATED',
  RESERVED: 'CBOR_RESERVED_INFO',
  BAD_INDEFINITE: 'CBOR_BAD_INDEFINITE',
  UNEXPECTED_BREAK: 'CBOR_UNEXPECTED_BREAK',
  BAD_UTF8: 'CBOR_BAD_UTF8',
  BAD_KEY: 'CBOR_BAD_MAP_KEY',
  DUPLICATE_KEY: 'CBOR_DUPLICATE_KEY',
  UNSUPPORTED: 'CBOR_UNSUPPORTED',
  TOO_DEEP: 'CBOR_TOO_DEEP',
  TRAILING: 'CBOR_TRAILING_BYTES',
  UNENCODABLE: 'CBOR_UNENCODABLE',
} as const
export type CborErrorCode = (typeof CborErrorCode)[keyof typeof CborErrorCode]

export class CborError extends Error {
  readonly code: CborErrorCode
  /** Byte offset in the input where the problem was found (-1 when encoding). */
  readonly offset: number
  constructor(code: CborErrorCode, message: string, offset: number) {
    super(offset >= 0 ? `${message} (at byte ${offset})` : message)
    this.code = code
    this.offset = offset
    this.name = 'CborError'
  }
}

/** A tagged data item (major type 6): e.g. tag 1, an epoch time. */
export class Tagged {
  readonly tag: number
  readonly value: unknown
  constructor(tag: number, value: unknown) {
    this.tag = tag
    this.value = value
  }
}

export type CborValue = null | undefined | boolean | number | bigint | string | Buffer | CborValue[] | { [key: string]: CborValue } | Tagged

const MAX_DEPTH = 64
const BREAK = 0xff
const utf8 = new TextDecoder('utf-8', { fatal: true })

// ---- decode ----

class Reader {
  private readonly buf: Buffer
  at = 0
  constructor(buf: Buffer) {
    this.buf = buf
  }

  private need(n: number, what: string): void {
    if (this.at + n > this.buf.length) throw new CborError(CborErrorCode.TRUNCATED, `input ends inside ${what}: ${n} bytes needed, ${this.buf.length - this.at} left`, this.at)
  }

  /** The argument of an item whose initial byte has `info`; null for indefinite length (31). */
  private argument(info: number, start: number): number | bigint | null {
    if (info < 24) return info
    switch (info) {
      case 24: this.need(1, 'an argument'); return this.buf[this.at++]!
      case 25: this.need(2, 'an argument'); this.at += 2; return this.buf.readUInt16BE(this.at - 2)
      case 26: this.need(4, 'an argument'); this.at += 4; return this.buf.readUInt32BE(this.at - 4)
      case 27: {
        this.need(8, 'an argument')
        const v = this.buf.readBigUInt64BE(this.at)
        this.at += 8
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
      }
      case 31: return null
      default: throw new CborError(CborErrorCode.RESERVED, `additional information ${info} is reserved`, start)
    }
  }

  /** A length: must fit in the bytes left (each element takes at least one byte), so nothing huge is allocated. */
  private length(arg: number | bigint, start: number, what: string): number {
    if (typeof arg === 'bigint' || arg > this.buf.length - this.at) {
      throw new CborError(CborErrorCode.TRUNCATED, `${what} claims ${arg} but only ${this.buf.length - this.at} bytes follow`, start)
    }
    return arg
  }

  item(depth: number): CborValue {
    if (depth > MAX_DEPTH) throw new CborError(CborErrorCode.TOO_DEEP, `nesting deeper than ${MAX_DEPTH}`, this.at)
    const start = this.at
    this.need(1, 'a data item')
    const initial = this.buf[this.at++]!
    const major = initial >> 5
    const info = initial & 0x1f
    if (initial === BREAK) throw new CborError(CborErrorCode.UNEXPECTED_BREAK, 'break outside an indefinite-length item', start)
    if (major === 7) return this.simple(info, start)
    const arg = this.argument(info, start)
    switch (major) {
      case 0:
        if (arg === null) throw new CborError(CborErrorCode.BAD_INDEFINITE, 'an integer cannot have indefinite length', start)
        return arg
      case 1:
        if (arg === null) throw new CborError(CborErrorCode.BAD_INDEFINITE, 'an integer cannot have indefinite length', start)
        if (typeof arg === 'bigint' || arg >= Number.MAX_SAFE_INTEGER) return -1n - BigInt(arg)
        return -1 - arg
      case 2:
      case 3: {
        let bytes: Buffer
        if (arg === null) {
          // Indefinite: definite-length chunks of the same major type until a break (§3.2.3).
          const chunks: Buffer[] = []
          for (;;) {
            this.need(1, 'an indefinite-length string')
            if (this.buf[this.at] === BREAK) { this.at++; break }
            const chunkStart = this.at
            const head = this.buf[this.at++]!
            if (head >> 5 !== major || (head & 0x1f) === 31) {
              throw new CborError(CborErrorCode.BAD_INDEFINITE, `a chunk of an indefinite-length ${major === 2 ? 'byte' : 'text'} string must be a definite-length ${major === 2 ? 'byte' : 'text'} string`, chunkStart)
            }
            const a = this.argument(head & 0x1f, chunkStart)!
            const chunk = this.bytes(this.length(a, chunkStart, 'a string chunk'))
            // Each chunk of a text string is whole UTF-8 by itself (§3.2.3).
            if (major === 3) this.text(chunk, chunkStart)
            chunks.push(chunk)
          }
          bytes = Buffer.concat(chunks)
        } else {
          bytes = this.bytes(this.length(arg, start, 'a string'))
        }
        if (major === 2) return Buffer.from(bytes)
        return this.text(bytes, start)
      }
      case 4: {
        const out: CborValue[] = []
        if (arg === null) {
          for (;;) {
            this.need(1, 'an indefinite-length array')
            if (this.buf[this.at] === BREAK) { this.at++; return out }
            out.push(this.item(depth + 1))
          }
        }
        const n = this.length(arg, start, 'an array')
        for (let i = 0; i < n; i++) out.push(this.item(depth + 1))
        return out
      }
      case 5: {
        const out: Record<string, CborValue> = {}
        const entry = () => {
          const keyAt = this.at
          const key = this.item(depth + 1)
          if (typeof key !== 'string') throw new CborError(CborErrorCode.BAD_KEY, 'map keys must be text strings', keyAt)
          if (Object.hasOwn(out, key)) throw new CborError(CborErrorCode.DUPLICATE_KEY, `duplicate map key ${JSON.stringify(key)}`, keyAt)
          const value = this.item(depth + 1)
          Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
        }
        if (arg === null) {
          for (;;) {
            this.need(1, 'an indefinite-length map')
            if (this.buf[this.at] === BREAK) { this.at++; return out }
            entry()
          }
        }
        const n = this.length(arg, start, 'a map')
        for (let i = 0; i < n; i++) entry()
        return out
      }
      default: {
        // major 6, a tag
        if (arg === null) throw new CborError(CborErrorCode.BAD_INDEFINITE, 'a tag cannot have indefinite length', start)
        if (typeof arg === 'bigint') throw new CborError(CborErrorCode.UNSUPPORTED, `tag number ${arg} is too large`, start)
        return new Tagged(arg, this.item(depth + 1))
      }
    }
  }

  private bytes(n: number): Buffer {
    this.need(n, 'a string')
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }

  private text(bytes: Buffer, start: number): string {
    try {
      return utf8.decode(bytes)
    } catch {
      throw new CborError(CborErrorCode.BAD_UTF8, 'a text string is not valid UTF-8', start)
    }
  }

  private simple(info: number, start: number): CborValue {
    switch (info) {
      case 20: return false
      case 21: return true
      case 22: return null
      case 23: return undefined
      case 25: this.need(2, 'a half-precision float'); this.at += 2; return halfToNumber(this.buf.readUInt16BE(this.at - 2))
      case 26: this.need(4, 'a single-precision float'); this.at += 4; return this.buf.readFloatBE(this.at - 4)
      case 27: this.need(8, 'a double-precision float'); this.at += 8; return this.buf.readDoubleBE(this.at - 8)
      case 28: case 29: case 30:
        throw new CborError(CborErrorCode.RESERVED, `additional information ${info} is reserved`, start)
      case 31:
        throw new CborError(CborErrorCode.UNEXPECTED_BREAK, 'break outside an indefinite-length item', start)
      default:
        throw new CborError(CborErrorCode.UNSUPPORTED, `simple value ${info === 24 ? this.buf[this.at] ?? '?' : info} has no meaning here`, start)
    }
  }
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 31) return mant ? NaN : sign * Infinity
  return sign * (1024 + mant) * 2 ** (exp - 25)
}

/** Decodes exactly one data item that fills `input`; throws CborError otherwise. */
export function decodeCbor(input: Buffer | Uint8Array): CborValue {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  const reader = new Reader(buf)
  const value = reader.item(0)
  if (reader.at !== buf.length) throw new CborError(CborErrorCode.TRAILING, `${buf.length - reader.at} bytes follow the data item`, reader.at)
  return value
}

// ---- encode ----

class Writer {
  private chunks: Buffer[] = []
  private current = Buffer.allocUnsafe(1024)
  private at = 0

  private ensure(n: number): void {
    if (this.at + n <= this.current.length) return
    this.chunks.push(this.current.subarray(0, this.at))
    this.current = Buffer.allocUnsafe(Math.max(1024, n))
    this.at = 0
  }

  head(major: number, arg: number | bigint): void {
    const m = major << 5
    if (typeof arg === 'bigint' || arg > 0xffffffff) {
      this.ensure(9)
      this.current[this.at] = m | 27
      this.current.writeBigUInt64BE(BigInt(arg), this.at + 1)
      this.at += 9
    } else if (arg < 24) {
      this.ensure(1)
      this.current[this.at++] = m | arg
    } else if (arg <= 0xff) {
      this.ensure(2)
      this.current[this.at++] = m | 24
      this.current[this.at++] = arg
    } else if (arg <= 0xffff) {
      this.ensure(3)
      this.current[this.at] = m | 25
      this.current.writeUInt16BE(arg, this.at + 1)
      this.at += 3
    } else {
      this.ensure(5)
      this.current[this.at] = m | 26
      this.current.writeUInt32BE(arg, this.at + 1)
      this.at += 5
    }
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length)
    this.current.set(bytes, this.at)
    this.at += bytes.length
  }

  double(v: number): void {
    this.ensure(9)
    this.current[this.at] = 0xfb
    this.current.writeDoubleBE(v, this.at + 1)
    this.at += 9
  }

  value(v: unknown, depth: number): void {
    if (depth > MAX_DEPTH) throw new CborError(CborErrorCode.TOO_DEEP, `value nested deeper than ${MAX_DEPTH}`, -1)
    if (v === null) return this.raw(Uint8Array.of(0xf6))
    if (v === undefined) return this.raw(Uint8Array.of(0xf7))
    if (v === false) return this.raw(Uint8Array.of(0xf4))
    if (v === true) return this.raw(Uint8Array.of(0xf5))
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return v >= 0 ? this.head(0, v) : this.head(1, -1 - v)
      return this.double(v)
    }
    if (typeof v === 'bigint') {
      if (v >= 0n && v < 1n << 64n) return this.head(0, v)
      if (v < 0n && v >= -(1n << 64n)) return this.head(1, -1n - v)
      throw new CborError(CborErrorCode.UNENCODABLE, `integer ${v} does not fit in 64 bits`, -1)
    }
    if (typeof v === 'string') {
      const bytes = Buffer.from(v, 'utf8')
      this.head(3, bytes.length)
      return this.raw(bytes)
    }
    if (v instanceof Uint8Array) {
      this.head(2, v.length)
      return this.raw(v)
    }
    if (v instanceof Tagged) {
      this.head(6, v.tag)
      return this.value(v.value, depth + 1)
    }
    if (Array.isArray(v)) {
      this.head(4, v.length)
      for (const x of v) this.value(x, depth + 1)
      return
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v as object).filter(([, x]) => x !== undefined)
      this.head(5, entries.length)
      for (const [k, x] of entries) {
        this.value(k, depth + 1)
        this.value(x, depth + 1)
      }
      return
    }
    throw new CborError(CborErrorCode.UNENCODABLE, `cannot encode a ${typeof v}`, -1)
  }

  finish(): Buffer {
    this.chunks.push(this.current.subarray(0, this.at))
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
  }
}

/**
 * Encodes with definite lengths and the shortest integer heads; non-integral numbers as doubles;
 * Buffers/Uint8Arrays as byte strings; object members whose value is undefined are left out.
 */
export function encodeCbor(value: unknown): Buffer {
  const w = new Writer()
  w.value(value, 0)
  return w.finish()
}
