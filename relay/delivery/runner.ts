/**
 * A delivery stream at work: one task per shard of its source, each reading through the relay's
 * shard reader from its checkpoint, buffering records until the size or interval hint is reached,
 * recording the batch's boundaries, delivering it (pipeline.ts) and only then moving its checkpoint.
 * A shard starts once its parents are delivered to their end (SHARD_END), so records of one partition
 * key reach the sink in order across splits and merges. A batch recorded but not checkpointed when
 * the relay stopped is rebuilt from exactly those offsets at the next start.
 */
import type { Clock } from '../../hardware/index.js'
import type { MetadataStore } from '../meta/types.js'
import type { ShardReader } from '../reader.js'
import { decodeSequence, sequenceOf } from '../sequence.js'
import type { ShardState, StreamState, Streams } from '../streams.js'
import type { DeliveryCatalog } from './catalog.js'
import { deliverBatch, type BatchOutcome, type PipelineDeps } from './pipeline.js'
import { sleep, Stopped } from './retry.js'
import type { DeliveryError, DeliveryStats, OutputRecord } from './types.js'

export const SHARD_END = 'SHARD_END'
/** How often an idle shard looks for new records, and the runner for new shards. */
const POLL_MS = 200
const PAGE_RECORDS = 10_000

/** Partition keys of a record nothing has partitioned (shared: never written to). */
const NO_KEYS: Record<string, string> = Object.freeze({}) as Record<string, string>

/**
 * A record read from a shard, ready for the pipeline. Its sequence number is worked out when first
 * asked for: object sinks need only a batch's first and last, so most records never pay for it.
 */
class ShardRecord implements OutputRecord {
  readonly partitionKeys = NO_KEYS
  private sequence: string | undefined
  constructor(private readonly shard: ShardState, private readonly offset: number, readonly arrivalMs: number, readonly partitionKey: string, readonly data: Buffer) {}
  get shardId(): string {
    return this.shard.meta.shardId
  }
  get sequenceNumber(): string {
    return this.sequence ??= sequenceOf(this.shard, this.offset, this.arrivalMs)
  }
}

export function checkpointConsumer(deliveryStream: string): string {
  return `firehose.${deliveryStream}`
}

export interface RunnerDeps {
  name: string
  sourceStreamId: string
  streams: Streams
  reader: ShardReader
  meta: MetadataStore
  catalog: DeliveryCatalog
  clock: Clock
  pipeline: PipelineDeps
  log: (event: string, fields: Record<string, unknown>) => void
  /** Told of each batch delivered (for metrics). */
  onBatch?: (outcome: BatchOutcome) => void
}

interface ShardTask {
  shard: ShardState
  /** Next offset to read into the buffer. */
  offset: number
  buffer: OutputRecord[]
  bufferBytes: number
  /** Monotonic time the first buffered record was read. */
  bufferedSinceMs: number
  /** Records of the batch being delivered now (for freshness). */
  inFlight: OutputRecord[]
  done: Promise<void>
}

export class DeliveryRunner {
  readonly stats: DeliveryStats = {
    recordsDelivered: 0, bytesDelivered: 0, batchesDelivered: 0, recordsFailed: {}, failuresByCode: {},
    backlogRecords: 0, freshnessSeconds: 0, lastDeliveryMs: null, lastError: null,
  }
  private readonly d: RunnerDeps
  private readonly abort = new AbortController()
  private readonly tasks = new Map<string, ShardTask>()
  /** Shards delivered to their end. */
  private readonly ended = new Set<string>()
  private checkpoints = new Map<string, string>()
  /** A shard whose task failed is started again no sooner than this (monotonic ms). */
  private readonly retryAt = new Map<string, number>()
  private loop: Promise<void> | null = null

  constructor(deps: RunnerDeps) {
    this.d = deps
  }

  private get consumer(): string {
    return checkpointConsumer(this.d.name)
  }

  private source(): StreamState | undefined {
    return this.d.streams.getById(this.d.sourceStreamId)
  }

  start(): void {
    this.loop = this.run().catch((err: unknown) => {
      if (err instanceof Stopped) return
      this.d.log('delivery_stopped_on_error', { deliveryStream: this.d.name, error: (err as Error).message })
    })
  }

  async stop(): Promise<void> {
    this.abort.abort()
    await this.loop
    await Promise.allSettled([...this.tasks.values()].map((t) => t.done))
  }

