/** Streams, shard maps, devices and relay settings: what the relay must remember besides the logs. */

export const StreamStatus = {
  CREATING: 'CREATING',
  ACTIVE: 'ACTIVE',
  UPDATING: 'UPDATING',
  DELETING: 'DELETING',
} as const
export type StreamStatus = (typeof StreamStatus)[keyof typeof StreamStatus]

export interface StreamMeta {
  name: string
  /** Unique per incarnation: a stream deleted and created again gets a new id (and new directories). */
  id: string
  arn: string
  status: StreamStatus
  retentionHours: number
  createdMs: number
  mode: 'PROVISIONED' | 'ON_DEMAND'
}

export interface ShardMeta {
  streamId: string
  shardId: string
  /** The number in the shard id, also encoded in every sequence number. */
  index: number
  /** Inclusive hash key range, as decimal strings (128-bit). */
  hashStart: string
  hashEnd: string
  createdMs: number
  parentShardId: string | null
  adjacentParentShardId: string | null
  /** Log offset the shard starts at (0) and, once closed, one past its last record. */
  endOffset: number | null
}

export interface DeviceMeta {
  id: string
  /** scrypt parameters and hash, hex; the secret itself is never stored. */
  salt: string
  hash: string
  createdMs: number
  rotatedMs: number
  /** The secret a rotation with a grace window replaced: still accepted until `untilMs` (wall clock). Absent when none. */
  previous?: { salt: string; hash: string; untilMs: number }
}

/**
 * A device certificate: one the relay issued (signed by its device CA), or a serial revoked that it
 * did not issue (a certificate signed elsewhere by the same CA). Keyed by serial: upper-case hex
 * without leading zeros.
 */
export interface DeviceCertificateMeta {
  serial: string
  device: string
  /** When the relay issued it and its end of validity (wall clock); null when the relay did not issue it. */
  issuedMs: number | null
  notAfterMs: number | null
  /** When it was revoked; null while it is not. */
  revokedMs: number | null
}

/** An enhanced fan-out consumer registered on a stream (RegisterStreamConsumer). */
export interface ConsumerMeta {
  streamId: string
  name: string
  arn: string
  status: 'CREATING' | 'ACTIVE' | 'DELETING'
  createdMs: number
}

/**
 * Per-stream settings that the Kinesis API reports back: encryption (StartStreamEncryption) and
 * enhanced monitoring. Absent means the defaults (NONE, no shard-level metrics).
 */
export interface StreamSettings {
  encryptionType: 'NONE' | 'KMS'
  keyId: string | null
  shardLevelMetrics: string[]
}

/**
 * One change of a stream's shard map (SplitShard, MergeShards, UpdateShardCount): parents closed at
 * their end offsets, new shards (a short-lived one is created already closed), and the status after.
 * A store applies it atomically or not at all, and refuses (CONFLICT) to close a shard already closed.
 */
export interface ShardMapChange {
  close: { shardId: string; endOffset: number }[]
  create: ShardMeta[]
  status?: StreamStatus
}

/** A consumer's position in one shard, kept by the relay (server-side checkpoints). */
export interface CheckpointMeta {
  streamId: string
  consumer: string
  shardId: string
  sequenceNumber: string
  updatedMs: number
}

/**
 * The metadata store. Async so that a PostgreSQL implementation (DESIGN.md, scale-out) can slot in;
 * the embedded one is SQLite (sqlite.ts), and an in-memory one (memory.ts) keeps the same contract
 * (test/contracts/metadata.ts). What every implementation keeps: values are copied in and out (a
 * caller's later change never reaches the store); lists are ordered by text in UTF-8 byte order
 * (SQLite's BINARY collation); a stream's name and id, a shard id within its stream and a consumer's
 * ARN are unique (CONFLICT otherwise); a change of several rows is all or nothing.
 */
export interface MetadataStore {
  createStream(stream: StreamMeta, shards: ShardMeta[]): Promise<void>
  getStream(name: string): Promise<StreamMeta | undefined>
  listStreams(): Promise<StreamMeta[]>
  setStreamStatus(name: string, status: StreamStatus): Promise<void>
  setRetention(name: string, hours: number): Promise<void>
  deleteStream(name: string): Promise<void>
  listShards(streamId: string): Promise<ShardMeta[]>

  /** Adds a device, or replaces its secret and previous secret (a replaced device keeps its createdMs). */
  putDevice(device: DeviceMeta): Promise<void>
  getDevice(id: string): Promise<DeviceMeta | undefined>
  listDevices(): Promise<DeviceMeta[]>
  deleteDevice(id: string): Promise<boolean>

  /** Device certificates by serial: put replaces the one of that serial; listed by serial, of one device or all. */
  putDeviceCertificate(certificate: DeviceCertificateMeta): Promise<void>
  getDeviceCertificate(serial: string): Promise<DeviceCertificateMeta | undefined>
  listDeviceCertificates(device?: string): Promise<DeviceCertificateMeta[]>

  getSetting(key: string): Promise<string | undefined>
  putSetting(key: string, value: string): Promise<void>

  /** The idempotency state of a stream's producers, saved now and then so restarts replay less log. */
  saveProducerState(streamId: string, state: string): Promise<void>
  loadProducerState(streamId: string): Promise<string | undefined>

  setStreamMode(name: string, mode: StreamMeta['mode']): Promise<void>
  /** Applies a shard map change atomically (see ShardMapChange). */
  reshard(streamId: string, change: ShardMapChange): Promise<void>

  /** Tags of a resource (a stream's id, or a consumer's ARN), sorted by key; a stream's deletion removes its consumers' too. */
  getTags(resource: string): Promise<Record<string, string>>
  putTags(resource: string, tags: Record<string, string>): Promise<void>
  removeTags(resource: string, keys: string[]): Promise<void>

  /** Stores a checkpoint; with `expected`, only if the stored one is that (null: none), else CONFLICT. */
  putCheckpoint(checkpoint: CheckpointMeta, expected?: string | null): Promise<void>
  /** A consumer's checkpoints by shard; without `consumer`, every consumer's of the stream, by consumer then shard. */
  listCheckpoints(streamId: string, consumer?: string): Promise<CheckpointMeta[]>
  /** Removes a consumer's checkpoints on every shard of a stream (a delivery stream deleted); how many there were. */
  deleteCheckpoints(streamId: string, consumer: string): Promise<number>

  /** Enhanced fan-out consumers (relay/consumers.ts); put replaces by (stream, name), listed by stream, registration time, name. */
  putConsumer(consumer: ConsumerMeta): Promise<void>
  listConsumers(streamId?: string): Promise<ConsumerMeta[]>
  deleteConsumer(streamId: string, name: string): Promise<boolean>

  /** Encryption and monitoring settings of a stream; undefined when never set. */
  getStreamSettings(streamId: string): Promise<StreamSettings | undefined>
  putStreamSettings(streamId: string, settings: StreamSettings): Promise<void>

  /** Resource policies by resource ARN (stored and returned, not enforced). */
  putResourcePolicy(arn: string, policy: string): Promise<void>
  getResourcePolicy(arn: string): Promise<string | undefined>
  deleteResourcePolicy(arn: string): Promise<boolean>

  close(): Promise<void>
}
