/**
 * Shard logs on NATS JetStream, for several relays sharing one log (issue 15). The same contract as
 * the segment-file store (test/contracts/shardlog.ts); what differs is where the truth is.
 *
 * - One JetStream stream per shard, file storage, R1 or R3. Stream sequence = offset + 1, so offsets
 *   stay dense: every publish carries `Nats-Expected-Last-Sequence` = its own offset (the fence), so
 *   a second or stale writer can neither give two records one offset nor leave a gap.
 * - One record per message; the message body is the record framed exactly as on disk
 *   (shared/logframe.ts: every field, the offset and a CRC-32C, checked again on every read).
 * - Every publish carries a fixed-length `Nats-Msg-Id`: for a device record the MD5 of
 *   `device/epoch/batchSequence/batchIndex` (a resend within the stream's duplicate window is
 *   dropped by JetStream), otherwise this store's random prefix and a counter. Fixed length keeps
 *   the headers' size a function of the sequence alone, so a store opening a shard can tell the
 *   records' framed bytes from the stream's byte count (`frameBytes`).
 * - `commit()` publishes every pending record pipelined and resolves once JetStream acknowledged all
 *   (on R3: quorum-stored). A refused commit (fenced, duplicate, JetStream unreachable) rejects its
 *   waiters with a StorageError (LOG_FENCED, LOG_DUPLICATE, LOG_UNAVAILABLE), forgets that shard's
 *   pending appends and reads its end again: the store stays writable, as a cluster outlives a
 *   failover. Any other failure fails the store, as a failing disk fails the file store.
 * - After a commit the store announces the shard's new end on `<cluster>.commit.<shard>` (core NATS);
 *   every store with that shard open moves its end and wakes its readers.
 * - Reads: the recently committed records of each shard stay in memory (`cacheBytes`), for tail
 *   readers; older ranges come through one ordered consumer per read.
 */
import { randomBytes } from 'node:crypto'
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import {
  DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager,
  type JetStreamClient, type JetStreamManager, type PubAck, type StreamConfig, type StreamInfo,
} from '@nats-io/jetstream'
import { codec as defaultCodec, logBatchSize, readLogArrival, type Codec } from '../../hardware/index.js'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import { LOG_HEADER_SIZE, type LogRecord, type LogRecordInput } from '../../shared/logframe.js'
import { streamDeleted, type BatchSlice, type CorruptionReport, type LogStore, type ReadResult, type ShardLog } from './types.js'

export interface JetStreamLogOptions {
  /** The caller's connection; the store never closes it. */
  nc: NatsConnection
  /** Prefix of stream names and subjects ([A-Za-z0-9-], default 'tributary'). */
  cluster?: string
  replicas?: 1 | 3
  /** How long a commit waits for more appends to join it (0: the next turn of the event loop). */
  groupCommitMs?: number
  /** Per-stream byte cap of framed records, enforced across shards by `enforceRetention` (0: none). */
  maxStreamBytes?: number
  now?: () => number
  /** Called after each group commit with the records it made durable and how long it took. */
  onCommit?: (records: number, ms: number) => void
  /** How long a publish or a JetStream request waits for its answer (default 5000 ms). */
  timeoutMs?: number
  /** Bytes of recently committed records each open shard keeps for tail readers (default 4 MiB). */
  cacheBytes?: number
  codec?: Codec
}

// ---- names ----

/**
 * `<stream id>/<shard id>` as one token valid both in a JetStream stream name (no `.`, `*`, `>`,
 * `/`, `\`, whitespace) and in a subject (no `.`): bytes outside [A-Za-z0-9-] become `_` and two hex
 * digits (`s.0123456789ab/shardId-000000000000` → `s_2e0123456789ab_2fshardId-000000000000`).
 * Reversible (drop() finds a stream's shards by listing), readable in `nats stream ls`, and short
 * for the ids the relay makes; the server's file store makes a directory of the stream name, so
 * names over 255 bytes are refused at open (only stream names full of dots and underscores get there).
 */
