/**
 * The group commit: producers' records wait at most commitIntervalMs (or until commitRows have
 * gathered) and are then committed in one transaction, together with the deletions of the batches
 * the relay acknowledged since the last one; every producer is answered only once that is on disk.
 *
 * When the file is at its cap, room is made between attempts (acknowledged batches first, then the
 * oldest records of drop-oldest streams) and the commit is tried again; reject-new streams are refused.
 */
import { statfsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ErrorCode, OutboxFullError, TributaryError } from '../../shared/errors.js'
import type { Clock } from '../../hardware/index.js'
import type { Batches } from './batches.js'
import type { Ledger, LedgerState } from './ledger.js'
import type { Policy } from './policy.js'
import type { Store } from './store.js'
import type { LogFn } from '../log.js'
import { frameBytes, type OutboxInput } from './types.js'
import { DEFAULT_CHUNK_LIMITS, type Records } from './records.js'
import { HEADER_SIZE } from '../../shared/frame.js'

/** How many times a commit is retried after making room at the file cap. */
const ROOM_ATTEMPTS = 3

/** Below this much room for the agent on the outbox's file system, a full database is a full disk, not a file at its cap. */
const DISK_FULL_BYTES = 1024 * 1024

/** Bytes the agent may still write on the file system holding `path` (Infinity when that cannot be told). */
function roomFor(path: string): number {
  try {
    const s = statfsSync(dirname(path))
    return s.bavail * s.bsize
  } catch {
    return Infinity
  }
}

/**
 * An acknowledged batch's deletion waits at least this long for a commit of new records to ride with
 * (longer where the agent's serial readings commit less often: `ackHoldMs`): a commit of its own
 * would be one more fdatasync and WAL write for nothing a producer waits on. A crash meanwhile
 * resends the batch, which the relay drops as a duplicate.
 */
export const ACK_HOLD_MS = 1000

/** The outbox clock is written to the meta row at least this often (outbox clock ms) while chunks carry it. */
const MONO_KEEP_MS = 60_000

interface Pending {
  rows: OutboxInput[]
  resolve: (ids: number[]) => void
  reject: (err: Error) => void
}

export interface GroupCommitOptions {
  commitIntervalMs: number
  commitRows: number
  maxBytes: number
  /** How long an acknowledged batch's deletion waits for records to ride with (default ACK_HOLD_MS). */
  ackHoldMs?: number
  clock: Clock
  /** The outbox clock, stored with each record and persisted with each commit. */
  monoNow: () => number
  log: LogFn
  /** After each commit: how many records were stored, batches acknowledged and batches formed. */
  committed: (stored: number, acked: number, formed: number) => void
}

/**
 * Batches formed inside each group commit, so that the batch identity the uplink sends next is on
 * disk with the records' own sync instead of a transaction of its own: `slots()` says how many the
 * uplink would send now (0: none), within `maxRecords` and `maxBytes` each.
 */
export interface BatchFormer {
  slots(): number
  maxRecords: number
  maxBytes: number
}

export interface GroupCommitParts {
  store: Store
  ledger: Ledger
  records: Records
  policy: Policy
  batches: Batches
}

const isFull = (err: unknown) => (err as { code?: string }).code === 'SQLITE_FULL'

export class GroupCommit {
  private readonly o: GroupCommitOptions
  private readonly p: GroupCommitParts
  private pending: Pending[] = []
  private pendingRows = 0
  private acks: number[] = []
  private timer: NodeJS.Timeout | null = null
  private former: BatchFormer | null = null
  /** When the armed timer fires (performance.now()); a sooner need re-arms it. */
  private deadline = Infinity
  /** Since when (outbox clock) commits are refused because the disk is full; null while there is room. */
  private diskFullSince: number | null = null
  /** The outbox clock last written to the meta row. */
  private monoKept: number

  constructor(options: GroupCommitOptions, parts: GroupCommitParts) {
    this.o = options
    this.p = parts
    this.monoKept = options.monoNow()
  }

  /** Batches acknowledged whose deletion waits for the next commit. */
  get acking(): readonly number[] {
    return this.acks
  }