  /** Records not yet delivered and the age of the oldest, read now. */
  refreshGauges(): DeliveryStats {
    const state = this.source()
    let backlog = 0
    let oldest = Infinity
    if (state) {
      for (const shard of state.shards) {
        if (this.ended.has(shard.meta.shardId)) continue
        const task = this.tasks.get(shard.meta.shardId)
        const delivered = task ? task.offset - task.buffer.length - task.inFlight.length : this.resumeHint(shard)
        backlog += Math.max(0, shard.log.endOffset() - delivered)
        const first = task?.inFlight[0] ?? task?.buffer[0]
        if (first) oldest = Math.min(oldest, first.arrivalMs)
      }
    }
    this.stats.backlogRecords = backlog
    this.stats.freshnessSeconds = oldest === Infinity ? 0 : Math.max(0, (this.d.clock.wallMs() - oldest) / 1000)
    return this.stats
  }

  /** Without a task yet: where delivery of a shard stands, from its checkpoint (a shard not begun counts from its start). */
  private resumeHint(shard: ShardState): number {
    const cp = this.checkpoints.get(shard.meta.shardId)
    if (cp === undefined) return shard.log.startOffset()
    if (cp === SHARD_END) return shard.log.endOffset()
    const seq = decodeSequence(cp)
    return seq ? (seq.recordSec === 0 ? seq.offset : seq.offset + 1) : 0
  }

  private async run(): Promise<void> {
    for (const cp of await this.d.meta.listCheckpoints(this.d.sourceStreamId, this.consumer)) {
      this.checkpoints.set(cp.shardId, cp.sequenceNumber)
      if (cp.sequenceNumber === SHARD_END) this.ended.add(cp.shardId)
    }
    while (!this.abort.signal.aborted) {
      const state = this.source()
      if (!state) return
      for (const shard of state.shards) {
        const id = shard.meta.shardId
        if (this.ended.has(id) || this.tasks.has(id)) continue
        if (!this.parentsDone(state, shard)) continue
        if ((this.retryAt.get(id) ?? 0) > this.d.clock.monoMs()) continue
        const task: ShardTask = { shard, offset: 0, buffer: [], bufferBytes: 0, bufferedSinceMs: 0, inFlight: [], done: Promise.resolve() }
        task.done = this.runShard(state, task).catch((err: unknown) => {
          if (err instanceof Stopped || this.abort.signal.aborted) return
          this.d.log('delivery_shard_error', { deliveryStream: this.d.name, shardId: id, error: (err as Error).message })
          this.retryAt.set(id, this.d.clock.monoMs() + 5000)
        }).finally(() => { this.tasks.delete(id) })
        this.tasks.set(id, task)
      }
      await sleep(this.d.clock, POLL_MS, this.abort.signal).catch(() => {})
    }
  }

  /** A parent still in the stream and not delivered to its end holds its children back. */
  private parentsDone(state: StreamState, shard: ShardState): boolean {
    for (const parent of [shard.meta.parentShardId, shard.meta.adjacentParentShardId]) {
      if (parent && state.shards.some((s) => s.meta.shardId === parent) && !this.ended.has(parent)) return false
    }
    return true
  }

  private async checkpoint(shard: ShardState, sequenceNumber: string): Promise<void> {
    await this.d.meta.putCheckpoint({ streamId: this.d.sourceStreamId, consumer: this.consumer, shardId: shard.meta.shardId, sequenceNumber, updatedMs: this.d.clock.wallMs() })
    this.checkpoints.set(shard.meta.shardId, sequenceNumber)
  }

