/**
 * The cluster's metadata store: one NATS JetStream key-value bucket that every relay of a cluster
 * shares (issue 15), beside the embedded SQLite store and the in-memory one, under the same contract
 * (test/contracts/metadata.ts).
 *
 * Layout. One bucket, `<cluster>-meta`, history 1, R1 or R3. A key's tokens are base64url of the
 * UTF-8 text (KV keys allow only `[-/_=.a-zA-Z0-9]`; base64url never yields `=`, so `=` stands for
 * the empty text), which is reversible and never contains the `.` that separates tokens.
 *
 *   key                                      value (JSON)
 *   stream.<name>                            { v, stream, shards, settings?, deleting? }
 *   stream-id.<id>                           { name }: claims the id, points to the stream
 *   device.<id>                              DeviceMeta
 *   certificate.<serial>                     DeviceCertificateMeta
 *   setting.<key>                            the value, as it is (not JSON)
 *   producer.<streamId>                      { v, inline } or { v, part, parts, bytes }
 *   producer-part.<streamId>.<part>.<i>      one slice of a large producer state (raw bytes)
 *   tags.<resource>                          { key: value }
 *   checkpoint.<streamId>.<consumer>.<shard> CheckpointMeta
 *   consumer.<streamId>.<name>               ConsumerMeta
 *   consumer-arn.<arn>                       { streamId, name }: claims the ARN
 *   policy.<arn>                             the policy, as it is
 *
 * Why. JetStream offers compare-and-set on one key (the expected last revision of its subject) and
 * no transaction across keys. So everything of a stream that changes together — its meta, its shard
 * map and its settings — is one value, and each change of a stream (create, status, retention, mode,
 * settings, reshard, delete) is one compare-and-set on that key: read, apply the change to a copy,
 * write expecting the revision read; a lost race re-reads and applies again, so a change that no
 * longer fits (a shard another relay closed meanwhile) is the same CONFLICT the other stores give,
 * and the winner's map is what every relay reads. Names are unique because a stream key is created
 * expecting no revision; ids and consumer ARNs by a claim key created the same way. Watching
 * `stream.*` tells every relay of every change of a stream within milliseconds.
 *
 * Reads go to each stream's leader (allow_direct off): a direct get may be answered by a replica that
 * is behind, and a relay must read the map another relay has just committed.
 *
 * Deleting a stream is several keys, so it is done in an order that a crash cannot leave half-seen:
 * the stream's value is first replaced by a tombstone (`deleting`, the commit point: from then on
 * the stream is absent to every reader), then its consumers, tags, policies, checkpoints and producer
 * state are removed, then the id claim and the tombstone. A deleteStream or createStream of that name
 * finishes a tombstone a crash left behind.
 *
 * Values above the server's max payload (1 MiB by default) are refused by the server: a stream value
 * is checked before it is sent (LIMIT_EXCEEDED: thousands of shards), and producer state, which can
 * be megabytes, is written in parts under a new part id and switched to by a compare-and-set of its
 * manifest, after which the parts it replaced are removed.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { Kvm, KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv'
import { randomBytes } from 'node:crypto'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import { byteOrder } from './memory.js'
import type { CheckpointMeta, ConsumerMeta, DeviceCertificateMeta, DeviceMeta, MetadataStore, ShardMapChange, ShardMeta, StreamMeta, StreamSettings, StreamStatus } from './types.js'

export interface JetStreamMetadataOptions {
  /** The caller's connection; the store never closes it. */
  nc: NatsConnection
  /** Names the bucket (`<cluster>-meta`): letters, digits, `-` and `_`. */
  cluster?: string
  /** 1 or 3 (checked here: the cluster's settings are numbers). */
  replicas?: number
}

/** How often a compare-and-set is tried again after losing a race, before giving up. */
const MAX_RACES = 100
/** Room left in a message for headers and the subject. */
const HEADER_ROOM = 8 * 1024
const RECORD_VERSION = 1
/** The header a KV delete or purge marker carries. */
const KV_OPERATION = 'KV-Operation'

interface StreamRecord {
  v: number
  stream: StreamMeta
  shards: ShardMeta[]
  settings?: StreamSettings
  /** A tombstone: the stream is deleted and its other keys are being removed. */
  deleting?: true
}
type ProducerManifest = { v: number; inline: string } | { v: number; part: string; parts: number; bytes: number }

