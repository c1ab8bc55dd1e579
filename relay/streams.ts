/**
 * The relay's streams: metadata plus open shard logs plus producer idempotency state, kept in
 * memory for the hot path and backed by the MetadataStore and LogStore.
 */
import { randomBytes } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { STREAM_NAME_PATTERN } from '../shared/topics.js'
import type { LogStore, ShardLog } from './log/types.js'
import type { MetadataStore, ShardMeta, StreamMeta } from './meta/types.js'
import { ProducerTable, type ProducerSnapshot } from './producers.js'
import { encodeSequence } from './kinesis/sequence.js'

export const HASH_SPACE = 1n << 128n

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
}

export const shardIdOf = (index: number) => `shardId-${String(index).padStart(12, '0')}`

/** Even split of the hash key space into `count` ranges, as Kinesis does at creation. */
export function hashRanges(count: number): [bigint, bigint][] {
  const step = HASH_SPACE / BigInt(count)
  return Array.from({ length: count }, (_, i) => [step * BigInt(i), i === count - 1 ? HASH_SPACE - 1n : step * BigInt(i + 1) - 1n])
}

export interface StreamsOptions {
  meta: MetadataStore
  logs: LogStore
  region: string
  accountId: string
  retentionHours: number
  now?: () => number
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

  constructor(options: StreamsOptions) {
    this.meta = options.meta
    this.logs = options.logs
    this.region = options.region
    this.accountId = options.accountId
    this.retentionHours = options.retentionHours
    this.now = options.now ?? Date.now
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

  private async load(meta: StreamMeta): Promise<StreamState> {
    const shards: ShardState[] = []
    for (const s of await this.meta.listShards(meta.id)) {
      shards.push({ meta: s, log: await this.logs.open(meta.id, s.shardId), start: BigInt(s.hashStart), end: BigInt(s.hashEnd), createdSec: Math.floor(s.createdMs / 1000) })
    }
    const state: StreamState = { meta, shards, open: shards.filter((s) => s.meta.endOffset === null).sort((a, b) => (a.start < b.start ? -1 : 1)), producers: new ProducerTable() }
    await this.restoreProducers(state)
    this.byName.set(meta.name, state)
    this.byId.set(meta.id, state)
    return state
  }

  /** Snapshot, then the log written after it: every device record's identity goes back into the table. */
  private async restoreProducers(state: StreamState): Promise<void> {
    const saved = await this.meta.loadProducerState(state.meta.id)
    let covered: Record<string, number> = {}
    if (saved) {
      const snapshot = JSON.parse(saved) as ProducerSnapshot
      // A snapshot that claims more than the log holds cannot be trusted: replay everything instead.
      const consistent = state.shards.every((s) => (snapshot.covered[s.meta.shardId] ?? 0) <= s.log.endOffset())
      if (consistent) {
        state.producers.load(snapshot)
        covered = snapshot.covered
      }
    }
    for (const shard of state.shards) {
      let offset = Math.max(covered[shard.meta.shardId] ?? 0, shard.log.startOffset())
      while (offset < shard.log.endOffset()) {
        const { records, nextOffset } = await shard.log.read(offset, 10_000, 64 * 1024 * 1024)
        for (const r of records) {
          if (r.device) state.producers.mark(r.device, r.epoch, r.batchSequence, r.batchIndex, r.batchIndex + 1)
        }
        if (nextOffset <= offset) break
        offset = nextOffset
      }
    }
  }

  /** Saves each stream's producer table. Covered offsets are taken first, then the log is committed, then the snapshot written. */
  async snapshotProducers(): Promise<void> {
    const snapshots = [...this.byName.values()].map((state) => {
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
  create(name: string, shardCount: number, retentionHours = this.retentionHours): Promise<StreamState> {
    if (!STREAM_NAME_PATTERN.test(name)) return Promise.reject(new TributaryError(ErrorCode.STREAM_NAME_INVALID, `stream name ${JSON.stringify(name)} must match ${STREAM_NAME_PATTERN}`))
    if (this.byName.has(name) || this.creating.has(name)) return Promise.reject(new TributaryError(ErrorCode.CONFLICT, `stream ${name} already exists`))
    const pending = (async () => {
      const now = this.now()
      const meta: StreamMeta = {
        name, id: `${name}.${randomBytes(6).toString('hex')}`, arn: this.arnOf(name), status: 'ACTIVE',
        retentionHours, createdMs: now, mode: 'PROVISIONED',
      }
      const shards: ShardMeta[] = hashRanges(shardCount).map(([start, end], i) => ({
        streamId: meta.id, shardId: shardIdOf(i), index: i, hashStart: start.toString(), hashEnd: end.toString(),
        createdMs: now, parentShardId: null, adjacentParentShardId: null, endOffset: null,
      }))
      await this.meta.createStream(meta, shards)
      return this.load(meta)
    })()
    this.creating.set(name, pending)
    pending.finally(() => this.creating.delete(name)).catch(() => {})
    return pending
  }

  /** Creates the stream unless it exists (or is being created); used by auto-create on ingest. */
  ensure(name: string, shardCount: number): Promise<StreamState> {
    // Checked and registered in one synchronous step, so two devices naming a new stream at once share one creation.
    const existing = this.byName.get(name)
    if (existing) return Promise.resolve(existing)
    return this.creating.get(name) ?? this.create(name, shardCount)
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

  /** The open shard whose hash range holds `hashKey`. */
  route(state: StreamState, hashKey: bigint): ShardState {
    const open = state.open
    let lo = 0
    let hi = open.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (open[mid]!.start <= hashKey) lo = mid
      else hi = mid - 1
    }
    return open[lo]!
  }

  sequenceOf(shard: ShardState, offset: number, arrivalMs: number): string {
    return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset, recordSec: Math.floor(arrivalMs / 1000) })
  }

  retentionMs(streamId: string): number {
    const state = this.byId.get(streamId)
    return (state?.meta.retentionHours ?? this.retentionHours) * 3_600_000
  }
}

