/**
 * Batch forming: the oldest records of the highest-priority stream that has any, in capture order,
 * within the record and byte limits. A batch's identity (sequence, stream, first and last record id)
 * is committed before it is sent, so a resend after any crash is the same batch; it leaves with its
 * records only when the relay has acknowledged it.
 */
import type Database from 'better-sqlite3'
import { ErrorCode } from '../../shared/errors.js'
import { HEADER_SIZE } from '../../shared/frame.js'
import { Limits } from '../../shared/limits.js'
import type { DeadLetters } from './dead-letters.js'
import type { Ledger, LedgerState } from './ledger.js'
import type { Policy } from './policy.js'
import type { Records } from './records.js'
import type { Store } from './store.js'
import { kinesisBytes, type BatchRow, type FormedBatch } from './types.js'

export class Batches {
  private readonly store: Store
  private readonly records: Records
  private readonly deadLetters: DeadLetters
  private readonly policy: Policy
  private readonly s

  constructor(store: Store, records: Records, deadLetters: DeadLetters, policy: Policy) {
    this.store = store
    this.records = records
    this.deadLetters = deadLetters
    this.policy = policy
    const db: Database.Database = store.db
    this.s = {
      insert: db.prepare('INSERT INTO batches (seq, stream, first_id, last_id, count, bytes) VALUES (?, ?, ?, ?, ?, ?)'),
      delete: db.prepare('DELETE FROM batches WHERE seq = ?'),
      all: db.prepare('SELECT seq, stream, first_id AS firstId, last_id AS lastId, count, bytes FROM batches ORDER BY seq'),
      maxSeq: db.prepare('SELECT MAX(seq) FROM batches').pluck(),
    }
  }

  /** The batches formed and not yet acknowledged, as stored (for the ledger at start). */
  stored(): FormedBatch[] {
    return this.s.all.all() as FormedBatch[]
  }

  /** Formed batches not being acknowledged, in sequence order: the uplink resends these first. */
  unacknowledged(state: LedgerState, acking: readonly number[]): FormedBatch[] {
    const skip = new Set(acking)
    return [...state.formed.values()].filter((b) => !skip.has(b.seq)).sort((a, b) => a.seq - b.seq)
  }

  /** Forms the next batch and commits its identity; a record that fits no batch is dead-lettered at once. */
  form(ledger: Ledger, maxRecords: number, maxBytes: number): FormedBatch | null {
    return ledger.transact((draft) => this.formIn(draft, maxRecords, maxBytes))
  }

  /**
   * Inside a transaction (a group commit's, or `form`'s own): forms the next batch of the oldest
   * records of the highest-priority stream that has unformed ones, on `draft`; null when there is none.
   */
  formIn(draft: LedgerState, maxRecords: number, maxBytes: number): FormedBatch | null {
    const ready = [...draft.streams].filter(([, s]) => s.count > 0).map(([name]) => name)
    for (const name of this.policy.byPriority(ready)) {
      for (;;) {
        const s = draft.stream(name)
        // One more than a batch holds: whether the batch ends on a chunk's end or cuts it.
        const rows = this.records.sizes(name, s.formedUpTo, maxRecords + 1)
        if (!rows.length) break
        let bytes = HEADER_SIZE
        let count = 0
        let full = false
        const tooLarge: typeof rows = []
        for (const row of rows) {
          if (HEADER_SIZE + row.size > maxBytes || kinesisBytes(row.size, row.hashed === 1) > Limits.maxRecordBytes) {
            if (count === 0) { tooLarge.push(row); continue }
            full = true
            break
          }
          if (count === maxRecords || bytes + row.size > maxBytes) { full = true; break }
          bytes += row.size
          count++
        }
        // A full batch ends at the last chunk's end it holds (when it holds one), so that its
        // acknowledgement deletes whole chunks and none is written again without its head.
        if (full) {
          let end = count
          while (end > 0 && !rows[tooLarge.length + end - 1]!.end) end--
          if (end > 0) {
            for (let i = end; i < count; i++) bytes -= rows[tooLarge.length + i]!.size
            count = end
          }
        }
        const inBatch = rows.slice(tooLarge.length, tooLarge.length + count)
        for (const row of tooLarge) {
          const recordBytes = kinesisBytes(row.size, row.hashed === 1)
          const why = recordBytes > Limits.maxRecordBytes
            ? `record is ${recordBytes} bytes, over Kinesis's limit of ${Limits.maxRecordBytes}`
            : `record takes ${row.size} bytes in a batch, over the batch limit of ${maxBytes}`
          this.deadLetters.copy(draft, name, row.id, ErrorCode.RECORD_TOO_LARGE, why, null, null)
          this.records.deleteOne(name, row.id)
          s.count--
          s.bytes -= row.size
          s.formedUpTo = Math.max(s.formedUpTo, row.id)
        }
        if (inBatch.length) {
          const formed: FormedBatch = { seq: draft.nextSeq, stream: name, firstId: inBatch[0]!.id, lastId: inBatch[inBatch.length - 1]!.id, count: inBatch.length, bytes }
          // The batch's row keeps the next sequence (settle keeps it when no batch is left).
          this.s.insert.run(formed.seq, name, formed.firstId, formed.lastId, formed.count, formed.bytes)
          draft.nextSeq++
          s.formedUpTo = formed.lastId
          draft.formed.set(formed.seq, formed)
          return formed
        }
        // Only records too large for any batch were there: they are dead letters now; look again.
        if (!tooLarge.length) break
      }
    }
    return null
  }

  /**
   * At the end of every transaction: with no batch left in the table, the next sequence is kept in
   * the meta row, so that no restart sends a sequence the relay has already seen (it would drop the
   * batch as a duplicate). While batches are formed, the highest of them says it, and the meta row,
   * a page of its own, is not written with every commit.
   */
  settle(draft: LedgerState): void {
    if (draft.formed.size === 0 && Number(this.store.meta('next_seq') ?? '0') < draft.nextSeq) this.store.setMeta('next_seq', String(draft.nextSeq))
  }

  /** The next batch sequence at start: past the meta row's and every stored batch's. */
  nextSeq(): number {
    const stored = this.s.maxSeq.get() as number | null
    return Math.max(Number(this.store.meta('next_seq') ?? '0'), stored === null ? 0 : stored + 1)
  }

  rows(batch: FormedBatch): BatchRow[] {
    return this.records.range(batch.stream, batch.firstId, batch.lastId)
  }

  /** Inside a transaction: an acknowledged batch leaves, with its records. */
  remove(draft: LedgerState, seq: number): void {
    const b = draft.formed.get(seq)
    if (!b) return
    const { n, bytes } = this.records.sumRange(b.stream, b.firstId, b.lastId)
    this.records.deleteRange(b.stream, b.firstId, b.lastId)
    this.s.delete.run(seq)
    const s = draft.stream(b.stream)
    s.count -= n
    s.bytes -= bytes
    draft.formed.delete(seq)
  }
}
