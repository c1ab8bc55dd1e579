/**
 * Shard ids as Kinesis reads them: the part after the first hyphen (the whole id when it has none)
 * is the shard's index in decimal, leading zeros allowed, so `shardId-000000000001`, `shardId-1`,
 * `abc-1` and `1` all name the same shard. An index that is not all digits or is past 2^31-1 names
 * no shard, and is refused with its own wording ("Could not find shard …"), before the stream is
 * looked up. Answers always name a shard in the canonical `shardId-%012d` form.
 */
import { shardIdOf } from '../shardmap.js'

const MAX_SHARD_INDEX = 2147483647
const DIGITS = /^\d+$/

/** The shard index an id names, or null when it names none. */
export function shardIndexOf(id: string): number | null {
  const hyphen = id.indexOf('-')
  const digits = hyphen < 0 ? id : id.slice(hyphen + 1)
  if (!DIGITS.test(digits)) return null
  const index = Number(digits)
  return index <= MAX_SHARD_INDEX ? index : null
}

/** The canonical id of the shard an id names, or null when it names none. */
export function canonicalShardId(id: string): string | null {
  const index = shardIndexOf(id)
  return index === null ? null : shardIdOf(index)
}
