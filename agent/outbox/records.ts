/**
 * The records table: every record stored and not yet gone (acknowledged, dropped or dead-lettered).
 * Ids rise in capture order, and so does `mono_ms`, the outbox clock at capture.
 */
import type Database from 'better-sqlite3'
import type { BatchRow, OutboxInput } from './types.js'

export interface StoredSize {
  id: number
  size: number
}

export class Records {
  private readonly s

  constructor(db: Database.Database) {
    this.s = {
      insert: db.prepare('INSERT INTO records (stream, partition_key, explicit_hash_key, data, captured_ms, clock_synced, mono_ms, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      deleteRange: db.prepare('DELETE FROM records WHERE stream = ? AND id >= ? AND id <= ?'),
      deleteOne: db.prepare('DELETE FROM records WHERE id = ?'),
      sumRange: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM records WHERE stream = ? AND id >= ? AND id <= ?'),
      oldest: db.prepare('SELECT id, size FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?'),
      // Sizes only: a batch is planned without reading its data.
      sizes: db.prepare('SELECT id, size, explicit_hash_key IS NOT NULL AS hashed FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?'),
      // mono_ms rises with id: the oldest rows come first and a walk may stop at the first young one.
      ages: db.prepare('SELECT id, size, mono_ms AS mono FROM records WHERE stream = ? AND id > ? ORDER BY id LIMIT ?'),
      firstMono: db.prepare('SELECT mono_ms AS mono FROM records WHERE stream = ? ORDER BY id LIMIT 1'),
      range: db.prepare('SELECT id, partition_key AS partitionKey, explicit_hash_key AS explicitHashKey, data, captured_ms AS capturedMs, clock_synced AS clockSynced FROM records WHERE stream = ? AND id >= ? AND id <= ? ORDER BY id'),
      ids: db.prepare('SELECT id FROM records WHERE stream = ? AND id >= ? AND id <= ? ORDER BY id').pluck(),
      one: db.prepare('SELECT partition_key AS partitionKey, data, captured_ms AS capturedMs, size FROM records WHERE id = ?'),
      perStream: db.prepare('SELECT stream, COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes FROM records GROUP BY stream'),
    }
  }

  /** Returns the new record's id. */
  insert(r: OutboxInput, wallMs: number, monoMs: number, size: number): number {
    return Number(this.s.insert.run(r.stream, r.partitionKey, r.explicitHashKey ?? null, r.data, r.capturedMs ?? wallMs, r.clockSynced === false ? 0 : 1, monoMs, size).lastInsertRowid)
  }

  deleteRange(stream: string, firstId: number, lastId: number): void {
    this.s.deleteRange.run(stream, firstId, lastId)
  }

  deleteOne(id: number): void {
    this.s.deleteOne.run(id)
  }

  sumRange(stream: string, firstId: number, lastId: number): { n: number; bytes: number } {
    return this.s.sumRange.get(stream, firstId, lastId) as { n: number; bytes: number }
  }

  /** The oldest records of a stream after `afterId`. */
  oldest(stream: string, afterId: number, limit: number): StoredSize[] {
    return this.s.oldest.all(stream, afterId, limit) as StoredSize[]
  }

  sizes(stream: string, afterId: number, limit: number): (StoredSize & { hashed: number })[] {
    return this.s.sizes.all(stream, afterId, limit) as (StoredSize & { hashed: number })[]
  }

  ages(stream: string, afterId: number, limit: number): (StoredSize & { mono: number })[] {
    return this.s.ages.all(stream, afterId, limit) as (StoredSize & { mono: number })[]
  }

  /** The outbox clock when the stream's oldest record was stored. */
  firstMono(stream: string): number | undefined {
    return (this.s.firstMono.get(stream) as { mono: number } | undefined)?.mono
  }

  range(stream: string, firstId: number, lastId: number): BatchRow[] {
    return (this.s.range.all(stream, firstId, lastId) as (Omit<BatchRow, 'clockSynced'> & { clockSynced: number })[])
      .map((r) => ({ ...r, clockSynced: r.clockSynced === 1 }))
  }

  ids(stream: string, firstId: number, lastId: number): number[] {
    return this.s.ids.all(stream, firstId, lastId) as number[]
  }

  one(id: number): { partitionKey: string; data: Buffer; capturedMs: number; size: number } | undefined {
    return this.s.one.get(id) as { partitionKey: string; data: Buffer; capturedMs: number; size: number } | undefined
  }

  perStream(): { stream: string; count: number; bytes: number }[] {
    return this.s.perStream.all() as { stream: string; count: number; bytes: number }[]
  }
}
