/**
 * What the console's API answers with: the shapes its pages read. Types only, shared by the relay's
 * side (fleet.ts, overview.ts) and the pages' scripts (client/), so that both change together.
 */

/** A device as the devices page shows it. */
export interface DeviceView {
  id: string
  /** Registered with a secret (`tributary devices add`); an anonymous relay also shows unregistered agents. */
  registered: boolean
  createdMs: number | null
  rotatedMs: number | null
  /** null: the relay has not heard from it since it started. */
  online: boolean | null
  /** When the relay last received its status (relay clock, ms). */
  lastSeenMs: number | null
  backlog: number | null
  oldestAgeMs: number | null
  drops: Record<string, number>
  deadLetters: number
  link: string | null
  lastPubackMs: number | null
  version: string | null
  serial: { name: string; state: string; readings: number }[]
  cameras: { name: string; state: string }[]
  alarms: string[]
}

export interface RateSeries {
  stepMs: number
  /** Records and bytes per second in each step, oldest first; the last is the step that ended last. */
  recordsPerSecond: number[]
  bytesPerSecond: number[]
}

/**
 * A reader of a stream and how far behind its newest records it is: an enhanced fan-out consumer
 * (its open subscriptions' positions), a consumer keeping server-side checkpoints, or a delivery
 * stream (which keeps checkpoints too).
 */
export interface ConsumerView {
  name: string
  kind: 'fan-out' | 'checkpoints' | 'delivery'
  /** A fan-out consumer's registration status; for the others, ACTIVE. */
  status: string
  /** Open shards it has a position in (a subscription, a checkpoint), of the stream's open shards. */
  shardsFollowed: number
  /** Records stored after its position, summed over the shards it follows. */
  behindRecords: number
  /**
   * How old the oldest record it has not read is (ms), 0 when it is caught up; null when that was
   * not looked up (a stream with more shards than the console reads for it).
   */
  behindMs: number | null
  /** When its position last moved (relay clock, ms): a checkpoint's time; null for fan-out. */
  updatedMs: number | null
}

/** A data stream as the streams page shows it. */
export interface StreamView {
  name: string
  status: string
  mode: string
  retentionHours: number
  encrypted: boolean
  /** Every shard still retained, open or closed, with its hash-key range as fractions of 2^128. */
  shards: { shardId: string; from: number; to: number; open: boolean; parent: string | null; adjacentParent: string | null; records: number }[]
  incoming: RateSeries
  consumers: ConsumerView[]
}

/** A delivery stream as the delivery page shows it. */
export interface DeliveryView {
  name: string
  status: string
  /** The data stream it reads, or "direct put". */
  source: string
  destination: string
  recordsDelivered: number
  bytesDelivered: number
  backlogRecords: number
  /** Age of the oldest record not yet delivered (s): Firehose's DataFreshness. */
  freshnessSeconds: number
  lastDeliveryMs: number | null
  failuresByCode: Record<string, number>
  recordsFailed: Record<string, number>
  lastError: { code: string; message: string; atMs: number } | null
}

/** A video stream as the cameras page shows it: its newest fragment, from which a tile's image is taken. */
export interface CameraView {
  name: string
  /** The device that sends it, when one does (the agent's camera), else null (PutMedia). */
  device: string | null
  /** The fragment stored last: the producer's time of its first frame, the relay's when it arrived (ms), its length. */
  newest: { producerMs: number; serverMs: number; durationMs: number } | null
}
