/**
 * PutRecords' JSON 1.1 body read in one pass, from the request's bytes straight to validated records
 * (every record's Data decoded from base64 by one codec call, into one Buffer the records share),
 * without JSON.parse and without the generic validator (issue 17's profile: 2.7–4.9 µs of 11.5–17.2
 * µs per record went to them). It also notes where plain partition keys lie in the body, so the
 * router hashes them there (`ValidPutRecords.keyTable`).
 *
 * It takes only the common shape — `{"StreamName"|"StreamARN": "…", "Records": [{"Data": "<base64>",
 * "PartitionKey": "…", "ExplicitHashKey": "…"}, …]}`, members in any order, JSON whitespace, string
 * escapes — and checks exactly what `validate()` checks for PutRecords (actions/put.ts). Anything
 * else — an unknown or reserved member, a duplicate, a null, a wrong type, a broken constraint, an
 * escape in Data, a body that does not end where it should — answers `null`: the general path
 * (JSON.parse + validate) then runs and words AWS's error. So the fast path never answers differently;
 * when in doubt it declines. test/relay/putrecords-parse.test.ts compares the two on generated bodies.
 */
import { BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE, codec as defaultCodec, type Codec } from '../../hardware/index.js'
import { indexOfByte, latin1Of, viewOf } from '../../shared/bytes.js'
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
  /**
   * Where each record's partition key lies in the body, as a batch scan's table (BATCH_STRIDE fields
   * per record, only the key's two set), so the router hashes the keys' bytes where they are
   * (`Router.routeKeys`, one addon call). Null when some key is not plain ASCII in the body (an
   * escape, or bytes JSON reads as other characters) or some record has an ExplicitHashKey.
   */
  declare keyTable: { body: Buffer; fields: Uint32Array } | null

  constructor(records: PutEntry[], name: string | undefined, arn: string | undefined, keyTable: { body: Buffer; fields: Uint32Array } | null = null) {
    this.Records = records
    if (name !== undefined) this.StreamName = name
    if (arn !== undefined) this.StreamARN = arn
    // Not enumerable: the request's members are what a validator or a log may walk.
    Object.defineProperty(this, 'keyTable', { value: keyTable, enumerable: false })
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

const EMPTY = Buffer.alloc(0)

/** How many '=' end the base64 text in [start, end). */
const padsAt = (b: Buffer, start: number, end: number) => (end - start >= 2 && b[end - 1] === PAD ? (b[end - 2] === PAD ? 2 : 1) : 0)

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** One parse's cursor over the body. */
class Cursor {
  pos = 0
  /** Where the last string() read lay in the body, when it was plain ASCII without escapes; else -1. */
  plainStart = -1
  plainEnd = -1
  /** The records' key positions (BATCH_STRIDE per record), while every key so far was plain and no record had a hash key. */
  keys: Uint32Array | null = new Uint32Array(64 * BATCH_STRIDE)
  /** Each record's Data as the range of its base64 text (two positions per record), and their decoded bytes in all. */
  dataRanges = new Uint32Array(128)
  dataBytes = 0
  constructor(readonly b: Buffer, private readonly codec: Codec) {}

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

  /** Where the member name `key()` read last lies in the body (kept on the cursor: no pair allocated per member). */
  nameStart = 0
  nameEnd = 0

  /** A member name without escapes, its bytes' range noted in nameStart/nameEnd; the cursor after its colon. */
  key(): void {
    this.expect(QUOTE)
    const b = this.b
    const start = this.pos
    let i = start
    while (i < b.length && b[i] !== QUOTE) {
      if (b[i] === BACKSLASH) throw DECLINE
      i++
    }
    if (i >= b.length) throw DECLINE
    this.nameStart = start
    this.nameEnd = i
    this.pos = i + 1
    this.expect(COLON)
  }

  /** Whether the member name read last is `name`. */
  is(name: Buffer): boolean {
    // A loop in JS: for names this short, cheaper than crossing into Buffer.compare.
    const start = this.nameStart
    if (this.nameEnd - start !== name.length) return false
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
      if (c === BACKSLASH) { this.plainStart = -1; return this.escaped(i) }
      if (c < 0x20) throw DECLINE
      if (c >= 0x80) ascii = false
      i++
    }
    const s = ascii ? latin1Of(b, this.pos, i) : b.toString('utf8', this.pos, i)
    this.plainStart = ascii ? this.pos : -1
    this.plainEnd = i
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
   * A Data member: its base64 text's range is noted for `decodeData` (which checks the alphabet and
   * the last digit's stray bits); its length, padding and decoded size are checked here. Declines an
   * escape or anything but a multiple of 4 characters.
   */
  data(index: number): Buffer {
    this.expect(QUOTE)
    const b = this.b
    const start = this.pos
    // memchr: the text is long (136 characters for 100 bytes), and a JavaScript loop costs ~20 instructions a byte.
    const i = indexOfByte(b, QUOTE, start)
    if (i < 0) throw DECLINE
    const n = i - start
    this.pos = i + 1
    if (n % 4) throw DECLINE
    const size = (n / 4) * 3 - padsAt(b, start, i)
    if (size > DATA_MAX) throw DECLINE
    let ranges = this.dataRanges
    if (2 * index + 2 > ranges.length) {
      const grown = new Uint32Array(ranges.length * 2)
      grown.set(ranges)
      this.dataRanges = ranges = grown
    }
    ranges[2 * index] = start
    ranges[2 * index + 1] = i
    this.dataBytes += size
    return EMPTY
  }

  /** Decodes every record's Data into one buffer, in one codec call; each record's Data is its part of it. Declines any record's bad base64. */
  decodeData(records: PutEntry[]): void {
    const out = Buffer.allocUnsafe(this.dataBytes)
    const ranges = this.dataRanges
    if (this.codec.base64DecodeRanges(this.b, ranges.subarray(0, 2 * records.length), out) !== out.length) throw DECLINE
    let at = 0
    for (let i = 0; i < records.length; i++) {
      const size = ((ranges[2 * i + 1]! - ranges[2 * i]!) / 4) * 3 - padsAt(this.b, ranges[2 * i]!, ranges[2 * i + 1]!)
      records[i]!.Data = viewOf(out, at, at + size)
      at += size
    }
  }

  /** Notes record `index`'s key position from the string just read, or gives up the table. */
  private noteKey(index: number): void {
    let keys = this.keys
    if (!keys) return
    if (this.plainStart < 0) { this.keys = null; return }
    const f = index * BATCH_STRIDE
    if (f + BATCH_STRIDE > keys.length) {
      const grown = new Uint32Array(keys.length * 2)
      grown.set(keys)
      this.keys = keys = grown
    }
    keys[f + BATCH_KEY_START] = this.plainStart
    keys[f + BATCH_KEY_LENGTH] = this.plainEnd - this.plainStart
  }

  entry(index: number): PutEntry {
    this.expect(OPEN_BRACE)
    let data: Buffer | undefined
    let key: string | undefined
    let hashKey: string | undefined
    if (this.ws() === CLOSE_BRACE) throw DECLINE
    for (;;) {
      this.key()
      if (this.is(K_DATA) && data === undefined) data = this.data(index)
      else if (this.is(K_PARTITION_KEY) && key === undefined) {
        key = this.string()
        if (key.length < KEY_MIN || key.length > KEY_MAX) throw DECLINE
        this.noteKey(index)
      } else if (this.is(K_HASH_KEY) && hashKey === undefined) {
        this.keys = null
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
      out.push(this.entry(out.length))
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
export function parsePutRecords(body: Buffer, codec: Codec = defaultCodec): ValidPutRecords | null {
  const cur = new Cursor(body, codec)
  try {
    cur.expect(OPEN_BRACE)
    let name: string | undefined
    let arn: string | undefined
    let records: PutEntry[] | undefined
    if (cur.ws() === CLOSE_BRACE) return null
    for (;;) {
      cur.key()
      if (cur.is(K_RECORDS) && records === undefined) records = cur.records()
      else if (cur.is(K_STREAM_NAME) && name === undefined) {
        name = cur.string()
        if (!fits(name, NAME)) return null
      } else if (cur.is(K_STREAM_ARN) && arn === undefined) {
        arn = cur.string()
        if (!fits(arn, ARN)) return null
      } else return null
      const c = cur.ws()
      cur.pos++
      if (c === CLOSE_BRACE) break
      if (c !== COMMA) return null
    }
    if (cur.ws() !== -1 || records === undefined) return null
    cur.decodeData(records)
    const keys = cur.keys
    return new ValidPutRecords(records, name, arn, keys ? { body, fields: keys.subarray(0, records.length * BATCH_STRIDE) } : null)
  } catch (err) {
    if (err === DECLINE) return null
    throw err
  }
}
