/**
 * Write leases: in a cluster one relay at a time writes a stream's shards (its owner), so offsets
 * are assigned in one place and the stream's producer table (exactly-once for devices) lives in one
 * memory. Other relays send their writes to the owner (forward.ts).
 *
 * A lease is a key in a JetStream key-value bucket whose entries age out after `leaseMs`: taken
 * with `create` (which fails while another relay's entry is alive), kept by rewriting it every third
 * of the lease with compare-and-set on its revision (a failed rewrite is tried again at every tick),
 * and lost when a rewrite fails and the entry has aged out or is another relay's (it took the
 * stream after this one went quiet for a whole lease). A relay that dies holds its streams for at
 * most one lease. The shard logs' fence (expected last sequence on every publish) stops a writer
 * that has lost its lease without knowing it from writing past the new owner.
 *
 * A relay that cannot renew (cut off from the cluster's majority) stops writing on its own clock
 * before its entry can age out on the servers: it holds a stream only while its last confirmed
 * rewrite, timed from when it was sent, is younger than two thirds of the lease. So a cut-off writer
 * is quiet — it proposes nothing to a server that may still think itself a leader — before another
 * relay can take the stream, and the fence is the second line, not the only one.
 */
import type { KV } from '@nats-io/kv'

export interface LeaseOptions {
  kv: KV
  relayId: string
  leaseMs: number
  /** A stream this relay held whose lease another relay has taken. */
  onLost?: (streamId: string) => void
  /** Monotonic milliseconds (default performance.now; tests inject a clock). */
  now?: () => number
}

/** Stream ids are `name.hex`; names may hold dots in a row, which keys may not: keys are the id in hex. */
const keyOf = (streamId: string) => `w.${Buffer.from(streamId).toString('hex')}`

export class StreamLeases {
  private readonly o: LeaseOptions
  /** Streams this relay holds: the revision of its entry, and when (monotonic ms) its last confirmed write was sent. */
  private readonly held = new Map<string, { revision: number; confirmedAt: number }>()
  private renewing: NodeJS.Timeout | null = null
  /** A renewal pass is running (a slow server must not stack them up). */
  private inRenewal = false
  private closed = false
  private readonly now: () => number

  constructor(options: LeaseOptions) {
    this.o = options
    this.now = options.now ?? (() => performance.now())
    // Each lease is rewritten once a third of it has passed; one whose rewrite failed is tried again
    // at every tick, so a relay back in touch confirms its leases before they can age out.
    this.renewing = setInterval(() => { void this.renew() }, Math.max(50, Math.floor(options.leaseMs / 12)))
    this.renewing.unref()
  }

  /** Whether this relay may write the stream now: it holds the lease and has confirmed it recently enough. */
  holds(streamId: string): boolean {
    const lease = this.held.get(streamId)
    return lease !== undefined && this.now() - lease.confirmedAt < (this.o.leaseMs * 2) / 3
  }

  /** Whether this relay holds the stream's lease but could not confirm it lately (cut off from the cluster's majority). */
  unconfirmed(streamId: string): boolean {
    return this.held.has(streamId) && !this.holds(streamId)
  }

  /** The relay that holds the stream's lease now, or null when none does. */
  async ownerOf(streamId: string): Promise<string | null> {
    const entry = await this.o.kv.get(keyOf(streamId))
    return entry && entry.operation === 'PUT' ? entry.string() : null
  }

  /** Takes the lease when no relay holds it; true when this relay holds it after. */
  async acquire(streamId: string): Promise<boolean> {
    // Held but not confirmed lately: writable again once a renewal gets through.
    if (this.held.has(streamId)) return this.holds(streamId)
    if (this.closed) return false
    try {
      const sent = this.now()
      const revision = await this.o.kv.create(keyOf(streamId), this.o.relayId)
      this.held.set(streamId, { revision, confirmedAt: sent })
      return true
    } catch {
      return false
    }
  }

  private async renew(): Promise<void> {
    if (this.inRenewal) return
    this.inRenewal = true
    try {
      for (const [streamId, lease] of [...this.held]) await this.renewOne(streamId, lease)
    } finally {
      this.inRenewal = false
    }
  }

  /** Rewrites a lease once a third of it has passed since it was last confirmed (so, after a failed rewrite, at every tick). */
  private async renewOne(streamId: string, lease: { revision: number; confirmedAt: number }): Promise<void> {
    if (this.now() - lease.confirmedAt < this.o.leaseMs / 3) return
    const sent = this.now()
    try {
      const revision = await this.o.kv.update(keyOf(streamId), this.o.relayId, lease.revision)
      // Released meanwhile (the stream was deleted, or the relay stops): not taken back.
      if (this.held.has(streamId)) this.held.set(streamId, { revision, confirmedAt: sent })
      return
    } catch {
      // Taken by another relay, aged out, or NATS unreachable: found out below.
    }
    const entry = await this.o.kv.get(keyOf(streamId)).catch(() => undefined)
    if (!this.held.has(streamId)) return
    if (entry && entry.operation === 'PUT' && entry.string() === this.o.relayId) {
      // Still ours, but reading it extends nothing: the next rewrite confirms it.
      this.held.set(streamId, { revision: entry.revision, confirmedAt: lease.confirmedAt })
      return
    }
    // Unreachable: keep trying (not writing meanwhile). Absent (aged out) or another's: lost; the
    // next write takes it again, reading the log's end first, if no other relay has.
    if (entry === undefined && !this.closed) return
    this.held.delete(streamId)
    this.o.onLost?.(streamId)
  }

  /** Gives up a stream (deleted) or every stream (the relay stops), so another relay can take them at once. */
  async release(streamId?: string): Promise<void> {
    const ids = streamId === undefined ? [...this.held.keys()] : [streamId]
    for (const id of ids) {
      const lease = this.held.get(id)
      if (lease === undefined) continue
      this.held.delete(id)
      await this.o.kv.delete(keyOf(id), { previousSeq: lease.revision }).catch(() => {})
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.renewing) clearInterval(this.renewing)
    this.renewing = null
    await this.release()
  }
}
