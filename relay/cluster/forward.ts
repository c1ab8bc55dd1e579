/**
 * Writes reach a stream's owner (leases.ts) from any relay: a relay that does not hold a stream's
 * lease sends the device batch or the PutRecords records to the owner as a NATS request
 * (`<cluster>.relay.<id>.ingest`), and answers its client with the owner's answer. The owner runs
 * the same Ingest a local write does, so a forwarded write is acknowledged only once JetStream has
 * acknowledged it. A stream without an owner is taken by the first relay that writes it; when its
 * owner dies, writes wait (up to two leases) until the lease has aged out and another relay takes it.
 */
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { BatchOutcome, IngestRecord, RemoteWriter, StoredRecord, WritePlacement } from '../ingest.js'
import type { Ingest } from '../ingest.js'
import type { Streams, StreamState } from '../streams.js'
import type { StreamLeases } from './leases.js'

export interface ForwardOptions {
  nc: NatsConnection
  cluster: string
  relayId: string
  leases: StreamLeases
  streams: Streams
  leaseMs: number
  /** Longest wait for an owner's answer. */
  timeoutMs?: number
}

/** The owner could not be reached or no longer holds the stream: ask again who does. */
class OwnerGone extends Error {}
const gone = async <T>(call: Promise<T>): Promise<T | null> => {
  try {
    return await call
  } catch (err) {
    if (err instanceof OwnerGone) return null
    throw err
  }
}

interface WireRecord { k: string; d: string; h?: string; t: number; c: boolean }
type Reply = { outcome: BatchOutcome } | { stored: [string, number, number][] } | { error: { name: string; code: string; message: string } }

const subjectOf = (cluster: string, relayId: string) => `${cluster}.relay.${relayId}.ingest`
const NOT_OWNER = 'NOT_OWNER'

export class Forwarder implements WritePlacement {
  private readonly o: ForwardOptions
  private readonly timeoutMs: number
  private subscription: Subscription | null = null
  /** Takeovers under way, by stream id: writes wait for the producer table to be rebuilt. */
  private readonly taking = new Map<string, Promise<void>>()
  /** Since when a stream's owner has been gone (no answer, or no longer the owner), by stream id. */
  private readonly goneSince = new Map<string, number>()

  constructor(options: ForwardOptions) {
    this.o = options
    this.timeoutMs = options.timeoutMs ?? 30_000
  }

  /** Answers other relays' forwarded writes with `ingest`. */
  serve(ingest: Ingest): void {
    this.subscription = this.o.nc.subscribe(subjectOf(this.o.cluster, this.o.relayId), {
      callback: (err, msg) => { if (!err) void this.answer(ingest, msg) },
    })
  }

