/**
 * Sequence numbers in the layout AWS's own decode to (FIELD-NOTES.md): 47 hex digits,
 *
 *   2 | shard creation time, s (9) | shard index & 0xf (1) | counter (16) | 00 | record time, s (9) | shard index (8) | 2
 *
 * printed as a decimal string. The counter is the record's log offset, so a sequence number locates
 * its record directly; numbers increase strictly within a shard.
 */
import { setBytes } from '../shared/bytes.js'

export interface SequenceParts {
  shardCreatedSec: number
  shardIndex: number
  offset: number
  recordSec: number
}

const hex = (value: number, width: number) => value.toString(16).padStart(width, '0').slice(-width)

/** The reference encoding: the hex layout above, printed in decimal through a BigInt. */
export function encodeSequenceReference(p: SequenceParts): string {
  const h = '2' + hex(p.shardCreatedSec, 9) + hex(p.shardIndex & 0xf, 1) + hex(p.offset, 16) + '00' + hex(p.recordSec, 9) + hex(p.shardIndex, 8) + '2'
  return BigInt('0x' + h).toString(10)
}

// Every record a read returns needs its sequence number. The number is a per-shard constant plus
// offset·2^80 plus recordSec·2^36, so the constant is parsed once per shard and the rest is BigInt
// arithmetic: three times faster than building and parsing the hex string per record.

/** Per shard creation second, per shard index: the shard's constant part. */
const shardBases = new Map<number, Map<number, bigint>>()
let cachedBases = 0

export function encodeSequence(p: SequenceParts): string {
  let byIndex = shardBases.get(p.shardCreatedSec)
  if (!byIndex) shardBases.set(p.shardCreatedSec, (byIndex = new Map()))
  let base = byIndex.get(p.shardIndex)
  if (base === undefined) {
    base = BigInt(encodeSequenceReference({ ...p, offset: 0, recordSec: 0 }))
    // Bounded, though a relay's shards are far fewer than this.
    if (++cachedBases > 65_536) {
      shardBases.clear()
      shardBases.set(p.shardCreatedSec, (byIndex = new Map()))
      cachedBases = 1
    }
    byIndex.set(p.shardIndex, base)
  }
  // Nine hex digits of record time, as the layout keeps; offsets stay below 2^53 (16 hex digits).
  return (base + (BigInt(p.offset) << 80n) + (BigInt(p.recordSec % 2 ** 36) << 36n)).toString()
}

/** Decodes a sequence number; null when it is not one of ours (not decimal, wrong size or markers). */
export function decodeSequence(text: string): SequenceParts | null {
  if (!/^\d{1,128}$/.test(text)) return null
  const h = BigInt(text).toString(16)
  if (h.length !== 47 || h[0] !== '2' || h[46] !== '2' || h.slice(27, 29) !== '00') return null
  const offset = Number.parseInt(h.slice(11, 27), 16)
  if (!Number.isSafeInteger(offset)) return null
  return {
    shardCreatedSec: Number.parseInt(h.slice(1, 10), 16),
    shardIndex: Number.parseInt(h.slice(38, 46), 16),
    offset,
    recordSec: Number.parseInt(h.slice(29, 38), 16),
  }
}

/** The sequence number of the record at `offset` of a shard, which arrived at `arrivalMs`. */
export function sequenceOf(shard: { createdSec: number; meta: { index: number } }, offset: number, arrivalMs: number): string {
  return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset, recordSec: Math.floor(arrivalMs / 1000) })
}

// Any number without BigInt: the shard's constant and the two steps held as eight limbs of seven
// decimal digits (least significant first), so offset·2^80 + second·2^36 is a handful of products
// of limbs below 10^7, each exact in a double, and the digits come out of the limbs directly.
const LIMB = 10_000_000
/** Record time is kept modulo 2^36 s. */
const SECONDS_WRAP = 2 ** 36
const ZERO = 0x30
const LIMBS = 8

