/**
 * The in-memory metadata store: the second implementation of MetadataStore (beside SQLite), so the
 * interface is proven by two before a PostgreSQL one is added. It keeps the SQLite store's semantics
 * exactly: the same conflicts with the same codes, the same list orders (SQLite's BINARY collation,
 * i.e. UTF-8 byte order), the same partial upserts, every multi-row change all or nothing. Values are
 * copied in and out, as rows are, so a caller's later mutation never reaches the store.
 */
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { CheckpointMeta, ConsumerMeta, DeviceCertificateMeta, DeviceMeta, MetadataStore, ShardMapChange, ShardMeta, StreamMeta, StreamSettings, StreamStatus } from './types.js'

const copyStream = (s: StreamMeta): StreamMeta => ({
  name: s.name, id: s.id, arn: s.arn, status: s.status, retentionHours: s.retentionHours, createdMs: s.createdMs, mode: s.mode,
})
const copyShard = (s: ShardMeta, streamId = s.streamId): ShardMeta => ({
  streamId, shardId: s.shardId, index: s.index, hashStart: s.hashStart, hashEnd: s.hashEnd, createdMs: s.createdMs,
  parentShardId: s.parentShardId, adjacentParentShardId: s.adjacentParentShardId, endOffset: s.endOffset,
})
const copyDevice = (d: DeviceMeta): DeviceMeta => ({
  id: d.id, salt: d.salt, hash: d.hash, createdMs: d.createdMs, rotatedMs: d.rotatedMs,
  ...(d.previous ? { previous: { salt: d.previous.salt, hash: d.previous.hash, untilMs: d.previous.untilMs } } : {}),
})
const copyCertificate = (c: DeviceCertificateMeta): DeviceCertificateMeta => ({
  serial: c.serial, device: c.device, issuedMs: c.issuedMs, notAfterMs: c.notAfterMs, revokedMs: c.revokedMs,
})
const copyConsumer = (c: ConsumerMeta): ConsumerMeta => ({ streamId: c.streamId, name: c.name, arn: c.arn, status: c.status, createdMs: c.createdMs })
const copyCheckpoint = (c: CheckpointMeta): CheckpointMeta => ({
  streamId: c.streamId, consumer: c.consumer, shardId: c.shardId, sequenceNumber: c.sequenceNumber, updatedMs: c.updatedMs,
})
// The SQLite store keeps settings as JSON text; a round trip gives the same copy (and drops what JSON drops).
const copySettings = (s: StreamSettings): StreamSettings => JSON.parse(JSON.stringify(s)) as StreamSettings

/** SQLite's BINARY collation: UTF-8 bytes, which differs from UTF-16 code units above U+D7FF. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** A key of several text columns that cannot collide, whatever the texts hold. */
const keyOf = (...parts: string[]): string => JSON.stringify(parts)

/**
 * The tables themselves. Several store handles may be opened over one instance, as several
 * connections over one SQLite file (the contract suite's reopen tests do this).
 */
export class MetadataTables {
  /** By name. */
  readonly streams = new Map<string, StreamMeta>()
  /** By stream id, in insertion order (listed by index). */
  readonly shards = new Map<string, ShardMeta[]>()
  readonly devices = new Map<string, DeviceMeta>()
  /** By serial. */
  readonly deviceCertificates = new Map<string, DeviceCertificateMeta>()
  readonly settings = new Map<string, string>()
  readonly producerState = new Map<string, string>()
  /** By keyOf(streamId, name). */
  readonly consumers = new Map<string, ConsumerMeta>()
  readonly streamSettings = new Map<string, StreamSettings>()
  readonly policies = new Map<string, string>()
  /** By resource, then key. */
  readonly tags = new Map<string, Map<string, string>>()
  /** By keyOf(streamId, consumer, shardId). */
  readonly checkpoints = new Map<string, CheckpointMeta>()
}

export class MemoryMetadataStore implements MetadataStore {
  private closed = false

  constructor(private readonly data: MetadataTables = new MetadataTables()) {}

  /** The tables, once the handle is known to be open (a closed SQLite connection refuses every call too). */
  private get tables(): MetadataTables {
    if (this.closed) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the metadata store is closed')
    return this.data
  }

