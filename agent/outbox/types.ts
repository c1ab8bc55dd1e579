/** The outbox's public shapes: what producers hand over, what the uplink sends, and the options. */
import { RECORD_HEADER_SIZE, HASH_KEY_SIZE } from '../../shared/frame.js'
import type { AgentConfig, StreamPolicy } from '../config.js'
import type { Clock } from '../../hardware/index.js'
import type { LogFn } from '../log.js'

// The write budget is the agent's (agent/wear.ts), not the outbox's.
type OutboxConfig = Omit<AgentConfig['outbox'], 'writeBudgetMBPerDay'>

export interface OutboxInput {
  stream: string
  partitionKey: string
  data: Buffer
  /** Decimal 128-bit hash key, when the producer picks the shard. */
  explicitHashKey?: string
  /** Device wall clock at capture. */
  capturedMs?: number
  clockSynced?: boolean
}

/** A batch's identity, committed before it is sent so that a resend after any crash is the same batch. */
export interface FormedBatch {
  seq: number
  stream: string
  firstId: number
  lastId: number
  count: number
  bytes: number
}

export interface BatchRow {
  id: number
  partitionKey: string
  explicitHashKey: string | null
  data: Buffer
  capturedMs: number
  clockSynced: boolean
}


/** The config's outbox section, with the streams' policies and the boundaries passed in. */
export interface OutboxOptions extends OutboxConfig {
  policies: Record<string, StreamPolicy>
  /** How long an acknowledged batch's deletion waits for a commit of records to ride with (default 1 s). */
  ackHoldMs?: number
  clock?: Clock
  log?: LogFn
}

/** Why records left without being delivered; each is counted under its stream. */
export type DropReason = 'stream-cap' | 'outbox-full' | 'expired' | 'dead-letter-cap' | 'damaged'

export interface Alarm {
  code: string
  message: string
  atMs: number
}

/** The relay's verdict on one record of a batch. */
export interface Refusal {
  index: number
  code: string
  message: string
}

export interface DeadLetter {
  id: number
  stream: string
  partitionKey: string | null
  data: Buffer | null
  code: string
  message: string
  batchSeq: number | null
  batchIndex: number | null
}

/** Bytes a record adds to a batch frame. */
export function frameBytes(partitionKey: string, data: Buffer, explicitHashKey?: string | null): number {
  return RECORD_HEADER_SIZE + (explicitHashKey ? HASH_KEY_SIZE : 0) + Buffer.byteLength(partitionKey) + data.length
}

/** Data plus key, as Kinesis counts a record: a record's frame size less its record header. */
export function kinesisBytes(size: number, hashed: boolean): number {
  return size - RECORD_HEADER_SIZE - (hashed ? HASH_KEY_SIZE : 0)
}
