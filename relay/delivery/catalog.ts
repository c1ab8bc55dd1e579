/**
 * What the relay remembers of its delivery streams, in its meta.db with tables of their own (as the
 * video catalog does): each delivery stream's config and status, and the batch each shard is in the
 * middle of delivering. A batch's boundaries are recorded here before any of it is written to the
 * sink, and stay until the shard's next batch replaces them (a checkpoint past them makes them moot),
 * so a relay killed in between rebuilds the same batch (same records, same object and row keys)
 * instead of cutting a different one.
 *
 * Positions themselves are the relay's server-side checkpoints (MetadataStore), under the consumer
 * name `firehose.<delivery stream>`, readable at GET /checkpoints/{stream}/firehose.{name}.
 */
import type Database from 'better-sqlite3'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { migrateOwnTables, openDurable } from '../meta/durable-db.js'
import type { DeliveryStreamConfig, DeliveryStreamStatus } from './types.js'

export interface DeliveryRow {
  name: string
  arn: string
  status: DeliveryStreamStatus
  version: number
  createdMs: number
  declared: boolean
  config: DeliveryStreamConfig
  tags: Record<string, string>
  /** The id of the data stream read (the backing stream for direct put), fixed at creation. */
  sourceStreamId: string
}

/** One shard's batch being delivered: offsets [startOffset, endOffset) and their sequence numbers. */
export interface PendingBatch {
  name: string
  shardId: string
  startOffset: number
  endOffset: number
  firstSequence: string
  lastSequence: string
}

const MIGRATIONS = [
  `CREATE TABLE delivery_streams (
     name TEXT PRIMARY KEY, arn TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL, created_ms INTEGER NOT NULL,
     declared INTEGER NOT NULL, config TEXT NOT NULL, tags TEXT NOT NULL, source_stream_id TEXT NOT NULL);
   CREATE TABLE delivery_batches (
     name TEXT NOT NULL, shard_id TEXT NOT NULL, start_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL,
     first_sequence TEXT NOT NULL, last_sequence TEXT NOT NULL, PRIMARY KEY (name, shard_id));`,
]

interface StreamRow { name: string; arn: string; status: string; version: number; created_ms: number; declared: number; config: string; tags: string; source_stream_id: string }
interface BatchRow { name: string; shard_id: string; start_offset: number; end_offset: number; first_sequence: string; last_sequence: string }

const toRow = (r: StreamRow): DeliveryRow => ({
  name: r.name, arn: r.arn, status: r.status as DeliveryStreamStatus, version: r.version, createdMs: r.created_ms,
  declared: r.declared === 1, config: JSON.parse(r.config) as DeliveryStreamConfig, tags: JSON.parse(r.tags) as Record<string, string>, sourceStreamId: r.source_stream_id,
})
const toBatch = (r: BatchRow): PendingBatch => ({
  name: r.name, shardId: r.shard_id, startOffset: r.start_offset, endOffset: r.end_offset, firstSequence: r.first_sequence, lastSequence: r.last_sequence,
})

export class DeliveryCatalog {
  private readonly db: Database.Database

  constructor(path: string) {
    // Durable: a recorded batch boundary must survive power loss, or a rebuilt batch could differ from the one half written.
    this.db = openDurable(path)
    migrateOwnTables(this.db, 'delivery_schema', MIGRATIONS)
  }

  list(): DeliveryRow[] {
    return (this.db.prepare('SELECT * FROM delivery_streams ORDER BY name').all() as StreamRow[]).map(toRow)
  }

  /** Adds a delivery stream; CONFLICT when the name is taken. */
  insert(row: DeliveryRow): void {
    try {
      this.db.prepare('INSERT INTO delivery_streams (name, arn, status, version, created_ms, declared, config, tags, source_stream_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(row.name, row.arn, row.status, row.version, row.createdMs, row.declared ? 1 : 0, JSON.stringify(row.config), JSON.stringify(row.tags), row.sourceStreamId)
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new TributaryError(ErrorCode.CONFLICT, `delivery stream ${row.name} already exists`)
      throw err
    }
  }

  update(row: DeliveryRow): void {
    this.db.prepare('UPDATE delivery_streams SET status = ?, version = ?, config = ?, tags = ?, declared = ? WHERE name = ?')
      .run(row.status, row.version, JSON.stringify(row.config), JSON.stringify(row.tags), row.declared ? 1 : 0, row.name)
  }

  /** Removes a delivery stream and its pending batches. */
  remove(name: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM delivery_batches WHERE name = ?').run(name)
      this.db.prepare('DELETE FROM delivery_streams WHERE name = ?').run(name)
    })()
  }

  pending(name: string): PendingBatch[] {
    return (this.db.prepare('SELECT * FROM delivery_batches WHERE name = ? ORDER BY shard_id').all(name) as BatchRow[]).map(toBatch)
  }

  /** Records a shard's next batch before any of it is written (one per shard at a time). */
  recordBatch(b: PendingBatch): void {
    this.db.prepare(`INSERT INTO delivery_batches (name, shard_id, start_offset, end_offset, first_sequence, last_sequence) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (name, shard_id) DO UPDATE SET start_offset = excluded.start_offset, end_offset = excluded.end_offset,
      first_sequence = excluded.first_sequence, last_sequence = excluded.last_sequence`)
      .run(b.name, b.shardId, b.startOffset, b.endOffset, b.firstSequence, b.lastSequence)
  }

  clearBatch(name: string, shardId: string): void {
    this.db.prepare('DELETE FROM delivery_batches WHERE name = ? AND shard_id = ?').run(name, shardId)
  }

  close(): void {
    this.db.close()
  }
}
