/**
 * The router: which open shard a record goes to, for every path a record enters by (a device batch,
 * PutRecord(s), the throughput meter before them). A record's hash key is the MD5 of its partition
 * key as a 128-bit big-endian integer, or its explicit hash key; it goes to the open shard whose
 * range holds it. One implementation of that rule, so the three paths cannot disagree.
 */
import { codec as defaultCodec, u128BEToBigint, type BatchScan, type Codec } from '../hardware/index.js'
import type { ShardState, StreamState } from './streams.js'

/** What routing needs of a record that arrives one by one (PutRecord(s)). */
export interface RoutableRecord {
  partitionKey: string
  explicitHashKey?: bigint
}

export class Router {
  private readonly codec: Codec
  /** Routing bounds per open-shard list; a reshard makes a new list, so a stale entry is never used. */
  private readonly bounds = new WeakMap<ShardState[], Buffer>()

  constructor(codec: Codec = defaultCodec) {
    this.codec = codec
  }

  /** Each record's slot in `state.open`, for a scanned device batch (hashed by the codec in one call). */
  routeBatch(state: StreamState, frame: Buffer, scan: BatchScan): Uint16Array {
    return this.codec.hashRoute(frame, scan.fields, this.boundsOf(state.open))
  }

  /**
   * Each record's open shard, from where its partition key's bytes lie in `buf` (a batch scan's table,
   * BATCH_STRIDE fields per record): hashed and routed by the codec in one call, as a device batch is.
   */
  routeKeys(state: StreamState, buf: Buffer, fields: Uint32Array): ShardState[] {
    const open = state.open
    const slots = this.codec.hashRoute(buf, fields, this.boundsOf(open))
    const shards = new Array<ShardState>(slots.length)
    for (let i = 0; i < slots.length; i++) shards[i] = open[slots[i]!]!
    return shards
  }

  /** Each record's open shard, hashing the keys without an explicit hash key in one call. */
  routeRecords(state: StreamState, records: readonly RoutableRecord[]): ShardState[] {
    const needHash: string[] = []
    for (const r of records) if (r.explicitHashKey === undefined) needHash.push(r.partitionKey)
    const hashes = needHash.length ? this.codec.md5Many(needHash) : null
    const shards = new Array<ShardState>(records.length)
    let h = 0
    for (let i = 0; i < records.length; i++) {
      shards[i] = this.route(state, records[i]!.explicitHashKey ?? u128BEToBigint(hashes!, 16 * h++))
    }
    return shards
  }

  /** The open shard whose hash range holds `hashKey`: the last one starting at or below it. */
  route(state: StreamState, hashKey: bigint): ShardState {
    const open = state.open
    let lo = 0
    let hi = open.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (open[mid]!.start <= hashKey) lo = mid
      else hi = mid - 1
    }
    return open[lo]!
  }

  /** The open shards' starting hash keys as 16-byte big-endian values, the codec's form, kept per shard list. */
  private boundsOf(open: ShardState[]): Buffer {
    let bounds = this.bounds.get(open)
    if (!bounds) {
      bounds = Buffer.alloc(open.length * 16)
      for (let k = 0; k < open.length; k++) {
        bounds.writeBigUInt64BE(open[k]!.start >> 64n, k * 16)
        bounds.writeBigUInt64BE(open[k]!.start & 0xffff_ffff_ffff_ffffn, k * 16 + 8)
      }
      this.bounds.set(open, bounds)
    }
    return bounds
  }
}
