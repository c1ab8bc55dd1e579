/**
 * The relay's delivery streams: created through the Firehose API or declared in the relay's delivery
 * file, remembered in meta.db (catalog.ts), each run by a DeliveryRunner over the relay's one shard
 * reader. A direct-put delivery stream stores what is put to it in its own backing data stream,
 * `firehose.<name>`, through the same ingest as PutRecords, so its records have sequence numbers,
 * survive restarts and are delivered the same way (and can be read with the Kinesis API).
 */
import { join } from 'node:path'
import { every, type Clock } from '../../hardware/index.js'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { Registry } from '../../shared/metrics.js'
import type { Ingest } from '../ingest.js'
import type { MetadataStore } from '../meta/types.js'
import type { ShardReader } from '../reader.js'
import { sequenceOf } from '../sequence.js'
import type { StreamState, Streams } from '../streams.js'
import { DeliveryCatalog, type DeliveryRow } from './catalog.js'
import { normalizeDeliveryConfig, type DeliveryFile } from './config.js'
import { checkFormat, checkPrefix, JqPartitioner, prefixUses } from './format/index.js'
import { checkpointConsumer, DeliveryRunner, SHARD_END } from './runner.js'
import { openRecordSink } from './sinks/index.js'
import { openObjectStore } from './store/index.js'
import { loadTransform } from './transform.js'
import {
  DeliveryConfigError, type DeliveryService, type DeliveryStats, type DeliveryStreamConfig, type DeliveryStreamDescription,
  type ObjectStore, type ObjectTarget, type PutResult, type RecordSink, type SinkTarget,
} from './types.js'

/** Delivery streams one relay runs at most (Firehose's default quota per region is 50; a small machine runs fewer). */
export const MAX_DELIVERY_STREAMS = 50
export const BACKING_PREFIX = 'firehose.'
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
const BACKING_TAG = 'tributary:delivery-stream'

export interface DeliveriesOptions {
  dataDir: string
  metaPath: string
  meta: MetadataStore
  streams: Streams
  reader: ShardReader
  ingest: Ingest
  clock: Clock
  region: string
  accountId: string
  file: DeliveryFile
  registry?: Registry
  log: (event: string, fields: Record<string, unknown>) => void
  /** Substitutes for tests. */
  openObjects?: (target: ObjectTarget) => ObjectStore
  openRecords?: typeof openRecordSink
}

interface Running {
  runner: DeliveryRunner
  close: () => Promise<void>
}

const emptyStats = (): DeliveryStats => ({
  recordsDelivered: 0, bytesDelivered: 0, batchesDelivered: 0, recordsFailed: {}, failuresByCode: {},
  backlogRecords: 0, freshnessSeconds: 0, lastDeliveryMs: null, lastError: null,
})

export class Deliveries implements DeliveryService {
  readonly region: string
  readonly accountId: string
  private readonly o: DeliveriesOptions
  private readonly catalog: DeliveryCatalog
  private readonly rows = new Map<string, DeliveryRow>()
  private readonly running = new Map<string, Running>()
  private putCounter = 0
  private closed = false
  /** Declared delivery streams whose source stream is not there yet. */
  private readonly waiting = new Map<string, DeliveryStreamConfig>()
  private readonly locks = new Map<string, Promise<void>>()
  private cancelWaiting: (() => void) | null = null

  constructor(o: DeliveriesOptions) {
    this.o = o
    this.region = o.region
    this.accountId = o.accountId
    this.catalog = new DeliveryCatalog(o.metaPath)
  }

