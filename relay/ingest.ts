/**
 * Ingest: the one path by which records enter shards, whether they come from a device batch over
 * MQTT or from PutRecord(s) over HTTP. Validates by Kinesis's rules, routes each record to its open
 * shard (relay/router.ts), appends, and resolves only after the group commit holding every record is
 * on disk.
 */
import { batchIdentity, BatchView, codec as defaultCodec, type BatchScan, type Codec } from '../hardware/index.js'
import { ErrorCode, FrameError, RecordError, StorageError, TributaryError } from '../shared/errors.js'
import { LogFlag, type LogRecordInput } from '../shared/logframe.js'
import { Limits, recordProblem } from '../shared/limits.js'
import type { RejectMessage } from '../shared/messages.js'
import type { LogStore } from './log/types.js'
import { Router } from './router.js'
import { ShardLimitError, streamNameOf, type ShardState, type StreamState, type Streams } from './streams.js'

export interface IngestRecord {
  partitionKey: string
  data: Uint8Array
  explicitHashKey?: bigint
  producerTimeMs: number
  clockSynced: boolean
}

export interface StoredRecord {
  shard: ShardState
  offset: number
  arrivalMs: number
}

export interface IngestOptions {
  streams: Streams
  logs: LogStore
  codec?: Codec
  /** Routes records to shards; by default a Router over `codec`. */
  router?: Router
  autoCreateStreams: boolean
  autoCreateShardCount: number
  /** Streams one device may create by publishing to them (streams still existing, plus those being created). */
  autoCreateMaxPerDevice: number
  maxBatchRecords: number
  maxDataBytes: number
  /** Observers for /metrics. */
  onStored?: (stream: string, records: number, bytes: number, source: 'mqtt' | 'api') => void
  onRejected?: (code: string, count: number) => void
  /** In a cluster: which relay writes a stream. Without it this relay writes every stream. */
  placement?: WritePlacement
  /** The relay's wall clock (ms): a plain record's producer time. */
  now?: () => number
}

/**
 * In a cluster, one relay writes each stream (relay/cluster/): where a stream's writes go. `remote`
 * resolves to null when this relay writes it, else to a writer that sends them to the relay that
 * does; that writer resolves to null when the owner has gone meanwhile (ask again).
 */
export interface WritePlacement {
  remote(state: StreamState): Promise<RemoteWriter | null>
}

export interface RemoteWriter {
  ingestBatch(device: string, streamName: string, payload: Buffer): Promise<BatchOutcome | null>
  putRecords(records: IngestRecord[]): Promise<StoredRecord[] | null>
}

/** How a write is run: `local` for one another relay forwarded here, which must not be forwarded again. */
export interface WriteHow {
  local?: boolean
}

/** The outcome of one plain record that was acknowledged (PUBACK): where it went, or why it was refused. */
export interface RecordOutcome {
  stored: StoredRecord | null
  reject: RejectMessage | null
}

/** The outcome of one device batch that was acknowledged (PUBACK): what, if anything, was refused. */
export interface BatchOutcome {
  stored: number
  duplicates: number
  reject: RejectMessage | null
}

/** Commit refusals a shared log survives (relay/log/jetstream.ts): the store goes on, this commit did not happen. */
const REFUSED_COMMIT: ReadonlySet<string> = new Set([ErrorCode.LOG_FENCED, ErrorCode.LOG_DUPLICATE, ErrorCode.LOG_UNAVAILABLE])

export class Ingest {
  private readonly o: IngestOptions
  private readonly codec: Codec
  private readonly router: Router
  /** Auto-creations under way, by device (not yet tagged on a stream). */
  private readonly autoCreating = new Map<string, number>()

  constructor(options: IngestOptions) {
    this.o = options
    this.codec = options.codec ?? defaultCodec
    this.router = options.router ?? new Router(this.codec)
  }

