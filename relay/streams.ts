/**
 * The relay's streams: metadata plus open shard logs plus producer idempotency state, kept in
 * memory for the hot path and backed by the MetadataStore and LogStore.
 */
import { randomBytes } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { Limits } from '../shared/limits.js'
import { STREAM_NAME_PATTERN } from '../shared/topics.js'
import type { LogStore, ReadResult, ShardLog } from './log/types.js'
import type { MetadataStore, ShardMeta, StreamMeta } from './meta/types.js'
import { ProducerTable, type ProducerSnapshot } from './producers.js'
import type { Throughput } from './throughput.js'
import { HASH_SPACE, hashRanges, planMerge, planSplit, planUniformScaling, shardIdOf, type ReshardPlan } from './shardmap.js'

/** Shards whose first page of records is read ahead while the producer table is rebuilt, and that page's bytes at most. */
const RESTORE_AHEAD = 16
const RESTORE_AHEAD_BYTES = 4 * 1024 * 1024
/** What a stream's load keeps of first pages read as its shards open, at most (records counted at their data plus this). */
const EARLY_BYTES = 64 * 1024 * 1024
const EARLY_RECORD_OVERHEAD = 256

/** A shard's first page for the producer table, read from `offset` ahead of its turn. */
interface PageAhead {
  offset: number
  page: Promise<ReadResult>
}

/** What a stream's load read for its producer table while the shards opened: the saved snapshot, and first pages by shard. */
interface EarlyRead {
  snapshot: ProducerSnapshot | null
  pages: Map<string, PageAhead>
}

export interface ShardState {
  meta: ShardMeta
  log: ShardLog
  start: bigint
  end: bigint
  createdSec: number
}

export interface StreamState {
  meta: StreamMeta
  shards: ShardState[]
  /** Open shards ordered by hash range, for routing. */
  open: ShardState[]
  producers: ProducerTable
  /** The stream's tags, as stored (ListTagsForStream); `tributary:throughput-limits` switches limits on. */
  tags: Record<string, string>
  /** Per-shard throughput budgets, made when the stream's limits are first used (relay/throughput.ts). */
  meter?: Throughput
  /** A shared log refused a commit (cluster): the producer table must be rebuilt before it is trusted again. */
  producersStale?: boolean
}

/**
 * A change would take the relay past its shard limit (DescribeLimits' ShardLimit): open shards in
 * all streams, plus those being created. Every path that makes shards — CreateStream, auto-create
 * from MQTT, SplitShard, UpdateShardCount — is checked here, in one place.
 */
export class ShardLimitError extends TributaryError {
  readonly limit: number
  readonly current: number
  readonly extra: number
  readonly accountId: string
  readonly region: string
  constructor(limit: number, current: number, extra: number, accountId: string, region: string) {
    super(ErrorCode.LIMIT_EXCEEDED, `${extra} more shard${extra === 1 ? '' : 's'} would pass the relay's shard limit of ${limit} (${current} open or being created)`)
    this.limit = limit
    this.current = current
    this.extra = extra
    this.accountId = accountId
    this.region = region
  }
}

/** The tag an auto-created stream carries: the device that created it by publishing to it. */
export const AUTO_CREATED_BY_TAG = 'tributary:auto-created-by'

/** Points inside a reshard where a test may stop the relay (TRIBUTARY_TEST_CRASH_AT): before and after the map change commits. */
export type ReshardStep = 'updating' | 'children-opened' | 'map-committed'

export { HASH_SPACE, hashRanges, shardIdOf }

/** A stream's name from its id (`<name>.<12 hex digits>`: a stream created again under a name gets a new id). */
export function streamNameOf(streamId: string): string {
  return streamId.replace(/\.[0-9a-f]{12}$/, '')
}

/**
 * For crash tests: `TRIBUTARY_TEST_CRASH_AT=reshard:<step>` makes the relay kill itself with SIGKILL
 * at that step of its next reshard, exactly as `kill -9` would.
 */