/** One key token: base64url of the UTF-8 text, `=` for the empty text. */
const token = (text: string): string => (text === '' ? '=' : Buffer.from(text, 'utf8').toString('base64url'))
const untoken = (t: string): string => (t === '=' ? '' : Buffer.from(t, 'base64url').toString('utf8'))
const key = (prefix: string, ...parts: string[]): string => [prefix, ...parts.map(token)].join('.')

const pickStream = (s: StreamMeta): StreamMeta => ({
  name: s.name, id: s.id, arn: s.arn, status: s.status, retentionHours: s.retentionHours, createdMs: s.createdMs, mode: s.mode,
})
const pickShard = (s: ShardMeta, streamId = s.streamId): ShardMeta => ({
  streamId, shardId: s.shardId, index: s.index, hashStart: s.hashStart, hashEnd: s.hashEnd, createdMs: s.createdMs,
  parentShardId: s.parentShardId, adjacentParentShardId: s.adjacentParentShardId, endOffset: s.endOffset,
})
const pickDevice = (d: DeviceMeta): DeviceMeta => ({
  id: d.id, salt: d.salt, hash: d.hash, createdMs: d.createdMs, rotatedMs: d.rotatedMs,
  ...(d.previous ? { previous: { salt: d.previous.salt, hash: d.previous.hash, untilMs: d.previous.untilMs } } : {}),
})
const pickCertificate = (c: DeviceCertificateMeta): DeviceCertificateMeta => ({
  serial: c.serial, device: c.device, issuedMs: c.issuedMs, notAfterMs: c.notAfterMs, revokedMs: c.revokedMs,
})
const pickConsumer = (c: ConsumerMeta): ConsumerMeta => ({ streamId: c.streamId, name: c.name, arn: c.arn, status: c.status, createdMs: c.createdMs })
const pickCheckpoint = (c: CheckpointMeta): CheckpointMeta => ({
  streamId: c.streamId, consumer: c.consumer, shardId: c.shardId, sequenceNumber: c.sequenceNumber, updatedMs: c.updatedMs,
})

/** A value, not a delete marker (whose revision a write may still expect). */
const live = (e: KvEntry | null): e is KvEntry & { operation: 'PUT' } => e !== null && e.operation === 'PUT'
const json = <T>(e: KvEntry): T => e.json<T>()

/** The write expected a revision the key no longer has: another client changed it first. */
const lostRace = (err: unknown): boolean =>
  err instanceof JetStreamApiError &&
  (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)

const conflict = (message: string) => new TributaryError(ErrorCode.CONFLICT, message)

