/**
 * The durable outbox: every record the device captures is committed here before any producer is told
 * "stored", and leaves only when the relay has acknowledged it (or it is dropped by policy and
 * counted, or dead-lettered with its reason).
 *
 * This class is the outbox's one face; the parts beside it own the file (store, migrations), the
 * group commit, batch forming, dead letters, per-stream policy and the figures. SQLite in WAL mode,
 * one writer, synchronous=FULL by default, a hard cap on the file with the WAL bounded.
 *
 * Ages are measured on the outbox's own monotonic clock (agent running time, persisted across
 * restarts), so a wall-clock jump changes neither ordering nor the age limit.
 */
import { EventEmitter } from 'node:events'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { StreamPolicy } from '../config.js'
import { runningTime, systemClock, type Clock } from '../../hardware/index.js'
import { Batches } from './batches.js'
import { GroupCommit, type BatchFormer } from './commit.js'
import { DeadLetters } from './dead-letters.js'
import { Drops } from './drops.js'
import { Ledger, LedgerState, type OutboxEvent } from './ledger.js'
import { Policy } from './policy.js'
import { ChunkDamagedError, Records } from './records.js'
import { outboxStats, type OutboxStats } from './stats.js'
import { Store } from './store.js'
import type { LogFn } from '../log.js'
import type { Alarm, BatchRow, DeadLetter, FormedBatch, OutboxInput, OutboxOptions, Refusal } from './types.js'

/**
 * Events: 'stored' (records committed), 'acked' (batches deleted), 'formed' (batches formed inside a
 * group commit), 'dropped' (stream, reason, n) and 'deadLetter' (stream, code), each once the change
 * is on disk.
 */
export class Outbox extends EventEmitter {
  readonly path: string
  readonly epoch: bigint
  readonly alarms: Alarm[]
  /** The outbox clock: agent running time in ms, carried across restarts. */
  readonly monoNow: () => number
  private readonly store: Store
  private readonly ledger: Ledger
  private readonly records: Records
  private readonly drops: Drops
  private readonly policies: Policy
  private readonly dead: DeadLetters
  private readonly batches: Batches
  private readonly committer: GroupCommit
  private readonly log: LogFn
  private readonly clock: Clock
  private closed = false

  constructor(options: OutboxOptions) {
    super()
    const clock = options.clock ?? systemClock
    this.clock = clock
    this.log = options.log ?? (() => {})
    this.path = options.path
    this.store = new Store({ path: options.path, maxBytes: options.maxBytes, synchronous: options.synchronous, clock, log: this.log })
    this.alarms = this.store.alarms
    this.epoch = this.store.epoch()
    const db = this.store.db
    this.records = new Records(db)
    // The clock carries on from the meta row or the latest chunk, whichever is further on.
    this.monoNow = runningTime(clock, Math.max(Number(this.store.meta('mono_ms') ?? '0'), this.records.maxMono))
    this.drops = new Drops(db)
    this.policies = new Policy(options.policies, this.records, this.drops)
    this.dead = new DeadLetters(db, this.records, this.drops, options.maxBytes, clock)
    this.batches = new Batches(this.store, this.records, this.dead, this.policies)

    const state = new LedgerState(new Map(), new Map(), this.dead.storedBytes(), this.batches.nextSeq())
    for (const r of this.records.perStream()) state.streams.set(r.stream, { count: r.count, bytes: r.bytes, formedUpTo: 0 })
    for (const b of this.batches.stored()) {
      state.formed.set(b.seq, b)
      const s = state.stream(b.stream)
      s.formedUpTo = Math.max(s.formedUpTo, b.lastId)
    }
    this.ledger = new Ledger(db, state, (event) => this.announce(event), (draft) => this.batches.settle(draft), (draft, err) => this.dropDamaged(draft, err))

    this.committer = new GroupCommit({
      commitIntervalMs: options.commitIntervalMs, commitRows: options.commitRows, maxBytes: options.maxBytes, ackHoldMs: options.ackHoldMs, clock, monoNow: this.monoNow, log: this.log,
      committed: (stored, acked, formed) => {
        if (stored) this.emit('stored', stored)
        if (acked) this.emit('acked', acked)
        if (formed) this.emit('formed', formed)
      },
    }, { store: this.store, ledger: this.ledger, records: this.records, policy: this.policies, batches: this.batches })
  }

  policy(stream: string): StreamPolicy {
    return this.policies.of(stream)
  }

