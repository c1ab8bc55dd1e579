/**
 * Ingest: the one path by which records enter shards, whether they come from a device batch over
 * MQTT or from PutRecord(s) over HTTP. Validates by Kinesis's rules, hashes keys (MD5), routes to
 * the open shard, appends, and resolves only after the group commit holding every record is on disk.
 */
import { BATCH_STRIDE, codec as defaultCodec, KEY_VALID_UTF8, u128BEToBigint, type BatchScan, type Codec } from '../hardware/index.js'
import { ErrorCode, FrameError, RecordError, StorageError, TributaryError } from '../shared/errors.js'
import { LogFlag, type LogRecordInput } from '../shared/logframe.js'
import { Limits, recordProblem } from '../shared/limits.js'
import { FRAME_MAGIC_0, FRAME_MAGIC_1, HEADER_SIZE, OFF_BATCH_SEQ, OFF_EPOCH, OFF_MAGIC } from '../shared/frame.js'
import type { RejectMessage } from '../shared/messages.js'
import type { LogStore } from './log/types.js'
import type { ShardState, StreamState, Streams } from './streams.js'

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
  autoCreateStreams: boolean
  autoCreateShardCount: number
  maxBatchRecords: number
  maxDataBytes: number
  /** Observers for /metrics. */
  onStored?: (stream: string, records: number, bytes: number, source: 'mqtt' | 'api') => void
  onRejected?: (code: string, count: number) => void
}

/** The outcome of one device batch that was acknowledged (PUBACK): what, if anything, was refused. */
export interface BatchOutcome {
  stored: number
  duplicates: number
  reject: RejectMessage | null
}

export class Ingest {
  private readonly o: IngestOptions
  private readonly codec: Codec
  /** Routing bounds per open-shard list; a reshard makes a new list, so a stale entry is never used. */
  private readonly bounds = new WeakMap<ShardState[], Buffer>()