export function reshardCrashHook(spec: string | undefined): ((step: ReshardStep) => void) | undefined {
  const m = /^reshard:(updating|children-opened|map-committed)$/.exec(spec ?? '')
  if (!m) return undefined
  return (step) => { if (step === m[1]) process.kill(process.pid, 'SIGKILL') }
}

export interface StreamsOptions {
  meta: MetadataStore
  logs: LogStore
  region: string
  accountId: string
  retentionHours: number
  /** Open shards the relay may hold in all (default: Kinesis's 1000). */
  shardLimit?: number
  now?: () => number
  /** Called at each step of a reshard (tests kill the relay here to prove the change is atomic). */
  onReshardStep?: (step: ReshardStep, stream: string) => void
}

export class Streams {
  private readonly meta: MetadataStore
  private readonly logs: LogStore
  private readonly region: string
  private readonly accountId: string
  private readonly retentionHours: number
  private readonly now: () => number
  private readonly byName = new Map<string, StreamState>()
  private readonly byId = new Map<string, StreamState>()
  private readonly creating = new Map<string, Promise<StreamState>>()
  /** Syncs with the metadata store under way, by stream name (cluster). */
  private readonly syncing = new Map<string, Promise<void>>()
  /** Shards of creations and reshards under way, counted against the limit before they are open. */
  private reserved = 0
  readonly shardLimit: number
  private readonly onReshardStep: (step: ReshardStep, stream: string) => void
  /** True in a cluster: other relays change the streams too (relay/cluster/). */
  shared = false
  /** Whether this relay writes a stream (in a cluster, only the lease holder does); only its producer tables are saved. */
  writes: (streamId: string) => boolean = () => true

  constructor(options: StreamsOptions) {
    this.meta = options.meta
    this.logs = options.logs
    this.region = options.region
    this.accountId = options.accountId
    this.retentionHours = options.retentionHours
    this.now = options.now ?? Date.now
    this.shardLimit = options.shardLimit ?? Limits.maxShardsPerStream
    this.onReshardStep = options.onReshardStep ?? (() => {})
  }

  arnOf(name: string): string {
    return `arn:aws:kinesis:${this.region}:${this.accountId}:stream/${name}`
  }

  /** Name from an ARN of this relay's region and account; null when it is not one. */
  nameFromArn(arn: string): string | null {
    const m = /^arn:aws.*:kinesis:([a-z0-9-]+):(\d{12}):stream\/([a-zA-Z0-9_.-]+)$/.exec(arn)
    return m ? m[3]! : null
  }

  async init(): Promise<void> {
    for (const meta of await this.meta.listStreams()) {
      if (meta.status === 'DELETING') {
        await this.logs.drop(meta.id)
        await this.meta.deleteStream(meta.name)
        continue
      }
      await this.load(meta)
    }
  }

  /**
   * Brings one stream up to date with the metadata store after another relay changed it (cluster:
   * the store's watch calls this). A stream created elsewhere is loaded; one deleted elsewhere is
   * forgotten (its logs are the deleting relay's to drop); a known one takes the stored status,
   * retention, mode, tags and shard map (a reshard's closed parents and new children). Calls for
   * one stream run one after another.
   */
  sync(name: string): Promise<void> {
    const previous = this.syncing.get(name) ?? Promise.resolve()
    const next = previous.then(() => this.syncNow(name))
    const tracked = next.catch(() => {}).finally(() => { if (this.syncing.get(name) === tracked) this.syncing.delete(name) })
    this.syncing.set(name, tracked)
    return next
  }

