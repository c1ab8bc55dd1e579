/**
 * The one way to read a shard: where a read starts (the iterator types of GetShardIterator and the
 * starting positions of SubscribeToShard share these rules) and a page read (records, the next
 * offset, how far behind the newest record it is, and the shards to go on with at the end of a
 * closed shard). GetRecords, SubscribeToShard and delivery streams all read through it.
 */
import { ErrorCode, TributaryError } from '../shared/errors.js'
import type { LogRecord } from '../shared/logframe.js'
import { decodeSequence, encodeSequence, sequenceOf } from './sequence.js'
import type { ReadOptions } from './log/types.js'
import type { ShardState, StreamState, Streams } from './streams.js'

export const START_TYPES = ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'] as const
export type StartType = (typeof START_TYPES)[number]

/** Where to start, already checked for shape: a sequence number goes with the two sequence types, a timestamp with AT_TIMESTAMP. */
export type StartingPosition =
  | { type: 'TRIM_HORIZON' | 'LATEST' }
  | { type: 'AT_TIMESTAMP'; timestampMs: number }
  | { type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string }

/** Why a sequence number cannot start a read of this shard (the API words each as AWS does). */
export type PositionProblem =
  | { kind: 'malformed' }
  | { kind: 'other-shard'; shardIndex: number }
  | { kind: 'other-stream' }

export class PositionError extends TributaryError {
  readonly problem: PositionProblem
  constructor(problem: PositionProblem, sequenceNumber: string) {
    super(ErrorCode.REQUEST_INVALID, `sequence number ${sequenceNumber} cannot start a read of this shard (${problem.kind})`)
    this.name = 'PositionError'
    this.problem = problem
  }
}

export interface Page {
  records: LogRecord[]
  /** Where the next read starts. */
  nextOffset: number
  /** 0 when the page reached the newest committed record. */
  millisBehindLatest: number
  /** True when the shard is closed and this page read it to its end. */
  shardEnded: boolean
  /** At the end of a closed shard, the shards to go on with; empty otherwise. */
  children: ShardState[]
  /** The clock's time once the records were in (what MillisBehindLatest is measured against). */
  readAtMs: number
}

export class ShardReader {
  constructor(private readonly streams: Streams) {}

  /** The first offset to read from `position`. */
  async startOffset(shard: ShardState, position: StartingPosition): Promise<number> {
    switch (position.type) {
      case 'TRIM_HORIZON':
        return shard.log.startOffset()
      case 'LATEST':
        return shard.log.nextOffset()
      case 'AT_TIMESTAMP':
        return shard.log.offsetAtTime(position.timestampMs)
      default:
        return offsetOfSequence(shard, position.type, position.sequenceNumber)
    }
  }

  /** `now` is read once the records are in, as MillisBehindLatest is measured then. */
  async page(state: StreamState, shard: ShardState, offset: number, maxRecords: number, maxBytes: number, now: () => number, options?: ReadOptions): Promise<Page> {
    const { records, nextOffset } = await shard.log.read(offset, maxRecords, maxBytes, options)
    const readAtMs = now()
    const caughtUp = nextOffset >= shard.log.endOffset()
    const last = records[records.length - 1]
    const shardEnded = shard.meta.endOffset !== null && nextOffset >= shard.meta.endOffset
    return {
      records, nextOffset, shardEnded, readAtMs,
      millisBehindLatest: caughtUp ? 0 : Math.max(0, readAtMs - (last?.arrivalMs ?? readAtMs)),
      children: shardEnded ? this.streams.children(state, shard) : [],
    }
  }

  /**
   * A sequence number for "everything before `offset` was seen" when no record has been read yet:
   * the previous record's own number when it is still there. Before the first record of a shard
   * there is none, so a number that sorts below every real one (record time 0) stands for it;
   * AFTER_SEQUENCE_NUMBER with it starts at the shard's beginning.
   */
  async sequenceBefore(shard: ShardState, offset: number): Promise<string> {
    if (offset <= 0) return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset: 0, recordSec: 0 })
    const { records } = await shard.log.read(offset - 1, 1, 16 * 1024 * 1024)
    const previous = records[0]
    if (previous && previous.offset === offset - 1) return sequenceOf(shard, previous.offset, previous.arrivalMs)
    // Trimmed by retention: the counter alone locates it.
    return encodeSequence({ shardCreatedSec: shard.createdSec, shardIndex: shard.meta.index, offset: offset - 1, recordSec: 1 })
  }
}

/**
 * The first offset to read for AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER. A record time of 0 marks
 * a position before the record at its offset (a shard's StartingSequenceNumber; a fan-out
 * continuation before the first record): no record has that number, so AFTER it still includes
 * that record.
 */
function offsetOfSequence(shard: ShardState, type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER', text: string): number {
  const seq = decodeSequence(text)
  if (!seq) throw new PositionError({ kind: 'malformed' }, text)
  if (seq.shardIndex !== shard.meta.index) throw new PositionError({ kind: 'other-shard', shardIndex: seq.shardIndex }, text)
  if (seq.shardCreatedSec !== shard.createdSec) throw new PositionError({ kind: 'other-stream' }, text)
  return type === 'AT_SEQUENCE_NUMBER' || seq.recordSec === 0 ? seq.offset : seq.offset + 1
}
