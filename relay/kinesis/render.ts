/**
 * GetRecords' answer rendered straight into the bytes of JSON 1.1: the size of the whole answer
 * first, then one Buffer written in place (the record's data base64-encoded into it), with no answer
 * object per record and no JSON.stringify of the page. The bytes are exactly what `protocol.encode`
 * gives for the answer object (`recordsAnswer`): the same members in the same order, numbers as
 * JSON.stringify prints them, strings escaped as it escapes them (test/relay/render.test.ts checks
 * this over random pages). Other protocols (CBOR) encode the answer object.
 */
import { setBytes } from '../../shared/bytes.js'
import { LogFlag, type LogRecord } from '../../shared/logframe.js'
import { SEQUENCE_DIGITS, SequenceDigits, sequenceOf } from '../sequence.js'
import type { ShardState } from '../streams.js'
import { childShardsJson, recordJson, seconds } from './context.js'
import { AMZ_JSON, type Protocol } from './protocol.js'

/** What a GetRecords answer holds, before it is rendered in the request's protocol. */
export interface RecordsPage {
  records: readonly LogRecord[]
  /** The shard read (its sequence numbers' constant part). */
  shard: ShardState
  /** Absent at the end of a closed shard. */
  nextShardIterator: string | undefined
  millisBehindLatest: number
  /** Present only at the end of a closed shard. */
  childShards: ReturnType<typeof childShardsJson> | undefined
}

/** The answer as an object, in the member order AWS writes: what the other protocols encode, and what the rendering must match. */
export function recordsAnswer(page: RecordsPage) {
  return {
    Records: page.records.map((r) => recordJson(r, page.shard)),
    ...(page.nextShardIterator === undefined ? {} : { NextShardIterator: page.nextShardIterator }),
    MillisBehindLatest: page.millisBehindLatest,
    ...(page.childShards === undefined ? {} : { ChildShards: page.childShards }),
  }
}

/** The answer in `protocol`: rendered for JSON 1.1, the answer object encoded otherwise. */
export function renderRecords(page: RecordsPage, protocol: Protocol): Buffer {
  return protocol.contentType === AMZ_JSON ? recordsJson(page) : protocol.encode(recordsAnswer(page))
}

// The constant parts of a record, around its four values, as bytes.
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))
const OPEN = ascii('{"Records":[')
const SEQUENCE = ascii('{"SequenceNumber":"')
const ARRIVAL = ascii('","ApproximateArrivalTimestamp":')
const DATA = ascii(',"Data":"')
const KEY = ascii('","PartitionKey":')
const ENCRYPTED = ascii(',"EncryptionType":"KMS"}')
const CLOSE_RECORD = ascii('}')
const PER_RECORD = SEQUENCE.length + ARRIVAL.length + DATA.length + KEY.length + CLOSE_RECORD.length
const ENCRYPTED_EXTRA = ENCRYPTED.length - CLOSE_RECORD.length
const QUOTE = 0x22
const COMMA = 0x2c

/** A number as JSON.stringify prints it. */
const jsonNumber = (n: number) => (Number.isFinite(n) ? String(n) : 'null')

/**
 * JSON 1.1's bytes of the answer, equal to `Buffer.from(JSON.stringify(recordsAnswer(page)))`.
 * Everything but an unusual partition key is written byte by byte from JavaScript: a Buffer write
 * call costs more than copying a short ASCII string by hand.
 */