  private async syncNow(name: string): Promise<void> {
    if (this.creating.has(name)) return // this relay's own creation: loaded when it finishes
    const stored = await this.meta.getStream(name)
    const state = this.byName.get(name)
    if (!stored || stored.status === 'DELETING') {
      if (state) {
        this.byName.delete(name)
        this.byId.delete(state.meta.id)
      }
      return
    }
    if (!state || state.meta.id !== stored.id) {
      if (state) this.byId.delete(state.meta.id)
      await this.load(stored, { recover: false })
      return
    }
    state.meta.status = stored.status
    state.meta.retentionHours = stored.retentionHours
    state.meta.mode = stored.mode
    state.tags = await this.meta.getTags(stored.id)
    const shards = await this.meta.listShards(stored.id)
    let changed = false
    for (const s of shards) {
      const known = state.shards.find((k) => k.meta.shardId === s.shardId)
      if (known) {
        if (known.meta.endOffset === null && s.endOffset !== null) { known.meta.endOffset = s.endOffset; changed = true }
        continue
      }
      const log = await this.logs.open(stored.id, s.shardId)
      state.shards.push({ meta: s, log, start: BigInt(s.hashStart), end: BigInt(s.hashEnd), createdSec: Math.floor(s.createdMs / 1000) })
      changed = true
    }
    if (changed) {
      state.shards.sort((a, b) => a.meta.index - b.meta.index)
      state.open = openShards(state.shards)
    }
  }

  /**
   * Makes this relay fit to write a stream another relay wrote before (cluster: it has just taken the
   * stream's lease): the shard map and each log's end are read again from the cluster, and the
   * producer table is rebuilt from the last snapshot plus the log after it, as after a restart.
   */
  async takeOver(name: string): Promise<void> {
    await this.sync(name)
    const state = this.byName.get(name)
    if (!state) return
    for (const shard of state.shards) if (!shard.log.dropped) await shard.log.refresh?.()
    const stale = state.producersStale
    state.producersStale = false
    try {
      const producers = new ProducerTable()
      await this.restoreProducers(state, producers)
      state.producers = producers
    } catch (err) {
      if (stale) state.producersStale = true
      throw err
    }
  }

  private async load(meta: StreamMeta, how: { recover: boolean } = { recover: true }): Promise<StreamState> {
    if (meta.status === 'UPDATING' && how.recover) {
      // Stopped in the middle of a reshard or mode change: the map change commits whole or not at all, so whichever map is stored stands.
      await this.meta.setStreamStatus(meta.name, 'ACTIVE')
      meta.status = 'ACTIVE'
    }
    const metas = await this.meta.listShards(meta.id)
    const saved = await this.meta.loadProducerState(meta.id)
    const early: EarlyRead = { snapshot: saved ? JSON.parse(saved) as ProducerSnapshot : null, pages: new Map() }
    let budget = EARLY_BYTES
    // As many at once as the store allows (the file store: a few; the cluster's: one, so that relays
    // loading the same stream do not race to create a shard's JetStream stream), kept in the stored order.
    const logs = new Array<ShardLog>(metas.length)
    let next = 0
    await Promise.all(Array.from({ length: Math.min(this.logs.openConcurrency ?? 1, metas.length) }, async () => {
      while (next < metas.length) {
        const i = next++
        const { shardId } = metas[i]!
        const log = logs[i] = await this.logs.open(meta.id, shardId)
        // The first page the producer table will want, read now while the shard's files are likely
        // still open (a store keeps a few hundred open, a stream may have thousands of shards).
        const offset = Math.max(early.snapshot?.covered[shardId] ?? 0, log.startOffset())
        if (offset >= log.endOffset() || budget < RESTORE_AHEAD_BYTES) continue
        budget -= RESTORE_AHEAD_BYTES
        const page = log.read(offset, 10_000, RESTORE_AHEAD_BYTES)
        early.pages.set(shardId, { offset, page })
        // A failure is met when the page's turn comes.
        const result = await page.catch(() => null)
        let used = 0
        for (const r of result?.records ?? []) used += r.data.length + EARLY_RECORD_OVERHEAD
        budget += RESTORE_AHEAD_BYTES - Math.min(used, RESTORE_AHEAD_BYTES)
      }
    }))
    const shards: ShardState[] = metas.map((s, i) => {
      const log = logs[i]!
      // A parent closes at the offset its next record would have had; records still waiting for their
      // commit when the relay died were never acknowledged and are gone, so its log ends earlier.
      if (s.endOffset !== null && s.endOffset > log.endOffset()) s.endOffset = log.endOffset()
      return { meta: s, log, start: BigInt(s.hashStart), end: BigInt(s.hashEnd), createdSec: Math.floor(s.createdMs / 1000) }
    })
    const state: StreamState = { meta, shards, open: openShards(shards), producers: new ProducerTable(), tags: await this.meta.getTags(meta.id) }
    // Closed shards past retention were dropped before; opening them made empty logs again: drop those too.
    for (const shard of shards) if (this.expired(state, shard)) await this.logs.drop(meta.id, shard.meta.shardId)
    await this.restoreProducers(state, state.producers, early)
    this.byName.set(meta.name, state)
    this.byId.set(meta.id, state)
    return state
  }

