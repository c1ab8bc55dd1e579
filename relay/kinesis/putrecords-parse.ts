/**
 * PutRecords' JSON 1.1 body read in one pass, from the request's bytes straight to validated records
 * (Data decoded from base64 into Buffers), without JSON.parse and without the generic validator
 * (issue 17's profile: 2.7–4.9 µs of 11.5–17.2 µs per record went to them).
 *
 * It takes only the common shape — `{"StreamName"|"StreamARN": "…", "Records": [{"Data": "<base64>",
 * "PartitionKey": "…", "ExplicitHashKey": "…"}, …]}`, members in any order, JSON whitespace, string
 * escapes — and checks exactly what `validate()` checks for PutRecords (actions/put.ts). Anything
 * else — an unknown or reserved member, a duplicate, a null, a wrong type, a broken constraint, an
 * escape in Data, a body that does not end where it should — answers `null`: the general path
 * (JSON.parse + validate) then runs and words AWS's error. So the fast path never answers differently;
 * when in doubt it declines. test/relay/putrecords-parse.test.ts compares the two on generated bodies.
 */
import { Limits } from '../../shared/limits.js'
import { Data, ExplicitHashKey, PartitionKey, StreamARN, StreamName, type Shape } from './validate.js'

/**
 * `TRIBUTARY_FAST_PUT=0` turns the fast path off (read once when the relay loads): every PutRecords
 * then goes through JSON.parse and the generic validator. Tests flip `enabled` to compare the two.
 */
export const fastPut = { enabled: process.env.TRIBUTARY_FAST_PUT !== '0' }

export interface PutEntry {
  Data: Buffer
  PartitionKey: string
  ExplicitHashKey?: string
}

/**
 * A PutRecords request already validated by `parsePutRecords`: putRecords uses it as it is. It has
 * no reserved member (StreamId, DryRun), so checkReservedMembers reads it as the plain request.
 */
export class ValidPutRecords {
  declare StreamName?: string
  declare StreamARN?: string
  readonly Records: PutEntry[]

  constructor(records: PutEntry[], name: string | undefined, arn: string | undefined) {
    this.Records = records
    if (name !== undefined) this.StreamName = name
    if (arn !== undefined) this.StreamARN = arn
  }
}

const bounds = (shape: Shape) => {
  if (shape.type !== 'string') throw new Error('a string shape')
  return { re: new RegExp(`^(?:${shape.pattern})$`), min: shape.min ?? 0, max: shape.max ?? Infinity }
}
const NAME = bounds(StreamName)
const ARN = bounds(StreamARN)
const HASH_KEY = bounds(ExplicitHashKey)
/** validate.ts's PartitionKey and Data (key 1–256 UTF-16 units, Data ≤ 1 MiB), read from the shapes so they cannot drift. */
const KEY_MIN = PartitionKey.type === 'string' ? PartitionKey.min ?? 0 : 0
const KEY_MAX = PartitionKey.type === 'string' ? PartitionKey.max ?? Infinity : Infinity
const DATA_MAX = Data.type === 'blob' && Data.max !== undefined ? Data.max : Infinity

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const PAD = 0x3d

/** Base64 digits' values; PAD_VALUE for '='; BAD for anything else. */
const BAD = 255
const PAD_VALUE = 64
const B64 = new Uint8Array(256).fill(BAD)
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => { B64[c.charCodeAt(0)] = i })
B64[PAD] = PAD_VALUE

/** The member names the parser takes, as bytes. */
const word = (s: string) => Buffer.from(s, 'latin1')
const K_STREAM_NAME = word('StreamName')
const K_STREAM_ARN = word('StreamARN')
const K_RECORDS = word('Records')
const K_DATA = word('Data')
const K_PARTITION_KEY = word('PartitionKey')
const K_HASH_KEY = word('ExplicitHashKey')

/** Declines: the general path decides. */
class Decline extends Error {}
const DECLINE = new Decline()

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** One parse's cursor over the body. */
class Cursor {
  pos = 0
  constructor(readonly b: Buffer) {}