  /** Loads what the catalog holds, applies the delivery file's declarations, and starts every delivery stream. */
  async open(): Promise<void> {
    for (const row of this.catalog.list()) {
      if (row.status === 'DELETING') {
        await this.finishDelete(row)
        continue
      }
      this.rows.set(row.name, row)
    }
    const declared = new Set(this.o.file.deliveryStreams.map((d) => d.name))
    for (const row of [...this.rows.values()]) {
      if (row.declared && !declared.has(row.name)) await this.delete(row.name, { declared: true })
    }
    for (const config of this.o.file.deliveryStreams) {
      const row = this.rows.get(config.name)
      if (!row) {
        await this.createDeclared(config)
        continue
      }
      if (JSON.stringify(row.config.source) !== JSON.stringify(config.source)) {
        // Another source is another delivery stream: positions in the old one mean nothing for the new.
        this.o.log('delivery_stream_source_changed', { deliveryStream: row.name })
        await this.delete(row.name, { declared: true })
        await this.createDeclared(config)
        continue
      }
      if (JSON.stringify(row.config) !== JSON.stringify(config) || !row.declared) {
        // Changed in the file: the new config, same positions (Firehose's UpdateDestination).
        row.config = config
        row.declared = true
        row.version++
        this.catalog.update(row)
        this.o.log('delivery_stream_updated', { deliveryStream: row.name, version: row.version })
      }
    }
    for (const row of this.rows.values()) {
      if (this.running.has(row.name)) continue
      // One that cannot start (a sink's settings, a transform's module) is logged and left; the rest run.
      await this.start(row).catch(() => {})
    }
    this.gauges()
  }

  /**
   * A declared delivery stream whose source stream does not exist yet (one devices create on first
   * publish, say) waits for it and starts when it appears.
   */
  private async createDeclared(config: DeliveryStreamConfig): Promise<void> {
    try {
      await this.create(config, {}, true)
      this.waiting.delete(config.name)
    } catch (err) {
      const missing = err instanceof TributaryError && err.code === ErrorCode.STREAM_NOT_FOUND
      if (missing && !this.waiting.has(config.name)) this.o.log('delivery_stream_waiting', { deliveryStream: config.name, stream: config.source.type === 'stream' ? config.source.stream : null })
      if (!missing) this.o.log('delivery_stream_start_failed', { deliveryStream: config.name, error: (err as Error).message })
      if (missing) this.waiting.set(config.name, config)
      if (!missing) this.waiting.delete(config.name)
    }
    if (this.waiting.size && !this.cancelWaiting) {
      this.cancelWaiting = every(this.o.clock, 1000, () => {
        for (const c of this.waiting.values()) if (c.source.type === 'stream' && this.o.streams.get(c.source.stream)) void this.createDeclared(c)
      })
    }
  }

  arnOf(name: string): string {
    return `arn:aws:firehose:${this.region}:${this.accountId}:deliverystream/${name}`
  }

  bucket(name: string): ObjectTarget {
    if (Object.hasOwn(this.o.file.buckets, name)) return this.o.file.buckets[name]!
    // A bucket name is one path segment under the relay's buckets directory, never a way out of it.
    if (!BUCKET_NAME.test(name)) throw new DeliveryConfigError('bucket', `${JSON.stringify(name)} is not a bucket name (3–63 characters of a-z, 0-9, '.' and '-')`)
    return { type: 'files', directory: join(this.o.dataDir, 'delivery', 'buckets', name) }
  }

  hasTransform(name: string): boolean {
    return Object.hasOwn(this.o.file.transforms, name)
  }

  streamNameFromArn(arn: string): string | null {
    return this.o.streams.nameFromArn(arn)
  }