  /** Snapshot, then the log written after it: every device record's identity goes back into the table. `early`: what a load read meanwhile. */
  private async restoreProducers(state: StreamState, producers = state.producers, early?: EarlyRead): Promise<void> {
    let snapshot = early?.snapshot
    if (snapshot === undefined) {
      const saved = await this.meta.loadProducerState(state.meta.id)
      snapshot = saved ? JSON.parse(saved) as ProducerSnapshot : null
    }
    let covered: Record<string, number> = {}
    if (snapshot) {
      // A snapshot that claims more than the log holds cannot be trusted: replay everything instead.
      // (A dropped shard, expired, holds nothing and has nothing left to restore.)
      const consistent = state.shards.every((s) => s.log.dropped || (snapshot.covered[s.meta.shardId] ?? 0) <= s.log.endOffset())
      if (consistent) {
        producers.load(snapshot)
        covered = snapshot.covered
      }
    }
    const from = (shard: ShardState) => Math.max(covered[shard.meta.shardId] ?? 0, shard.log.startOffset())
    // Records go into the table shard after shard, in order, as always; the first page of the next few
    // shards is read meanwhile (a stream may have thousands, each a file to open and read).
    const ahead: (PageAhead | null)[] = []
    const readAhead = (i: number) => {
      const shard = state.shards[i]
      if (!shard || ahead[i] !== undefined) return
      const read = early?.pages.get(shard.meta.shardId)
      if (read) {
        early!.pages.delete(shard.meta.shardId)
        ahead[i] = read
        return
      }
      const offset = from(shard)
      if (shard.log.dropped || offset >= shard.log.endOffset()) {
        ahead[i] = null
        return
      }
      const page = shard.log.read(offset, 10_000, RESTORE_AHEAD_BYTES)
      // A failure is met when its turn comes (or never, if the shard was dropped by then).
      page.catch(() => {})
      ahead[i] = { offset, page }
    }
    for (let i = 0; i < state.shards.length; i++) {
      for (let j = i; j < i + RESTORE_AHEAD; j++) readAhead(j)
      const shard = state.shards[i]!
      const read = ahead[i]
      ahead[i] = null
      if (shard.log.dropped) continue
      let offset = from(shard)
      // Read ahead from where this turn starts too (retention may have moved the log's start meanwhile), or read again.
      let page = read && read.offset === offset ? read.page : null
      while (offset < shard.log.endOffset()) {
        const { records, nextOffset } = await (page ?? shard.log.read(offset, 10_000, 64 * 1024 * 1024))
        page = null
        for (const r of records) {
          if (r.device) producers.mark(r.device, r.epoch, r.batchSequence, r.batchIndex, r.batchIndex + 1)
        }
        if (nextOffset <= offset) break
        offset = nextOffset
      }
    }
  }

  /** Saves each stream's producer table. Covered offsets are taken first, then the log is committed, then the snapshot written. */
  async snapshotProducers(): Promise<void> {
    // A stale table (a refused commit) is not saved: it may mark records that were never stored.
    const snapshots = [...this.byName.values()].filter((state) => this.writes(state.meta.id) && !state.producersStale).map((state) => {
      const covered: Record<string, number> = {}
      for (const s of state.shards) covered[s.meta.shardId] = s.log.nextOffset()
      return { state, snapshot: state.producers.snapshot(covered) }
    })
    await this.logs.commit()
    for (const { state, snapshot } of snapshots) {
      if (this.byId.get(state.meta.id) === state) await this.meta.saveProducerState(state.meta.id, JSON.stringify(snapshot))
    }
  }

  list(): StreamState[] {
    return [...this.byName.values()].sort((a, b) => (a.meta.name < b.meta.name ? -1 : 1))
  }