export function recordsJson(page: RecordsPage): Buffer {
  const { records, shard } = page
  const n = records.length
  // Each record's arrival time and partition key, kept between the two passes; a key JSON must escape
  // or encode in several bytes is kept as JSON.stringify writes it (`escaped`). Sequence numbers are
  // stepped from one record to the next in both passes, never kept as strings.
  const sequences = new SequenceDigits(shard)
  const arrivals = new Array<string>(n)
  const keys = new Array<string>(n)
  const escaped = new Uint8Array(n)
  let size = OPEN.length + Math.max(n - 1, 0) + PER_RECORD * n
  // Records stored by one commit share their arrival time: its text is made once for the run of them.
  let lastArrivalMs = Number.NaN
  let lastArrival = ''
  for (let i = 0; i < n; i++) {
    const r = records[i]!
    if (r.arrivalMs !== lastArrivalMs) {
      lastArrivalMs = r.arrivalMs
      lastArrival = jsonNumber(seconds(r.arrivalMs))
    }
    const arrival = lastArrival
    let key = r.partitionKey
    let keyBytes = key.length + 2
    if (!isPlainAscii(key)) {
      key = JSON.stringify(key)
      keyBytes = Buffer.byteLength(key, 'utf8')
      escaped[i] = 1
    }
    arrivals[i] = arrival
    keys[i] = key
    size += SEQUENCE_DIGITS + arrival.length + base64Length(r.data.length) + keyBytes
    if (r.flags & LogFlag.encrypted) size += ENCRYPTED_EXTRA
  }
  let tail = ']'
  if (page.nextShardIterator !== undefined) tail += ',"NextShardIterator":' + JSON.stringify(page.nextShardIterator)
  tail += ',"MillisBehindLatest":' + jsonNumber(page.millisBehindLatest)
  if (page.childShards !== undefined) tail += ',"ChildShards":' + JSON.stringify(page.childShards)
  tail += '}'
  size += Buffer.byteLength(tail, 'utf8')

  const out = Buffer.allocUnsafe(size)
  let at = copy(out, 0, OPEN)
  for (let i = 0; i < n; i++) {
    const r = records[i]!
    if (i > 0) out[at++] = COMMA
    at = copy(out, at, SEQUENCE)
    at = sequences.write(out, at, r.offset, r.arrivalMs)
    at = copy(out, at, ARRIVAL)
    at = writeAscii(out, at, arrivals[i]!)
    at = copy(out, at, DATA)
    at = writeBase64(out, at, r.data)
    at = copy(out, at, KEY)
    if (escaped[i]) {
      at += out.write(keys[i]!, at, 'utf8')
    } else {
      out[at++] = QUOTE
      at = writeAscii(out, at, keys[i]!)
      out[at++] = QUOTE
    }
    at = copy(out, at, r.flags & LogFlag.encrypted ? ENCRYPTED : CLOSE_RECORD)
  }
  at += out.write(tail, at, 'utf8')
  // The sizes above and the writes must agree to the byte: a mismatch is a bug here, never a client's doing.
  if (at !== size) throw new Error(`GetRecords rendered ${at} bytes of the ${size} it measured`)
  return out
}

/** True when JSON.stringify writes `text` as it is between quotes, one byte a character: printable ASCII but `"` and `\`. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false
  }
  return true
}

/** Copies a constant's bytes: by hand when short, by `set` (a memcpy, ~15 ns a call) when longer. */
function copy(out: Buffer, at: number, bytes: Uint8Array): number {
  const n = bytes.length
  if (n > 12) setBytes(out, bytes, at)
  else for (let i = 0; i < n; i++) out[at + i] = bytes[i]!
  return at + n
}

/** Writes a string known to be ASCII, one byte a character. */
function writeAscii(out: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i)
  return at + text.length
}

/** The length of `bytes` bytes in padded base64. */
const base64Length = (bytes: number) => Math.ceil(bytes / 3) * 4