export class JetStreamMetadataStore implements MetadataStore {
  private closed = false
  private readonly listeners = new Set<(name: string) => void>()
  private readonly consumerListeners = new Set<(streamId: string) => void>()
  private consumerUpdates: { stop(): void } | null = null
  private readonly maxValueBytes: number
  private readonly partBytes: number

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly watcher: { stop(): void },
    maxPayload: number,
  ) {
    this.maxValueBytes = maxPayload - HEADER_ROOM
    this.partBytes = Math.max(1024, Math.min(256 * 1024, Math.floor(this.maxValueBytes / 2)))
  }

  /** Opens (creating when absent) the cluster's bucket and starts watching its streams. */
  static async open(options: JetStreamMetadataOptions): Promise<JetStreamMetadataStore> {
    const { nc, cluster = 'tributary', replicas = 1 } = options
    if (!/^[-_a-zA-Z0-9]+$/.test(cluster)) throw new TypeError(`cluster name ${JSON.stringify(cluster)} may hold only letters, digits, - and _`)
    if (replicas !== 1 && replicas !== 3) throw new TypeError(`replicas must be 1 or 3, not ${String(replicas)}`)
    try {
      const bucket = `${cluster}-meta`
      const kv = await new Kvm(nc).create(bucket, { replicas, history: 1, allow_direct: false })
      const updates = await kv.watch({ key: 'stream.*', include: KvWatchInclude.UpdatesOnly })
      // A second watch: one watch takes one key filter on server 2.9.
      const consumerUpdates = await kv.watch({ key: 'consumer.*.*', include: KvWatchInclude.UpdatesOnly })
      const store = new JetStreamMetadataStore(kv, await jetstreamManager(nc), bucket, updates, nc.info?.max_payload ?? 1024 * 1024)
      store.consumerUpdates = consumerUpdates
      void (async () => {
        for await (const e of updates) store.announce(untoken(e.key.slice('stream.'.length)))
      })().catch(() => { /* the watch ends with close(); a broken one leaves reads and writes working */ })
      void (async () => {
        for await (const e of consumerUpdates) store.announceConsumer(untoken(e.key.split('.')[1]!))
      })().catch(() => {})
      return store
    } catch (err) {
      throw new StorageError(ErrorCode.STORAGE_FAILED, `cannot open the metadata bucket ${cluster}-meta: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * Calls `listener` with a stream's name whenever any client of the bucket, on any relay, creates,
   * changes or deletes that stream (within milliseconds; a deletion may be announced more than once).
   * Returns the function that stops it.
   */
  watchStreams(listener: (name: string) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * Calls `listener` with a stream's id whenever any relay registers, activates, deregisters or
   * removes one of its enhanced fan-out consumers. Returns the function that stops it.
   */
  watchConsumers(listener: (streamId: string) => void): () => void {
    this.consumerListeners.add(listener)
    return () => { this.consumerListeners.delete(listener) }
  }

  private announceConsumer(streamId: string): void {
    for (const listener of this.consumerListeners) {
      try { listener(streamId) } catch { /* one listener's failure is not the others' */ }
    }
  }

  private announce(name: string): void {
    for (const listener of this.listeners) {
      try { listener(name) } catch { /* one listener's failure is not the others' */ }
    }
  }

  /** Every call: refused once closed; a failure of NATS itself is a StorageError. */
  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the metadata store is closed')
    try {
      return await fn()
    } catch (err) {
      if (err instanceof TributaryError || err instanceof TypeError) throw err
      throw new StorageError(ErrorCode.STORAGE_FAILED, `${what}: ${(err as Error).message}`, { cause: err })
    }
  }

  // --- key-value primitives

  private encode(k: string, value: unknown): Uint8Array {
    const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8')
    if (bytes.length > this.maxValueBytes) {
      throw new TributaryError(ErrorCode.LIMIT_EXCEEDED, `the value of ${k} is ${bytes.length} bytes, more than the ${this.maxValueBytes} a NATS message may carry`)
    }
    return bytes
  }

  /**
   * Writes expecting `revision` (0: no value ever, or the revision of its delete marker): the new
   * revision, or false on a lost race.
   */
  private async write(k: string, value: unknown, revision: number): Promise<number | false> {
    try {
      return await this.kv.put(k, this.encode(k, value), { previousSeq: revision })
    } catch (err) {
      if (lostRace(err)) return false
      throw err
    }
  }

  /** Deletes expecting `revision`; false on a lost race. */
  private async remove(k: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(k, { previousSeq: revision })
      return true
    } catch (err) {
      if (lostRace(err)) return false
      throw err
    }
  }

  /**
   * Read, change, write expecting the revision read; again on a lost race. `change` gets the live
   * value (undefined when none) and returns the next value, `null` to delete, or `undefined` to leave
   * the key as it is; it may throw (a true conflict). Returns what `change` last returned.
   */
  private async cas<T>(k: string, change: (current: T | undefined) => T | null | undefined): Promise<T | null | undefined> {
    for (let race = 0; race < MAX_RACES; race++) {
      const e = await this.kv.get(k)
      const current = live(e) ? json<T>(e) : undefined
      const next = change(current)
      if (next === undefined) return undefined
      if (next === null) {
        if (!live(e) || (await this.remove(k, e.revision))) return null
        continue
      }
      if ((await this.write(k, next, e?.revision ?? 0)) !== false) return next
    }
    throw new StorageError(ErrorCode.STORAGE_FAILED, `${k} kept changing: gave up after ${MAX_RACES} lost races`)
  }

  /**
   * The live values of every key matching `filter` (NATS subject wildcards over the tokens), read
   * by walking the bucket's stream with "next message on this subject from this sequence" requests
   * to its leader, rather than kv.keys(), which creates a consumer per listing: that needs the
   * cluster's meta leader as well, and is slower. With history 1 the stream holds one message per key
   * (a later write of a key passed during the walk is seen again; the last one read wins).
   */
  private async values(filter: string): Promise<Map<string, { value: Uint8Array; revision: number }>> {
    const found = new Map<string, { value: Uint8Array; revision: number }>()
    const prefix = `$KV.${this.bucket}.`
    for (let seq = 1; ;) {
      const request = { seq, next_by_subj: `${prefix}${filter}` } as unknown as { seq: number }
      const m = await this.jsm.streams.getMessage(`KV_${this.bucket}`, request)
      if (m === null) return found
      const k = m.subject.slice(prefix.length)
      const op = m.header?.get(KV_OPERATION)
      if (op === 'DEL' || op === 'PURGE') found.delete(k)
      else found.set(k, { value: m.data, revision: m.seq })
      seq = m.seq + 1
    }
  }

  private async parsed<T>(filter: string): Promise<T[]> {
    return [...(await this.values(filter)).values()].map((v) => JSON.parse(Buffer.from(v.value).toString('utf8')) as T)
  }

  private async keysOf(filter: string): Promise<string[]> {
    return [...(await this.values(filter)).keys()]
  }

  // --- streams

  /** The live record of a stream by name, with its revision; tombstones count as absent. */
  private async record(name: string): Promise<{ rec: StreamRecord; revision: number } | undefined> {
    const e = await this.kv.get(key('stream', name))
    if (!live(e)) return undefined
    const rec = json<StreamRecord>(e)
    return rec.deleting ? undefined : { rec, revision: e.revision }
  }

  /** The name of the stream that holds `id` now, by its claim (a stale claim names a stream without it). */
  private async nameOf(id: string): Promise<string | undefined> {
    const e = await this.kv.get(key('stream-id', id))
    return live(e) ? json<{ name: string }>(e).name : undefined
  }

  /** Changes the live stream of `name` (and only while it has `id`, when given); nothing when there is none. */
  private async changeStream(name: string, change: (rec: StreamRecord) => void, id?: string): Promise<boolean> {
    let found = false
    await this.cas<StreamRecord>(key('stream', name), (rec) => {
      found = rec !== undefined && !rec.deleting && (id === undefined || rec.stream.id === id)
      if (!found) return undefined
      const next = structuredClone(rec!)
      change(next)
      return next
    })
    return found
  }

  async createStream(stream: StreamMeta, shards: ShardMeta[]): Promise<void> {
    const ids = new Set<string>()
    for (const s of shards) {
      if (ids.has(s.shardId)) throw conflict(`stream ${stream.name} already exists`)
      ids.add(s.shardId)
    }
    // A stream's shards are in its value, so they are its own whatever their streamId says (as reshard does).
    const rec: StreamRecord = { v: RECORD_VERSION, stream: pickStream(stream), shards: shards.map((s) => pickShard(s, stream.id)) }
    const streamKey = key('stream', stream.name)
    return this.run('createStream', async () => {
      this.encode(streamKey, rec)
      const claimed = await this.claimId(stream.id, stream.name)
      for (let race = 0; race < MAX_RACES; race++) {
        const e = await this.kv.get(streamKey)
        if (live(e)) {
          const existing = json<StreamRecord>(e)
          if (existing.deleting) {
            await this.finishDeletion(existing, e.revision)
            continue
          }
          // Only a claim this call made is released: an equal id means the claim is the existing stream's.
          if (claimed !== undefined && existing.stream.id !== stream.id) await this.remove(key('stream-id', stream.id), claimed)
          throw conflict(`stream ${stream.name} already exists`)
        }
        if ((await this.write(streamKey, rec, e?.revision ?? 0)) !== false) return
      }
      throw new StorageError(ErrorCode.STORAGE_FAILED, `${streamKey} kept changing: gave up after ${MAX_RACES} lost races`)
    })
  }

  /**
   * Claims a stream id for `name`: the revision of the claim this call wrote, or undefined when the
   * claim already names `name` (a retry after a crash between claim and stream). CONFLICT when it
   * names another stream, even one whose value does not hold it yet: that may be a create in flight.
   */
  private async claimId(id: string, name: string): Promise<number | undefined> {
    const k = key('stream-id', id)
    for (let race = 0; race < MAX_RACES; race++) {
      const e = await this.kv.get(k)
      if (live(e)) {
        if (json<{ name: string }>(e).name === name) return undefined
        throw conflict(`stream id ${id} is taken`)
      }
      const revision = await this.write(k, { name }, e?.revision ?? 0)
      if (revision !== false) return revision
    }
    throw new StorageError(ErrorCode.STORAGE_FAILED, `${k} kept changing: gave up after ${MAX_RACES} lost races`)
  }

  async getStream(name: string): Promise<StreamMeta | undefined> {
    return this.run('getStream', async () => (await this.record(name))?.rec.stream)
  }

  async listStreams(): Promise<StreamMeta[]> {
    return this.run('listStreams', async () => {
      const recs = (await this.parsed<StreamRecord>('stream.*')).filter((r) => !r.deleting)
      return recs.map((r) => r.stream).sort((a, b) => byteOrder(a.name, b.name))
    })
  }

  async setStreamStatus(name: string, status: StreamStatus): Promise<void> {
    await this.run('setStreamStatus', () => this.changeStream(name, (rec) => { rec.stream.status = status }))
  }

  async setRetention(name: string, hours: number): Promise<void> {
    await this.run('setRetention', () => this.changeStream(name, (rec) => { rec.stream.retentionHours = hours }))
  }

  async setStreamMode(name: string, mode: StreamMeta['mode']): Promise<void> {
    await this.run('setStreamMode', () => this.changeStream(name, (rec) => { rec.stream.mode = mode }))
  }

  async deleteStream(name: string): Promise<void> {
    return this.run('deleteStream', async () => {
      const k = key('stream', name)
      for (let race = 0; race < MAX_RACES; race++) {
        const e = await this.kv.get(k)
        if (!live(e)) return
        const rec = json<StreamRecord>(e)
        if (rec.deleting) return this.finishDeletion(rec, e.revision)
        const tombstone: StreamRecord = { ...rec, deleting: true }
        const revision = await this.write(k, tombstone, e.revision)
        if (revision !== false) return this.finishDeletion(tombstone, revision)
      }
      throw new StorageError(ErrorCode.STORAGE_FAILED, `${k} kept changing: gave up after ${MAX_RACES} lost races`)
    })
  }

  /** Removes what the SQLite store's deleteStream removes with the stream, then the claim and the tombstone. */
  private async finishDeletion(rec: StreamRecord, tombstoneRevision: number): Promise<void> {
    const { id, arn, name } = rec.stream
    const consumerPrefix = `${arn}/consumer/`
    const ofStream = (text: string) => text === arn || text.startsWith(consumerPrefix)
    await this.dropProducerState(id)
    for (const [, e] of await this.values(`consumer.${token(id)}.*`)) {
      await this.dropConsumer(JSON.parse(Buffer.from(e.value).toString('utf8')) as ConsumerMeta, e.revision)
    }
    const tagged = (await this.keysOf('tags.*')).filter((k) => {
      const resource = untoken(k.slice('tags.'.length))
      return resource === id || resource.startsWith(consumerPrefix)
    })
    const policies = (await this.keysOf('policy.*')).filter((k) => ofStream(untoken(k.slice('policy.'.length))))
    const checkpoints = await this.keysOf(`checkpoint.${token(id)}.>`)
    await Promise.all([...tagged, ...policies, ...checkpoints].map((k) => this.kv.delete(k)))
    const claim = await this.kv.get(key('stream-id', id))
    if (live(claim) && json<{ name: string }>(claim).name === name) await this.remove(key('stream-id', id), claim.revision)
    // Lost only if another client finished this deletion (and perhaps created the name again).
    await this.remove(key('stream', name), tombstoneRevision)
  }

  /** The live record that holds `streamId`, found through its claim. */
  private async recordById(streamId: string): Promise<StreamRecord | undefined> {
    const name = await this.nameOf(streamId)
    if (name === undefined) return undefined
    const found = await this.record(name)
    return found?.rec.stream.id === streamId ? found.rec : undefined
  }

  async listShards(streamId: string): Promise<ShardMeta[]> {
    return this.run('listShards', async () => {
      const rec = await this.recordById(streamId)
      // Array.prototype.sort is stable: shards of one index stay in the order they were added.
      return (rec?.shards ?? []).sort((a, b) => a.index - b.index)
    })
  }

  /** One compare-and-set of the stream's value; a lost race applies the change again to what won. */
  async reshard(streamId: string, change: ShardMapChange): Promise<void> {
    return this.run('reshard', async () => {
      const name = await this.nameOf(streamId)
      const applied = name !== undefined && await this.changeStream(name, (rec) => {
        const next = rec.shards
        for (const c of change.close) {
          const shard = next.find((s) => s.shardId === c.shardId && s.endOffset === null)
          if (!shard) throw conflict(`shard ${c.shardId} of ${streamId} is not an open shard`)
          shard.endOffset = c.endOffset
        }
        for (const s of change.create) {
          if (next.some((e) => e.shardId === s.shardId)) throw conflict(`a new shard of ${streamId} already exists`)
          next.push(pickShard(s, streamId))
        }
        if (change.status) rec.stream.status = change.status
      }, streamId)
      if (!applied) throw conflict(`stream ${streamId} does not exist`)
    })
  }

  async getStreamSettings(streamId: string): Promise<StreamSettings | undefined> {
    return this.run('getStreamSettings', async () => (await this.recordById(streamId))?.settings)
  }

  /** Kept in the stream's value, so a stream deleted by another relay does not come back as settings. */
  async putStreamSettings(streamId: string, settings: StreamSettings): Promise<void> {
    const copy = JSON.parse(JSON.stringify(settings)) as StreamSettings
    return this.run('putStreamSettings', async () => {
      const name = await this.nameOf(streamId)
      const applied = name !== undefined && await this.changeStream(name, (rec) => { rec.settings = copy }, streamId)
      if (!applied) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${streamId} does not exist`)
    })
  }

  // --- devices, certificates, settings

  async putDevice(d: DeviceMeta): Promise<void> {
    const device = pickDevice(d)
    await this.run('putDevice', () => this.cas<DeviceMeta>(key('device', d.id), (existing) => ({ ...device, createdMs: existing?.createdMs ?? device.createdMs })))
  }

  async getDevice(id: string): Promise<DeviceMeta | undefined> {
    return this.run('getDevice', async () => {
      const e = await this.kv.get(key('device', id))
      return live(e) ? json<DeviceMeta>(e) : undefined
    })
  }

  async listDevices(): Promise<DeviceMeta[]> {
    return this.run('listDevices', async () => (await this.parsed<DeviceMeta>('device.*')).sort((a, b) => byteOrder(a.id, b.id)))
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.run('deleteDevice', async () => (await this.cas<DeviceMeta>(key('device', id), (d) => (d ? null : undefined))) === null)
  }

  async putDeviceCertificate(c: DeviceCertificateMeta): Promise<void> {
    const k = key('certificate', c.serial)
    const value = this.encode(k, pickCertificate(c))
    await this.run('putDeviceCertificate', () => this.kv.put(k, value))
  }

  async getDeviceCertificate(serial: string): Promise<DeviceCertificateMeta | undefined> {
    return this.run('getDeviceCertificate', async () => {
      const e = await this.kv.get(key('certificate', serial))
      return live(e) ? json<DeviceCertificateMeta>(e) : undefined
    })
  }

  async listDeviceCertificates(device?: string): Promise<DeviceCertificateMeta[]> {
    return this.run('listDeviceCertificates', async () => (await this.parsed<DeviceCertificateMeta>('certificate.*'))
      .filter((c) => device === undefined || c.device === device)
      .sort((a, b) => byteOrder(a.serial, b.serial)))
  }

  async getSetting(k: string): Promise<string | undefined> {
    return this.run('getSetting', async () => {
      const e = await this.kv.get(key('setting', k))
      return live(e) ? e.string() : undefined
    })
  }

  async putSetting(k: string, value: string): Promise<void> {
    const kk = key('setting', k)
    const bytes = this.encode(kk, value)
    await this.run('putSetting', () => this.kv.put(kk, bytes))
  }

  // --- producer state

  /** Small states inline in the manifest; large ones in parts, switched to by a compare-and-set of the manifest. */
  async saveProducerState(streamId: string, state: string): Promise<void> {
    const bytes = Buffer.from(state, 'utf8')
    return this.run('saveProducerState', async () => {
      const k = key('producer', streamId)
      let manifest: ProducerManifest = { v: RECORD_VERSION, inline: state }
      if (Buffer.byteLength(JSON.stringify(manifest)) > this.partBytes) {
        const part = randomBytes(6).toString('hex')
        const parts = Math.ceil(bytes.length / this.partBytes)
        for (let i = 0; i < parts; i += 8) {
          await Promise.all(Array.from({ length: Math.min(8, parts - i) }, (_, j) =>
            this.kv.put(key('producer-part', streamId, part, String(i + j)), bytes.subarray((i + j) * this.partBytes, (i + j + 1) * this.partBytes))))
        }
        manifest = { v: RECORD_VERSION, part, parts, bytes: bytes.length }
      }
      let replaced: ProducerManifest | undefined
      await this.cas<ProducerManifest>(k, (current) => { replaced = current; return manifest })
      if (replaced && 'part' in replaced) await this.dropParts(streamId, replaced.part)
    })
  }

  async loadProducerState(streamId: string): Promise<string | undefined> {
    return this.run('loadProducerState', async () => {
      for (let race = 0; race < MAX_RACES; race++) {
        const e = await this.kv.get(key('producer', streamId))
        if (!live(e)) return undefined
        const manifest = json<ProducerManifest>(e)
        if ('inline' in manifest) return manifest.inline
        const parts = await Promise.all(Array.from({ length: manifest.parts }, (_, i) => this.kv.get(key('producer-part', streamId, manifest.part, String(i)))))
        // A part gone: a newer save replaced these meanwhile; read its manifest.
        if (!parts.every(live)) continue
        const whole = Buffer.concat(parts.map((p) => p.value))
        if (whole.length !== manifest.bytes) throw new StorageError(ErrorCode.STORAGE_FAILED, `producer state of ${streamId} is ${whole.length} bytes, its manifest says ${manifest.bytes}`)
        return whole.toString('utf8')
      }
      throw new StorageError(ErrorCode.STORAGE_FAILED, `producer state of ${streamId} kept changing while it was read`)
    })
  }

  private async dropParts(streamId: string, part: string): Promise<void> {
    const keys = await this.keysOf(`producer-part.${token(streamId)}.${token(part)}.*`)
    await Promise.all(keys.map((k) => this.kv.delete(k)))
  }

  private async dropProducerState(streamId: string): Promise<void> {
    await this.kv.delete(key('producer', streamId))
    const keys = await this.keysOf(`producer-part.${token(streamId)}.>`)
    await Promise.all(keys.map((k) => this.kv.delete(k)))
  }

  // --- tags, checkpoints

  async getTags(resource: string): Promise<Record<string, string>> {
    return this.run('getTags', async () => {
      const e = await this.kv.get(key('tags', resource))
      const tags = live(e) ? json<Record<string, string>>(e) : {}
      return Object.fromEntries(Object.entries(tags).sort(([a], [b]) => byteOrder(a, b)))
    })
  }

  async putTags(resource: string, tags: Record<string, string>): Promise<void> {
    const entries = Object.entries(tags)
    if (!entries.length) return this.run('putTags', async () => undefined)
    await this.run('putTags', () => this.cas<Record<string, string>>(key('tags', resource), (stored) => ({ ...stored, ...Object.fromEntries(entries) })))
  }

  async removeTags(resource: string, keys: string[]): Promise<void> {
    await this.run('removeTags', () => this.cas<Record<string, string>>(key('tags', resource), (stored) => {
      if (!stored || !keys.some((k) => Object.hasOwn(stored, k))) return undefined
      const next = Object.fromEntries(Object.entries(stored).filter(([k]) => !keys.includes(k)))
      return Object.keys(next).length ? next : null
    }))
  }

  async putCheckpoint(cp: CheckpointMeta, expected?: string | null): Promise<void> {
    const value = pickCheckpoint(cp)
    await this.run('putCheckpoint', () => this.cas<CheckpointMeta>(key('checkpoint', cp.streamId, cp.consumer, cp.shardId), (stored) => {
      if (expected !== undefined && (stored?.sequenceNumber ?? null) !== expected) {
        throw conflict(`checkpoint of ${cp.consumer} on ${cp.shardId} is ${stored?.sequenceNumber ?? 'unset'}, not ${expected ?? 'unset'}`)
      }
      return value
    }))
  }

  async listCheckpoints(streamId: string, consumer?: string): Promise<CheckpointMeta[]> {
    const key = consumer === undefined ? `checkpoint.${token(streamId)}.*.*` : `checkpoint.${token(streamId)}.${token(consumer)}.*`
    return this.run('listCheckpoints', async () => (await this.parsed<CheckpointMeta>(key))
      .sort((a, b) => byteOrder(a.consumer, b.consumer) || byteOrder(a.shardId, b.shardId)))
  }

  async deleteCheckpoints(streamId: string, consumer: string): Promise<number> {
    return this.run('deleteCheckpoints', async () => {
      const keys = await this.keysOf(`checkpoint.${token(streamId)}.${token(consumer)}.*`)
      const deleted = await Promise.all(keys.map((k) => this.cas<CheckpointMeta>(k, (c) => (c ? null : undefined))))
      return deleted.filter((d) => d === null).length
    })
  }

  // --- consumers

  /** Claims the ARN (CONFLICT when another consumer holds it), then writes the consumer, then releases its old ARN. */
  async putConsumer(c: ConsumerMeta): Promise<void> {
    const consumer = pickConsumer(c)
    return this.run('putConsumer', async () => {
      await this.claimArn(consumer)
      let previous: ConsumerMeta | undefined
      await this.cas<ConsumerMeta>(key('consumer', c.streamId, c.name), (stored) => { previous = stored; return consumer })
      if (previous && previous.arn !== consumer.arn) await this.releaseArn(previous)
    })
  }

  /**
   * A claim held by another consumer is taken over only when that consumer no longer has the ARN
   * (it was deleted, or registered again under another ARN, and a crash kept its claim). A register
   * between its claim and its write could lose the claim so to a register of another consumer with
   * the same ARN; ARNs hold the consumer's stream and name, so only a caller reusing another
   * consumer's ARN at that moment could meet it.
   */
  private async claimArn(c: ConsumerMeta): Promise<void> {
    const k = key('consumer-arn', c.arn)
    for (let race = 0; race < MAX_RACES; race++) {
      const e = await this.kv.get(k)
      if (live(e)) {
        const holder = json<{ streamId: string; name: string }>(e)
        if (holder.streamId === c.streamId && holder.name === c.name) return
        const theirs = await this.kv.get(key('consumer', holder.streamId, holder.name))
        if (live(theirs) && json<ConsumerMeta>(theirs).arn === c.arn) throw conflict(`consumer ARN ${c.arn} is taken`)
      }
      if ((await this.write(k, { streamId: c.streamId, name: c.name }, e?.revision ?? 0)) !== false) return
    }
    throw new StorageError(ErrorCode.STORAGE_FAILED, `${k} kept changing: gave up after ${MAX_RACES} lost races`)
  }

  private async releaseArn(c: ConsumerMeta): Promise<void> {
    await this.cas<{ streamId: string; name: string }>(key('consumer-arn', c.arn), (held) =>
      (held && held.streamId === c.streamId && held.name === c.name ? null : undefined))
  }

  private async dropConsumer(c: ConsumerMeta, revision: number): Promise<boolean> {
    if (!(await this.remove(key('consumer', c.streamId, c.name), revision))) return false
    await this.releaseArn(c)
    return true
  }

  async listConsumers(streamId?: string): Promise<ConsumerMeta[]> {
    return this.run('listConsumers', async () => (await this.parsed<ConsumerMeta>(streamId === undefined ? 'consumer.>' : `consumer.${token(streamId)}.*`))
      .sort((a, b) => byteOrder(a.streamId, b.streamId) || a.createdMs - b.createdMs || byteOrder(a.name, b.name)))
  }

  async deleteConsumer(streamId: string, name: string): Promise<boolean> {
    return this.run('deleteConsumer', async () => {
      for (let race = 0; race < MAX_RACES; race++) {
        const e = await this.kv.get(key('consumer', streamId, name))
        if (!live(e)) return false
        if (await this.dropConsumer(json<ConsumerMeta>(e), e.revision)) return true
      }
      throw new StorageError(ErrorCode.STORAGE_FAILED, `consumer ${name} of ${streamId} kept changing: gave up after ${MAX_RACES} lost races`)
    })
  }

  // --- resource policies

  async putResourcePolicy(arn: string, policy: string): Promise<void> {
    const k = key('policy', arn)
    const bytes = this.encode(k, policy)
    await this.run('putResourcePolicy', () => this.kv.put(k, bytes))
  }

  async getResourcePolicy(arn: string): Promise<string | undefined> {
    return this.run('getResourcePolicy', async () => {
      const e = await this.kv.get(key('policy', arn))
      return live(e) ? e.string() : undefined
    })
  }

  async deleteResourcePolicy(arn: string): Promise<boolean> {
    return this.run('deleteResourcePolicy', async () => {
      for (let race = 0; race < MAX_RACES; race++) {
        const e = await this.kv.get(key('policy', arn))
        if (!live(e)) return false
        if (await this.remove(key('policy', arn), e.revision)) return true
      }
      throw new StorageError(ErrorCode.STORAGE_FAILED, `policy of ${arn} kept changing: gave up after ${MAX_RACES} lost races`)
    })
  }

  /** Stops the stream watch; the connection is the caller's. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.listeners.clear()
    this.consumerListeners.clear()
    this.watcher.stop()
    this.consumerUpdates?.stop()
  }
}