  get(name: string): StreamState | undefined {
    return this.byName.get(name)
  }

  getById(id: string): StreamState | undefined {
    return this.byId.get(id)
  }

  /**
   * Creates a stream. Every caller waiting for the same creation (see `ensure`) awaits the very same
   * promise, so they resume in the order they arrived: device batches queued behind an auto-create
   * keep their order.
   */
  create(name: string, shardCount: number, retentionHours = this.retentionHours, extra: { mode?: StreamMeta['mode']; tags?: Record<string, string>; adopt?: boolean } = {}): Promise<StreamState> {
    if (!STREAM_NAME_PATTERN.test(name)) return Promise.reject(new TributaryError(ErrorCode.STREAM_NAME_INVALID, `stream name ${JSON.stringify(name)} must match ${STREAM_NAME_PATTERN}`))
    if (this.byName.has(name) || this.creating.has(name)) return Promise.reject(new TributaryError(ErrorCode.CONFLICT, `stream ${name} already exists`))
    let release: () => void
    try {
      release = this.reserve(shardCount)
    } catch (err) {
      return Promise.reject(err)
    }
    const pending = (async () => {
      const now = this.now()
      const meta: StreamMeta = {
        name, id: `${name}.${randomBytes(6).toString('hex')}`, arn: this.arnOf(name), status: 'ACTIVE',
        retentionHours, createdMs: now, mode: extra.mode ?? 'PROVISIONED',
      }
      const shards: ShardMeta[] = hashRanges(shardCount).map(([start, end], i) => ({
        streamId: meta.id, shardId: shardIdOf(i), index: i, hashStart: start.toString(), hashEnd: end.toString(),
        createdMs: now, parentShardId: null, adjacentParentShardId: null, endOffset: null,
      }))
      try {
        await this.meta.createStream(meta, shards)
      } catch (err) {
        // `adopt` (auto-create): in a cluster another relay may have created it a moment ago; take that one.
        const stored = extra.adopt && err instanceof TributaryError && err.code === ErrorCode.CONFLICT ? await this.meta.getStream(name) : undefined
        if (!stored || stored.status === 'DELETING') throw err
        return this.load(stored, { recover: false })
      }
      if (extra.tags && Object.keys(extra.tags).length) await this.meta.putTags(meta.id, extra.tags)
      return this.load(meta)
    })()
    this.creating.set(name, pending)
    pending.finally(() => { this.creating.delete(name); release() }).catch(() => {})
    return pending
  }

  /**
   * Creates the stream unless it exists (or is being created); used by auto-create on ingest, which
   * names the device (tagged on the stream, see AUTO_CREATED_BY_TAG).
   */
  ensure(name: string, shardCount: number, device?: string): Promise<StreamState> {
    // Checked and registered in one synchronous step, so two devices naming a new stream at once share one creation.
    const existing = this.byName.get(name)
    if (existing) return Promise.resolve(existing)
    return this.creating.get(name) ?? this.create(name, shardCount, undefined, { adopt: true, ...(device ? { tags: { [AUTO_CREATED_BY_TAG]: device } } : {}) })
  }

  /** Whether `name` exists or is being created. */
  has(name: string): boolean {
    return this.byName.has(name) || this.creating.has(name)
  }

  /** Streams that `device` created by publishing to them, and that still exist. */
  autoCreatedBy(device: string): number {
    let n = 0
    for (const s of this.byName.values()) if (s.tags[AUTO_CREATED_BY_TAG] === device) n++
    return n
  }