  /** Refuses when the relay cannot store: its data cap is reached or the log store has failed. */
  checkCapacity(): void {
    this.o.logs.checkWritable()
    if (this.o.logs.failed) throw new StorageError(ErrorCode.STORAGE_FAILED, `storage is failing: ${this.o.logs.failed.message}`)
    if (this.o.maxDataBytes > 0 && this.o.logs.totalBytes() >= this.o.maxDataBytes) {
      throw new StorageError(ErrorCode.STORAGE_FULL, `the relay's data directory is at its cap of ${this.o.maxDataBytes} bytes`)
    }
  }

  /**
   * One device batch. Resolves once every accepted record is durable; the caller then PUBACKs and
   * publishes `reject` when it is set. Rejects with a StorageError when nothing can be stored now
   * (the caller must not PUBACK).
   */
  async ingestBatch(device: string, streamName: string, payload: Buffer, how: WriteHow = {}): Promise<BatchOutcome> {
    let scan: BatchScan
    try {
      scan = this.codec.scanBatch(payload)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      this.o.onRejected?.(err.code, 1)
      // Name the batch when its header is readable, so the device can dead-letter exactly it.
      const identity = batchIdentity(payload)
      return {
        stored: 0, duplicates: 0,
        reject: {
          type: 'reject', stream: streamName, code: err.code, message: err.message, records: [],
          epoch: identity ? identity.epoch.toString() : '0',
          batchSequence: identity && Number.isSafeInteger(identity.sequence) ? identity.sequence : -1,
        },
      }
    }
    const { epoch, sequence } = scan
    const view = new BatchView(payload, scan)
    const count = view.count
    const base = { type: 'reject' as const, stream: streamName, epoch: epoch.toString(), batchSequence: sequence }
    if (count > this.o.maxBatchRecords) {
      this.o.onRejected?.(ErrorCode.BATCH_TOO_LARGE, count)
      return { stored: 0, duplicates: 0, reject: { ...base, code: ErrorCode.BATCH_TOO_LARGE, message: `batch holds ${count} records, over the limit of ${this.o.maxBatchRecords}`, records: [] } }
    }
    this.checkCapacity()
    // An existing stream is taken without a turn of the event loop (the batch is appended at once).
    const existing = this.o.streams.get(streamName)
    const found = existing && existing.meta.status !== 'DELETING' ? existing : await this.createFor(device, streamName)
    if ('code' in found) {
      this.o.onRejected?.(found.code, count)
      return { stored: 0, duplicates: 0, reject: { ...base, code: found.code, message: found.message, records: [] } }
    }
    const state = found
    const sent = await this.forwarded(state, how, (remote) => remote.ingestBatch(device, streamName, payload))
    if (sent) return sent

    // Throws while the cluster cannot be read: the batch is not acknowledged, the device resends.
    if (state.producersStale) await this.o.streams.takeOver(state.meta.name)
    // Validate and drop what is already stored, on the scan's table: no object per record.
    const refused: RecordError[] = []
    const accepted = new Uint32Array(count)
    let kept = 0
    let duplicates = 0
    let bytes = 0
    const seen = state.producers.seen(device, epoch, sequence)
    for (let i = 0; i < count; i++) {
      const keyBytes = view.keyLength(i)
      const dataBytes = view.dataLength(i)
      if (!view.keyIsValidUtf8(i)) {
        refused.push(new RecordError(ErrorCode.PARTITION_KEY_INVALID, 'partition key is not valid UTF-8', i))
        continue
      }
      // 1..256 bytes of valid UTF-8 is 1..256 UTF-16 units: only other keys need the full rules.
      if (keyBytes === 0 || keyBytes > Limits.maxPartitionKeyChars || keyBytes + dataBytes > Limits.maxRecordBytes) {
        const problem = recordProblem(i, view.partitionKey(i), dataBytes, undefined)
        if (problem) { refused.push(problem); continue }
      }
      if (seen?.has(i)) { duplicates++; continue }
      accepted[kept++] = i
      bytes += dataBytes
    }
    const touched: ShardState[] = []
    if (kept) {
      const indices = accepted.subarray(0, kept)
      const open = state.open
      const slots = this.router.routeBatch(state, payload, scan)
      // Group by shard, keeping the batch's order within each.
      const perShard = new Uint32Array(open.length)
      for (let j = 0; j < kept; j++) perShard[slots[indices[j]!]!]!++
      const groups = new Array<Uint32Array | undefined>(open.length)
      const fill = new Uint32Array(open.length)
      for (let j = 0; j < kept; j++) {
        const i = indices[j]!
        const slot = slots[i]!
        const g = (groups[slot] ??= new Uint32Array(perShard[slot]!))
        g[fill[slot]!++] = i
      }
      for (let slot = 0; slot < open.length; slot++) {
        const g = groups[slot]
        if (!g) continue
        open[slot]!.log.appendBatch({ frame: payload, scan, indices: g, device })
        // Marked shard by shard: if a later shard's append throws, what earlier ones took is still
        // committed, and the device's resend must find it already stored.
        state.producers.markMany(device, epoch, sequence, g, count)
        touched.push(open[slot]!)
      }
      this.o.onStored?.(state.meta.name, kept, bytes, 'mqtt')
    }
    // Even an all-duplicate batch waits: its first copy may still be on its way to disk.
    try {
      await this.o.logs.commit()
    } catch (err) {
      if (err instanceof TributaryError && REFUSED_COMMIT.has(err.code)) {
        // A shared log (cluster) refused the commit and lives on: the producer table holds marks for
        // records that were not stored, or lacks ones another writer stored. It is rebuilt from what
        // the log holds before the next batch (the device's resend) is checked against it.
        state.producersStale = true
      }
      throw err
    }
    this.checkNotDropped(touched)
    if (refused.length) {
      for (const r of refused) this.o.onRejected?.(r.code, 1)
      return { stored: kept, duplicates, reject: { ...base, records: refused.map((r) => ({ index: r.index, code: r.code, message: r.message })) } }
    }
    return { stored: kept, duplicates, reject: null }
  }

