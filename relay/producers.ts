/**
 * Per-record idempotency for device batches: which (device, epoch, batch sequence, index) a stream
 * already holds. A resent batch is completed, not duplicated. The state is rebuilt after kill -9
 * from a snapshot plus the log written after it, where every record keeps its producer identity.
 */

/** How many of a producer's most recent batches are remembered (well above any agent's send window). */
export const BATCH_MEMORY = 1024
/** Epochs remembered per device: a new outbox makes a new epoch, and the old one can no longer resend. */
export const EPOCHS_PER_DEVICE = 2

/** A set of record indexes in one batch; grows when an index beyond its size arrives (as in replay). */
class Bits {
  words: Uint32Array
  constructor(count: number) {
    this.words = new Uint32Array(Math.ceil(count / 32))
  }
  has(i: number): boolean {
    return ((this.words[i >>> 5] ?? 0) & (1 << (i & 31))) !== 0
  }
  set(i: number): void {
    const word = i >>> 5
    if (word >= this.words.length) {
      const grown = new Uint32Array(word + 1)
      grown.set(this.words)
      this.words = grown
    }
    this.words[word]! |= 1 << (i & 31)
  }
}

interface ProducerBatches {
  batches: Map<number, Bits>
  highest: number
}

export interface ProducerSnapshot {
  /** Per shard key, the log offset the snapshot covers up to (exclusive). */
  covered: Record<string, number>
  producers: Record<string, [number, number[]][]>
}

export class ProducerTable {
  private readonly producers = new Map<string, ProducerBatches>()
  /** Per device, its epochs in the order they were first seen. */
  private readonly epochs = new Map<string, string[]>()

  private static key(device: string, epoch: bigint): string {
    return `${device}\u0000${epoch}`
  }

  private batch(device: string, epoch: bigint, seq: number, size: number): Bits {
    const key = ProducerTable.key(device, epoch)
    let p = this.producers.get(key)
    if (!p) {
      p = { batches: new Map(), highest: -1 }
      this.producers.set(key, p)
      const seen = this.epochs.get(device) ?? []
      seen.push(key)
      // A device that keeps changing epochs cannot grow this table without bound.
      while (seen.length > EPOCHS_PER_DEVICE) this.producers.delete(seen.shift()!)
      this.epochs.set(device, seen)
    }
    let bits = p.batches.get(seq)
    if (!bits) {
      bits = new Bits(Math.max(size, 1))
      p.batches.set(seq, bits)
      if (seq > p.highest) p.highest = seq
      if (p.batches.size > BATCH_MEMORY) {
        // Forget the oldest batches; a producer never resends one that far behind its newest.
        const floor = p.highest - BATCH_MEMORY
        for (const s of p.batches.keys()) if (s <= floor) p.batches.delete(s)
      }
    }
    return bits
  }

  has(device: string, epoch: bigint, seq: number, index: number): boolean {
    return this.producers.get(ProducerTable.key(device, epoch))?.batches.get(seq)?.has(index) ?? false
  }

  /** What is already stored of one batch, looked up once for all of its records. */
  seen(device: string, epoch: bigint, seq: number): { has(index: number): boolean } | undefined {
    return this.producers.get(ProducerTable.key(device, epoch))?.batches.get(seq)
  }

  /** Marks the given records of one batch as stored. */
  markMany(device: string, epoch: bigint, seq: number, indices: ArrayLike<number>, size: number): void {
    if (indices.length === 0) return
    const bits = this.batch(device, epoch, seq, Math.max(size, indices[indices.length - 1]! + 1))
    for (let i = 0; i < indices.length; i++) bits.set(indices[i]!)
  }

  /** Marks one record as stored. `size` is the batch's record count (or more). */
  mark(device: string, epoch: bigint, seq: number, index: number, size: number): void {
    this.batch(device, epoch, seq, Math.max(size, index + 1)).set(index)
  }

  snapshot(covered: Record<string, number>): ProducerSnapshot {
    const producers: ProducerSnapshot['producers'] = {}
    for (const [key, p] of this.producers) {
      producers[key] = [...p.batches].map(([seq, bits]) => [seq, Array.from(bits.words)])
    }
    return { covered, producers }
  }

  load(snapshot: ProducerSnapshot): void {
    for (const [key, batches] of Object.entries(snapshot.producers)) {
      const p: ProducerBatches = { batches: new Map(), highest: -1 }
      for (const [seq, words] of batches) {
        const bits = new Bits(words.length * 32)
        bits.words.set(words)
        p.batches.set(seq, bits)
        if (seq > p.highest) p.highest = seq
      }
      this.producers.set(key, p)
      const device = key.slice(0, key.indexOf('\u0000'))
      const seen = this.epochs.get(device) ?? []
      seen.push(key)
      this.epochs.set(device, seen)
    }
  }

  get size(): number {
    return this.producers.size
  }
}
