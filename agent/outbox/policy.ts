/**
 * Per-stream policy: a byte cap with drop-oldest or reject-new when it is reached, an age limit (TTL)
 * on the outbox clock, and a priority. Records already in a formed batch are never dropped: the
 * batch's resend must stay the same batch.
 */
import { HEADER_SIZE } from '../../shared/frame.js'
import { OutboxFullError } from '../../shared/errors.js'
import type { StreamPolicy } from '../config.js'
import type { Drops } from './drops.js'
import type { Ledger, LedgerState } from './ledger.js'
import type { Records } from './records.js'
import type { DropReason, OutboxInput } from './types.js'

const DEFAULT_POLICY: Omit<StreamPolicy, 'name'> = { priority: 0, maxBytes: 0, maxAgeSeconds: 0, onFull: 'drop-oldest' }

/** Rows read per step when dropping or expiring; each expiry step is its own small transaction. */
const CHUNK = 1000

export class Policy {
  private readonly policies: Record<string, StreamPolicy>
  private readonly records: Records
  private readonly drops: Drops

  constructor(policies: Record<string, StreamPolicy>, records: Records, drops: Drops) {
    this.policies = policies
    this.records = records
    this.drops = drops
  }

  of(stream: string): StreamPolicy {
    return this.policies[stream] ?? { name: stream, ...DEFAULT_POLICY }
  }

  /** Streams highest priority first (the order batches are formed in). */
  byPriority(names: string[]): string[] {
    return names.sort((a, b) => this.of(b).priority - this.of(a).priority)
  }

  /**
   * Inside the commit: makes room under each stream's cap for one producer's records (`sizes` are
   * their frame bytes), or refuses the group whole. Drop-oldest streams lose their oldest records
   * not yet in a batch; reject-new streams refuse.
   */
  makeRoom(draft: LedgerState, rows: readonly OutboxInput[], sizes: readonly number[]): OutboxFullError | null {
    const byStream = new Map<string, number>()
    rows.forEach((r, i) => byStream.set(r.stream, (byStream.get(r.stream) ?? 0) + sizes[i]!))
    for (const [name, bytes] of byStream) {
      const policy = this.of(name)
      const s = draft.stream(name)
      if (policy.maxBytes <= 0 || s.bytes + bytes <= policy.maxBytes) continue
      if (policy.onFull === 'reject-new' || bytes > policy.maxBytes) {
        return new OutboxFullError(name, `stream ${name} holds ${s.bytes} bytes in the outbox; ${bytes} more would pass its cap of ${policy.maxBytes}`)
      }
      // Records already in formed batches cannot be dropped: refuse before dropping anything in vain.
      let formedBytes = 0
      for (const b of draft.formed.values()) if (b.stream === name) formedBytes += b.bytes - HEADER_SIZE
      const needed = s.bytes + bytes - policy.maxBytes
      if (s.bytes - formedBytes < needed) return new OutboxFullError(name, `stream ${name} cannot make room under its cap of ${policy.maxBytes} bytes: the rest is on its way to the relay`)
      this.dropOldest(draft, name, needed, 'stream-cap')
    }
    return null
  }

  /**
   * Inside a transaction: frees `needed` bytes of `stream` (or of the drop-oldest streams, lowest
   * priority first, when null) by deleting the oldest records not in a formed batch. Returns the bytes freed.
   */
  dropOldest(draft: LedgerState, stream: string | null, needed: number, reason: DropReason): number {
    let freed = 0
    const names = stream ? [stream] : [...draft.streams.keys()].filter((n) => this.of(n).onFull === 'drop-oldest')
      .sort((a, b) => this.of(a).priority - this.of(b).priority)
    for (const name of names) {
      while (freed < needed) {
        const victims = this.records.sizes(name, draft.stream(name).formedUpTo, CHUNK)
        if (!victims.length) break
        let n = 0
        let bytes = 0
        for (const v of victims) {
          n++
          bytes += v.size
          if (freed + bytes >= needed) break
        }
        this.drop(draft, name, victims[0]!.id, victims[n - 1]!.id, n, bytes, reason)
        freed += bytes
      }
      if (freed >= needed) break
    }
    return freed
  }

  /** Drops records past their stream's age limit (not those in a formed batch), a chunk per transaction. */
  expire(ledger: Ledger, now: () => number): number {
    let dropped = 0
    for (const name of [...ledger.state.streams.keys()]) {
      const maxAgeMs = this.of(name).maxAgeSeconds * 1000
      if (maxAgeMs <= 0) continue
      for (;;) {
        const s = ledger.state.streams.get(name)
        if (!s || s.count === 0) break
        const cutoff = now() - maxAgeMs
        const oldest = this.records.sizes(name, s.formedUpTo, CHUNK)
        let n = 0
        let bytes = 0
        while (n < oldest.length && oldest[n]!.mono < cutoff) bytes += oldest[n++]!.size
        if (n === 0) break
        // One chunk per transaction keeps each commit, and the WAL, small.
        ledger.transact((draft) => this.drop(draft, name, oldest[0]!.id, oldest[n - 1]!.id, n, bytes, 'expired'))
        dropped += n
        if (n < oldest.length) break
      }
    }
    return dropped
  }

  /** Inside a transaction: deletes a run of a stream's records and counts them as dropped. */
  private drop(draft: LedgerState, stream: string, firstId: number, lastId: number, n: number, bytes: number, reason: DropReason): void {
    this.records.deleteRange(stream, firstId, lastId)
    this.drops.count(stream, reason, n)
    const s = draft.stream(stream)
    s.count -= n
    s.bytes -= bytes
    draft.events.push({ kind: 'dropped', stream, reason, n })
  }
}