  ws(): number {
    const b = this.b
    let i = this.pos
    while (i < b.length && isWs(b[i]!)) i++
    this.pos = i
    return i < b.length ? b[i]! : -1
  }

  expect(c: number): void {
    if (this.ws() !== c) throw DECLINE
    this.pos++
  }

  /** A member name without escapes, as the range of its bytes; the cursor after its colon. */
  key(): [number, number] {
    this.expect(QUOTE)
    const b = this.b
    const start = this.pos
    let i = start
    while (i < b.length && b[i] !== QUOTE) {
      if (b[i] === BACKSLASH) throw DECLINE
      i++
    }
    if (i >= b.length) throw DECLINE
    this.pos = i + 1
    this.expect(COLON)
    return [start, i]
  }

  is(range: [number, number], name: Buffer): boolean {
    // A loop in JS: for names this short, cheaper than crossing into Buffer.compare.
    const [start, end] = range
    if (end - start !== name.length) return false
    const b = this.b
    for (let i = 0; i < name.length; i++) if (b[start + i] !== name[i]) return false
    return true
  }

  /** A JSON string as JSON.parse reads it (from the body decoded as UTF-8); declines a raw control character or an unknown escape. */
  string(): string {
    this.expect(QUOTE)
    const b = this.b
    let i = this.pos
    let ascii = true
    for (;;) {
      if (i >= b.length) throw DECLINE
      const c = b[i]!
      if (c === QUOTE) break
      if (c === BACKSLASH) return this.escaped(i)
      if (c < 0x20) throw DECLINE
      if (c >= 0x80) ascii = false
      i++
    }
    const s = ascii ? b.toString('latin1', this.pos, i) : b.toString('utf8', this.pos, i)
    this.pos = i + 1
    return s
  }

  /** The rest of a string that has escapes, from the first backslash at `i`. */
  private escaped(i: number): string {
    const b = this.b
    let out = b.toString('utf8', this.pos, i)
    let run = i
    for (;;) {
      if (i >= b.length) throw DECLINE
      const c = b[i]!
      if (c === QUOTE) break
      if (c < 0x20) throw DECLINE
      if (c !== BACKSLASH) { i++; continue }
      out += b.toString('utf8', run, i)
      const e = b[i + 1]
      switch (e) {
        case QUOTE: out += '"'; break
        case BACKSLASH: out += '\\'; break
        case 0x2f: out += '/'; break
        case 0x62: out += '\b'; break
        case 0x66: out += '\f'; break
        case 0x6e: out += '\n'; break
        case 0x72: out += '\r'; break
        case 0x74: out += '\t'; break
        case 0x75: {
          let code = 0
          for (let k = 2; k < 6; k++) {
            const h = b[i + k]
            const d = h === undefined ? -1 : h >= 0x30 && h <= 0x39 ? h - 0x30 : h >= 0x61 && h <= 0x66 ? h - 0x57 : h >= 0x41 && h <= 0x46 ? h - 0x37 : -1
            if (d < 0) throw DECLINE
            code = code * 16 + d
          }
          out += String.fromCharCode(code)
          i += 4
          break
        }
        default: throw DECLINE
      }
      i += 2
      run = i
    }
    out += b.toString('utf8', run, i)
    this.pos = i + 1
    return out
  }