  /**
   * One plain record: a device's publish to `tributary/v1/{device}/put/{stream}[/{key}]`, its payload
   * the data as sent, stamped with the relay's time. Resolves once it is durable, or with the reject
   * the device is told of (the publish is still acknowledged: sending it again cannot help). No
   * producer identity: a publish resent after a lost PUBACK is stored again (at least once).
   */
  async ingestRecord(device: string, streamName: string, partitionKey: string, data: Buffer, topic: string): Promise<RecordOutcome> {
    const refuse = (code: ErrorCode, message: string): RecordOutcome => {
      this.o.onRejected?.(code, 1)
      return { stored: null, reject: { type: 'reject', stream: streamName, epoch: '0', batchSequence: -1, code, message, records: [], topic } }
    }
    const problem = recordProblem(0, partitionKey, data.length, undefined)
    if (problem) return refuse(problem.code, problem.message)
    this.checkCapacity()
    const existing = this.o.streams.get(streamName)
    const found = existing && existing.meta.status !== 'DELETING' ? existing : await this.createFor(device, streamName)
    if ('code' in found) return refuse(found.code, found.message)
    const record: IngestRecord = { partitionKey, data, producerTimeMs: (this.o.now ?? Date.now)(), clockSynced: true }
    const [stored] = await this.putRecords(found, [record], undefined, {}, 'mqtt')
    return { stored: stored!, reject: null }
  }

  /** A stream a device writes to that does not exist (or is being deleted): made now when the relay does that; else why not. */
  private async createFor(device: string, streamName: string): Promise<StreamState | { code: ErrorCode; message: string }> {
    if (!this.o.autoCreateStreams) return { code: ErrorCode.STREAM_NOT_FOUND, message: `stream ${streamName} does not exist and auto-create is off` }
    const created = await this.autoCreate(device, streamName)
    if ('reject' in created) return { code: ErrorCode.LIMIT_EXCEEDED, message: created.reject }
    return created.state
  }

