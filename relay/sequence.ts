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
const ZERO = 0x30

/**
 * One shard's sequence numbers written as decimal ASCII into a buffer, for answers rendered straight
 * to bytes. A record's number is the one before it plus 2^80 per offset and 2^36 per second of
 * record time, so the next record's number (one offset on, the same or a few seconds later: a page
 * read or a request stored in order) is a decimal addition on the previous one's ASCII digits, with
 * no BigInt and no string. Any other step starts again from `encodeSequence`. The digits are exactly
 * `sequenceOf`'s (test/relay/kinesis-units.test.ts).
 */
export class SequenceDigits {
  private readonly createdSec: number
  private readonly index: number
  /** The current number in ASCII, most significant digit first. */
  private readonly ascii = new Uint8Array(SEQUENCE_DIGITS)
  private offset = -2
  private sec = 0

  constructor(shard: { createdSec: number; meta: { index: number } }) {
    this.createdSec = shard.createdSec
    this.index = shard.meta.index
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
    if (!stepped) {
      const text = encodeSequence({ shardCreatedSec: this.createdSec, shardIndex: this.index, offset, recordSec: sec })
      if (text.length !== SEQUENCE_DIGITS) throw new RangeError(`sequence number ${text} has ${text.length} digits, not ${SEQUENCE_DIGITS}`)
      for (let i = 0; i < SEQUENCE_DIGITS; i++) this.ascii[i] = text.charCodeAt(i)
    }
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
