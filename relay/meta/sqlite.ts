/** The embedded metadata store: one SQLite file (better-sqlite3 12), schema changes as versioned migrations. */
import { existsSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { openDurable } from './durable-db.js'
import type { CheckpointMeta, ConsumerMeta, DeviceCertificateMeta, DeviceMeta, MetadataStore, ShardMapChange, ShardMeta, StreamMeta, StreamSettings, StreamStatus } from './types.js'

const MIGRATIONS: string[] = [
  `CREATE TABLE streams (
     name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, arn TEXT NOT NULL, status TEXT NOT NULL,
     retention_hours INTEGER NOT NULL, created_ms INTEGER NOT NULL, mode TEXT NOT NULL);
   CREATE TABLE shards (
     stream_id TEXT NOT NULL, shard_id TEXT NOT NULL, idx INTEGER NOT NULL,
     hash_start TEXT NOT NULL, hash_end TEXT NOT NULL, created_ms INTEGER NOT NULL,
     parent TEXT, adjacent_parent TEXT, end_offset INTEGER,
     PRIMARY KEY (stream_id, shard_id));
   CREATE TABLE devices (
     id TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL, created_ms INTEGER NOT NULL, rotated_ms INTEGER NOT NULL);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE producer_state (stream_id TEXT PRIMARY KEY, state TEXT NOT NULL);`,
  // Enhanced fan-out consumers, per-stream encryption/monitoring settings, resource policies.
  `CREATE TABLE consumers (
     stream_id TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL UNIQUE, status TEXT NOT NULL, created_ms INTEGER NOT NULL,
     PRIMARY KEY (stream_id, name));
   CREATE TABLE stream_settings (stream_id TEXT PRIMARY KEY, settings TEXT NOT NULL);
   CREATE TABLE resource_policies (arn TEXT PRIMARY KEY, policy TEXT NOT NULL);`,
  // Tags by resource (a stream's id), and server-side checkpoints per (stream, consumer, shard).
  `CREATE TABLE tags (resource TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (resource, key));
   CREATE TABLE checkpoints (
     stream_id TEXT NOT NULL, consumer TEXT NOT NULL, shard_id TEXT NOT NULL, sequence_number TEXT NOT NULL, updated_ms INTEGER NOT NULL,
     PRIMARY KEY (stream_id, consumer, shard_id));`,
  // A device's previous secret, accepted until prev_until_ms during a rotation's grace window.
  `ALTER TABLE devices ADD COLUMN prev_salt TEXT;
   ALTER TABLE devices ADD COLUMN prev_hash TEXT;
   ALTER TABLE devices ADD COLUMN prev_until_ms INTEGER;`,
  // Device certificates the relay issued, and revoked serials (issued here or elsewhere by the device CA).
  `CREATE TABLE device_certificates (
     serial TEXT PRIMARY KEY, device TEXT NOT NULL, issued_ms INTEGER, not_after_ms INTEGER, revoked_ms INTEGER);
   CREATE INDEX device_certificates_by_device ON device_certificates (device, serial);`,
]

interface StreamRow { name: string; id: string; arn: string; status: string; retention_hours: number; created_ms: number; mode: string }
interface ShardRow { stream_id: string; shard_id: string; idx: number; hash_start: string; hash_end: string; created_ms: number; parent: string | null; adjacent_parent: string | null; end_offset: number | null }
interface DeviceRow { id: string; salt: string; hash: string; created_ms: number; rotated_ms: number; prev_salt: string | null; prev_hash: string | null; prev_until_ms: number | null }

const toStream = (r: StreamRow): StreamMeta => ({
  name: r.name, id: r.id, arn: r.arn, status: r.status as StreamStatus, retentionHours: r.retention_hours,
  createdMs: r.created_ms, mode: r.mode as StreamMeta['mode'],
})
const toShard = (r: ShardRow): ShardMeta => ({
  streamId: r.stream_id, shardId: r.shard_id, index: r.idx, hashStart: r.hash_start, hashEnd: r.hash_end,
  createdMs: r.created_ms, parentShardId: r.parent, adjacentParentShardId: r.adjacent_parent, endOffset: r.end_offset,
})
interface DeviceCertificateRow { serial: string; device: string; issued_ms: number | null; not_after_ms: number | null; revoked_ms: number | null }
const toDeviceCertificate = (r: DeviceCertificateRow): DeviceCertificateMeta => ({
  serial: r.serial, device: r.device, issuedMs: r.issued_ms, notAfterMs: r.not_after_ms, revokedMs: r.revoked_ms,
})
interface ConsumerRow { stream_id: string; name: string; arn: string; status: string; created_ms: number }
const toConsumer = (r: ConsumerRow): ConsumerMeta => ({ streamId: r.stream_id, name: r.name, arn: r.arn, status: r.status as ConsumerMeta['status'], createdMs: r.created_ms })
const toDevice = (r: DeviceRow): DeviceMeta => ({
  id: r.id, salt: r.salt, hash: r.hash, createdMs: r.created_ms, rotatedMs: r.rotated_ms,
  ...(r.prev_salt !== null && r.prev_hash !== null && r.prev_until_ms !== null ? { previous: { salt: r.prev_salt, hash: r.prev_hash, untilMs: r.prev_until_ms } } : {}),
})

/**
 * Whether `path` holds metadata a relay wrote (a schema of version 1 or more); false when there is no
 * file, an empty one (SQLite would start it afresh), or one with no schema yet. Nothing is created.
 */
export function holdsMetadata(path: string): boolean {
  if (!existsSync(path) || statSync(path).size === 0) return false
  const db = new Database(path, { fileMustExist: true })
  try {
    return (db.pragma('user_version', { simple: true }) as number) > 0
  } finally {
    db.close()
  }
}

export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database

  constructor(path: string) {
    // Durable: metadata changes are rare and must survive power loss.
    this.db = openDurable(path)
    this.migrate()
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!)
        this.db.pragma(`user_version = ${v + 1}`)
      })()
    }
  }

  async createStream(stream: StreamMeta, shards: ShardMeta[]): Promise<void> {
    const insertStream = this.db.prepare('INSERT INTO streams (name, id, arn, status, retention_hours, created_ms, mode) VALUES (?, ?, ?, ?, ?, ?, ?)')
    const insertShard = this.db.prepare('INSERT INTO shards (stream_id, shard_id, idx, hash_start, hash_end, created_ms, parent, adjacent_parent, end_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
    try {
      this.db.transaction(() => {
        insertStream.run(stream.name, stream.id, stream.arn, stream.status, stream.retentionHours, stream.createdMs, stream.mode)
        for (const s of shards) insertShard.run(s.streamId, s.shardId, s.index, s.hashStart, s.hashEnd, s.createdMs, s.parentShardId, s.adjacentParentShardId, s.endOffset)
      })()
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new TributaryError(ErrorCode.CONFLICT, `stream ${stream.name} already exists`, { cause: err })
      }
      throw err
    }
  }

  async getStream(name: string): Promise<StreamMeta | undefined> {
    const row = this.db.prepare('SELECT * FROM streams WHERE name = ?').get(name) as StreamRow | undefined
    return row && toStream(row)
  }

  async listStreams(): Promise<StreamMeta[]> {
    return (this.db.prepare('SELECT * FROM streams ORDER BY name').all() as StreamRow[]).map(toStream)
  }

  async setStreamStatus(name: string, status: StreamStatus): Promise<void> {
    this.db.prepare('UPDATE streams SET status = ? WHERE name = ?').run(status, name)
  }

  async setRetention(name: string, hours: number): Promise<void> {
    this.db.prepare('UPDATE streams SET retention_hours = ? WHERE name = ?').run(hours, name)
  }

  async deleteStream(name: string): Promise<void> {
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT id, arn FROM streams WHERE name = ?').get(name) as { id: string; arn: string } | undefined
      if (!row) return
      this.db.prepare('DELETE FROM shards WHERE stream_id = ?').run(row.id)
      this.db.prepare('DELETE FROM producer_state WHERE stream_id = ?').run(row.id)
      this.db.prepare('DELETE FROM consumers WHERE stream_id = ?').run(row.id)
      this.db.prepare('DELETE FROM stream_settings WHERE stream_id = ?').run(row.id)
      // The stream's policy and its consumers' (their ARNs extend the stream's).
      const prefix = `${row.arn}/consumer/`
      this.db.prepare('DELETE FROM resource_policies WHERE arn = ? OR substr(arn, 1, ?) = ?').run(row.arn, prefix.length, prefix)
      this.db.prepare('DELETE FROM tags WHERE resource = ? OR substr(resource, 1, ?) = ?').run(row.id, prefix.length, prefix)
      this.db.prepare('DELETE FROM checkpoints WHERE stream_id = ?').run(row.id)
      this.db.prepare('DELETE FROM streams WHERE name = ?').run(name)
    })()
  }

  async listShards(streamId: string): Promise<ShardMeta[]> {
    return (this.db.prepare('SELECT * FROM shards WHERE stream_id = ? ORDER BY idx').all(streamId) as ShardRow[]).map(toShard)
  }

  async putDevice(d: DeviceMeta): Promise<void> {
    const p = d.previous
    this.db.prepare(`INSERT INTO devices (id, salt, hash, created_ms, rotated_ms, prev_salt, prev_hash, prev_until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET salt = excluded.salt, hash = excluded.hash, rotated_ms = excluded.rotated_ms,
        prev_salt = excluded.prev_salt, prev_hash = excluded.prev_hash, prev_until_ms = excluded.prev_until_ms`)
      .run(d.id, d.salt, d.hash, d.createdMs, d.rotatedMs, p?.salt ?? null, p?.hash ?? null, p?.untilMs ?? null)
  }

  async getDevice(id: string): Promise<DeviceMeta | undefined> {
    const row = this.db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as DeviceRow | undefined
    return row && toDevice(row)
  }

  async listDevices(): Promise<DeviceMeta[]> {
    return (this.db.prepare('SELECT * FROM devices ORDER BY id').all() as DeviceRow[]).map(toDevice)
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM devices WHERE id = ?').run(id).changes > 0
  }

  async putDeviceCertificate(c: DeviceCertificateMeta): Promise<void> {
    this.db.prepare(`INSERT INTO device_certificates (serial, device, issued_ms, not_after_ms, revoked_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(serial) DO UPDATE SET device = excluded.device, issued_ms = excluded.issued_ms, not_after_ms = excluded.not_after_ms, revoked_ms = excluded.revoked_ms`)
      .run(c.serial, c.device, c.issuedMs, c.notAfterMs, c.revokedMs)
  }

  async getDeviceCertificate(serial: string): Promise<DeviceCertificateMeta | undefined> {
    const row = this.db.prepare('SELECT * FROM device_certificates WHERE serial = ?').get(serial) as DeviceCertificateRow | undefined
    return row && toDeviceCertificate(row)
  }

  async listDeviceCertificates(device?: string): Promise<DeviceCertificateMeta[]> {
    const rows = device === undefined
      ? this.db.prepare('SELECT * FROM device_certificates ORDER BY serial').all()
      : this.db.prepare('SELECT * FROM device_certificates WHERE device = ? ORDER BY serial').all(device)
    return (rows as DeviceCertificateRow[]).map(toDeviceCertificate)
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  async saveProducerState(streamId: string, state: string): Promise<void> {
    this.db.prepare('INSERT INTO producer_state (stream_id, state) VALUES (?, ?) ON CONFLICT(stream_id) DO UPDATE SET state = excluded.state').run(streamId, state)
  }

  async loadProducerState(streamId: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT state FROM producer_state WHERE stream_id = ?').get(streamId) as { state: string } | undefined)?.state
  }

  async putConsumer(c: ConsumerMeta): Promise<void> {
    try {
      this.db.prepare('INSERT INTO consumers (stream_id, name, arn, status, created_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT(stream_id, name) DO UPDATE SET arn = excluded.arn, status = excluded.status, created_ms = excluded.created_ms')
        .run(c.streamId, c.name, c.arn, c.status, c.createdMs)
    } catch (err) {
      // Another consumer holds the ARN (the table's UNIQUE constraint).
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new TributaryError(ErrorCode.CONFLICT, `consumer ARN ${c.arn} is taken`, { cause: err })
      throw err
    }
  }

  async listConsumers(streamId?: string): Promise<ConsumerMeta[]> {
    const rows = streamId === undefined
      ? this.db.prepare('SELECT * FROM consumers ORDER BY stream_id, created_ms, name').all()
      : this.db.prepare('SELECT * FROM consumers WHERE stream_id = ? ORDER BY created_ms, name').all(streamId)
    return (rows as ConsumerRow[]).map(toConsumer)
  }

  async deleteConsumer(streamId: string, name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM consumers WHERE stream_id = ? AND name = ?').run(streamId, name).changes > 0
  }

  async getStreamSettings(streamId: string): Promise<StreamSettings | undefined> {
    const row = this.db.prepare('SELECT settings FROM stream_settings WHERE stream_id = ?').get(streamId) as { settings: string } | undefined
    return row && (JSON.parse(row.settings) as StreamSettings)
  }

  async putStreamSettings(streamId: string, settings: StreamSettings): Promise<void> {
    this.db.prepare('INSERT INTO stream_settings (stream_id, settings) VALUES (?, ?) ON CONFLICT(stream_id) DO UPDATE SET settings = excluded.settings').run(streamId, JSON.stringify(settings))
  }

  async putResourcePolicy(arn: string, policy: string): Promise<void> {
    this.db.prepare('INSERT INTO resource_policies (arn, policy) VALUES (?, ?) ON CONFLICT(arn) DO UPDATE SET policy = excluded.policy').run(arn, policy)
  }

  async getResourcePolicy(arn: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT policy FROM resource_policies WHERE arn = ?').get(arn) as { policy: string } | undefined)?.policy
  }

  async deleteResourcePolicy(arn: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM resource_policies WHERE arn = ?').run(arn).changes > 0
  }

  async setStreamMode(name: string, mode: StreamMeta['mode']): Promise<void> {
    this.db.prepare('UPDATE streams SET mode = ? WHERE name = ?').run(mode, name)
  }

  /**
   * One resharding step in one transaction: the closed parents (only if still open), the new
   * shards and the stream's status commit together or not at all. better-sqlite3 commits before
   * this call returns, so the caller may switch its routing in the same tick.
   */
  async reshard(streamId: string, change: ShardMapChange): Promise<void> {
    const close = this.db.prepare('UPDATE shards SET end_offset = ? WHERE stream_id = ? AND shard_id = ? AND end_offset IS NULL')
    const insert = this.db.prepare('INSERT INTO shards (stream_id, shard_id, idx, hash_start, hash_end, created_ms, parent, adjacent_parent, end_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
    try {
      this.db.transaction(() => {
        for (const c of change.close) {
          if (close.run(c.endOffset, streamId, c.shardId).changes !== 1) throw new TributaryError(ErrorCode.CONFLICT, `shard ${c.shardId} of ${streamId} is not an open shard`)
        }
        for (const s of change.create) insert.run(streamId, s.shardId, s.index, s.hashStart, s.hashEnd, s.createdMs, s.parentShardId, s.adjacentParentShardId, s.endOffset)
        if (change.status) this.db.prepare('UPDATE streams SET status = ? WHERE id = ?').run(change.status, streamId)
      })()
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new TributaryError(ErrorCode.CONFLICT, `a new shard of ${streamId} already exists`, { cause: err })
      throw err
    }
  }

  async getTags(resource: string): Promise<Record<string, string>> {
    const rows = this.db.prepare('SELECT key, value FROM tags WHERE resource = ? ORDER BY key').all(resource) as { key: string; value: string }[]
    return Object.fromEntries(rows.map((r) => [r.key, r.value]))
  }

  async putTags(resource: string, tags: Record<string, string>): Promise<void> {
    const put = this.db.prepare('INSERT INTO tags (resource, key, value) VALUES (?, ?, ?) ON CONFLICT(resource, key) DO UPDATE SET value = excluded.value')
    this.db.transaction(() => { for (const [k, v] of Object.entries(tags)) put.run(resource, k, v) })()
  }

  async removeTags(resource: string, keys: string[]): Promise<void> {
    const del = this.db.prepare('DELETE FROM tags WHERE resource = ? AND key = ?')
    this.db.transaction(() => { for (const k of keys) del.run(resource, k) })()
  }

  async putCheckpoint(cp: CheckpointMeta, expected?: string | null): Promise<void> {
    this.db.transaction(() => {
      if (expected !== undefined) {
        const row = this.db.prepare('SELECT sequence_number FROM checkpoints WHERE stream_id = ? AND consumer = ? AND shard_id = ?').get(cp.streamId, cp.consumer, cp.shardId) as { sequence_number: string } | undefined
        if ((row?.sequence_number ?? null) !== expected) {
          throw new TributaryError(ErrorCode.CONFLICT, `checkpoint of ${cp.consumer} on ${cp.shardId} is ${row?.sequence_number ?? 'unset'}, not ${expected ?? 'unset'}`)
        }
      }
      this.db.prepare('INSERT INTO checkpoints (stream_id, consumer, shard_id, sequence_number, updated_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT(stream_id, consumer, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, updated_ms = excluded.updated_ms')
        .run(cp.streamId, cp.consumer, cp.shardId, cp.sequenceNumber, cp.updatedMs)
    })()
  }

  async listCheckpoints(streamId: string, consumer?: string): Promise<CheckpointMeta[]> {
    const rows = (consumer === undefined
      ? this.db.prepare('SELECT * FROM checkpoints WHERE stream_id = ? ORDER BY consumer, shard_id').all(streamId)
      : this.db.prepare('SELECT * FROM checkpoints WHERE stream_id = ? AND consumer = ? ORDER BY shard_id').all(streamId, consumer)) as { stream_id: string; consumer: string; shard_id: string; sequence_number: string; updated_ms: number }[]
    return rows.map((r) => ({ streamId: r.stream_id, consumer: r.consumer, shardId: r.shard_id, sequenceNumber: r.sequence_number, updatedMs: r.updated_ms }))
  }

  async deleteCheckpoints(streamId: string, consumer: string): Promise<number> {
    return this.db.prepare('DELETE FROM checkpoints WHERE stream_id = ? AND consumer = ?').run(streamId, consumer).changes
  }

  async close(): Promise<void> {
    this.db.close()
  }
}