/** `value` as LIMBS limbs of seven decimal digits, least significant first. */
function limbsOf(value: bigint): Float64Array {
  const out = new Float64Array(LIMBS)
  for (let k = 0; k < LIMBS; k++) {
    out[k] = Number(value % BigInt(LIMB))
    value /= BigInt(LIMB)
  }
  if (value !== 0n) throw new RangeError('a sequence number constant has more than 56 digits')
  return out
}
const [A0, A1, A2, A3] = limbsOf(1n << 80n) as unknown as [number, number, number, number]
const [B0, B1] = limbsOf(1n << 36n) as unknown as [number, number]

/** A shard's constant part of every sequence number, as limbs for `writeSequence` (made with one BigInt). */
export function sequenceBase(shard: { createdSec: number; meta: { index: number } }): Float64Array {
  return limbsOf(BigInt(encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset: 0, recordSec: 0 })))
}

/**
 * Writes the 56 ASCII digits of the sequence number of the record at `offset` that arrived at
 * second `sec`, for the shard whose `sequenceBase` is `base`, into `out` at `at`; returns the
 * position after them. Equal to `encodeSequence`'s text (test/relay/kinesis-units.test.ts).
 */
export function writeSequence(out: Uint8Array, at: number, base: Float64Array, offset: number, sec: number): number {
  // Quotients by truncation (| 0: every one here is below 2^31), each corrected once where the
  // division rounded up to the next integer; measured faster than Math.floor and % on doubles.
  let q = (sec / SECONDS_WRAP) | 0
  let s = sec - q * SECONDS_WRAP
  if (s < 0) s += SECONDS_WRAP
  let oHigh = (offset / LIMB) | 0
  let o0 = offset - oHigh * LIMB
  if (o0 < 0) { oHigh--; o0 += LIMB }
  const o2 = (oHigh / LIMB) | 0
  const o1 = oHigh - o2 * LIMB
  let s1 = (s / LIMB) | 0
  let s0 = s - s1 * LIMB
  if (s0 < 0) { s1--; s0 += LIMB }
  // Each column is a few products below 10^14 plus a limb and a carry: exact in a double.
  const l = scratch
  let c = base[0]! + A0 * o0 + B0 * s0
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[0] = c
  c = base[1]! + A1 * o0 + A0 * o1 + B1 * s0 + B0 * s1 + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[1] = c
  c = base[2]! + A2 * o0 + A1 * o1 + A0 * o2 + B1 * s1 + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[2] = c
  c = base[3]! + A3 * o0 + A2 * o1 + A1 * o2 + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[3] = c
  c = base[4]! + A3 * o1 + A2 * o2 + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[4] = c
  c = base[5]! + A3 * o2 + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[5] = c
  c = base[6]! + q
  q = (c / LIMB) | 0; c -= q * LIMB; if (c < 0) { q--; c += LIMB }
  l[6] = c
  l[7] = base[7]! + q
  if (l[7]! >= LIMB || l[7]! < LIMB / 10) throw new RangeError(`the sequence number of offset ${offset} at second ${sec} does not have ${SEQUENCE_DIGITS} digits`)
  // Most significant limb first, each as one digit and three pairs.
  const pairs = PAIRS
  let p = at
  for (let k = LIMBS - 1; k >= 0; k--) {
    const limb = l[k]!
    const high = (limb / 1_000_000) | 0
    let rest = limb - high * 1_000_000
    const a = (rest / 10_000) | 0
    rest -= a * 10_000
    const b = (rest / 100) | 0
    const d = 2 * (rest - b * 100)
    out[p] = ZERO + high
    out[p + 1] = pairs[2 * a]!
    out[p + 2] = pairs[2 * a + 1]!
    out[p + 3] = pairs[2 * b]!
    out[p + 4] = pairs[2 * b + 1]!
    out[p + 5] = pairs[d]!
    out[p + 6] = pairs[d + 1]!
    p += 7
  }
  return p
}