  async createStream(stream: StreamMeta, shards: ShardMeta[]): Promise<void> {
    const t = this.tables
    const taken = t.streams.has(stream.name) || [...t.streams.values()].some((s) => s.id === stream.id)
    const added = new Set<string>()
    const shardTaken = shards.some((s) => {
      const key = keyOf(s.streamId, s.shardId)
      const clash = added.has(key) || (t.shards.get(s.streamId) ?? []).some((e) => e.shardId === s.shardId)
      added.add(key)
      return clash
    })
    if (taken || shardTaken) throw new TributaryError(ErrorCode.CONFLICT, `stream ${stream.name} already exists`)
    t.streams.set(stream.name, copyStream(stream))
    for (const s of shards) this.shardsOf(s.streamId).push(copyShard(s))
  }

  private shardsOf(streamId: string): ShardMeta[] {
    let list = this.data.shards.get(streamId)
    if (!list) { list = []; this.data.shards.set(streamId, list) }
    return list
  }

  async getStream(name: string): Promise<StreamMeta | undefined> {
    const s = this.tables.streams.get(name)
    return s && copyStream(s)
  }

  async listStreams(): Promise<StreamMeta[]> {
    return [...this.tables.streams.values()].sort((a, b) => byteOrder(a.name, b.name)).map(copyStream)
  }

  async setStreamStatus(name: string, status: StreamStatus): Promise<void> {
    const s = this.tables.streams.get(name)
    if (s) s.status = status
  }

  async setRetention(name: string, hours: number): Promise<void> {
    const s = this.tables.streams.get(name)
    if (s) s.retentionHours = hours
  }

  async setStreamMode(name: string, mode: StreamMeta['mode']): Promise<void> {
    const s = this.tables.streams.get(name)
    if (s) s.mode = mode
  }

  async deleteStream(name: string): Promise<void> {
    const t = this.tables
    const stream = t.streams.get(name)
    if (!stream) return
    const id = stream.id
    t.shards.delete(id)
    t.producerState.delete(id)
    for (const [key, c] of t.consumers) if (c.streamId === id) t.consumers.delete(key)
    t.streamSettings.delete(id)
    // The stream's policy and its consumers' (their ARNs extend the stream's).
    const prefix = `${stream.arn}/consumer/`
    for (const arn of t.policies.keys()) if (arn === stream.arn || arn.startsWith(prefix)) t.policies.delete(arn)
    for (const resource of t.tags.keys()) if (resource === id || resource.startsWith(prefix)) t.tags.delete(resource)
    for (const [key, c] of t.checkpoints) if (c.streamId === id) t.checkpoints.delete(key)
    t.streams.delete(name)
  }

  async listShards(streamId: string): Promise<ShardMeta[]> {
    // Array.prototype.sort is stable: shards of one index stay in the order they were added.
    return (this.tables.shards.get(streamId) ?? []).map((s) => copyShard(s)).sort((a, b) => a.index - b.index)
  }

  /** Applied to a copy of the stream's shard list, which replaces the list only when every step succeeded. */
  async reshard(streamId: string, change: ShardMapChange): Promise<void> {
    const t = this.tables
    const next = (t.shards.get(streamId) ?? []).map((s) => copyShard(s))
    for (const c of change.close) {
      const shard = next.find((s) => s.shardId === c.shardId && s.endOffset === null)
      if (!shard) throw new TributaryError(ErrorCode.CONFLICT, `shard ${c.shardId} of ${streamId} is not an open shard`)
      shard.endOffset = c.endOffset
    }
    for (const s of change.create) {
      if (next.some((e) => e.shardId === s.shardId)) throw new TributaryError(ErrorCode.CONFLICT, `a new shard of ${streamId} already exists`)
      // The new shard belongs to the stream named by the call, whatever its own streamId says (as in SQLite).
      next.push(copyShard(s, streamId))
    }
    t.shards.set(streamId, next)
    if (change.status) for (const s of t.streams.values()) if (s.id === streamId) s.status = change.status
  }

  async putDevice(d: DeviceMeta): Promise<void> {
    const t = this.tables
    const existing = t.devices.get(d.id)
    // A replaced device keeps the time it was first added.
    t.devices.set(d.id, { ...copyDevice(d), createdMs: existing?.createdMs ?? d.createdMs })
  }

  async getDevice(id: string): Promise<DeviceMeta | undefined> {
    const d = this.tables.devices.get(id)
    return d && copyDevice(d)
  }

  async listDevices(): Promise<DeviceMeta[]> {
    return [...this.tables.devices.values()].sort((a, b) => byteOrder(a.id, b.id)).map(copyDevice)
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.tables.devices.delete(id)
  }

  async putDeviceCertificate(c: DeviceCertificateMeta): Promise<void> {
    this.tables.deviceCertificates.set(c.serial, copyCertificate(c))
  }

  async getDeviceCertificate(serial: string): Promise<DeviceCertificateMeta | undefined> {
    const c = this.tables.deviceCertificates.get(serial)
    return c && copyCertificate(c)
  }