  async delete(name: string): Promise<void> {
    const state = this.byName.get(name)
    if (!state) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${name} not found`)
    // DELETING first, so a crash half-way finishes the deletion at the next start.
    await this.meta.setStreamStatus(name, 'DELETING')
    this.byName.delete(name)
    this.byId.delete(state.meta.id)
    await this.logs.drop(state.meta.id)
    await this.meta.deleteStream(name)
  }

  async setRetention(state: StreamState, hours: number): Promise<void> {
    await this.meta.setRetention(state.meta.name, hours)
    state.meta.retentionHours = hours
  }

  async setMode(state: StreamState, mode: StreamMeta['mode']): Promise<void> {
    await this.meta.setStreamMode(state.meta.name, mode)
    state.meta.mode = mode
  }

  async addTags(state: StreamState, tags: Record<string, string>): Promise<void> {
    await this.meta.putTags(state.meta.id, tags)
    state.tags = { ...state.tags, ...tags }
  }

  async removeTags(state: StreamState, keys: string[]): Promise<void> {
    await this.meta.removeTags(state.meta.id, keys)
    const tags = { ...state.tags }
    for (const k of keys) delete tags[k]
    state.tags = tags
  }

  // ---- resharding ----

  private openRanges(state: StreamState) {
    return state.open.map((s) => ({ shardId: s.meta.shardId, start: s.start, end: s.end }))
  }

  private nextIndex(state: StreamState): number {
    return state.shards.reduce((n, s) => Math.max(n, s.meta.index + 1), 0)
  }

  /**
   * Holds `extra` shards against the limit until the returned function is called (once they are open,
   * or the change failed). Throws ShardLimitError when they would pass it.
   */
  reserve(extra: number): () => void {
    const current = this.openShardCount() + this.reserved
    if (extra > 0 && current + extra > this.shardLimit) throw new ShardLimitError(this.shardLimit, current, extra, this.accountId, this.region)
    this.reserved += extra
    let released = false
    return () => {
      if (released) return
      released = true
      this.reserved -= extra
    }
  }

  /** Applies a plan that adds `extra` open shards, held against the limit meanwhile. */
  private async grow(state: StreamState, extra: number, plan: () => ReshardPlan): Promise<void> {
    const release = this.reserve(extra)
    try {
      await this.apply(state, plan())
    } finally {
      release()
    }
  }

  /** SplitShard; the caller has checked that the shard is open and the key strictly inside its range. */
  split(state: StreamState, shardId: string, newStart: bigint): Promise<void> {
    return this.grow(state, 1, () => planSplit(this.openRanges(state), this.nextIndex(state), shardId, newStart))
  }

  /** MergeShards; the caller has checked that both are open and adjacent. */
  merge(state: StreamState, shardId: string, adjacentId: string): Promise<void> {
    return this.apply(state, planMerge(this.openRanges(state), this.nextIndex(state), shardId, adjacentId))
  }

  /** UpdateShardCount with UNIFORM_SCALING: an even map of `target` open shards. */
  scale(state: StreamState, target: number): Promise<void> {
    return this.grow(state, Math.max(0, target - state.open.length), () => planUniformScaling(this.openRanges(state), this.nextIndex(state), target))
  }

  /**
   * Applies a plan while reads and writes go on. The stream is UPDATING meanwhile (a second reshard
   * is refused). New shards' logs are opened first; then, in one synchronous step, each parent's end
   * offset is taken, the map change is handed to the store (one transaction, with status ACTIVE) and
   * routing switches to the new shards, so no record can land in a parent past its end. A crash before
   * the transaction leaves the old map, after it the new one.
   */
  private async apply(state: StreamState, plan: ReshardPlan): Promise<void> {
    const { name, id } = state.meta
    if (state.meta.status !== 'ACTIVE') throw new TributaryError(ErrorCode.CONFLICT, `stream ${name} is ${state.meta.status}`)
    state.meta.status = 'UPDATING'
    try {
      await this.meta.setStreamStatus(name, 'UPDATING')
      this.onReshardStep('updating', name)
      const now = this.now()
      const created: ShardState[] = []
      for (const p of plan.create) {
        const meta: ShardMeta = {
          streamId: id, shardId: p.shardId, index: p.index, hashStart: p.start.toString(), hashEnd: p.end.toString(), createdMs: now,
          parentShardId: p.parentShardId, adjacentParentShardId: p.adjacentParentShardId, endOffset: p.transient ? 0 : null,
        }
        created.push({ meta, log: await this.logs.open(id, p.shardId), start: p.start, end: p.end, createdSec: Math.floor(now / 1000) })
      }
      if (this.byId.get(id) !== state) {
        await this.logs.drop(id) // the new shards' directories, made after the stream's were removed
        throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${name} was deleted during the reshard`)
      }
      this.onReshardStep('children-opened', name)
      // From here until the swap below nothing else runs.
      const parents = plan.close.map((shardId) => state.shards.find((s) => s.meta.shardId === shardId)!)
      const close = parents.map((p) => ({ shardId: p.meta.shardId, endOffset: p.log.nextOffset() }))
      const persisted = this.meta.reshard(id, { close, create: created.map((c) => c.meta), status: 'ACTIVE' })
      const before = { shards: state.shards, open: state.open }
      parents.forEach((p, i) => { p.meta.endOffset = close[i]!.endOffset })
      state.shards = [...state.shards, ...created].sort((a, b) => a.meta.index - b.meta.index)
      state.open = openShards(state.shards)
      try {
        await persisted
      } catch (err) {
        for (const p of parents) p.meta.endOffset = null
        state.shards = before.shards
        state.open = before.open
        throw err
      }
      state.meta.status = 'ACTIVE'
      this.onReshardStep('map-committed', name)
    } finally {
      if (state.meta.status === 'UPDATING') {
        state.meta.status = 'ACTIVE'
        if (this.byId.get(id) === state) await this.meta.setStreamStatus(name, 'ACTIVE')
      }
    }
  }

  /** The shards a closed shard's readers continue with (ChildShards). */
  children(state: StreamState, shard: ShardState): ShardState[] {
    return state.shards.filter((s) => s.meta.parentShardId === shard.meta.shardId || s.meta.adjacentParentShardId === shard.meta.shardId)
  }

  /** When a shard closed: its children were created then. Null while it is open. */
  closedMs(state: StreamState, shard: ShardState): number | null {
    if (shard.meta.endOffset === null) return null
    const kids = this.children(state, shard)
    return kids.length ? Math.min(...kids.map((k) => k.meta.createdMs)) : shard.meta.createdMs
  }

  /** A closed shard whose every record is past retention: no longer listed or readable, as in Kinesis. */
  expired(state: StreamState, shard: ShardState, now = this.now()): boolean {
    const closed = this.closedMs(state, shard)
    return closed !== null && closed < now - state.meta.retentionHours * 3_600_000
  }

  /**
   * Removes the logs of closed shards whose records are all past retention (retention by segments
   * always keeps a shard's last one). Their metadata stays, as children name them as parents.
   */
  async expireClosedShards(): Promise<number> {
    const now = this.now()
    let dropped = 0
    for (const state of [...this.byId.values()]) {
      for (const shard of state.shards) {
        if (!this.expired(state, shard, now) || shard.log.dropped) continue
        await this.logs.drop(state.meta.id, shard.meta.shardId)
        dropped++
      }
    }
    return dropped
  }

  /** When the stream's UpdateShardCount calls of the last 24 hours happened (Kinesis allows ten). */
  async recentScalings(state: StreamState): Promise<number[]> {
    const raw = await this.meta.getSetting(`scalings:${state.meta.id}`)
    const since = this.now() - 86_400_000
    return raw ? (JSON.parse(raw) as number[]).filter((at) => at > since) : []
  }

  async noteScaling(state: StreamState): Promise<void> {
    const recent = await this.recentScalings(state)
    await this.meta.putSetting(`scalings:${state.meta.id}`, JSON.stringify([...recent, this.now()]))
  }

  /** The shards a listing shows: open ones and closed ones still within retention. */
  retained(state: StreamState): ShardState[] {
    const now = this.now()
    return state.shards.filter((s) => !this.expired(state, s, now))
  }

  openShardCount(): number {
    let n = 0
    for (const s of this.byName.values()) n += s.open.length
    return n
  }

  retentionMs(streamId: string): number {
    const state = this.byId.get(streamId)
    return (state?.meta.retentionHours ?? this.retentionHours) * 3_600_000
  }
}


function openShards(shards: ShardState[]): ShardState[] {
  return shards.filter((s) => s.meta.endOffset === null).sort((a, b) => (a.start < b.start ? -1 : 1))
}