  private async runShard(state: StreamState, task: ShardTask): Promise<void> {
    const { shard } = task
    // Read afresh each time a task starts: a task restarted after a failure finds the batch it had cut.
    const pending = this.d.catalog.pending(this.d.name).find((b) => b.shardId === shard.meta.shardId)
    const signal = this.abort.signal
    const cp = this.checkpoints.get(shard.meta.shardId)
    task.offset = cp === undefined ? shard.log.startOffset() : await this.d.reader.startOffset(shard, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: cp })
    // A batch cut before the relay stopped: deliver exactly it again (its keys are the same).
    if (pending && pending.endOffset > task.offset) {
      const records = await this.readRange(shard, pending.startOffset, pending.endOffset)
      if (records.length) {
        this.d.log('delivery_batch_rebuilt', { deliveryStream: this.d.name, shardId: shard.meta.shardId, first: pending.firstSequence, last: pending.lastSequence, records: records.length })
        task.inFlight = records
        await this.deliver(task, records, pending.startOffset, pending.endOffset)
      }
      task.offset = pending.endOffset
    } else if (pending) {
      this.d.catalog.clearBatch(this.d.name, shard.meta.shardId)
    }
    const { sizeBytes, intervalMs } = this.d.pipeline.config.buffering
    for (;;) {
      if (signal.aborted) throw new Stopped()
      const room = Math.max(1, sizeBytes - task.bufferBytes)
      const page = await this.d.reader.page(state, shard, task.offset, PAGE_RECORDS, room, () => this.d.clock.wallMs())
      const first = page.records[0]
      if (first && first.offset > task.offset) {
        // Retention removed records before delivery reached them.
        const lost = first.offset - task.offset
        this.count({ code: 'Kinesis.RecordsExpired', message: `${lost} records of ${shard.meta.shardId} expired before they were delivered` } as DeliveryError)
        this.d.log('delivery_records_expired', { deliveryStream: this.d.name, shardId: shard.meta.shardId, records: lost })
      }
      for (const r of page.records) {
        if (!task.buffer.length) task.bufferedSinceMs = this.d.clock.monoMs()
        task.buffer.push(new ShardRecord(shard, r.offset, r.arrivalMs, r.partitionKey, r.data))
        task.bufferBytes += r.data.length
      }
      task.offset = page.nextOffset
      // The interval cuts a batch once the reader has caught up; while records are waiting to be read,
      // the buffer fills towards the size hint first (a backlog drains in full-size batches).
      const caughtUp = page.nextOffset >= shard.log.endOffset()
      const due = task.buffer.length > 0 && (task.bufferBytes >= sizeBytes || page.shardEnded || (caughtUp && this.d.clock.monoMs() - task.bufferedSinceMs >= intervalMs))
      if (due) {
        const records = task.buffer
        const startOffset = task.offset - records.length
        task.inFlight = records
        task.buffer = []
        task.bufferBytes = 0
        await this.deliverNew(task, records, startOffset, task.offset)
      }
      if (page.shardEnded && !task.buffer.length) {
        await this.checkpoint(shard, SHARD_END)
        this.ended.add(shard.meta.shardId)
        return
      }
      if (!page.records.length || (!due && caughtUp)) {
        // Caught up: wait for records, or for the interval to run out on what is buffered.
        const untilDue = task.buffer.length ? intervalMs - (this.d.clock.monoMs() - task.bufferedSinceMs) : POLL_MS
        await sleep(this.d.clock, Math.max(1, Math.min(POLL_MS, untilDue)), signal)
      }
    }
  }

  /** Records [from, to) of a shard, as they were read when the batch was cut. */
  private async readRange(shard: ShardState, from: number, to: number): Promise<OutputRecord[]> {
    const out: OutputRecord[] = []
    let offset = from
    while (offset < to) {
      const { records, nextOffset } = await shard.log.read(offset, Math.min(PAGE_RECORDS, to - offset), 64 * 1024 * 1024)
      for (const r of records) {
        if (r.offset >= to) break
        out.push(new ShardRecord(shard, r.offset, r.arrivalMs, r.partitionKey, r.data))
      }
      if (nextOffset <= offset) break
      offset = nextOffset
    }
    return out
  }

  private async deliverNew(task: ShardTask, records: OutputRecord[], startOffset: number, endOffset: number): Promise<void> {
    // The boundaries are on disk before any of the batch is written.
    this.d.catalog.recordBatch({
      name: this.d.name, shardId: task.shard.meta.shardId, startOffset, endOffset,
      firstSequence: records[0]!.sequenceNumber, lastSequence: records.at(-1)!.sequenceNumber,
    })
    await this.deliver(task, records, startOffset, endOffset)
  }

  private async deliver(task: ShardTask, records: OutputRecord[], _startOffset: number, _endOffset: number): Promise<void> {
    const id = { deliveryStream: this.d.name, shardId: task.shard.meta.shardId, firstSequence: records[0]!.sequenceNumber, lastSequence: records.at(-1)!.sequenceNumber }
    const outcome = await deliverBatch(id, records, { ...this.d.pipeline, onFailure: (e) => this.count(e) }, this.abort.signal)
    // Only once the sink (or the error target) has the batch does the checkpoint move past it.
    // The recorded boundaries stay until the next batch's replace them: behind the checkpoint they are
    // ignored at a restart, and leaving them saves a synchronous commit per batch.
    await this.checkpoint(task.shard, id.lastSequence)
    task.inFlight = []
    this.stats.recordsDelivered += outcome.delivered
    this.stats.bytesDelivered += outcome.deliveredBytes
    this.stats.batchesDelivered++
    for (const [type, n] of Object.entries(outcome.failed)) this.stats.recordsFailed[type] = (this.stats.recordsFailed[type] ?? 0) + n
    this.stats.lastDeliveryMs = this.d.clock.wallMs()
    this.d.onBatch?.(outcome)
  }

  private count(error: Pick<DeliveryError, 'code' | 'message'>): void {
    this.stats.failuresByCode[error.code] = (this.stats.failuresByCode[error.code] ?? 0) + 1
    this.stats.lastError = { code: error.code, message: error.message, atMs: this.d.clock.wallMs() }
    this.d.log('delivery_failure', { deliveryStream: this.d.name, code: error.code, error: error.message })
  }
}
