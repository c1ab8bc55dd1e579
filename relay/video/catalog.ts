/**
 * The video catalog: what the relay knows of its video streams and of every fragment it has stored
 * — the index beside the fragment files. Two implementations share the contract suite
 * (test/relay/video-catalog.test.ts): SQLite in the relay's meta.db (catalog-sqlite.ts) and memory
 * (catalog-memory.ts).
 *
 * A fragment's row is what makes it stored: its file is written and fsynced first, the row commits
 * after, and PERSISTED is sent only then. A file without a row is an unfinished write (swept at
 * start). The init segment of a session is the row of sequence 0; media fragments are 1, 2, ….
 *
 * Fragment numbers are the row's id, a counter that only grows (never reused, even after
 * deletions), written as AWS writes its numbers: 47 decimal digits, fixed width, so ordering the
 * strings orders the numbers, and both follow ingest order.
 */

export type VideoStreamStatus = 'CREATING' | 'ACTIVE' | 'UPDATING' | 'DELETING'

export interface VideoStreamRecord {
  id: string
  name: string
  arn: string
  status: VideoStreamStatus
  /** Changes with every update (UpdateDataRetention, UpdateStream), as AWS's Version does. */
  version: string
  createdMs: number
  /** 0: only the live buffer is kept (the relay's videoLiveBufferSeconds). */
  retentionHours: number
  deviceName: string | null
  mediaType: string | null
  kmsKeyId: string | null
  /** The device that created it by publishing to it, or null (CreateStream). */
  createdBy: string | null
}

export interface FragmentRecord {
  /** The counter behind the fragment number (fragmentNumberOf). */
  id: number
  streamId: string
  /** The device that sent it ('' for PutMedia). */
  device: string
  /** The capture session, a u64 as a decimal string. */
  session: string
  /** 0: the session's init segment; 1, 2, …: its media fragments. */
  sequence: number
  /** Device wall clock at the first frame (ms). */
  producerMs: number
  /** The relay's clock when the fragment was stored (ms). */
  serverMs: number
  durationMs: number
  bytes: number
  codec: string
  width: number
  height: number
  timescale: number
  keyFrame: boolean
  clockSynced: boolean
  crc32c: number
  /** The fragment's file, relative to the video directory. */
  file: string
}

export type NewFragment = Omit<FragmentRecord, 'id'>

/** What an insert found: the row now holding the key, and whether it is this insert's. */
export type Inserted = { row: FragmentRecord; inserted: boolean } | { row: null; inserted: false }

export interface FragmentQuery {
  streamId: string
  /** Which time orders and bounds the list; 'number' lists in ingest order, unbounded. */
  by: 'producer' | 'server' | 'number'
  /** Inclusive bounds (ms) on the chosen time. */
  from?: number
  to?: number
  /** Resume after this position (the last row of the previous page). */
  after?: { at: number; id: number }
  limit: number
}

export interface VideoCatalog {
  streams(): VideoStreamRecord[]
  /** Throws VideoNameTaken when a stream of that name exists. */
  insertStream(stream: VideoStreamRecord, tags: Record<string, string>): void
  updateStream(id: string, change: Partial<Pick<VideoStreamRecord, 'status' | 'version' | 'retentionHours' | 'deviceName' | 'mediaType'>>): void
  /** Removes the stream, its tags and every fragment row, in one transaction. */
  deleteStream(id: string): void
  tags(streamId: string): Record<string, string>
  putTags(streamId: string, tags: Record<string, string>): void
  removeTags(streamId: string, keys: readonly string[]): void
  /** The row of one fragment by its producer's identity (the dedupe key). */
  fragment(streamId: string, device: string, session: string, sequence: number): FragmentRecord | undefined
  /** The row of a fragment number's id. */
  fragmentById(streamId: string, id: number): FragmentRecord | undefined
  /**
   * Inserts rows in one transaction (one commit, one fsync). A key already held answers with the row
   * holding it; a row whose stream is gone answers { row: null }.
   */
  insertFragments(rows: readonly NewFragment[]): Inserted[]
  /** The media fragment stored last (the highest id), if any: the console's camera tiles. */
  newest(streamId: string): FragmentRecord | undefined
  /** Media fragments (sequence ≥ 1) in the query's order: by time then id, or by id. */
  listFragments(query: FragmentQuery): FragmentRecord[]
  /**
   * Rows past retention: media fragments stored before `beforeServerMs`, then init segments stored
   * before it whose session has no media fragment left. At most `limit`.
   */
  expired(streamId: string, beforeServerMs: number, limit: number): FragmentRecord[]
  deleteFragments(ids: readonly number[]): void
  /** Bytes of every fragment and init segment held. */
  totalBytes(): number
  /** Every fragment's file, relative to the video directory. */
  files(): Iterable<string>
  close(): void
}

export class VideoNameTaken extends Error {
  constructor(name: string) {
    super(`video stream ${name} already exists`)
    this.name = 'VideoNameTaken'
  }
}

const NUMBER_DIGITS = 47
const NUMBER_BASE = 9n * 10n ** BigInt(NUMBER_DIGITS - 1)

/** The fragment number of a row id: 47 digits, a leading 9 as AWS's have, then the id. */
export function fragmentNumberOf(id: number): string {
  return (NUMBER_BASE + BigInt(id)).toString()
}

/** The row id a fragment number names, or null when it is not one of ours. */
export function idOfFragmentNumber(number: string): number | null {
  if (!/^9\d{46}$/.test(number)) return null
  const id = BigInt(number) - NUMBER_BASE
  return id > 0n && id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : null
}
