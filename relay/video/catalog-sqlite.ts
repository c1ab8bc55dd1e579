/**
 * The video catalog in SQLite: its own tables in the relay's meta.db, on a connection of its own,
 * with its own schema version (a `video_schema` row; meta.db's user_version stays the metadata
 * store's). One file keeps one backup story (DESIGN.md: the video index lives in the metadata
 * database); separate tables keep the MetadataStore interface, and its in-memory twin, free of
 * queries only video needs. Writes are synchronous on one thread, so the two connections never
 * wait on each other for more than a commit (busy_timeout covers a checkpoint).
 */
import type Database from 'better-sqlite3'
import { migrateOwnTables, openDurable } from '../meta/durable-db.js'
import { VideoNameTaken, type FragmentQuery, type FragmentRecord, type Inserted, type NewFragment, type VideoCatalog, type VideoStreamRecord } from './catalog.js'

const MIGRATIONS: string[] = [
  `CREATE TABLE video_streams (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, arn TEXT NOT NULL UNIQUE, status TEXT NOT NULL, version TEXT NOT NULL,
     created_ms INTEGER NOT NULL, retention_hours INTEGER NOT NULL,
     device_name TEXT, media_type TEXT, kms_key_id TEXT, created_by TEXT);
   CREATE TABLE video_tags (stream_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (stream_id, key));
   CREATE TABLE video_fragments (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stream_id TEXT NOT NULL, device TEXT NOT NULL, session TEXT NOT NULL, sequence INTEGER NOT NULL,
     producer_ms REAL NOT NULL, server_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL, bytes INTEGER NOT NULL,
     codec TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, timescale INTEGER NOT NULL,
     key_frame INTEGER NOT NULL, clock_synced INTEGER NOT NULL, crc32c INTEGER NOT NULL, file TEXT NOT NULL,
     UNIQUE (stream_id, device, session, sequence));
   CREATE INDEX video_fragments_by_number ON video_fragments (stream_id, id);
   CREATE INDEX video_fragments_by_server ON video_fragments (stream_id, server_ms, id);
   CREATE INDEX video_fragments_by_producer ON video_fragments (stream_id, producer_ms, id);`,
]

interface StreamRow {
  id: string; name: string; arn: string; status: string; version: string; created_ms: number; retention_hours: number
  device_name: string | null; media_type: string | null; kms_key_id: string | null; created_by: string | null
}
interface FragmentRow {
  id: number; stream_id: string; device: string; session: string; sequence: number; producer_ms: number; server_ms: number
  duration_ms: number; bytes: number; codec: string; width: number; height: number; timescale: number
  key_frame: number; clock_synced: number; crc32c: number; file: string
}

const toStream = (r: StreamRow): VideoStreamRecord => ({
  id: r.id, name: r.name, arn: r.arn, status: r.status as VideoStreamRecord['status'], version: r.version, createdMs: r.created_ms,
  retentionHours: r.retention_hours, deviceName: r.device_name, mediaType: r.media_type, kmsKeyId: r.kms_key_id, createdBy: r.created_by,
})
const toFragment = (r: FragmentRow): FragmentRecord => ({
  id: r.id, streamId: r.stream_id, device: r.device, session: r.session, sequence: r.sequence, producerMs: r.producer_ms, serverMs: r.server_ms,
  durationMs: r.duration_ms, bytes: r.bytes, codec: r.codec, width: r.width, height: r.height, timescale: r.timescale,
  keyFrame: r.key_frame === 1, clockSynced: r.clock_synced === 1, crc32c: r.crc32c, file: r.file,
})

const COLUMN = { producer: 'producer_ms', server: 'server_ms', number: 'id' } as const

export class SqliteVideoCatalog implements VideoCatalog {
  private readonly db: Database.Database
  private total: number
  private readonly statements: {
    fragment: Database.Statement
    insert: Database.Statement
    streamActive: Database.Statement
  }