const ALPHABET = ascii('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
const PAD = 0x3d
/** Data this long or longer goes through Node's own encoder: past it, one call costs less than the loop. */
const NATIVE_BASE64_FROM = 512

/** Every 12-bit value's two base64 digits, as one 16-bit little-endian unit: three bytes become two lookups. */
const PAIRS = new Uint16Array(4096)
for (let v = 0; v < 4096; v++) PAIRS[v] = ALPHABET[v >>> 6]! | (ALPHABET[v & 63]! << 8)

/** Writes `data` base64-encoded (padded, as Buffer's 'base64' writes it) into `out` at `at`. */
function writeBase64(out: Buffer, at: number, data: Buffer): number {
  const length = data.length
  if (length >= NATIVE_BASE64_FROM) return at + out.write(data.toString('base64'), at, 'latin1')
  const whole = length - (length % 3)
  let i = 0
  for (; i < whole; i += 3) {
    const triple = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!
    const high = PAIRS[triple >>> 12]!
    const low = PAIRS[triple & 4095]!
    out[at] = high & 0xff
    out[at + 1] = high >>> 8
    out[at + 2] = low & 0xff
    out[at + 3] = low >>> 8
    at += 4
  }
  if (length - whole === 1) {
    const b = data[i]!
    out[at] = ALPHABET[b >>> 2]!
    out[at + 1] = ALPHABET[(b & 3) << 4]!
    out[at + 2] = PAD
    out[at + 3] = PAD
    at += 4
  } else if (length - whole === 2) {
    const pair = (data[i]! << 8) | data[i + 1]!
    out[at] = ALPHABET[pair >>> 10]!
    out[at + 1] = ALPHABET[(pair >>> 4) & 63]!
    out[at + 2] = ALPHABET[(pair & 15) << 2]!
    out[at + 3] = PAD
    at += 4
  }
  return at
}

/** A PutRecords answer's parts: each record's shard and offset (or why it failed), before rendering. */
export interface PutPage {
  /** Per record of the request, in its order: where it was stored, or the error that refused it. */
  results: readonly ({ shard: ShardState; offset: number; arrivalMs: number } | { errorCode: string; errorMessage: string })[]
  failed: number
  encrypted: boolean
}

/** The answer as an object, in AWS's member order: what the other protocols encode, and what the rendering must match. */
export function putAnswer(page: PutPage) {
  return {
    FailedRecordCount: page.failed,
    Records: page.results.map((r) => ('errorCode' in r
      ? { ErrorCode: r.errorCode, ErrorMessage: r.errorMessage }
      : { SequenceNumber: sequenceOf(r.shard, r.offset, r.arrivalMs), ShardId: r.shard.meta.shardId })),
    ...(page.encrypted ? { EncryptionType: 'KMS' as const } : {}),
  }
}

/** The answer in `protocol`: rendered for JSON 1.1, the answer object encoded otherwise. */
export function renderPut(page: PutPage, protocol: Protocol): Buffer {
  return protocol.contentType === AMZ_JSON ? putJson(page) : protocol.encode(putAnswer(page))
}

const PUT_OPEN = ascii('{"FailedRecordCount":')
const PUT_RECORDS = ascii(',"Records":[')
const PUT_SEQUENCE = ascii('{"SequenceNumber":"')
const PUT_SHARD = ascii('","ShardId":')
const PUT_ENCRYPTED = ascii(',"EncryptionType":"KMS"')
/** `{"SequenceNumber":"` … `","ShardId":` … `}` around a stored record's two values. */
const PUT_PER_STORED = PUT_SEQUENCE.length + PUT_SHARD.length + 1

/**
 * What an answer needs of a shard, made once per shard and kept while the shard lives: its id as
 * JSON, and its sequence numbers' digits as last written (rendering is synchronous, so answers
 * rendered one after another share them).
 */
interface ShardRendering {
  idJson: Buffer
  sequences: SequenceDigits
}
const renderings = new WeakMap<ShardState, ShardRendering>()

function renderingOf(shard: ShardState): ShardRendering {
  let rendering = renderings.get(shard)
  if (!rendering) renderings.set(shard, rendering = { idJson: Buffer.from(JSON.stringify(shard.meta.shardId), 'utf8'), sequences: new SequenceDigits(shard) })
  return rendering
}

/**
 * JSON 1.1's bytes of the answer, equal to `Buffer.from(JSON.stringify(putAnswer(page)))`. A
 * shard's records took consecutive offsets at one arrival time, so its sequence numbers are stepped
 * from the one before (SequenceDigits); the first of each shard in a request is written afresh
 * from the shard's constant, without BigInt, so a request whose records land one to a shard, as in a
 * stream of thousands of shards, costs little more per record than one whose records share a few.
 */
export function putJson(page: PutPage): Buffer {
  const { results } = page
  const n = results.length
  const failures = new Map<number, string>()
  const head = String(page.failed)
  let size = PUT_OPEN.length + head.length + PUT_RECORDS.length + Math.max(n - 1, 0) + 2 + (page.encrypted ? PUT_ENCRYPTED.length : 0)
  for (let i = 0; i < n; i++) {
    const r = results[i]!
    if ('errorCode' in r) {
      const text = JSON.stringify({ ErrorCode: r.errorCode, ErrorMessage: r.errorMessage })
      failures.set(i, text)
      size += Buffer.byteLength(text, 'utf8')
      continue
    }
    size += PUT_PER_STORED + SEQUENCE_DIGITS + renderingOf(r.shard).idJson.length
  }
  const out = Buffer.allocUnsafe(size)
  let at = copy(out, 0, PUT_OPEN)
  at = writeAscii(out, at, head)
  at = copy(out, at, PUT_RECORDS)
  for (let i = 0; i < n; i++) {
    const r = results[i]!
    if (i > 0) out[at++] = COMMA
    if ('errorCode' in r) {
      at += out.write(failures.get(i)!, at, 'utf8')
      continue
    }
    const rendering = renderingOf(r.shard)
    at = copy(out, at, PUT_SEQUENCE)
    at = rendering.sequences.write(out, at, r.offset, r.arrivalMs)
    at = copy(out, at, PUT_SHARD)
    at = copy(out, at, rendering.idJson)
    out[at++] = 0x7d
  }
  out[at++] = 0x5d
  if (page.encrypted) at = copy(out, at, PUT_ENCRYPTED)
  out[at++] = 0x7d
  if (at !== size) throw new Error(`PutRecords rendered ${at} bytes of the ${size} it measured`)
  return out
}