export function encodeShardKey(key: string): string {
  let out = ''
  for (const byte of Buffer.from(key, 'utf8')) {
    const plain = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d
    out += plain ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`
  }
  return out
}

export function decodeShardKey(token: string): string {
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '_') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16))
      i += 2
    } else bytes.push(token.charCodeAt(i))
  }
  return Buffer.from(bytes).toString('utf8')
}

const CLUSTER_NAME = /^[A-Za-z0-9-]{1,32}$/
const MAX_STREAM_NAME = 255
const MSG_ID_LENGTH = 22
const DUPLICATE_WINDOW_MS = 120_000
/** JetStream's per-shard byte limit is a backstop; it counts its own per-message overhead too. */
const JETSTREAM_BYTES_FACTOR = 4
/** Reads of at most this many records not in memory get them one by one (no consumer to create). */
const SINGLE_GETS = 4
const FETCH_CHUNK = 2000
/** How long one pull of a read's consumer waits for records that should be there (at most). */
const FETCH_WAIT_MS = 2000
/** A read the consumer could not serve gets at most this many records one by one from the stream's leader… */
const FALLBACK_GETS = 1000
/** …this many at a time. */
const PARALLEL_GETS = 32
/** A read finding nothing new reads the end from JetStream again when the last look is older than this. */
const RESYNC_MS = 1000
/** A stream whose created time is this much later than the one opened was deleted and made again. */
const RECREATED_MS = 1000
const NS_PER_MS = 1_000_000

/**
 * Bytes JetStream's file store counts for a message beyond its body (nats-server 2.9
 * `fileStoreMsgSize`: record length, sequence, time, subject length, subject, header length, the
 * headers `NATS/1.0`, `Nats-Msg-Id` and `Nats-Expected-Last-Sequence: <seq - 1>`, checksum).
 */
const overheadOf = (subjectBytes: number, seq: number) => 22 + subjectBytes + 4 + 58 + MSG_ID_LENGTH + digits(seq - 1) + 8
const digits = (n: number) => (n < 10 ? 1 : Math.floor(Math.log10(n)) + 1)
/** Σ overheadOf over seq in [first, last]. */
function overheadRange(subjectBytes: number, first: number, last: number): number {
  if (last < first) return 0
  let total = (last - first + 1) * (22 + subjectBytes + 4 + 58 + MSG_ID_LENGTH + 8)
  // Σ digits(v) for v in [first - 1, last - 1], a decade at a time.
  for (let lo = first - 1, width = digits(Math.max(lo, 1)); lo <= last - 1; width++) {
    const decadeEnd = Math.min(last - 1, 10 ** width - 1)
    total += (decadeEnd - lo + 1) * width
    lo = decadeEnd + 1
  }
  return total
}

// ---- failures ----

type Refusal = { kind: 'fenced' | 'unavailable' | 'duplicate'; error: StorageError }

const UNAVAILABLE = new Set(['TimeoutError', 'RequestError', 'NoResponders', 'NoRespondersError', 'ClosedConnectionError', 'ConnectionError',
  'DrainingConnectionError', 'JetStreamNotEnabled'])
/** What NATS and JetStream say, in messages, when they cannot answer now (any error class). */
const UNAVAILABLE_MESSAGE = /temporarily unavailable|no responders|not enabled|timeout|timed out|connection (was )?closed|disconnect|draining|heartbeats? missed|no (stream )?leader|not current/i
const WRONG_LAST_SEQUENCE = 10071
const NO_MESSAGE = 10037
const STREAM_NOT_FOUND = 10059
const STREAM_EXISTS = 10058
/** What a server answers an add whose twin (another relay's, same name and subject) the meta leader has not placed yet. */
const SUBJECTS_OVERLAP = 10065

const apiCode = (err: unknown): number | undefined => (err as { name?: string }).name?.endsWith('Error') && typeof (err as { code?: unknown }).code === 'number'
  ? (err as { code: number }).code : undefined

/** True when `err` says NATS or JetStream could not answer now (a cluster recovers from it), not that the request was wrong. */
function isUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false
  const e = err as Error & { status?: number; code?: unknown }
  if (UNAVAILABLE.has(e.name) || e.status === 503) return true
  if (e.name === 'JetStreamStatusError' && (e.code === 503 || e.code === 408)) return true
  // Ordered consumers and the request layer wrap the cause; JetStream API errors carry a status.
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message) && apiCode(err) !== WRONG_LAST_SEQUENCE) return true
  return e.cause !== undefined && e.cause !== err && isUnavailable(e.cause)
}

/** Why JetStream could not answer, in words for a client. */
function unavailableReason(err: unknown): string {
  const e = err as Error
  // The client says "jetstream is not enabled" when a request had no responders: no server with
  // JetStream answered, or (a publish) the shard's stream has no leader now.
  if (e.name === 'JetStreamNotEnabled' || /not enabled/i.test(e.message ?? '')) return `JetStream could not be reached (no JetStream server, or no leader of the shard's stream, answered: ${e.message})`
  return e.message
}

/** LOG_UNAVAILABLE for `err` when NATS or JetStream could not answer, else null. `doing` says what failed. */
function unavailable(err: unknown, key: string, doing: string): StorageError | null {
  if (err instanceof StorageError && err.code === ErrorCode.LOG_UNAVAILABLE) return err
  if (!isUnavailable(err)) return null
  return new StorageError(ErrorCode.LOG_UNAVAILABLE, `${doing} shard ${key} failed: ${unavailableReason(err)}`, { cause: err })
}

/** What a failed publish or request means to the caller, or null when it is not one the cluster recovers from. */
function refusal(err: unknown, key: string): Refusal | null {
  const e = err as Error & { status?: number }
  if (apiCode(err) === WRONG_LAST_SEQUENCE) {
    return { kind: 'fenced', error: new StorageError(ErrorCode.LOG_FENCED, `shard ${key} was written by another writer; its end was read again (${e.message})`, { cause: err }) }
  }
  if (isUnavailable(err)) {
    return { kind: 'unavailable', error: new StorageError(ErrorCode.LOG_UNAVAILABLE, `JetStream did not store shard ${key}'s records: ${unavailableReason(err)}`, { cause: err }) }
  }
  return null
}

/** Runs a JetStream read, refresh or open, turning NATS or JetStream being unreachable into LOG_UNAVAILABLE. */
async function guarded<T>(key: string, doing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (err instanceof TributaryError) throw err
    throw unavailable(err, key, doing) ?? err
  }
}

// ---- the store ----

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

/** All a shard log asks of its store. */
interface JetStreamHost {
  readonly js: JetStreamClient
  readonly manager: () => Promise<JetStreamManager>
  readonly codec: Codec
  readonly now: () => number
  readonly timeoutMs: number
  readonly cacheBytes: number
  readonly maxStreamBytes: number
  readonly replicas: number
  readonly prefix: string
  readonly checkWritable: () => void
  readonly enqueue: (log: JetStreamShardLog) => void
  /** Records of `log` became committed (here or on another relay). */
  readonly committed: (log: JetStreamShardLog) => void
  readonly corrupted: (report: CorruptionReport) => void
  /** A msgID for a record with no producer identity. */
  readonly nextId: () => string
  /** Announces a shard's new end to every relay (core NATS, at most once). */
  readonly announce: (subject: string, notice: CommitNotice) => void
}

export class JetStreamLogStore implements LogStore {
  private readonly nc: NatsConnection
  private readonly host: JetStreamHost
  private readonly subjectPrefix: string
  private readonly delayMs: number
  private readonly onCommit?: (records: number, ms: number) => void
  private readonly logs = new Map<string, JetStreamShardLog>()
  private readonly opening = new Map<string, Promise<JetStreamShardLog>>()
  private readonly listeners = new Set<(log: ShardLog) => void>()
  private readonly reports: CorruptionReport[] = []
  private readonly sub: Subscription
  private managerPromise: Promise<JetStreamManager> | null = null
  private dirty = new Set<JetStreamShardLog>()
  private waiting: Waiter[] = []
  private running: Promise<void> | null = null
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null
  private failure: Error | null = null
  private closed = false
  private status: { stop(): void } | null = null

  constructor(options: JetStreamLogOptions) {
    const cluster = options.cluster ?? 'tributary'
    if (!CLUSTER_NAME.test(cluster)) throw new TypeError(`cluster must match ${CLUSTER_NAME} (it prefixes JetStream stream names and subjects): ${cluster}`)
    if (options.replicas !== undefined && options.replicas !== 1 && options.replicas !== 3) throw new TypeError(`replicas must be 1 or 3: ${String(options.replicas)}`)
    this.nc = options.nc
    this.subjectPrefix = cluster
    this.delayMs = options.groupCommitMs ?? 0
    this.onCommit = options.onCommit
    const idPrefix = randomBytes(8).toString('base64url')
    let counter = 0
    this.host = {
      js: jetstream(options.nc, { timeout: options.timeoutMs ?? 5000 }),
      manager: () => (this.managerPromise ??= jetstreamManager(options.nc, { timeout: options.timeoutMs ?? 5000, checkAPI: false })),
      codec: options.codec ?? defaultCodec,
      now: options.now ?? Date.now,
      timeoutMs: options.timeoutMs ?? 5000,
      cacheBytes: options.cacheBytes ?? 4 * 1024 * 1024,
      maxStreamBytes: options.maxStreamBytes ?? 0,
      replicas: options.replicas ?? 1,
      prefix: cluster,
      checkWritable: () => this.checkWritable(),
      enqueue: (log) => { this.dirty.add(log) },
      committed: (log) => { for (const l of this.listeners) l(log) },
      corrupted: (report) => { this.reports.push(report) },
      nextId: () => idPrefix + (counter++).toString(36).padStart(MSG_ID_LENGTH - idPrefix.length, '0'),
      announce: (subject, notice) => { if (!this.closed) this.nc.publish(subject, JSON.stringify(notice)) },
    }
    this.sub = this.nc.subscribe(`${cluster}.commit.*`, {
      callback: (err, msg) => {
        if (err || this.closed) return
        const token = msg.subject.slice(msg.subject.lastIndexOf('.') + 1)
        this.logs.get(decodeShardKey(token))?.heard(msg.json())
      },
    })
    void this.watchConnection()
  }

  /**
   * Commit notices are core NATS, at most once: those sent while this connection was away are lost.
   * After every reconnect each open shard reads its end again from JetStream.
   */
  private async watchConnection(): Promise<void> {
    const status = this.nc.status()
    this.status = status as unknown as { stop(): void }
    try {
      for await (const s of status) {
        if (this.closed) break
        if (s.type === 'reconnect') for (const log of this.logs.values()) log.resyncSoon(true)
      }
    } catch {
      // The connection closed: nothing more to hear.
    }
  }

  // ---- opening and dropping ----

  async open(stream: string, shard: string): Promise<ShardLog> {
    return this.openLog(stream, shard)
  }

  private openLog(stream: string, shard: string): Promise<JetStreamShardLog> {
    const key = `${stream}/${shard}`
    const existing = this.logs.get(key)
    if (existing) return Promise.resolve(existing)
    let pending = this.opening.get(key)
    if (!pending) {
      pending = (async () => {
        const log = new JetStreamShardLog(this.host, stream, key)
        await guarded(key, 'opening', () => log.open())
        this.logs.set(key, log)
        return log
      })()
      this.opening.set(key, pending)
      pending.finally(() => this.opening.delete(key)).catch(() => {})
    }
    return pending
  }

  get(stream: string, shard: string): ShardLog | undefined {
    return this.logs.get(`${stream}/${shard}`)
  }

  async drop(stream: string, shard?: string): Promise<void> {
    for (const [key, log] of this.logs) {
      if (log.stream !== stream || (shard !== undefined && key !== `${stream}/${shard}`)) continue
      log.dropped = true
      this.dirty.delete(log)
      log.discardPending()
      this.logs.delete(key)
    }
    // A commit already publishing to these logs finishes before their streams go.
    await this.idle()
    const jsm = await this.host.manager()
    const names: string[] = []
    if (shard !== undefined) names.push(streamNameOf(this.subjectPrefix, `${stream}/${shard}`))
    else {
      for await (const name of jsm.streams.names(`${this.subjectPrefix}.log.*`)) {
        const key = decodeShardKey(name.slice(this.subjectPrefix.length + 1))
        if (key.slice(0, key.lastIndexOf('/')) === stream) names.push(name)
      }
    }
    for (const name of names) {
      try {
        await jsm.streams.delete(name)
      } catch (err) {
        if (apiCode(err) !== STREAM_NOT_FOUND) throw err
      }
    }
  }

  // ---- group commit ----

  get failed(): Error | null {
    return this.failure
  }

  checkWritable(): void {
    if (this.failure) throw new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failure.message}`, { cause: this.failure })
    if (this.closed) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the shard log store is closed')
  }

  commit(): Promise<void> {
    if (this.failure) return Promise.reject(new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failure.message}`))
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.running || this.timer) return
    const run = () => { this.timer = null; void this.run() }
    this.timer = this.delayMs > 0 ? setTimeout(run, this.delayMs) : setImmediate(run)
  }

  private async idle(): Promise<void> {
    while (this.running) await this.running
  }

  private run(): Promise<void> {
    const running = this.running = this.publish().finally(() => {
      this.running = null
      if (this.waiting.length) this.schedule()
    })
    return running
  }

  /** Publishes every dirty shard's pending records; settles the waiters of this run. */
  private async publish(): Promise<void> {
    const waiters = this.waiting
    this.waiting = []
    const logs = [...this.dirty]
    this.dirty.clear()
    const started = performance.now()
    let records = 0
    for (const log of logs) records += log.pendingRecords()
    // Every flush settles before the outcome is known: none may still be publishing when this run ends.
    const outcomes = await Promise.allSettled(logs.map((log) => log.flush()))
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as Error)
    if (!failures.length) {
      if (records) this.onCommit?.(records, performance.now() - started)
      for (const w of waiters) w.resolve()
      return
    }
    const fatal = failures.find((err) => !(err instanceof StorageError && (err.code === ErrorCode.LOG_FENCED || err.code === ErrorCode.LOG_DUPLICATE || err.code === ErrorCode.LOG_UNAVAILABLE)))
    if (fatal) {
      this.failure = fatal
      for (const log of [...logs, ...this.dirty]) log.discardPending()
      this.dirty.clear()
      const error = new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${fatal.message}`, { cause: fatal })
      for (const w of [...waiters, ...this.waiting]) w.reject(error)
      this.waiting = []
      return
    }
    // The refused shards forgot their pending appends, those made while this run published too:
    // whoever appended them has called commit() since (appenders commit in the same turn), so is waiting.
    for (const w of [...waiters, ...this.waiting]) w.reject(failures[0]!)
    this.waiting = []
  }

  // ---- reads across the store ----

  onAppend(listener: (log: ShardLog) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  corruptions(): readonly CorruptionReport[] {
    return this.reports
  }

  totalBytes(): number {
    let total = 0
    for (const log of this.logs.values()) total += log.sizeBytes()
    return total
  }

  // ---- retention ----

  /**
   * Per stream: JetStream's `max_age` follows the stream's retention (a backstop that works while no
   * relay runs); then each shard is purged up to its first record at or after `now - retention`,
   * never its newest; then, while the stream's framed bytes are over `maxStreamBytes`, every shard
   * loses its records older than a cutoff that moves forward from the oldest one, so shards written
   * alike give up alike. Returns the bytes freed (server-side trims since the last look included).
   */
  async enforceRetention(retentionMsByStream: (stream: string) => number, now = this.host.now()): Promise<number> {
    let freed = 0
    const byStream = new Map<string, JetStreamShardLog[]>()
    for (const log of this.logs.values()) byStream.set(log.stream, [...byStream.get(log.stream) ?? [], log])
    for (const [stream, logs] of byStream) {
      const retention = retentionMsByStream(stream)
      for (const log of logs) {
        await log.limitAge(retention)
        freed += await log.trimBefore(Math.min(await log.offsetAtTime(now - retention), log.endOffset() - 1))
      }
      if (this.host.maxStreamBytes > 0) freed += await this.capStream(logs)
    }
    return freed
  }

  private async capStream(logs: readonly JetStreamShardLog[]): Promise<number> {
    const cap = this.host.maxStreamBytes
    let freed = 0
    for (;;) {
      const total = logs.reduce((n, l) => n + l.sizeBytes(), 0)
      if (total <= cap) return freed
      const heads = await Promise.all(logs.map((l) => l.endOffset() - l.startOffset() > 1 ? l.arrivalAt(l.startOffset()) : null))
      const known = heads.filter((h): h is number => h !== null)
      if (!known.length) return freed
      const oldest = Math.min(...known)
      const newest = Math.max(...logs.map((l) => l.lastArrivalMs()))
      // As if records arrived evenly: one step usually frees about the excess.
      const cutoff = oldest + Math.max(1, Math.floor((newest - oldest) * (total - cap) / total))
      for (const log of logs) {
        if (log.endOffset() - log.startOffset() <= 1) continue
        freed += await log.trimBefore(Math.min(await log.offsetAtTime(cutoff), log.endOffset() - 1))
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout)
      clearImmediate(this.timer as NodeJS.Immediate)
      this.timer = null
    }
    await this.idle()
    if ((this.dirty.size || this.waiting.length) && !this.failure) await this.run()
    await this.idle()
    this.closed = true
    this.status?.stop()
    this.sub.unsubscribe()
    this.logs.clear()
  }
}

const streamNameOf = (prefix: string, key: string) => `${prefix}_${encodeShardKey(key)}`

/** What a commit announces on `<cluster>.commit.<shard>`. */
interface CommitNotice { end: number; start: number; size: number; last: number }

interface CachedRecord { frame: Buffer }

// ---- one shard ----

class JetStreamShardLog implements ShardLog {
  readonly key: string
  readonly stream: string
  dropped = false
  private readonly host: JetStreamHost
  private readonly name: string
  private readonly subject: string
  private readonly subjectBytes: number
  private start = 0
  private committedEnd = 0
  private nextAssigned = 0
  private size = 0
  private lastArrival = 0
  private lastAssignedArrival = 0
  private maxAgeMs = 0
  /** Pending records: framed bodies and msgIDs; the first is at offset `committedEnd` when all goes well. */
  private pendingFrames: Buffer[] = []
  private pendingIds: string[] = []
  private flushing = false
  /** Committed records [cacheBase, cacheBase + cache.length), the newest ones this relay saw. */
  private cache: CachedRecord[] = []
  private cacheBase = 0
  private cacheSize = 0
  /** The end could not be read again after a refused commit: read it before the next publish. */
  private stale = false
  /** When the stream was created (stream info): another time means it was deleted and made again. */
  private created = ''
  /** performance.now() of the last look at the stream's state; the look running now, if any. */
  private lastResync = 0
  private resyncing: Promise<void> | null = null

  constructor(host: JetStreamHost, stream: string, key: string) {
    this.host = host
    this.stream = stream
    this.key = key
    this.name = streamNameOf(host.prefix, key)
    this.subject = `${host.prefix}.log.${encodeShardKey(key)}`
    this.subjectBytes = Buffer.byteLength(this.subject)
    if (Buffer.byteLength(this.name) > MAX_STREAM_NAME) {
      throw new TributaryError(ErrorCode.STREAM_NAME_INVALID, `shard ${key} makes a JetStream stream name of over ${MAX_STREAM_NAME} bytes`)
    }
  }

  /** Finds or creates the shard's JetStream stream and takes its end from it. */
  async open(): Promise<void> {
    const jsm = await this.host.manager()
    let info: StreamInfo
    try {
      info = await jsm.streams.info(this.name)
    } catch (err) {
      if (apiCode(err) !== STREAM_NOT_FOUND) throw err
      try {
        info = await jsm.streams.add(this.config())
      } catch (raced) {
        // Another relay created it first, or is creating it now (its stream not placed yet: the
        // subject overlaps, and the stream is found once it is).
        const code = apiCode(raced)
        if (code !== STREAM_EXISTS && code !== SUBJECTS_OVERLAP) throw raced
        info = await this.placed(jsm, raced as Error)
      }
    }
    // A replicated stream just made has no leader for a moment, and a publish then finds no one to
    // answer it: wait (bounded) until it has one, so the first commit after a CreateStream succeeds.
    const deadline = Date.now() + this.host.timeoutMs
    while (info.cluster && !info.cluster.leader && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      info = await jsm.streams.info(this.name)
    }
    this.maxAgeMs = Math.round(info.config.max_age / NS_PER_MS)
    await this.adopt(info)
    this.cacheBase = this.committedEnd
  }

  /** The shard's stream once another relay's creation of it is placed (bounded by the store's timeout). */
  private async placed(jsm: JetStreamManager, raced: Error): Promise<StreamInfo> {
    const deadline = Date.now() + this.host.timeoutMs
    for (;;) {
      try {
        return await jsm.streams.info(this.name)
      } catch (err) {
        if (apiCode(err) !== STREAM_NOT_FOUND) throw err
        if (Date.now() > deadline) throw raced
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  private config(): Partial<StreamConfig> & { name: string } {
    return {
      name: this.name, subjects: [this.subject], storage: StorageType.File, num_replicas: this.host.replicas,
      retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old,
      max_bytes: this.host.maxStreamBytes > 0 ? this.host.maxStreamBytes * JETSTREAM_BYTES_FACTOR : -1,
      duplicate_window: DUPLICATE_WINDOW_MS * NS_PER_MS, allow_direct: true,
    }
  }

  /**
   * Takes start, end, size and the newest arrival time from the stream's state. The end never moves
   * back: an answer behind what this store knows (its own acknowledged commits, other relays'
   * notices) is an older state, from a request that raced a commit or a server catching up. Only a
   * stream deleted and made again (another `created` time) may end before it did.
   */
  private async adopt(info: StreamInfo): Promise<void> {
    const { messages, first_seq: first, last_seq: last, bytes } = info.state
    this.lastResync = performance.now()
    const opening = this.created === ''
    // Made again: created well after the stream this store opened (replicas may differ by moments).
    const recreated = !opening && last < this.committedEnd && Date.parse(info.created) > Date.parse(this.created) + RECREATED_MS
    if (opening || recreated) this.created = info.created
    if (!recreated && last < this.committedEnd) return
    const before = this.committedEnd
    if (recreated) {
      this.cache = []
      this.cacheBase = last
      this.cacheSize = 0
      this.lastArrival = 0
    }
    this.committedEnd = last
    const start = messages > 0 ? first - 1 : last
    this.start = recreated ? start : Math.max(this.start, start)
    this.size = messages > 0 ? bytes - overheadRange(this.subjectBytes, first, last) : 0
    if (messages > 0 && (last !== before || recreated || !this.lastArrival)) {
      const arrival = await this.arrivalAt(last - 1)
      // A commit heard meanwhile knows a newer arrival.
      if (arrival !== null && this.committedEnd === last) this.lastArrival = arrival
    }
    if (this.lastArrival > this.lastAssignedArrival) this.lastAssignedArrival = this.lastArrival
    if (!this.pendingFrames.length && !this.flushing) this.nextAssigned = this.committedEnd
    // Readers waiting at the old end wake (not while opening: nobody has the log yet).
    if (!opening && this.committedEnd !== before) this.host.committed(this)
  }

  /**
   * Drops the tail cache. A relay that wrote the shard and lost its lease may hold records that
   * JetStream never made durable (a server cut off from its cluster answered for them): from now on
   * its readers get what the stream's leader has.
   */
  forget(): void {
    this.cache = []
    this.cacheBase = this.committedEnd
  }

  /** Reads the end again from JetStream (another relay may have written). */
  async refresh(): Promise<void> {
    if (this.flushing) return
    await guarded(this.key, 'reading the end of', () => this.resync())
  }

  private async resync(): Promise<void> {
    const jsm = await this.host.manager()
    await this.adopt(await jsm.streams.info(this.name))
    this.stale = false
  }

  /**
   * Reads the end again in the background (commit notices are at most once: one may have been
   * lost), unless it was read less than RESYNC_MS ago; `now` after a reconnect. A new end wakes
   * this shard's readers.
   */
  resyncSoon(now = false): void {
    if (this.dropped || this.resyncing) return
    if (this.flushing) {
      // The commit reads the end itself if refused; otherwise the next read looks.
      if (now) this.lastResync = 0
      return
    }
    if (!now && performance.now() - this.lastResync < RESYNC_MS) return
    this.lastResync = performance.now()
    this.resyncing = this.resync().catch(() => {}).finally(() => { this.resyncing = null })
  }

  startOffset(): number { return this.start }
  endOffset(): number { return this.committedEnd }
  lastArrivalMs(): number { return this.lastArrival }
  sizeBytes(): number { return this.size }
  pendingRecords(): number { return this.pendingFrames.length }
  nextOffset(): number { return this.nextAssigned }

  // ---- append and commit ----

  append(records: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number } {
    this.checkAppendable()
    const { codec } = this.host
    const arrival = this.nextArrival()
    const firstOffset = this.nextAssigned
    // Every record is encoded before an offset is taken, so a bad one leaves no gap behind.
    const frames = new Array<Buffer>(records.length)
    const identities: string[] = []
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const frame = Buffer.allocUnsafe(codec.logRecordSize(r))
      codec.encodeLogRecord(frame, 0, firstOffset + i, arrival, r)
      frames[i] = frame
      if (r.device) identities.push(`${r.device}/${r.epoch ?? 0n}/${r.batchSequence ?? 0}/${r.batchIndex ?? 0}`)
    }
    const ids = identities.length ? digests(codec, identities) : []
    let d = 0
    for (let i = 0; i < records.length; i++) this.pendingIds.push(records[i]!.device ? ids[d++]! : this.host.nextId())
    return this.pend(frames, firstOffset, arrival)
  }

  appendBatch(slice: BatchSlice): { firstOffset: number; arrivalMs: number } {
    this.checkAppendable()
    const device = Buffer.from(slice.device, 'utf8')
    const { fields, times, epoch, sequence } = slice.scan
    const buf = Buffer.allocUnsafe(logBatchSize(fields, slice.indices, device.length))
    const arrival = this.nextArrival()
    const firstOffset = this.nextAssigned
    const positions = new Uint32Array(slice.indices.length)
    const length = this.host.codec.encodeLogBatch(buf, 0, slice.frame, fields, times, slice.indices, firstOffset, arrival, device, positions)
    const frames = new Array<Buffer>(positions.length)
    const identities = new Array<string>(positions.length)
    for (let i = 0; i < positions.length; i++) {
      frames[i] = buf.subarray(positions[i]!, i + 1 < positions.length ? positions[i + 1]! : length)
      identities[i] = `${slice.device}/${epoch}/${sequence}/${slice.indices[i]!}`
    }
    for (const id of digests(this.host.codec, identities)) this.pendingIds.push(id)
    return this.pend(frames, firstOffset, arrival)
  }

  private checkAppendable(): void {
    if (this.dropped) throw streamDeleted(this.stream)
    this.host.checkWritable()
  }

  /** Arrival times never go backwards within a shard, even when the wall clock does. */
  private nextArrival(): number {
    const now = this.host.now()
    const arrival = now > this.lastAssignedArrival ? now : this.lastAssignedArrival
    this.lastAssignedArrival = arrival
    return arrival
  }

  private pend(frames: Buffer[], firstOffset: number, arrival: number): { firstOffset: number; arrivalMs: number } {
    for (const frame of frames) this.pendingFrames.push(frame)
    this.nextAssigned += frames.length
    this.host.enqueue(this)
    return { firstOffset, arrivalMs: arrival }
  }

  discardPending(): void {
    this.pendingFrames = []
    this.pendingIds = []
    this.nextAssigned = this.committedEnd
  }

  /**
   * Publishes what is pending, pipelined, each record fenced at its offset; the group commit calls
   * it. Resolves once all are acknowledged; otherwise keeps the acknowledged prefix, forgets the
   * rest (and what was appended meanwhile), reads the end again and throws why.
   */
  async flush(): Promise<void> {
    if (!this.pendingFrames.length || this.dropped) return
    const frames = this.pendingFrames
    const ids = this.pendingIds
    this.pendingFrames = []
    this.pendingIds = []
    this.flushing = true
    try {
      const first = this.nextAssigned - frames.length
      if (this.stale) {
        try {
          await this.resync()
        } catch (err) {
          this.discardPending()
          throw refusal(err, this.key)?.error ?? err
        }
      }
      if (first !== this.committedEnd) {
        this.discardPending()
        throw new StorageError(ErrorCode.LOG_FENCED, `shard ${this.key} ends at ${this.committedEnd}, not ${first}: another writer appended to it`)
      }
      const { js, timeoutMs } = this.host
      const acks = await Promise.allSettled(frames.map((frame, i) =>
        js.publish(this.subject, frame, { msgID: ids[i]!, expect: { lastSequence: first + i }, timeout: timeoutMs })))
      const stored = await this.storedPrefix(acks, ids, first)
      if (stored) this.committed(frames.slice(0, stored), first)
      if (stored === frames.length) return
      const bad = acks[stored]!
      let failure: Refusal | Error
      if (bad.status === 'fulfilled') {
        failure = bad.value.duplicate
          ? { kind: 'duplicate', error: new StorageError(ErrorCode.LOG_DUPLICATE, `a device record appended to shard ${this.key} is already stored there, at offset ${bad.value.seq - 1}`) }
          : { kind: 'fenced', error: new StorageError(ErrorCode.LOG_FENCED, `shard ${this.key} stored a record at ${bad.value.seq - 1}, not ${first + stored}`) }
      } else failure = refusal(bad.reason, this.key) ?? (bad.reason as Error)
      try {
        await this.resync()
      } catch {
        this.stale = true
      }
      // After the resync: what was appended meanwhile took offsets after the refused ones.
      this.discardPending()
      throw failure instanceof Error ? failure : failure.error
    } finally {
      this.flushing = false
    }
  }

  /**
   * How many of the records published from `first` on are stored where predicted. A record is when
   * its ack says so (a duplicate there is this very record, resent). One without an ack (timed out
   * in an election) before one that has is looked up: the fence only says some record fills its
   * offset, and another writer's record may be the one.
   */
  private async storedPrefix(acks: PromiseSettledResult<PubAck>[], ids: readonly string[], first: number): Promise<number> {
    const placed = (i: number) => { const a = acks[i]!; return a.status === 'fulfilled' && a.value.seq === first + i + 1 }
    let last = acks.length - 1
    while (last >= 0 && !placed(last)) last--
    for (let i = 0; i <= last; i++) {
      if (placed(i)) continue
      const ours = await this.host.manager()
        .then((jsm) => jsm.streams.getMessage(this.name, { seq: first + i + 1 }))
        .then((msg) => msg?.header?.get('Nats-Msg-Id') === ids[i], () => false)
      if (!ours) return i
    }
    return last + 1
  }

  /** `frames` are stored from offset `first` on: they become readable, cached and announced. */
  private committed(frames: Buffer[], first: number): void {
    let bytes = 0
    for (const frame of frames) bytes += frame.length
    // Another relay's later commit may have been heard already.
    this.committedEnd = Math.max(this.committedEnd, first + frames.length)
    this.size += bytes
    this.lastArrival = readLogArrival(frames[frames.length - 1]!, 0)
    this.remember(frames, first)
    this.host.announce(`${this.host.prefix}.commit.${encodeShardKey(this.key)}`, {
      end: this.committedEnd, start: this.start, size: this.size, last: this.lastArrival,
    })
    this.host.committed(this)
  }

  /** Another relay's commit (or this one's, heard back). */
  heard(notice: CommitNotice): void {
    if (this.dropped || notice.end <= this.committedEnd) return
    this.committedEnd = notice.end
    this.start = notice.start
    this.size = notice.size
    this.lastArrival = notice.last
    if (this.lastArrival > this.lastAssignedArrival) this.lastAssignedArrival = this.lastArrival
    if (!this.pendingFrames.length && !this.flushing) this.nextAssigned = this.committedEnd
    this.host.committed(this)
  }

  /** Keeps committed frames from `first` on in memory, dropping the oldest past the budget. */
  private remember(frames: readonly Buffer[], first: number): void {
    if (first !== this.cacheBase + this.cache.length) {
      this.cache = []
      this.cacheBase = first
      this.cacheSize = 0
    }
    for (const frame of frames) {
      this.cache.push({ frame })
      this.cacheSize += frame.length
    }
    let drop = 0
    while (this.cacheSize > this.host.cacheBytes && drop < this.cache.length - 1) this.cacheSize -= this.cache[drop++]!.frame.length
    if (drop) {
      this.cache = this.cache.slice(drop)
      this.cacheBase += drop
    }
  }

  // ---- read ----

  async read(fromOffset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    if (this.dropped) throw streamDeleted(this.stream)
    const end = this.committedEnd
    let offset = Math.max(fromOffset, this.start)
    const records: LogRecord[] = []
    let bytes = 0
    /** Takes a record read at `offset`; false once the byte limit is reached. */
    const take = (record: LogRecord): boolean => {
      const size = record.data.length + Buffer.byteLength(record.partitionKey)
      if (records.length > 0 && bytes + size > maxBytes) return false
      records.push(record)
      bytes += size
      offset = record.offset + 1
      return true
    }
    while (offset < end && records.length < maxRecords && bytes < maxBytes) {
      const cached = this.cache[offset - this.cacheBase]
      if (offset >= this.cacheBase && cached) {
        if (!take(this.decode(cached.frame, offset, false))) break
        continue
      }
      // Not in memory: up to the cached range (or the end) from JetStream.
      const upTo = Math.min(end, offset < this.cacheBase ? this.cacheBase : end, offset + maxRecords - records.length)
      const full = await this.fetch(offset, upTo, take)
      if (!full) break
    }
    // Nothing new: a commit notice may have been lost; look at JetStream's end now and then.
    if (!records.length && offset >= this.committedEnd) this.resyncSoon()
    return { records, nextOffset: offset }
  }

  /**
   * Feeds records [from, to) from JetStream to `take` until it refuses one; false when it did or
   * when only part of the range could be read (the caller returns what it has).
   *
   * Every record below the committed end is stored, quorum-acknowledged: a consumer that returns
   * none or too few (it runs on a server still catching up after a partition, or its pull expired)
   * does not make the read fail. The rest comes one by one from the stream's leader, up to
   * FALLBACK_GETS records a read.
   */
  private async fetch(from: number, to: number, take: (record: LogRecord) => boolean): Promise<boolean> {
    return guarded(this.key, 'reading', async () => {
      try {
        if (to - from <= SINGLE_GETS) return await this.getEach(from, to, take)
        const progress = { next: from }
        try {
          if (!(await this.consume(progress, to, take))) return false
        } catch (err) {
          // A damaged record or a deleted stream is no reason to ask the leader.
          if (err instanceof TributaryError || apiCode(err) === STREAM_NOT_FOUND) throw err
        }
        if (progress.next >= to) return true
        const upTo = Math.min(to, progress.next + FALLBACK_GETS)
        return (await this.getEach(progress.next, upTo, take)) && upTo === to
      } catch (err) {
        if (apiCode(err) === STREAM_NOT_FOUND) throw streamDeleted(this.stream)
        throw err
      }
    })
  }

  /** Records [from, to) one by one from the stream's leader, a few requests at a time; false when `take` refused one. */
  private async getEach(from: number, to: number, take: (record: LogRecord) => boolean): Promise<boolean> {
    const jsm = await this.host.manager()
    for (let base = from; base < to; base += PARALLEL_GETS) {
      const count = Math.min(PARALLEL_GETS, to - base)
      const msgs = await Promise.all(Array.from({ length: count }, (_, i) => this.getMessage(jsm, base + i)))
      // Retention only ever takes the oldest records: one missing is gone only below the stream's first.
      const first = msgs.includes(null) ? await this.firstOffset(jsm) : 0
      for (let i = 0; i < count; i++) {
        const msg = msgs[i]
        const offset = base + i
        if (!msg) {
          if (offset >= first) {
            throw new StorageError(ErrorCode.LOG_UNAVAILABLE, `record ${offset} of shard ${this.key} is stored, but JetStream's leader did not return it (a server still catching up?); try again`)
          }
          if (first > this.start) this.start = first
          continue
        }
        const record = this.decode(msg, offset, true)
        if (offset === this.cacheBase + this.cache.length) this.remember([msg], offset)
        if (!take(record)) return false
      }
    }
    return true
  }

  /**
   * Records from `progress.next` up to `to` through one ordered consumer; `progress.next` follows
   * what was taken. False when `take` refused one; true when done or when a pull brought nothing.
   */
  private async consume(progress: { next: number }, to: number, take: (record: LogRecord) => boolean): Promise<boolean> {
    const consumer = await this.host.js.consumers.get(this.name, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: progress.next + 1 })
    try {
      while (progress.next < to) {
        const expires = Math.max(1000, Math.min(this.host.timeoutMs, FETCH_WAIT_MS))
        const batch = await consumer.fetch({ max_messages: Math.min(FETCH_CHUNK, to - progress.next), expires })
        let got = 0
        for await (const msg of batch) {
          const offset = msg.seq - 1
          if (offset < progress.next) continue
          // A gap: retention took records meanwhile, or this consumer runs on a server that lacks
          // some. Only the stream's leader can say which (getEach, after this).
          if (offset > progress.next) { batch.stop(); return true }
          const frame = Buffer.from(msg.data)
          const record = this.decode(frame, offset, true)
          if (offset === this.cacheBase + this.cache.length && offset >= this.cacheBase) this.remember([frame], offset)
          got++
          progress.next = offset + 1
          if (!take(record)) { batch.stop(); return false }
          if (progress.next >= to) { batch.stop(); break }
        }
        if (!got) return true
      }
      return true
    } finally {
      // Ordered consumers otherwise linger for minutes; nobody waits for this.
      consumer.delete().catch(() => {})
    }
  }

  /** The offset of the oldest record the shard's stream holds, as its leader says. */
  private async firstOffset(jsm: JetStreamManager): Promise<number> {
    try {
      const info = await jsm.streams.info(this.name)
      // An empty stream reports first_seq = last_seq + 1: its first offset is its end.
      return Math.max(0, info.state.first_seq - 1)
    } catch (err) {
      throw unavailable(err, this.key, 'reading') ?? err
    }
  }

  private async getMessage(jsm: JetStreamManager, offset: number): Promise<Buffer | null> {
    try {
      const msg = await jsm.streams.getMessage(this.name, { seq: offset + 1 })
      return msg ? Buffer.from(msg.data) : null
    } catch (err) {
      if (apiCode(err) === NO_MESSAGE) return null
      throw unavailable(err, this.key, 'reading') ?? err
    }
  }

  /** A copy of the record in `frame`, checked (checksum, offset) when it comes from JetStream. */
  private decode(frame: Buffer, offset: number, verify: boolean): LogRecord {
    const { codec } = this.host
    if (verify) {
      const scan = codec.scanLog(frame, 0, frame.length, offset)
      if (scan.stop !== 'end' || scan.positions.length !== 1) {
        const report = { shard: this.key, file: this.name, position: offset + 1, firstOffset: offset, lastOffset: offset, detectedAt: this.host.now() }
        this.host.corrupted(report)
        throw new TributaryError(ErrorCode.LOG_CORRUPT, `record ${offset} of shard ${this.key} in JetStream stream ${this.name} is damaged`)
      }
    }
    const record = codec.decodeLogRecord(frame, 0)
    // The frame may stay in memory for other readers: the caller gets its own data.
    record.data = Buffer.from(record.data)
    return record
  }

  /** The arrival time of the record at `offset`, or null when it is gone. */
  async arrivalAt(offset: number): Promise<number | null> {
    const cached = offset >= this.cacheBase ? this.cache[offset - this.cacheBase] : undefined
    if (cached) return readLogArrival(cached.frame, 0)
    const frame = await this.getMessage(await this.host.manager(), offset)
    return frame && frame.length >= LOG_HEADER_SIZE ? readLogArrival(frame, 0) : null
  }

  async offsetAtTime(ms: number): Promise<number> {
    if (this.dropped) throw streamDeleted(this.stream)
    // Arrival times never go backwards within a shard: the first at or after `ms` is found by halving.
    let lo = this.start
    let hi = this.committedEnd
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const arrival = await this.arrivalAt(mid)
      if (arrival !== null && arrival >= ms) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  // ---- retention ----

  /** Sets JetStream's `max_age` to the stream's retention when that changed. */
  async limitAge(retentionMs: number): Promise<void> {
    if (retentionMs <= 0 || retentionMs === this.maxAgeMs) return
    const jsm = await this.host.manager()
    const info = await jsm.streams.info(this.name)
    await jsm.streams.update(this.name, {
      ...info.config, max_age: retentionMs * NS_PER_MS, duplicate_window: Math.min(DUPLICATE_WINDOW_MS, retentionMs) * NS_PER_MS,
    })
    this.maxAgeMs = retentionMs
  }

  /** Purges the records before `offset`; returns the framed bytes gone since the size was last known. */
  async trimBefore(offset: number): Promise<number> {
    const jsm = await this.host.manager()
    if (offset > this.start) await jsm.streams.purge(this.name, { seq: offset + 1 })
    const before = this.size
    if (!this.flushing) await this.adopt(await jsm.streams.info(this.name))
    if (this.cacheBase < this.start) {
      const drop = Math.min(this.start - this.cacheBase, this.cache.length)
      for (let i = 0; i < drop; i++) this.cacheSize -= this.cache[i]!.frame.length
      this.cache = this.cache.slice(drop)
      this.cacheBase += drop
    }
    return before - this.size
  }
}

/** Fixed-length message ids of producer identities (MD5, as base64url: 22 characters). */
function digests(codec: Codec, identities: readonly string[]): string[] {
  const all = codec.md5Many(identities)
  return identities.map((_, i) => all.toString('base64url', i * 16, i * 16 + 16))
}