  /** Resolves with the records' ids once the commit holding them is on disk. */
  enqueue(rows: OutboxInput[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, resolve, reject })
      this.pendingRows += rows.length
      this.schedule(this.pendingRows >= this.o.commitRows ? 0 : this.o.commitIntervalMs)
    })
  }

  /** Batches are formed inside each commit from now on (null: no longer). */
  formWith(former: BatchFormer | null): void {
    this.former = former
  }

  /** The relay acknowledged a formed batch: it leaves with the next commit. */
  ack(seq: number): void {
    if (!this.p.ledger.state.formed.has(seq) || this.acks.includes(seq)) return
    this.acks.push(seq)
    this.schedule(Math.max(this.o.commitIntervalMs, this.o.ackHoldMs ?? ACK_HOLD_MS))
  }

  cancel(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    this.deadline = Infinity
  }

  /** One group commit: the acknowledged batches' deletions, then every pending record, then the clock. */
  commit(): void {
    this.cancel()
    const groups = this.pending
    let acks = this.acks
    if (!groups.length && !acks.length) return
    const acked = acks.length
    this.pending = []
    this.pendingRows = 0
    this.acks = []
    // Verdicts reached between attempts, outside any transaction: they stand whatever comes next.
    const refused = new Map<Pending, OutboxFullError>()
    let results: Map<Pending, number[] | Error>
    let formed = 0
    let stored = 0
    let keptMono: number | null = null
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          results = this.p.ledger.transact((draft) => {
            // The acknowledged batches' deletions ride in the same transaction as the new records
            // (one fsync per commit on the event loop, not two), unless a full file sent them first.
            for (const seq of acks) this.p.batches.remove(draft, seq)
            const decided = new Map<Pending, number[] | Error>(refused)
            stored = 0
            for (const g of groups) {
              if (decided.has(g)) continue
              const r = this.insert(draft, g.rows)
              decided.set(g, r)
              if (!(r instanceof Error)) stored += r.length
            }
            formed = 0
            if (this.former) {
              const { maxRecords, maxBytes } = this.former
              const slots = this.former.slots()
              while (formed < slots && this.p.batches.formIn(draft, maxRecords, maxBytes)) formed++
            }
            // The outbox clock is kept in each chunk: the meta row (a page of its own) is written when
            // no chunk was, or once a minute, so that a restart carries it on from about where it was.
            const mono = this.o.monoNow()
            if (!stored || mono - this.monoKept >= MONO_KEEP_MS) {
              this.p.store.setMeta('mono_ms', String(mono))
              keptMono = mono
            }
            return decided
          })
          break
        } catch (err) {
          if (!isFull(err) || attempt >= ROOM_ATTEMPTS) throw err
          // The file system is full, not the file: dropping records would lose what was stored and free
          // nothing (a deletion needs room in the WAL too). New records are refused until there is room.
          if (roomFor(this.p.store.path) < DISK_FULL_BYTES) throw err
          this.makeRoom(groups, acks, refused)
          acks = []
        }
      }
    } catch (err) {
      // Deletions that did not commit wait for the next one.
      this.acks = [...acks, ...this.acks]
      if (this.acks.length) this.schedule(Math.max(this.o.commitIntervalMs, this.o.ackHoldMs ?? ACK_HOLD_MS))
      const stream = groups[0]?.rows[0]?.stream ?? ''
      const room = isFull(err) ? roomFor(this.p.store.path) : Infinity
      let error: Error
      if (room < DISK_FULL_BYTES) {
        error = new OutboxFullError(stream, `the file system holding the outbox is full (${room} bytes free; the outbox file holds ${this.p.store.fileBytes()} of its ${this.o.maxBytes}): records are refused until there is room, and nothing stored is lost`)
        this.diskFull(error.message)
      } else {
        this.o.log('outbox_commit_failed', { error: (err as Error).message })
        error = isFull(err)
          ? new OutboxFullError(stream, `the outbox is at its cap of ${this.o.maxBytes} bytes and nothing more can be dropped`)
          : new TributaryError(ErrorCode.STORAGE_FAILED, `outbox commit failed: ${(err as Error).message}`, { cause: err })
      }
      for (const g of groups) g.reject(error)
      return
    }
    if (this.diskFullSince !== null) this.roomAgain()
    if (keptMono !== null) this.monoKept = keptMono
    for (const g of groups) {
      const r = results.get(g)!
      if (r instanceof Error) g.reject(r)
      else g.resolve(r)
    }
    this.o.committed(stored, acked, formed)
  }

  /** The first refusal of a full disk: logged once (warn) and raised as the DISK_FULL alarm until a commit succeeds. */
  private diskFull(message: string): void {
    if (this.diskFullSince !== null) return
    this.diskFullSince = this.o.monoNow()
    this.o.log('outbox_refused_disk_full', { path: this.p.store.path, message })
    this.p.store.alarms.push({ code: 'DISK_FULL', message, atMs: this.o.clock.wallMs() })
  }

  private roomAgain(): void {
    this.o.log('outbox_disk_room_again', { path: this.p.store.path, afterMs: Math.round(this.o.monoNow() - this.diskFullSince!) })
    this.diskFullSince = null
    const alarms = this.p.store.alarms
    const at = alarms.findIndex((a) => a.code === 'DISK_FULL')
    if (at >= 0) alarms.splice(at, 1)
  }

  /**
   * Commits within `ms` at the latest (a timer already due sooner stays). Real time, not the agent's
   * clock: the delay only gathers disk writes, and no outcome depends on it.
   */
  private schedule(ms: number): void {
    const at = performance.now() + ms
    if (this.timer && at >= this.deadline) return
    if (this.timer) clearTimeout(this.timer)
    this.deadline = at
    this.timer = setTimeout(() => { this.timer = null; this.deadline = Infinity; this.commit() }, ms)
  }

  /** Inside the commit: applies the stream policy to one producer's records and inserts them. */
  private insert(draft: LedgerState, rows: OutboxInput[]): number[] | OutboxFullError {
    const wallMs = this.o.clock.wallMs()
    const monoMs = this.o.monoNow()
    const sizes = rows.map((r) => frameBytes(r.partitionKey, r.data, r.explicitHashKey))
    const refusal = this.p.policy.makeRoom(draft, rows, sizes)
    if (refusal) return refusal
    rows.forEach((r, i) => {
      const s = draft.stream(r.stream)
      s.count++
      s.bytes += sizes[i]!
    })
    // Chunks no larger than the batches the uplink forms, so that batches end on chunk boundaries.
    const limits = this.former ? { records: this.former.maxRecords, bytes: this.former.maxBytes - HEADER_SIZE } : DEFAULT_CHUNK_LIMITS
    return this.p.records.insert(rows, sizes, wallMs, monoMs, limits)
  }

  /**
   * The whole file is at its cap: space first from what the relay already holds, then the oldest
   * records of drop-oldest streams; records of reject-new streams are refused.
   */
  private makeRoom(groups: Pending[], acks: readonly number[], refused: Map<Pending, OutboxFullError>): void {
    const { ledger, batches, policy } = this.p
    if (acks.length) ledger.transact((draft) => { for (const seq of acks) batches.remove(draft, seq) })
    const streamOf = (g: Pending) => g.rows[0]?.stream ?? ''
    const full = (g: Pending) => new OutboxFullError(streamOf(g), `the outbox is at its cap of ${this.o.maxBytes} bytes`)
    for (const g of groups) if (!refused.has(g) && policy.of(streamOf(g)).onFull === 'reject-new') refused.set(g, full(g))
    const waiting = groups.filter((g) => !refused.has(g))
    const needed = waiting.reduce((n, g) => n + g.rows.reduce((m, r) => m + frameBytes(r.partitionKey, r.data, r.explicitHashKey), 0), 0) * 2
    const freed = needed > 0 ? ledger.transact((draft) => policy.dropOldest(draft, null, needed, 'outbox-full')) : 0
    if (freed === 0) for (const g of waiting) refused.set(g, full(g))
  }
}
