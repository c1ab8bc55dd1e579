/**
 * What the outbox keeps in memory about its database: per-stream tallies, the formed batches, the
 * dead letters' bytes and the next batch sequence.
 *
 * Every change is made on a draft inside one SQLite transaction; the draft replaces the ledger only
 * once that transaction has committed, and the events it gathered (drops, dead letters) are announced
 * then. A transaction that rolls back leaves nothing to undo: its draft is simply dropped.
 */
import type Database from 'better-sqlite3'
import { ChunkDamagedError } from './records.js'
import type { DropReason, FormedBatch } from './types.js'

/** Damaged chunks dropped in one change before it gives up (each drop removes one: it always progresses). */
const MAX_REPAIRS = 1000

export interface StreamTally {
  count: number
  bytes: number
  /** Highest record id already placed in a formed batch. */
  formedUpTo: number
}

export type OutboxEvent =
  | { kind: 'dropped'; stream: string; reason: DropReason; n: number }
  | { kind: 'deadLetter'; stream: string; code: string; message: string; batch: number | null; index: number | null }

export class LedgerState {
  readonly streams: Map<string, StreamTally>
  readonly formed: Map<number, FormedBatch>
  deadBytes: number
  nextSeq: number
  /** Announced once the transaction that made this state has committed. */
  readonly events: OutboxEvent[] = []

  constructor(streams = new Map<string, StreamTally>(), formed = new Map<number, FormedBatch>(), deadBytes = 0, nextSeq = 0) {
    this.streams = streams
    this.formed = formed
    this.deadBytes = deadBytes
    this.nextSeq = nextSeq
  }

  stream(name: string): StreamTally {
    let s = this.streams.get(name)
    if (!s) {
      s = { bytes: 0, count: 0, formedUpTo: 0 }
      this.streams.set(name, s)
    }
    return s
  }

  backlog(): number {
    let n = 0
    for (const s of this.streams.values()) n += s.count
    return n
  }

  copy(): LedgerState {
    return new LedgerState(new Map([...this.streams].map(([k, v]) => [k, { ...v }])), new Map(this.formed), this.deadBytes, this.nextSeq)
  }
}

export class Ledger {
  private current: LedgerState
  private readonly db: Database.Database
  private readonly announce: (event: OutboxEvent) => void

  private readonly settle: (draft: LedgerState) => void
  private readonly dropDamaged: (draft: LedgerState, err: ChunkDamagedError) => void

  /**
   * `settle` runs at the end of every transaction, inside it, on the draft as it will commit.
   * `dropDamaged` removes a chunk found damaged (in a transaction of its own), after which the
   * change that found it runs again.
   */
  constructor(db: Database.Database, initial: LedgerState, announce: (event: OutboxEvent) => void, settle: (draft: LedgerState) => void = () => {}, dropDamaged: (draft: LedgerState, err: ChunkDamagedError) => void = () => {}) {
    this.db = db
    this.current = initial
    this.announce = announce
    this.settle = settle
    this.dropDamaged = dropDamaged
  }

  /** The committed state: read it, never change it (changes go through `transact`). */
  get state(): LedgerState {
    return this.current
  }

  /**
   * Runs `change` in one transaction on a draft; the draft becomes the state only if it commits. A
   * damaged chunk met on the way is dropped (counted) and the change runs again from the start.
   */
  transact<T>(change: (draft: LedgerState) => T): T {
    for (let repairs = 0; ; repairs++) {
      try {
        return this.once(change)
      } catch (err) {
        if (!(err instanceof ChunkDamagedError) || repairs >= MAX_REPAIRS) throw err
        this.repair(err)
      }
    }
  }

  /** Drops the damaged chunk `err` names, in a transaction of its own. */
  repair(err: ChunkDamagedError): void {
    this.once((draft) => this.dropDamaged(draft, err))
  }

  private once<T>(change: (draft: LedgerState) => T): T {
    const draft = this.current.copy()
    const result = this.db.transaction(() => {
      const r = change(draft)
      this.settle(draft)
      return r
    })()
    this.current = draft
    for (const event of draft.events.splice(0)) this.announce(event)
    return result
  }
}