  constructor(path: string) {
    // Durable: a row is what PERSISTED promises, so it must survive power loss.
    this.db = openDurable(path)
    migrateOwnTables(this.db, 'video_schema', MIGRATIONS)
    this.statements = {
      fragment: this.db.prepare('SELECT * FROM video_fragments WHERE stream_id = ? AND device = ? AND session = ? AND sequence = ?'),
      insert: this.db.prepare(`INSERT INTO video_fragments (stream_id, device, session, sequence, producer_ms, server_ms, duration_ms, bytes,
        codec, width, height, timescale, key_frame, clock_synced, crc32c, file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (stream_id, device, session, sequence) DO NOTHING`),
      streamActive: this.db.prepare("SELECT 1 FROM video_streams WHERE id = ? AND status != 'DELETING'"),
    }
    this.total = (this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM video_fragments').get() as { n: number }).n
  }

  streams(): VideoStreamRecord[] {
    return (this.db.prepare('SELECT * FROM video_streams ORDER BY name').all() as StreamRow[]).map(toStream)
  }

  insertStream(s: VideoStreamRecord, tags: Record<string, string>): void {
    try {
      this.db.transaction(() => {
        this.db.prepare(`INSERT INTO video_streams (id, name, arn, status, version, created_ms, retention_hours, device_name, media_type, kms_key_id, created_by)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(s.id, s.name, s.arn, s.status, s.version, s.createdMs, s.retentionHours, s.deviceName, s.mediaType, s.kmsKeyId, s.createdBy)
        this.putTags(s.id, tags)
      })()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new VideoNameTaken(s.name)
      throw err
    }
  }

  updateStream(id: string, change: Partial<Pick<VideoStreamRecord, 'status' | 'version' | 'retentionHours' | 'deviceName' | 'mediaType'>>): void {
    const columns: Record<string, string> = { status: 'status', version: 'version', retentionHours: 'retention_hours', deviceName: 'device_name', mediaType: 'media_type' }
    const entries = Object.entries(change).filter(([k, v]) => v !== undefined && k in columns)
    if (entries.length === 0) return
    this.db.prepare(`UPDATE video_streams SET ${entries.map(([k]) => `${columns[k]} = ?`).join(', ')} WHERE id = ?`).run(...entries.map(([, v]) => v), id)
  }

  deleteStream(id: string): void {
    this.db.transaction(() => {
      const freed = (this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM video_fragments WHERE stream_id = ?').get(id) as { n: number }).n
      this.db.prepare('DELETE FROM video_fragments WHERE stream_id = ?').run(id)
      this.db.prepare('DELETE FROM video_tags WHERE stream_id = ?').run(id)
      this.db.prepare('DELETE FROM video_streams WHERE id = ?').run(id)
      this.total -= freed
    })()
  }

  tags(streamId: string): Record<string, string> {
    const rows = this.db.prepare('SELECT key, value FROM video_tags WHERE stream_id = ? ORDER BY key').all(streamId) as { key: string; value: string }[]
    return Object.fromEntries(rows.map((r) => [r.key, r.value]))
  }

  putTags(streamId: string, tags: Record<string, string>): void {
    const put = this.db.prepare('INSERT INTO video_tags (stream_id, key, value) VALUES (?, ?, ?) ON CONFLICT (stream_id, key) DO UPDATE SET value = excluded.value')
    this.db.transaction(() => { for (const [k, v] of Object.entries(tags)) put.run(streamId, k, v) })()
  }

  removeTags(streamId: string, keys: readonly string[]): void {
    const del = this.db.prepare('DELETE FROM video_tags WHERE stream_id = ? AND key = ?')
    this.db.transaction(() => { for (const k of keys) del.run(streamId, k) })()
  }

  fragment(streamId: string, device: string, session: string, sequence: number): FragmentRecord | undefined {
    const row = this.statements.fragment.get(streamId, device, session, sequence) as FragmentRow | undefined
    return row && toFragment(row)
  }

  fragmentById(streamId: string, id: number): FragmentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM video_fragments WHERE id = ? AND stream_id = ?').get(id, streamId) as FragmentRow | undefined
    return row && toFragment(row)
  }

  insertFragments(rows: readonly NewFragment[]): Inserted[] {
    const { insert, fragment, streamActive } = this.statements
    let added = 0
    const out = this.db.transaction(() => rows.map((r): Inserted => {
      if (!streamActive.get(r.streamId)) return { row: null, inserted: false }
      const result = insert.run(r.streamId, r.device, r.session, r.sequence, r.producerMs, r.serverMs, r.durationMs, r.bytes,
        r.codec, r.width, r.height, r.timescale, r.keyFrame ? 1 : 0, r.clockSynced ? 1 : 0, r.crc32c, r.file)
      if (result.changes === 1) {
        added += r.bytes
        return { row: { ...r, id: Number(result.lastInsertRowid) }, inserted: true }
      }
      return { row: toFragment(fragment.get(r.streamId, r.device, r.session, r.sequence) as FragmentRow), inserted: false }
    }))()
    this.total += added
    return out
  }

  newest(streamId: string): FragmentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM video_fragments WHERE stream_id = ? AND sequence > 0 ORDER BY id DESC LIMIT 1').get(streamId) as FragmentRow | undefined
    return row && toFragment(row)
  }

  listFragments(q: FragmentQuery): FragmentRecord[] {
    const column = COLUMN[q.by]
    const where = ['stream_id = ?', 'sequence > 0']
    const args: (string | number)[] = [q.streamId]
    if (q.from !== undefined) { where.push(`${column} >= ?`); args.push(q.from) }
    if (q.to !== undefined) { where.push(`${column} <= ?`); args.push(q.to) }
    if (q.after) {
      if (q.by === 'number') { where.push('id > ?'); args.push(q.after.id) }
      else { where.push(`(${column} > ? OR (${column} = ? AND id > ?))`); args.push(q.after.at, q.after.at, q.after.id) }
    }
    const order = q.by === 'number' ? 'id' : `${column}, id`
    const rows = this.db.prepare(`SELECT * FROM video_fragments WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`).all(...args, q.limit) as FragmentRow[]
    return rows.map(toFragment)
  }

  expired(streamId: string, beforeServerMs: number, limit: number): FragmentRecord[] {
    const media = this.db.prepare('SELECT * FROM video_fragments WHERE stream_id = ? AND server_ms < ? AND sequence > 0 ORDER BY server_ms, id LIMIT ?')
      .all(streamId, beforeServerMs, limit) as FragmentRow[]
    if (media.length >= limit) return media.map(toFragment)
    const inits = this.db.prepare(`SELECT * FROM video_fragments AS i WHERE i.stream_id = ? AND i.sequence = 0 AND i.server_ms < ?
        AND NOT EXISTS (SELECT 1 FROM video_fragments AS m WHERE m.stream_id = i.stream_id AND m.device = i.device AND m.session = i.session AND m.sequence > 0
          AND m.server_ms >= ?)
      ORDER BY i.server_ms, i.id LIMIT ?`).all(streamId, beforeServerMs, beforeServerMs, limit - media.length) as FragmentRow[]
    return [...media, ...inits].map(toFragment)
  }

  deleteFragments(ids: readonly number[]): void {
    const get = this.db.prepare('SELECT bytes FROM video_fragments WHERE id = ?')
    const del = this.db.prepare('DELETE FROM video_fragments WHERE id = ?')
    let freed = 0
    this.db.transaction(() => {
      for (const id of ids) {
        const row = get.get(id) as { bytes: number } | undefined
        if (!row) continue
        del.run(id)
        freed += row.bytes
      }
    })()
    this.total -= freed
  }

  totalBytes(): number {
    return this.total
  }

  *files(): Iterable<string> {
    for (const row of this.db.prepare('SELECT file FROM video_fragments').iterate() as Iterable<{ file: string }>) yield row.file
  }

  close(): void {
    this.db.close()
  }
}