  /** Stores records; resolves with their ids once the group commit holding them is on disk. */
  enqueue(rows: OutboxInput[]): Promise<number[]> {
    if (this.closed) return Promise.reject(new TributaryError(ErrorCode.STORAGE_FAILED, 'the outbox is closed'))
    return this.committer.enqueue(rows)
  }

  commit(): void {
    this.committer.commit()
  }

  /** Batches formed but not yet acknowledged, in sequence order: the uplink resends these first. */
  formedBatches(): FormedBatch[] {
    return this.batches.unacknowledged(this.ledger.state, this.committer.acking)
  }

  /**
   * Forms the next batch: the oldest records of the highest-priority stream that has any, within
   * the limits. Its identity is committed before it is returned.
   */
  formBatch(maxRecords: number, maxBytes: number): FormedBatch | null {
    return this.batches.form(this.ledger, maxRecords, maxBytes)
  }

  /** The batch's records; a damaged chunk among them is dropped (counted), so a batch may come back with fewer, or none. */
  rows(batch: FormedBatch): BatchRow[] {
    // Each repair removes one chunk of the batch's (a batch holds at most as many as it has records).
    for (let repairs = 0; ; repairs++) {
      try {
        return this.batches.rows(batch)
      } catch (err) {
        if (!(err instanceof ChunkDamagedError) || repairs > batch.count) throw err
        this.ledger.repair(err)
      }
    }
  }

  /**
   * From now on each group commit also forms up to `former.slots()` batches, so their identities are
   * on disk with the records' sync (the uplink finds them in `formedBatches()`); null stops it.
   */
  formInCommits(former: BatchFormer | null): void {
    this.committer.formWith(former)
  }

  /** The relay acknowledged the batch: its records leave with the next group commit. */
  ack(seq: number): void {
    this.committer.ack(seq)
  }

  /** The relay refused records of a batch (all of them when `refusals` is null): see DeadLetters.refuse. */
  deadLetter(seq: number, refusals: Refusal[] | null, batchCode?: { code: string; message: string }): void {
    this.dead.refuse(this.ledger, seq, refusals, batchCode)
  }

  /** Drops records past their stream's age limit; returns how many. */
  expire(): number {
    return this.policies.expire(this.ledger, this.monoNow)
  }

  stats(): OutboxStats {
    return outboxStats({
      epoch: this.epoch, state: this.ledger.state, monoNow: this.monoNow(), firstMono: (s) => this.records.firstMono(s), priority: (s) => this.policies.of(s).priority,
      drops: this.drops.list(), deadLetters: this.dead.counts(), alarms: this.alarms, fileBytes: this.store.fileBytes(),
    })
  }

  /** Dead letters, oldest first, `limit` at a time after id `after`; data only when asked. */
  deadLetters(limit = 100, after = 0, withData = true): DeadLetter[] {
    return this.dead.list(limit, after, withData)
  }

  backlog(): number {
    return this.ledger.state.backlog()
  }

  close(): void {
    if (this.closed) return
    this.committer.commit()
    this.closed = true
    try { this.store.setMeta('mono_ms', String(this.monoNow())) } catch { /* the chunks carry the clock too */ }
    this.store.close()
  }

  /**
   * Inside a transaction: a chunk whose bytes changed on the storage since they were committed is
   * dropped whole, counted under the reason `damaged`, logged and raised as the OUTBOX_DAMAGED alarm.
   */
  private dropDamaged(draft: LedgerState, err: ChunkDamagedError): void {
    const { n, bytes } = this.records.dropChunk(err.chunkId)
    const s = draft.stream(err.stream)
    s.count -= n
    s.bytes -= bytes
    this.drops.count(err.stream, 'damaged', n)
    draft.events.push({ kind: 'dropped', stream: err.stream, reason: 'damaged', n })
    this.log('outbox_chunk_damaged', { stream: err.stream, chunk: err.chunkId, records: n, error: err.message })
    if (!this.alarms.some((a) => a.code === 'OUTBOX_DAMAGED')) {
      this.alarms.push({ code: 'OUTBOX_DAMAGED', message: `${err.message}; its ${n} records were dropped (counted as damaged). The storage may be failing`, atMs: this.clock.wallMs() })
    }
  }

  private announce(event: OutboxEvent): void {
    if (event.kind === 'dropped') {
      this.emit('dropped', event.stream, event.reason, event.n)
      return
    }
    this.log('dead_letter', { stream: event.stream, code: event.code, message: event.message, batch: event.batch, index: event.index })
    this.emit('deadLetter', event.stream, event.code)
  }
}