  private async answer(ingest: Ingest, msg: Msg): Promise<void> {
    let reply: Reply
    try {
      const kind = msg.headers?.get('kind')
      const streamName = msg.headers?.get('stream') ?? ''
      const state = this.o.streams.get(streamName) ?? (await this.o.streams.sync(streamName), this.o.streams.get(streamName))
      if (!state) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${streamName} not found`)
      if (!this.o.leases.holds(state.meta.id)) throw new TributaryError(NOT_OWNER as ErrorCode, `relay ${this.o.relayId} does not write ${streamName}`)
      await this.taking.get(state.meta.id)
      if (kind === 'batch') {
        reply = { outcome: await ingest.ingestBatch(msg.headers!.get('device'), streamName, Buffer.from(msg.data), { local: true }) }
      } else {
        const wire = JSON.parse(Buffer.from(msg.data).toString()) as WireRecord[]
        const records: IngestRecord[] = wire.map((r) => ({
          partitionKey: r.k, data: Buffer.from(r.d, 'base64'), producerTimeMs: r.t, clockSynced: r.c,
          ...(r.h !== undefined ? { explicitHashKey: BigInt(r.h) } : {}),
        }))
        const stored = await ingest.putRecords(state, records, undefined, { local: true })
        reply = { stored: stored.map((s) => [s.shard.meta.shardId, s.offset, s.arrivalMs]) }
      }
    } catch (err) {
      const e = err as TributaryError
      reply = { error: { name: e instanceof StorageError ? 'StorageError' : 'TributaryError', code: e.code ?? ErrorCode.STORAGE_FAILED, message: e.message } }
    }
    msg.respond(JSON.stringify(reply))
  }

  /** Null when this relay writes the stream (taking its lease if no relay holds it); else the owner's writer. */
  async remote(state: StreamState): Promise<RemoteWriter | null> {
    const id = state.meta.id
    const since = this.goneSince.get(id)
    if (since !== undefined && Date.now() - since > 2 * this.o.leaseMs) {
      this.goneSince.delete(id)
      throw new StorageError(ErrorCode.STORAGE_FAILED, `no relay can write stream ${state.meta.name} now: its owner has not answered for ${2 * this.o.leaseMs} ms and its lease has not expired`)
    }
    const deadline = Date.now() + 2 * this.o.leaseMs + this.timeoutMs
    for (;;) {
      if (this.o.leases.holds(id)) {
        await this.taking.get(id)
        return null
      }
      // Ours, but not confirmed: no other relay may write it yet, and neither may this one. Refused
      // at once (retryable), not held until a deadline, so clients back off and try again.
      if (this.o.leases.unconfirmed(id)) {
        throw new StorageError(ErrorCode.LOG_UNAVAILABLE, `relay ${this.o.relayId} writes stream ${state.meta.name} but cannot confirm its lease now (the cluster's majority is unreachable); try again`)
      }
      const owner = await this.o.leases.ownerOf(id).catch(() => undefined)
      if (owner === null || owner === this.o.relayId) {
        if (await this.o.leases.acquire(id)) {
          // Offsets and the producer table are taken from the cluster before this relay writes; until
          // that has worked (the cluster may be unreachable just now) the table is not trusted.
          state.producersStale = true
          const taking = this.o.streams.takeOver(state.meta.name)
          this.taking.set(id, taking)
          try {
            await taking
          } finally {
            this.taking.delete(id)
          }
          this.goneSince.delete(id)
          return null
        }
      } else if (owner !== undefined) {
        return this.writerTo(owner, state)
      }
      if (Date.now() > deadline) throw new StorageError(ErrorCode.STORAGE_FAILED, `no relay can write stream ${state.meta.name} now (its owner is unreachable and its lease has not expired)`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Notes since when the stream's owner has been gone (the first time only), for the caller to throw. */
  private gone(state: StreamState, why: string): OwnerGone {
    if (!this.goneSince.has(state.meta.id)) this.goneSince.set(state.meta.id, Date.now())
    return new OwnerGone(why)
  }

  private writerTo(owner: string, state: StreamState): RemoteWriter {
    const send = async (h: Record<string, string>, body: Uint8Array): Promise<Reply> => {
      const hdrs = natsHeaders()
      for (const [k, v] of Object.entries(h)) hdrs.set(k, v)
      let msg: Msg
      try {
        msg = await this.o.nc.request(subjectOf(this.o.cluster, owner), body, { timeout: this.timeoutMs, headers: hdrs })
      } catch (err) {
        const text = (err as Error).message
        if (/no responders|503/i.test(text) || (err as { code?: string }).code === '503') throw this.gone(state, text)
        throw new StorageError(ErrorCode.STORAGE_FAILED, `relay ${owner}, which writes stream ${state.meta.name}, did not answer: ${text}`)
      }
      const reply = JSON.parse(Buffer.from(msg.data).toString()) as Reply
      if ('error' in reply && reply.error.code === NOT_OWNER) throw this.gone(state, reply.error.message)
      this.goneSince.delete(state.meta.id)
      if ('error' in reply) {
        throw reply.error.name === 'StorageError'
          ? new StorageError(reply.error.code as ErrorCode, reply.error.message)
          : new TributaryError(reply.error.code as ErrorCode, reply.error.message)
      }
      return reply
    }
    return {
      ingestBatch: async (device, streamName, payload) => {
        const reply = await gone(send({ kind: 'batch', device, stream: streamName }, payload))
        return reply && (reply as { outcome: BatchOutcome }).outcome
      },
      putRecords: async (records) => {
        const wire: WireRecord[] = records.map((r) => ({
          k: r.partitionKey, d: Buffer.from(r.data).toString('base64'), t: r.producerTimeMs, c: r.clockSynced,
          ...(r.explicitHashKey !== undefined ? { h: r.explicitHashKey.toString() } : {}),
        }))
        const reply = await gone(send({ kind: 'put', stream: state.meta.name }, Buffer.from(JSON.stringify(wire))))
        if (!reply) return null
        const stored: StoredRecord[] = []
        for (const [shardId, offset, arrivalMs] of (reply as { stored: [string, number, number][] }).stored) {
          let shard = state.shards.find((s) => s.meta.shardId === shardId)
          if (!shard) {
            await this.o.streams.sync(state.meta.name) // a reshard on the owner this relay has not seen yet
            shard = (this.o.streams.get(state.meta.name) ?? state).shards.find((s) => s.meta.shardId === shardId)
          }
          if (!shard) throw new TributaryError(ErrorCode.STORAGE_FAILED, `the owner stored a record in shard ${shardId}, unknown here`)
          stored.push({ shard, offset, arrivalMs })
        }
        return stored
      },
    }
  }

  close(): void {
    this.subscription?.unsubscribe()
    this.subscription = null
  }
}