  /**
   * Creates the stream a device publishes to, within the device's cap and the relay's shard limit;
   * a refusal is said to the device (its batch is rejected, not left unacknowledged).
   */
  private async autoCreate(device: string, streamName: string): Promise<{ state: StreamState } | { reject: string }> {
    const streams = this.o.streams
    const joining = streams.has(streamName) // another device's creation under way: shared, not counted again
    const mine = this.autoCreating.get(device) ?? 0
    if (!joining && streams.autoCreatedBy(device) + mine >= this.o.autoCreateMaxPerDevice) {
      return { reject: `device ${device} has created ${this.o.autoCreateMaxPerDevice} streams by publishing, its limit (auto-create-max-per-device); create ${streamName} through the API` }
    }
    if (!joining) this.autoCreating.set(device, mine + 1)
    try {
      return { state: await streams.ensure(streamName, this.o.autoCreateShardCount, device) }
    } catch (err) {
      if (err instanceof ShardLimitError) return { reject: err.message }
      throw err
    } finally {
      if (!joining) {
        const left = (this.autoCreating.get(device) ?? 1) - 1
        if (left > 0) this.autoCreating.set(device, left)
        else this.autoCreating.delete(device)
      }
    }
  }

  /**
   * PutRecord(s): already validated by the API layer. Resolves with where each record went, once
   * durable. `shards`, when given, is each record's shard from `router.routeRecords` (the API layer
   * routes once for its throughput meter and for this append); a list a reshard has since closed a
   * shard of is routed again, as it would have been without it.
   */
  async putRecords(state: StreamState, records: IngestRecord[], shards?: ShardState[], how: WriteHow = {}, source: 'mqtt' | 'api' = 'api'): Promise<StoredRecord[]> {
    if (shards && shards.length !== records.length) throw new RangeError(`putRecords: ${shards.length} shards for ${records.length} records`)
    this.checkCapacity()
    const sent = await this.forwarded(state, how, (remote) => remote.putRecords(records))
    if (sent) return sent
    const routes = shards && shards.every((s) => s.meta.endOffset === null) ? shards : this.router.routeRecords(state, records)
    const stored = this.append(state, records, routes, source, (record) => ({
      partitionKey: record.partitionKey, data: record.data, producerTimeMs: record.producerTimeMs,
      flags: record.explicitHashKey !== undefined ? LogFlag.explicitHashKey : 0,
    }))
    await this.o.logs.commit()
    this.checkNotDropped(stored.map((s) => s.shard))
    return stored
  }

  /**
   * In a cluster, a write for a stream another relay writes goes to that relay: its answer, or null
   * when this relay writes the stream (or the write came forwarded). Asked again while the owner moves.
   */
  private async forwarded<T>(state: StreamState, how: WriteHow, send: (remote: RemoteWriter) => Promise<T | null>): Promise<T | null> {
    if (!this.o.placement || how.local) return null
    for (;;) {
      const remote = await this.o.placement.remote(state)
      if (!remote) return null
      const answer = await send(remote)
      if (answer) return answer
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** A stream deleted while its records waited for the commit: they were discarded, so say so. */
  private checkNotDropped(shards: ShardState[]): void {
    for (const shard of shards) {
      if (shard.log.dropped) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${streamNameOf(shard.meta.streamId)} was deleted before the records were stored`)
    }
  }

  /** Appends each record to its routed shard, keeping the records' order within each shard. */
  private append(state: StreamState, records: IngestRecord[], routes: ShardState[], source: 'mqtt' | 'api', toLog: (r: IngestRecord, i: number) => LogRecordInput): StoredRecord[] {
    const groups = new Map<ShardState, { inputs: LogRecordInput[]; at: number[] }>()
    let bytes = 0
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const shard = routes[i]!
      let g = groups.get(shard)
      if (!g) { g = { inputs: [], at: [] }; groups.set(shard, g) }
      g.inputs.push(toLog(r, i))
      g.at.push(i)
      bytes += r.data.length
    }
    const out = new Array<StoredRecord>(records.length)
    for (const [shard, g] of groups) {
      const { firstOffset, arrivalMs } = shard.log.append(g.inputs)
      for (let j = 0; j < g.at.length; j++) out[g.at[j]!] = { shard, offset: firstOffset + j, arrivalMs }
    }
    this.o.onStored?.(state.meta.name, records.length, bytes, source)
    return out
  }
}

