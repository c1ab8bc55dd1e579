/**
 * Write leases: in a cluster one relay at a time writes a stream's shards (its owner), so offsets
 * are assigned in one place and the stream's producer table (exactly-once for devices) lives in one
 * memory. Other relays send their writes to the owner (forward.ts).
 *
 * A lease is a key in a JetStream key-value bucket whose entries age out after `leaseMs`: taken
 * with `create` (which fails while another relay's entry is alive), kept by rewriting it every third
 * of the lease with compare-and-set on its revision, and lost when a rewrite fails (another relay
 * took it after this one went quiet for a whole lease). A relay that dies holds its streams for at
 * most one lease. The shard logs' fence (expected last sequence on every publish) stops a writer
 * that has lost its lease without knowing it from writing past the new owner.
 */
import type { KV } from '@nats-io/kv'

export interface LeaseOptions {
  kv: KV
  relayId: string
  leaseMs: number
  /** A stream this relay held whose lease another relay has taken. */
  onLost?: (streamId: string) => void
}

/** Stream ids are `name.hex`; names may hold dots in a row, which keys may not: keys are the id in hex. */
const keyOf = (streamId: string) => `w.${Buffer.from(streamId).toString('hex')}`

export class StreamLeases {
  private readonly o: LeaseOptions
  /** Streams this relay holds, with the revision of its entry. */
  private readonly held = new Map<string, number>()
  private renewing: NodeJS.Timeout | null = null
  private closed = false

  constructor(options: LeaseOptions) {
    this.o = options
    this.renewing = setInterval(() => { void this.renew() }, Math.max(50, Math.floor(options.leaseMs / 3)))
    this.renewing.unref()
  }

  holds(streamId: string): boolean {
    return this.held.has(streamId)
  }

  /** The relay that holds the stream's lease now, or null when none does. */
  async ownerOf(streamId: string): Promise<string | null> {
    const entry = await this.o.kv.get(keyOf(streamId))
    return entry && entry.operation === 'PUT' ? entry.string() : null
  }

  /** Takes the lease when no relay holds it; true when this relay holds it after. */
  async acquire(streamId: string): Promise<boolean> {
    if (this.held.has(streamId)) return true
    if (this.closed) return false
    try {
      const revision = await this.o.kv.create(keyOf(streamId), this.o.relayId)
      this.held.set(streamId, revision)
      return true
    } catch {
      return false
    }
  }

  private async renew(): Promise<void> {
    for (const [streamId, revision] of [...this.held]) {
      try {
        this.held.set(streamId, await this.o.kv.update(keyOf(streamId), this.o.relayId, revision))
      } catch {
        // Taken by another relay, or NATS unreachable for longer than a lease: either way not ours to write.
        const entry = await this.o.kv.get(keyOf(streamId)).catch(() => null)
        if (entry && entry.operation === 'PUT' && entry.string() === this.o.relayId) {
          this.held.set(streamId, entry.revision)
          continue
        }
        if (entry === null && !this.closed) continue // unreachable: keep trying until the lease is surely gone
        this.held.delete(streamId)
        this.o.onLost?.(streamId)
      }
    }
  }

  /** Gives up a stream (deleted) or every stream (the relay stops), so another relay can take them at once. */
  async release(streamId?: string): Promise<void> {
    const ids = streamId === undefined ? [...this.held.keys()] : [streamId]
    for (const id of ids) {
      const revision = this.held.get(id)
      if (revision === undefined) continue
      this.held.delete(id)
      await this.o.kv.delete(keyOf(id), { previousSeq: revision }).catch(() => {})
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.renewing) clearInterval(this.renewing)
    this.renewing = null
    await this.release()
  }
}
