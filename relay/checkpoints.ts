/**
 * Server-side checkpoints (beyond Kinesis, where every consumer keeps its own DynamoDB lease table):
 * a consumer stores how far it has read each shard, and reads it back to resume.
 *
 *   GET /checkpoints/{stream}/{consumer}            → {"Checkpoints": [{"ShardId", "SequenceNumber", "UpdatedAt"}]}
 *   PUT /checkpoints/{stream}/{consumer}/{shardId}  ← {"SequenceNumber": "...", "ExpectedSequenceNumber"?: "..." | null}
 *
 * `SequenceNumber` is a record's sequence number in that shard, or `SHARD_END` once a closed shard
 * has been read to its end (as KCL records it). With `ExpectedSequenceNumber` the write happens only
 * if the stored checkpoint is that one (null: none yet), so two workers cannot both own a shard.
 * Requests are signed with SigV4 (service `kinesis`) when the relay has access keys, like the API.
 */
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { decodeSequence } from './sequence.js'
import type { MetadataStore } from './meta/types.js'
import type { Streams } from './streams.js'

export const SHARD_END = 'SHARD_END'
const CONSUMER_NAME = /^[a-zA-Z0-9_.-]{1,128}$/

export interface CheckpointJson { ShardId: string; SequenceNumber: string; UpdatedAt: number }

export class Checkpoints {
  constructor(private readonly meta: MetadataStore, private readonly streams: Streams, private readonly now: () => number = Date.now) {}

  private stream(name: string, consumer: string) {
    if (!CONSUMER_NAME.test(consumer)) throw new TributaryError(ErrorCode.REQUEST_INVALID, `consumer name ${JSON.stringify(consumer)} must be 1–128 characters of [a-zA-Z0-9_.-]`)
    const state = this.streams.get(name)
    if (!state || state.meta.status === 'DELETING') throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${name} not found`)
    return state
  }

  async list(streamName: string, consumer: string): Promise<CheckpointJson[]> {
    const state = this.stream(streamName, consumer)
    return (await this.meta.listCheckpoints(state.meta.id, consumer)).map((c) => ({ ShardId: c.shardId, SequenceNumber: c.sequenceNumber, UpdatedAt: c.updatedMs / 1000 }))
  }

  async put(streamName: string, consumer: string, shardId: string, sequenceNumber: unknown, expected?: unknown): Promise<void> {
    const state = this.stream(streamName, consumer)
    const shard = state.shards.find((s) => s.meta.shardId === shardId)
    if (!shard) throw new TributaryError(ErrorCode.NOT_FOUND, `shard ${shardId} not found in stream ${streamName}`)
    if (typeof sequenceNumber !== 'string') throw new TributaryError(ErrorCode.REQUEST_INVALID, 'body must be {"SequenceNumber": "<sequence number or SHARD_END>"}')
    if (expected !== undefined && expected !== null && typeof expected !== 'string') throw new TributaryError(ErrorCode.REQUEST_INVALID, 'ExpectedSequenceNumber must be a string or null')
    if (sequenceNumber === SHARD_END) {
      if (shard.meta.endOffset === null) throw new TributaryError(ErrorCode.REQUEST_INVALID, `shard ${shardId} is open: it has no end to checkpoint`)
    } else {
      const seq = decodeSequence(sequenceNumber)
      if (!seq || seq.shardIndex !== shard.meta.index || seq.shardCreatedSec !== shard.createdSec) {
        throw new TributaryError(ErrorCode.REQUEST_INVALID, `${sequenceNumber} is not a sequence number of shard ${shardId} in stream ${streamName}`)
      }
      if (seq.offset >= shard.log.nextOffset()) throw new TributaryError(ErrorCode.REQUEST_INVALID, `${sequenceNumber} is past the last record of shard ${shardId}`)
    }
    await this.meta.putCheckpoint({ streamId: state.meta.id, consumer, shardId, sequenceNumber, updatedMs: this.now() }, expected as string | null | undefined)
  }

  /** The route: parses the path and body, answers JSON; errors as {code, message} with a fitting status. */
  async handle(method: string, path: string, body: Buffer): Promise<{ status: number; json: unknown }> {
    const m = /^\/checkpoints\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path)
    try {
      if (!m) throw new TributaryError(ErrorCode.NOT_FOUND, `no route ${path}; use /checkpoints/{stream}/{consumer}[/{shardId}]`)
      const decode = (part: string | undefined) => {
        if (part === undefined) return part
        try {
          return decodeURIComponent(part)
        } catch {
          throw new TributaryError(ErrorCode.REQUEST_INVALID, `the path part ${JSON.stringify(part)} is not valid percent-encoding`)
        }
      }
      const [stream, consumer, shard] = [m[1]!, m[2]!, m[3]].map(decode) as [string, string, string | undefined]
      if (method === 'GET' && shard === undefined) return { status: 200, json: { Checkpoints: await this.list(stream, consumer) } }
      if (method === 'PUT' && shard !== undefined) {
        let parsed: { SequenceNumber?: unknown; ExpectedSequenceNumber?: unknown }
        try {
          parsed = JSON.parse(body.toString('utf8') || '{}') as typeof parsed
        } catch (err) {
          throw new TributaryError(ErrorCode.REQUEST_INVALID, `body is not JSON: ${(err as Error).message}`)
        }
        if (parsed === null || typeof parsed !== 'object') throw new TributaryError(ErrorCode.REQUEST_INVALID, 'body must be a JSON object')
        await this.put(stream, consumer, shard, parsed.SequenceNumber, parsed.ExpectedSequenceNumber)
        return { status: 200, json: { ShardId: shard, SequenceNumber: parsed.SequenceNumber } }
      }
      return { status: 405, json: { code: ErrorCode.NOT_FOUND, message: `${method} ${path} is not a checkpoint operation (GET /checkpoints/{stream}/{consumer}, PUT …/{shardId})` } }
    } catch (err) {
      if (!(err instanceof TributaryError)) throw err
      const status = err.code === ErrorCode.CONFLICT ? 409 : err.code === ErrorCode.NOT_FOUND || err.code === ErrorCode.STREAM_NOT_FOUND ? 404 : 400
      return { status, json: { code: err.code, message: err.message } }
    }
  }
}