  /** Creates and deletes of one name run one after another. */
  private serially<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve()
    const run = before.then(fn, fn)
    const tail = run.then(() => {}, () => {})
    this.locks.set(name, tail)
    void tail.then(() => { if (this.locks.get(name) === tail) this.locks.delete(name) })
    return run
  }

  create(input: DeliveryStreamConfig, tags: Record<string, string> = {}, declared = false): Promise<DeliveryStreamDescription> {
    return this.serially(String((input as { name?: unknown })?.name), () => this.createNow(input, tags, declared))
  }

  private async createNow(input: DeliveryStreamConfig, tags: Record<string, string>, declared: boolean): Promise<DeliveryStreamDescription> {
    if (this.closed) throw new TributaryError(ErrorCode.STORAGE_FAILED, 'the relay is stopping')
    // The API's mapping and the file were checked already; this also checks what only the relay knows (its transforms).
    const config = normalizeDeliveryConfig(input, (n) => this.hasTransform(n))
    checkPrefix(config.prefix)
    if (config.errorPrefix) checkPrefix(config.errorPrefix)
    if (prefixUses(config.errorPrefix).partitionKeys.length) throw new DeliveryConfigError('errorPrefix', 'an error prefix cannot use partition keys (!{partitionKeyFrom…}): a record that failed may have none')
    try {
      checkFormat(config.processing)
    } catch (err) {
      throw new DeliveryConfigError('processing.format', (err as Error).message)
    }
    if (this.rows.has(config.name)) throw new TributaryError(ErrorCode.CONFLICT, `delivery stream ${config.name} already exists`)
    if (this.rows.size >= MAX_DELIVERY_STREAMS) throw new TributaryError(ErrorCode.LIMIT_EXCEEDED, `the relay runs at most ${MAX_DELIVERY_STREAMS} delivery streams`)
    let state: StreamState
    if (config.source.type === 'stream') {
      const found = this.o.streams.get(config.source.stream)
      if (!found || found.meta.status === 'DELETING') throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${config.source.stream} not found`)
      state = found
    } else {
      const backing = BACKING_PREFIX + config.name
      if (this.o.streams.get(backing)) throw new TributaryError(ErrorCode.CONFLICT, `a data stream named ${backing} exists; a direct-put delivery stream ${config.name} stores its records there`)
      state = await this.o.streams.create(backing, config.source.shards, undefined, { tags: { [BACKING_TAG]: config.name } })
    }
    const row: DeliveryRow = {
      name: config.name, arn: this.arnOf(config.name), status: 'CREATING', version: 1, createdMs: this.o.clock.wallMs(),
      declared, config, tags: { ...tags }, sourceStreamId: state.meta.id,
    }
    try {
      // Positions first: a crash before the row is written leaves nothing that starts elsewhere.
      await this.o.meta.deleteCheckpoints(state.meta.id, checkpointConsumer(config.name))
      if (config.source.type === 'stream') await this.startingPositions(row, state, config.source.startingPosition)
      this.catalog.insert(row)
      this.rows.set(row.name, row)
      await this.start(row)
    } catch (err) {
      // Nothing half made stays: no row, no positions, no backing stream.
      if (this.rows.get(row.name) === row) {
        this.rows.delete(row.name)
        this.catalog.remove(row.name)
      }
      await this.o.meta.deleteCheckpoints(state.meta.id, checkpointConsumer(config.name)).catch(() => {})
      if (config.source.type === 'direct') await this.o.streams.delete(state.meta.name).catch(() => {})
      throw err
    }
    this.o.log('delivery_stream_created', { deliveryStream: row.name, source: config.source.type === 'stream' ? config.source.stream : 'direct', sink: config.sink.type })
    return this.describe(row.name)!
  }

  /** LATEST and a time are positions of the moment of creation: written as checkpoints, so a restart does not move them. */
  private async startingPositions(row: DeliveryRow, state: StreamState, position: Extract<DeliveryStreamConfig['source'], { type: 'stream' }>['startingPosition']): Promise<void> {
    if (position === 'TRIM_HORIZON') return
    for (const shard of state.shards) {
      const offset = position === 'LATEST' ? shard.log.nextOffset() : await shard.log.offsetAtTime(position.timestampMs)
      const ended = shard.meta.endOffset !== null && offset >= shard.meta.endOffset
      const sequenceNumber = ended ? SHARD_END : await this.o.reader.sequenceBefore(shard, offset)
      await this.o.meta.putCheckpoint({ streamId: state.meta.id, consumer: checkpointConsumer(row.name), shardId: shard.meta.shardId, sequenceNumber, updatedMs: this.o.clock.wallMs() })
    }
  }

  private errorStoreTarget(config: DeliveryStreamConfig): ObjectTarget {
    if (config.errorTarget) return config.errorTarget
    // Files: beside the delivered objects, as Firehose writes errors into the bucket. Any other sink may
    // be what is failing, so its failures go to the relay's own disk.
    if (config.sink.type === 'files') return config.sink
    return { type: 'files', directory: join(this.o.dataDir, 'delivery', 'errors', config.name) }
  }

  private async start(row: DeliveryRow): Promise<void> {
    const { config } = row
    const openObjects = this.o.openObjects ?? openObjectStore
    const openRecords = this.o.openRecords ?? openRecordSink
    const closers: (() => Promise<void>)[] = []
    try {
      const sinkTarget: SinkTarget = config.sink
      let sink: { objects: ObjectStore } | { records: RecordSink }
      if (sinkTarget.type === 'files' || sinkTarget.type === 's3') {
        const objects = openObjects(sinkTarget)
        closers.push(() => objects.close())
        sink = { objects }
      } else {
        const records = openRecords(sinkTarget, { deliveryStream: config.name, region: this.region, accountId: this.accountId })
        closers.push(() => records.close())
        sink = { records }
      }
      const errors = openObjects(this.errorStoreTarget(config))
      closers.push(() => errors.close())
      const transform = config.processing.transform ? await loadTransform(this.o.file.transforms[config.processing.transform.name]!) : null
      const partitioner = config.processing.partitioning ? await JqPartitioner.create(config.processing.partitioning.keys, { clock: this.o.clock }) : null
      if (partitioner) closers.push(() => partitioner.close())
      const source = this.o.streams.getById(row.sourceStreamId)
      const runner = new DeliveryRunner({
        name: row.name, sourceStreamId: row.sourceStreamId, streams: this.o.streams, reader: this.o.reader, meta: this.o.meta,
        catalog: this.catalog, clock: this.o.clock, log: this.o.log,
        pipeline: {
          config, arn: row.arn, sourceArn: config.source.type === 'stream' ? (source?.meta.arn ?? '') : row.arn, region: this.region, clock: this.o.clock,
          sink, errors, transform, partitioner, onFailure: () => {},
        },
      })
      runner.start()
      if (this.closed) {
        // The relay began stopping while this one opened its sinks.
        await runner.stop()
        for (const c of closers.reverse()) await c().catch(() => {})
        return
      }
      this.running.set(row.name, { runner, close: async () => { await runner.stop(); for (const c of closers.reverse()) await c().catch(() => {}) } })
      if (row.status !== 'ACTIVE') {
        row.status = 'ACTIVE'
        this.catalog.update(row)
      }
    } catch (err) {
      for (const c of closers.reverse()) await c().catch(() => {})
      this.o.log('delivery_stream_start_failed', { deliveryStream: row.name, error: (err as Error).message })
      throw err
    }
  }

  describe(name: string): DeliveryStreamDescription | undefined {
    const row = this.rows.get(name)
    if (!row) return undefined
    const running = this.running.get(name)
    return {
      config: row.config, status: row.status, arn: row.arn, createdMs: row.createdMs, versionId: String(row.version), declared: row.declared,
      tags: { ...row.tags }, stats: running ? structuredClone(running.runner.refreshGauges()) : emptyStats(),
    }
  }

  list(): DeliveryStreamDescription[] {
    return [...this.rows.keys()].sort().map((n) => this.describe(n)!)
  }

  delete(name: string, o: { declared?: boolean } = {}): Promise<void> {
    return this.serially(name, () => this.deleteNow(name, o))
  }

  private async deleteNow(name: string, o: { declared?: boolean }): Promise<void> {
    const row = this.rows.get(name)
    if (!row) throw new TributaryError(ErrorCode.NOT_FOUND, `delivery stream ${name} not found`)
    if (row.declared && !o.declared) throw new TributaryError(ErrorCode.CONFLICT, `delivery stream ${name} is declared in the relay's delivery file; remove it there`)
    row.status = 'DELETING'
    this.catalog.update(row)
    await this.finishDelete(row)
  }

  private async finishDelete(row: DeliveryRow): Promise<void> {
    const running = this.running.get(row.name)
    this.running.delete(row.name)
    await running?.close()
    await this.o.meta.deleteCheckpoints(row.sourceStreamId, checkpointConsumer(row.name))
    if (row.config.source.type === 'direct') {
      // Only the stream made for it: named after it and tagged as its own.
      const backing = this.o.streams.getById(row.sourceStreamId)
      if (backing && backing.meta.name === BACKING_PREFIX + row.name && backing.tags[BACKING_TAG] === row.name) await this.o.streams.delete(backing.meta.name).catch((err: Error) => this.o.log('delivery_backing_stream_delete_failed', { deliveryStream: row.name, error: err.message }))
    }
    this.catalog.remove(row.name)
    this.rows.delete(row.name)
    this.o.log('delivery_stream_deleted', { deliveryStream: row.name })
  }

  async put(name: string, records: Buffer[]): Promise<PutResult[]> {
    const row = this.rows.get(name)
    if (!row || row.status === 'DELETING') throw new TributaryError(ErrorCode.NOT_FOUND, `delivery stream ${name} not found`)
    if (row.config.source.type !== 'direct') throw new TributaryError(ErrorCode.REQUEST_INVALID, `delivery stream ${name} reads stream ${row.config.source.stream}; records are put to that stream, not to the delivery stream`)
    const state = this.o.streams.getById(row.sourceStreamId)
    if (!state) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `the backing stream of delivery stream ${name} is gone`)
    const now = this.o.clock.wallMs()
    // Spread over the backing stream's shards; Firehose's records have no key of their own.
    const stored = await this.o.ingest.putRecords(state, records.map((data) => ({ partitionKey: String(this.putCounter++ % 1_000_000), data, producerTimeMs: now, clockSynced: true })))
    return stored.map((s) => ({ recordId: sequenceOf(s.shard, s.offset, s.arrivalMs) }))
  }

  async putTags(name: string, tags: Record<string, string>): Promise<void> {
    const row = this.rows.get(name)
    if (!row) throw new TributaryError(ErrorCode.NOT_FOUND, `delivery stream ${name} not found`)
    row.tags = { ...row.tags, ...tags }
    this.catalog.update(row)
  }

  async removeTags(name: string, keys: string[]): Promise<void> {
    const row = this.rows.get(name)
    if (!row) throw new TributaryError(ErrorCode.NOT_FOUND, `delivery stream ${name} not found`)
    for (const k of keys) delete row.tags[k]
    this.catalog.update(row)
  }

  private gauges(): void {
    const r = this.o.registry
    if (!r) return
    const per = (pick: (s: DeliveryStats) => number) => () => [...this.running].map(([name, run]) => ({ labels: { delivery_stream: name }, value: pick(run.runner.refreshGauges()) }))
    r.gauge('tributary_delivery_records_delivered', 'Records a delivery stream has loaded into its sink since the relay started.', ['delivery_stream'], per((s) => s.recordsDelivered))
    r.gauge('tributary_delivery_bytes_delivered', 'Bytes a delivery stream has loaded into its sink (as written) since the relay started.', ['delivery_stream'], per((s) => s.bytesDelivered))
    r.gauge('tributary_delivery_batches_delivered', 'Batches delivered since the relay started.', ['delivery_stream'], per((s) => s.batchesDelivered))
    r.gauge('tributary_delivery_backlog_records', 'Records in the source not yet delivered.', ['delivery_stream'], per((s) => s.backlogRecords))
    r.gauge('tributary_delivery_freshness_seconds', 'Age of the oldest record not yet delivered (Firehose DataFreshness).', ['delivery_stream'], per((s) => s.freshnessSeconds))
    r.gauge('tributary_delivery_failed_records', 'Records sent to the error target since the relay started, by error output type.', ['delivery_stream', 'type'],
      () => [...this.running].flatMap(([name, run]) => Object.entries(run.runner.stats.recordsFailed).map(([type, value]) => ({ labels: { delivery_stream: name, type }, value }))))
    r.gauge('tributary_delivery_failures', 'Failed attempts (retried or not) since the relay started, by error code.', ['delivery_stream', 'code'],
      () => [...this.running].flatMap(([name, run]) => Object.entries(run.runner.stats.failuresByCode).map(([code, value]) => ({ labels: { delivery_stream: name, code }, value }))))
  }

  async close(): Promise<void> {
    this.closed = true
    this.cancelWaiting?.()
    await Promise.all([...this.running.values()].map((r) => r.close()))
    this.running.clear()
    this.catalog.close()
  }
}

export async function openDeliveries(o: DeliveriesOptions): Promise<Deliveries> {
  const d = new Deliveries(o)
  await d.open()
  return d
}