  /**
   * A Data member: canonical base64 only (what validate.ts accepts: a multiple of 4, the alphabet,
   * at most two '=' at the end, no stray bits in the last digit), decoded; declines anything else.
   */
  data(): Buffer {
    this.expect(QUOTE)
    const b = this.b
    const start = this.pos
    let i = start
    while (i < b.length && b[i] !== QUOTE) i++
    if (i >= b.length) throw DECLINE
    const n = i - start
    this.pos = i + 1
    if (n % 4) throw DECLINE
    let pads = 0
    if (n && b[i - 1] === PAD) pads = b[i - 2] === PAD ? 2 : 1
    const size = (n / 4) * 3 - pads
    if (size > DATA_MAX) throw DECLINE
    const out = Buffer.allocUnsafe(size)
    const whole = pads ? n - 4 : n
    let o = 0
    for (let j = start; j < start + whole; j += 4) {
      const v0 = B64[b[j]!]!, v1 = B64[b[j + 1]!]!, v2 = B64[b[j + 2]!]!, v3 = B64[b[j + 3]!]!
      // Any value ≥ 64 ('=' or a byte outside the alphabet) sets bit 6 or 7.
      if ((v0 | v1 | v2 | v3) & 0xc0) throw DECLINE
      const v = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3
      out[o++] = v >> 16
      out[o++] = (v >> 8) & 0xff
      out[o++] = v & 0xff
    }
    if (pads) {
      const j = start + whole
      const v0 = B64[b[j]!]!, v1 = B64[b[j + 1]!]!
      if ((v0 | v1) & 0xc0) throw DECLINE
      if (pads === 2) {
        if (v1 & 0x0f) throw DECLINE
        out[o++] = (v0 << 2) | (v1 >> 4)
      } else {
        const v2 = B64[b[j + 2]!]!
        if (v2 & 0xc0 || v2 & 0x03) throw DECLINE
        out[o++] = (v0 << 2) | (v1 >> 4)
        out[o++] = ((v1 & 0x0f) << 4) | (v2 >> 2)
      }
    }
    return out
  }

  entry(): PutEntry {
    this.expect(OPEN_BRACE)
    let data: Buffer | undefined
    let key: string | undefined
    let hashKey: string | undefined
    if (this.ws() === CLOSE_BRACE) throw DECLINE
    for (;;) {
      const k = this.key()
      if (this.is(k, K_DATA) && data === undefined) data = this.data()
      else if (this.is(k, K_PARTITION_KEY) && key === undefined) {
        key = this.string()
        if (key.length < KEY_MIN || key.length > KEY_MAX) throw DECLINE
      } else if (this.is(k, K_HASH_KEY) && hashKey === undefined) {
        hashKey = this.string()
        if (!HASH_KEY.re.test(hashKey)) throw DECLINE
      } else throw DECLINE
      const c = this.ws()
      this.pos++
      if (c === CLOSE_BRACE) break
      if (c !== COMMA) throw DECLINE
    }
    if (data === undefined || key === undefined) throw DECLINE
    return hashKey === undefined ? { Data: data, PartitionKey: key } : { Data: data, PartitionKey: key, ExplicitHashKey: hashKey }
  }

  records(): PutEntry[] {
    this.expect(OPEN_BRACKET)
    const out: PutEntry[] = []
    if (this.ws() === CLOSE_BRACKET) throw DECLINE
    for (;;) {
      out.push(this.entry())
      if (out.length > Limits.maxPutRecordsCount) throw DECLINE
      const c = this.ws()
      this.pos++
      if (c === CLOSE_BRACKET) return out
      if (c !== COMMA) throw DECLINE
    }
  }
}

const fits = (s: string, rule: { re: RegExp; min: number; max: number }) => s.length >= rule.min && s.length <= rule.max && rule.re.test(s)

/** The validated request, or null when the body is anything but the common shape (the general path then answers). */
export function parsePutRecords(body: Buffer): ValidPutRecords | null {
  const cur = new Cursor(body)
  try {
    cur.expect(OPEN_BRACE)
    let name: string | undefined
    let arn: string | undefined
    let records: PutEntry[] | undefined
    if (cur.ws() === CLOSE_BRACE) return null
    for (;;) {
      const k = cur.key()
      if (cur.is(k, K_RECORDS) && records === undefined) records = cur.records()
      else if (cur.is(k, K_STREAM_NAME) && name === undefined) {
        name = cur.string()
        if (!fits(name, NAME)) return null
      } else if (cur.is(k, K_STREAM_ARN) && arn === undefined) {
        arn = cur.string()
        if (!fits(arn, ARN)) return null
      } else return null
      const c = cur.ws()
      cur.pos++
      if (c === CLOSE_BRACE) break
      if (c !== COMMA) return null
    }
    if (cur.ws() !== -1 || records === undefined) return null
    return new ValidPutRecords(records, name, arn)
  } catch (err) {
    if (err === DECLINE) return null
    throw err
  }
}
