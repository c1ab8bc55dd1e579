/** The drop counters: every record that leaves undelivered is counted by stream and reason, durably. */
import type Database from 'better-sqlite3'
import type { DropReason } from './types.js'

export interface DropCount {
  stream: string
  reason: string
  count: number
}

export class Drops {
  private readonly add: Database.Statement
  private readonly all: Database.Statement

  constructor(db: Database.Database) {
    this.add = db.prepare('INSERT INTO drops (stream, reason, count) VALUES (?, ?, ?) ON CONFLICT(stream, reason) DO UPDATE SET count = count + excluded.count')
    this.all = db.prepare('SELECT stream, reason, count FROM drops')
  }

  /** Inside the transaction that removes the records. */
  count(stream: string, reason: DropReason, n: number): void {
    this.add.run(stream, reason, n)
  }

  list(): DropCount[] {
    return this.all.all() as DropCount[]
  }
}