  async listDeviceCertificates(device?: string): Promise<DeviceCertificateMeta[]> {
    return [...this.tables.deviceCertificates.values()]
      .filter((c) => device === undefined || c.device === device)
      .sort((a, b) => byteOrder(a.serial, b.serial))
      .map(copyCertificate)
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.tables.settings.get(key)
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.tables.settings.set(key, value)
  }

  async saveProducerState(streamId: string, state: string): Promise<void> {
    this.tables.producerState.set(streamId, state)
  }

  async loadProducerState(streamId: string): Promise<string | undefined> {
    return this.tables.producerState.get(streamId)
  }

  async getTags(resource: string): Promise<Record<string, string>> {
    const tags = this.tables.tags.get(resource)
    return Object.fromEntries([...(tags ?? [])].sort(([a], [b]) => byteOrder(a, b)))
  }

  async putTags(resource: string, tags: Record<string, string>): Promise<void> {
    const t = this.tables
    const entries = Object.entries(tags)
    if (!entries.length) return
    let stored = t.tags.get(resource)
    if (!stored) { stored = new Map(); t.tags.set(resource, stored) }
    for (const [k, v] of entries) stored.set(k, v)
  }

  async removeTags(resource: string, keys: string[]): Promise<void> {
    const t = this.tables
    const stored = t.tags.get(resource)
    if (!stored) return
    for (const k of keys) stored.delete(k)
    if (!stored.size) t.tags.delete(resource)
  }

  async putCheckpoint(cp: CheckpointMeta, expected?: string | null): Promise<void> {
    const t = this.tables
    const key = keyOf(cp.streamId, cp.consumer, cp.shardId)
    if (expected !== undefined) {
      const stored = t.checkpoints.get(key)?.sequenceNumber
      if ((stored ?? null) !== expected) {
        throw new TributaryError(ErrorCode.CONFLICT, `checkpoint of ${cp.consumer} on ${cp.shardId} is ${stored ?? 'unset'}, not ${expected ?? 'unset'}`)
      }
    }
    t.checkpoints.set(key, copyCheckpoint(cp))
  }

  async listCheckpoints(streamId: string, consumer?: string): Promise<CheckpointMeta[]> {
    return [...this.tables.checkpoints.values()]
      .filter((c) => c.streamId === streamId && (consumer === undefined || c.consumer === consumer))
      .sort((a, b) => byteOrder(a.consumer, b.consumer) || byteOrder(a.shardId, b.shardId))
      .map(copyCheckpoint)
  }

  async deleteCheckpoints(streamId: string, consumer: string): Promise<number> {
    let n = 0
    for (const [key, c] of this.tables.checkpoints) {
      if (c.streamId === streamId && c.consumer === consumer) n += Number(this.tables.checkpoints.delete(key))
    }
    return n
  }

  async putConsumer(c: ConsumerMeta): Promise<void> {
    const t = this.tables
    const key = keyOf(c.streamId, c.name)
    for (const [other, existing] of t.consumers) {
      if (other !== key && existing.arn === c.arn) throw new TributaryError(ErrorCode.CONFLICT, `consumer ARN ${c.arn} is taken`)
    }
    t.consumers.set(key, copyConsumer(c))
  }

  async listConsumers(streamId?: string): Promise<ConsumerMeta[]> {
    const all = [...this.tables.consumers.values()]
    const chosen = streamId === undefined ? all : all.filter((c) => c.streamId === streamId)
    return chosen
      .sort((a, b) => byteOrder(a.streamId, b.streamId) || a.createdMs - b.createdMs || byteOrder(a.name, b.name))
      .map(copyConsumer)
  }

  async deleteConsumer(streamId: string, name: string): Promise<boolean> {
    return this.tables.consumers.delete(keyOf(streamId, name))
  }

  async getStreamSettings(streamId: string): Promise<StreamSettings | undefined> {
    const s = this.tables.streamSettings.get(streamId)
    return s && copySettings(s)
  }

  async putStreamSettings(streamId: string, settings: StreamSettings): Promise<void> {
    this.tables.streamSettings.set(streamId, copySettings(settings))
  }

  async putResourcePolicy(arn: string, policy: string): Promise<void> {
    this.tables.policies.set(arn, policy)
  }

  async getResourcePolicy(arn: string): Promise<string | undefined> {
    return this.tables.policies.get(arn)
  }

  async deleteResourcePolicy(arn: string): Promise<boolean> {
    return this.tables.policies.delete(arn)
  }

  async close(): Promise<void> {
    this.closed = true
  }
}
