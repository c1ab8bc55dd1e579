/**
 * The relay as one of several on NATS JetStream (`--cluster nats://a,nats://b,nats://c`): shard logs
 * and metadata are kept in JetStream (relay/log/jetstream.ts, relay/meta/jetstream.ts) instead of
 * segment files and SQLite, every relay reads every stream, and each stream is written by the one
 * relay holding its lease, to which the others forward writes (leases.ts, forward.ts). A change of a
 * stream made on one relay reaches the others through the metadata store's watch.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { ErrorCode, StorageError } from '../../shared/errors.js'
import type { Consumers } from '../consumers.js'
import type { Ingest, WritePlacement } from '../ingest.js'
import type { StreamSettingsRegistry } from '../settings.js'
import { JetStreamLogStore } from '../log/jetstream.js'
import type { LogStore } from '../log/types.js'
import { JetStreamMetadataStore } from '../meta/jetstream.js'
import type { Streams } from '../streams.js'
import { Forwarder } from './forward.js'
import { StreamLeases } from './leases.js'

export interface ClusterOptions {
  /** NATS server URLs, comma-separated. */
  servers: string
  name: string
  replicas: number
  groupCommitMs: number
  maxStreamBytes: number
  now: () => number
  onCommit?: (records: number, ms: number) => void
  log: (event: string, fields: Record<string, unknown>) => void
  /** How long a dead relay keeps its streams (default 6 s). */
  leaseMs?: number
}

export interface Cluster {
  relayId: string
  nc: NatsConnection
  meta: JetStreamMetadataStore
  logs: LogStore
  placement: WritePlacement
  /** Starts serving forwarded writes and following other relays' changes of streams. */
  attach(parts: { streams: Streams; ingest: Ingest; consumers: Consumers; settings: StreamSettingsRegistry }): void
  close(): Promise<void>
}

export async function openCluster(options: ClusterOptions): Promise<Cluster> {
  const relayId = `${hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`
  const servers = options.servers.split(',').map((s) => s.trim())
  let nc: NatsConnection
  try {
    nc = await connect({ servers, name: `tributary-relay ${relayId}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 })
  } catch (err) {
    throw new StorageError(ErrorCode.STORAGE_FAILED, `cannot reach the cluster's NATS servers (${options.servers}): ${(err as Error).message}`)
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') options.log(`cluster_${s.type}`, { server: (s as { server?: string }).server ?? '' })
    }
  })()
  const leaseMs = options.leaseMs ?? 6000
  const replicas = options.replicas
  const meta = await JetStreamMetadataStore.open({ nc, cluster: options.name, replicas })
  // Reads from the leader only (allow_direct off): a lagging replica would name an owner that has gone.
  const kv = await new Kvm(nc).create(`${options.name}-leases`, { replicas, history: 1, ttl: leaseMs, allow_direct: false })
  const logs = new JetStreamLogStore({
    nc, cluster: options.name, replicas: replicas as 1 | 3,
    groupCommitMs: options.groupCommitMs, maxStreamBytes: options.maxStreamBytes, now: options.now, onCommit: options.onCommit,
  })
  let streams: Streams | null = null
  const leases = new StreamLeases({
    kv, relayId, leaseMs,
    onLost: (streamId) => {
      const state = streams?.getById(streamId)
      options.log('cluster_lease_lost', { stream: state?.meta.name ?? streamId })
      for (const shard of state?.shards ?? []) shard.log.forget?.()
    },
  })
  let forwarder: Forwarder | null = null
  let unwatch: (() => void) | null = null
  const placement: WritePlacement = {
    remote: (state) => {
      if (!forwarder) throw new StorageError(ErrorCode.STORAGE_FAILED, 'the relay is not attached to its cluster yet')
      return forwarder.remote(state)
    },
  }
  return {
    relayId, nc, meta, logs, placement,
    attach({ streams: s, ingest, consumers, settings }) {
      streams = s
      s.shared = true
      s.writes = (streamId) => leases.holds(streamId)
      forwarder = new Forwarder({ nc, cluster: options.name, relayId, leases, streams: s, leaseMs })
      forwarder.serve(ingest)
      const stopStreams = meta.watchStreams((name) => {
        // Then its settings: a relay that writes the stream must know at once that it is now encrypted.
        s.sync(name).then(async () => {
          const state = s.get(name)
          if (state) await settings.refresh(state.meta.id)
        }).catch((err: Error) => options.log('cluster_sync_error', { stream: name, error: err.message }))
      })
      const stopConsumers = meta.watchConsumers((streamId) => {
        consumers.refresh(streamId).catch((err: Error) => options.log('cluster_sync_error', { stream: streamId, error: err.message }))
      })
      unwatch = () => { stopStreams(); stopConsumers() }
    },
    async close() {
      unwatch?.()
      forwarder?.close()
      await leases.close()
      await nc.drain().catch(() => {})
    },
  }
}
