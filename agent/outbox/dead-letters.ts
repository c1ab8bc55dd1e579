/**
 * Dead letters: records the relay refused (or that no batch can hold), kept with the verdict so an
 * operator can see and replay them. They hold at most a tenth of the outbox; past that the oldest
 * go, counted as drops.
 */
import type Database from 'better-sqlite3'
import type { Clock } from '../../hardware/index.js'
import type { Drops } from './drops.js'
import type { Ledger, LedgerState } from './ledger.js'
import type { Records } from './records.js'
import type { DeadLetter, Refusal } from './types.js'

/** The stream under which dead letters trimmed for space are counted. */
const TRIMMED = '(dead letters)'

export interface DeadCount {
  stream: string
  code: string
  count: number
}

export class DeadLetters {
  private readonly db: Database.Database
  private readonly records: Records
  private readonly drops: Drops
  private readonly capBytes: number
  private readonly clock: Clock
  private readonly s

  constructor(db: Database.Database, records: Records, drops: Drops, outboxBytes: number, clock: Clock) {
    this.db = db
    this.records = records
    this.drops = drops
    this.capBytes = Math.floor(outboxBytes / 10)
    this.clock = clock
    this.s = {
      insert: db.prepare('INSERT OR IGNORE INTO dead_letters (stream, partition_key, data, captured_ms, code, message, batch_seq, batch_index, dead_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      count: db.prepare('INSERT INTO dead_counts (stream, code, count) VALUES (?, ?, 1) ON CONFLICT(stream, code) DO UPDATE SET count = count + 1'),
      oldest: db.prepare('SELECT id, size FROM dead_letters ORDER BY id LIMIT 100'),
      deleteOne: db.prepare('DELETE FROM dead_letters WHERE id = ?'),
      bytes: db.prepare('SELECT COALESCE(SUM(size), 0) FROM dead_letters').pluck(),
      counts: db.prepare('SELECT stream, code, count FROM dead_counts'),
    }
  }

  /** Bytes of data the dead letters hold (for the ledger at start). */
  storedBytes(): number {
    return this.s.bytes.get() as number
  }

  counts(): DeadCount[] {
    return this.s.counts.all() as DeadCount[]
  }

  /** Dead letters, oldest first, `limit` at a time after id `after`; data only when asked. */
  list(limit: number, after: number, withData: boolean): DeadLetter[] {
    return this.db.prepare(`SELECT id, stream, partition_key AS partitionKey, ${withData ? 'data' : 'NULL AS data'}, code, message, batch_seq AS batchSeq, batch_index AS batchIndex FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?`).all(after, limit) as DeadLetter[]
  }

  /**
   * The relay refused records of batch `seq` (or the whole batch, when `refusals` is null): they are
   * copied here with the relay's code, and leave the outbox with the rest of the batch when it is
   * acknowledged; they never hold back the records behind them.
   */
  refuse(ledger: Ledger, seq: number, refusals: Refusal[] | null, batchCode?: { code: string; message: string }): void {
    ledger.transact((draft) => {
      const b = draft.formed.get(seq)
      if (!b) {
        // Acknowledged and deleted already: keep the verdict, without the data.
        for (const r of refusals ?? [{ index: -1, ...(batchCode ?? { code: 'REJECTED', message: 'rejected' }) }]) {
          if (this.s.insert.run('', null, null, null, r.code, r.message, seq, r.index, this.clock.wallMs(), 0).changes) this.s.count.run('', r.code)
        }
        return
      }
      const ids = this.records.ids(b.stream, b.firstId, b.lastId)
      if (refusals === null) {
        ids.forEach((id, i) => this.copy(draft, b.stream, id, batchCode?.code ?? 'REJECTED', batchCode?.message ?? 'batch rejected', seq, i))
      } else {
        for (const r of refusals) {
          const id = ids[r.index]
          if (id !== undefined) this.copy(draft, b.stream, id, r.code, r.message, seq, r.index)
        }
      }
    })
  }

  /**
   * Inside a transaction: copies one record here (its data too, unless the file is at its cap, then
   * the verdict alone). The record itself stays until its batch is acknowledged, so a resend of the
   * batch is still the same batch.
   */
  copy(draft: LedgerState, stream: string, id: number, code: string, message: string, seq: number | null, index: number | null): void {
    const row = this.records.one(id)
    const insert = (withData: boolean) => this.s.insert.run(stream, row?.partitionKey ?? null, withData ? row?.data ?? null : null, row?.capturedMs ?? null, code, message, seq, index, this.clock.wallMs(), withData ? row?.size ?? 0 : 0)
    let withData = true
    let info
    try {
      info = insert(true)
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_FULL') throw err
      withData = false
      info = insert(false)
    }
    if (info.changes === 0) return // already dead-lettered (a resent batch refused again)
    this.s.count.run(stream, code)
    draft.deadBytes += withData && row ? row.size : 0
    this.trim(draft)
    draft.events.push({ kind: 'deadLetter', stream, code, message, batch: seq, index })
  }

  /** The oldest go first, each one holding data counted as a drop. */
  private trim(draft: LedgerState): void {
    while (draft.deadBytes > this.capBytes) {
      const oldest = this.s.oldest.all() as { id: number; size: number }[]
      if (!oldest.length) break
      for (const d of oldest) {
        this.s.deleteOne.run(d.id)
        draft.deadBytes -= d.size
        if (d.size) this.drops.count(TRIMMED, 'dead-letter-cap', 1)
        if (draft.deadBytes <= this.capBytes) break
      }
    }
  }
}