  constructor(options: IngestOptions) {
    this.o = options
    this.codec = options.codec ?? defaultCodec
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
  async ingestBatch(device: string, streamName: string, payload: Buffer): Promise<BatchOutcome> {
    let scan: BatchScan
    try {
      scan = this.codec.scanBatch(payload)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      this.o.onRejected?.(err.code, 1)
      // Name the batch when its header is readable, so the device can dead-letter exactly it.
      const named = payload.length >= HEADER_SIZE && payload[OFF_MAGIC] === FRAME_MAGIC_0 && payload[OFF_MAGIC + 1] === FRAME_MAGIC_1
      const sequence = named ? payload.readUInt32LE(OFF_BATCH_SEQ + 4) * 0x1_0000_0000 + payload.readUInt32LE(OFF_BATCH_SEQ) : -1
      return {
        stored: 0, duplicates: 0,
        reject: {
          type: 'reject', stream: streamName, code: err.code, message: err.message, records: [],
          epoch: named ? payload.readBigUInt64LE(OFF_EPOCH).toString() : '0',
          batchSequence: Number.isSafeInteger(sequence) ? sequence : -1,
        },
      }
    }
    const { epoch, sequence, fields } = scan
    const count = scan.times.length
    const base = { type: 'reject' as const, stream: streamName, epoch: epoch.toString(), batchSequence: sequence }
    if (count > this.o.maxBatchRecords) {
      this.o.onRejected?.(ErrorCode.BATCH_TOO_LARGE, count)
      return { stored: 0, duplicates: 0, reject: { ...base, code: ErrorCode.BATCH_TOO_LARGE, message: `batch holds ${count} records, over the limit of ${this.o.maxBatchRecords}`, records: [] } }
    }
    this.checkCapacity()
    let state = this.o.streams.get(streamName)
    if (!state || state.meta.status === 'DELETING') {
      if (!this.o.autoCreateStreams) {
        this.o.onRejected?.(ErrorCode.STREAM_NOT_FOUND, count)
        return { stored: 0, duplicates: 0, reject: { ...base, code: ErrorCode.STREAM_NOT_FOUND, message: `stream ${streamName} does not exist and auto-create is off`, records: [] } }
      }
      state = await this.o.streams.ensure(streamName, this.o.autoCreateShardCount)
    }

    // Validate and drop what is already stored, on the scan's table: no object per record.
    const refused: RecordError[] = []
    const accepted = new Uint32Array(count)
    let kept = 0
    let duplicates = 0
    let bytes = 0
    const seen = state.producers.seen(device, epoch, sequence)
    for (let i = 0; i < count; i++) {
      const f = i * BATCH_STRIDE
      const keyBytes = fields[f + 1]!
      const dataBytes = fields[f + 3]!
      if (!(fields[f + 4]! & KEY_VALID_UTF8)) {
        refused.push(new RecordError(ErrorCode.PARTITION_KEY_INVALID, 'partition key is not valid UTF-8', i))
        continue
      }
      // 1..256 bytes of valid UTF-8 is 1..256 UTF-16 units: only other keys need the full rules.
      if (keyBytes === 0 || keyBytes > Limits.maxPartitionKeyChars || keyBytes + dataBytes > Limits.maxRecordBytes) {
        const key = payload.toString('utf8', fields[f]!, fields[f]! + keyBytes)
        const problem = recordProblem(i, key, dataBytes, undefined)
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
      const slots = this.codec.hashRoute(payload, fields, this.boundsOf(open))
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
    await this.o.logs.commit()
    this.checkNotDropped(touched)
    if (refused.length) {
      for (const r of refused) this.o.onRejected?.(r.code, 1)
      return { stored: kept, duplicates, reject: { ...base, records: refused.map((r) => ({ index: r.index, code: r.code, message: r.message })) } }
    }
    return { stored: kept, duplicates, reject: null }
  }

  /** The open shards' starting hash keys as 16-byte big-endian values, kept per shard map. */
  private boundsOf(open: ShardState[]): Buffer {
    let bounds = this.bounds.get(open)
    if (!bounds) {
      bounds = Buffer.alloc(open.length * 16)
      for (let k = 0; k < open.length; k++) {
        bounds.writeBigUInt64BE(open[k]!.start >> 64n, k * 16)
        bounds.writeBigUInt64BE(open[k]!.start & 0xffff_ffff_ffff_ffffn, k * 16 + 8)
      }
      this.bounds.set(open, bounds)
    }
    return bounds
  }

  /** PutRecord(s): already validated by the API layer. Resolves with where each record went, once durable. */
  async putRecords(state: StreamState, records: IngestRecord[]): Promise<StoredRecord[]> {
    this.checkCapacity()
    const stored = this.append(state, records, 'api', (record) => ({
      partitionKey: record.partitionKey, data: record.data, producerTimeMs: record.producerTimeMs,
      flags: record.explicitHashKey !== undefined ? LogFlag.explicitHashKey : 0,
    }))
    await this.o.logs.commit()
    this.checkNotDropped(stored.map((s) => s.shard))
    return stored
  }

  /** A stream deleted while its records waited for the commit: they were discarded, so say so. */
  private checkNotDropped(shards: ShardState[]): void {
    for (const shard of shards) {
      if (shard.log.dropped) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${shard.meta.streamId.replace(/\.[0-9a-f]{12}$/, '')} was deleted before the records were stored`)
    }
  }

  /** Hashes, routes and appends, keeping the records' order within each shard. */
  private append(state: StreamState, records: IngestRecord[], source: 'mqtt' | 'api', toLog: (r: IngestRecord, i: number) => LogRecordInput): StoredRecord[] {
    const needHash: string[] = []
    for (const r of records) if (r.explicitHashKey === undefined) needHash.push(r.partitionKey)
    const hashes = needHash.length ? this.codec.md5Many(needHash) : null
    const groups = new Map<ShardState, { inputs: LogRecordInput[]; at: number[] }>()
    let h = 0
    let bytes = 0
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const hashKey = r.explicitHashKey ?? u128BEToBigint(hashes!, 16 * h++)
      const shard = this.o.streams.route(state, hashKey)
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