/** The limbs of the number being written (one at a time: writing is synchronous). */
const scratch = new Int32Array(LIMBS)
/** "00" to "99" as ASCII pairs: a limb's digits two at a time. */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => ZERO + (i & 1 ? (i >> 1) % 10 : Math.floor((i >> 1) / 10)))

/** 2^80 and 2^36 as decimal digits (values 0–9), most significant first: one offset and one second of record time. */
const digitsOf = (value: bigint) => Uint8Array.from(value.toString(10), (d) => Number(d))
const OFFSET_STEP = digitsOf(1n << 80n)
const SECOND_STEP = digitsOf(1n << 36n)
/** Past this many seconds between two records, the number is made again rather than stepped to. */
const MAX_SECOND_STEPS = 8
/**
 * Every sequence number has 56 decimal digits: 47 hex digits starting with 2 lie between 2·16^46
 * (about 4.9·10^55) and 3·16^46 (about 7.4·10^55).
 */
export const SEQUENCE_DIGITS = 56

/**
 * One shard's sequence numbers written as decimal ASCII into a buffer, for answers rendered straight
 * to bytes. A record's number is the one before it plus 2^80 per offset and 2^36 per second of
 * record time, so the next record's number (one offset on, the same or a few seconds later: a page
 * read or a request stored in order) is a decimal addition on the previous one's ASCII digits, with
 * no BigInt and no string. Any other step writes the number afresh (`writeSequence`). The digits are exactly
 * `sequenceOf`'s (test/relay/kinesis-units.test.ts).
 */
export class SequenceDigits {
  private readonly base: Float64Array
  /** The current number in ASCII, most significant digit first. */
  private readonly ascii = new Uint8Array(SEQUENCE_DIGITS)
  private offset = -2
  private sec = 0

  constructor(shard: { createdSec: number; meta: { index: number } }) {
    this.base = sequenceBase(shard)
  }

  /** Writes the number of the record at `offset` that arrived at `arrivalMs` into `out` at `at`; returns the position after it. */
  write(out: Uint8Array, at: number, offset: number, arrivalMs: number): number {
    this.moveTo(offset, Math.floor(arrivalMs / 1000))
    setBytes(out, this.ascii, at)
    return at + SEQUENCE_DIGITS
  }

  private moveTo(offset: number, sec: number): void {
    if (offset === this.offset && sec === this.sec) return
    const seconds = sec - this.sec
    // Record time is kept modulo 2^36 s: a step across the wrap (in the year 4147) starts again too.
    let stepped = offset === this.offset + 1 && seconds >= 0 && seconds <= MAX_SECOND_STEPS && Math.floor(sec / 2 ** 36) === Math.floor(this.sec / 2 ** 36)
    if (stepped) {
      stepped = this.add(OFFSET_STEP)
      for (let s = 0; stepped && s < seconds; s++) stepped = this.add(SECOND_STEP)
    }
    if (!stepped) writeSequence(this.ascii, 0, this.base, offset, sec)
    this.offset = offset
    this.sec = sec
  }

  /** Adds a constant's digits to the current number; false when it would carry out of the top digit (never, by the layout). */
  private add(step: Uint8Array): boolean {
    const ascii = this.ascii
    let carry = 0
    let i = SEQUENCE_DIGITS - 1
    // Branch-free carries (a digit sum d of 0–19 carries when d + 6 reaches 16): the digits are
    // random, so a branch per digit would be mispredicted half the time.
    for (let j = step.length - 1; j >= 0; j--, i--) {
      const d = ascii[i]! - ZERO + step[j]! + carry
      carry = (d + 6) >> 4
      ascii[i] = ZERO + d - carry * 10
    }
    for (; carry && i >= 0; i--) {
      const d = ascii[i]! - ZERO + 1
      carry = (d + 6) >> 4
      ascii[i] = ZERO + d - carry * 10
    }
    return carry === 0
  }
}
