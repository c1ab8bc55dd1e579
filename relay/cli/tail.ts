/**
 * Follows a stream through the Kinesis API: every shard from TRIM_HORIZON, LATEST or a time,
 * printing records as a consumer sees them, until stopped.
 */
import type { KinesisClient } from '../kinesis/client.js'
import { KinesisError } from '../kinesis/errors.js'

export interface TailRecord {
  shardId: string
  sequenceNumber: string
  partitionKey: string
  arrival: Date
  data: Buffer
}

export interface TailOptions {
  stream: string
  from: 'TRIM_HORIZON' | 'LATEST' | Date
  /** Resume after these sequence numbers, per shard (server-side checkpoints arrive in a later issue). */
  onRecord: (record: TailRecord) => void
  signal: AbortSignal
  pollMs?: number
}

interface ShardJson { ShardId: string }
interface RecordJson { SequenceNumber: string; PartitionKey: string; ApproximateArrivalTimestamp: number; Data: string }

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms)
  signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
})

export async function tail(client: KinesisClient, o: TailOptions): Promise<void> {
  const { Shards } = await client.call<{ Shards: ShardJson[] }>('ListShards', { StreamName: o.stream })
  await Promise.all(Shards.map((shard) => followShard(client, shard.ShardId, o)))
}

async function followShard(client: KinesisClient, shardId: string, o: TailOptions): Promise<void> {
  const start = o.from instanceof Date
    ? { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: o.from.getTime() / 1000 }
    : { ShardIteratorType: o.from }
  let lastSeq: string | null = null
  const fresh = async () => {
    const req = lastSeq ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: lastSeq } : start
    return (await client.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: o.stream, ShardId: shardId, ...req })).ShardIterator
  }
  let iterator: string | null = await fresh()
  while (!o.signal.aborted && iterator) {
    let page: { Records: RecordJson[]; NextShardIterator?: string; MillisBehindLatest: number }
    try {
      page = await client.call('GetRecords', { ShardIterator: iterator, Limit: 10000 })
    } catch (err) {
      if (err instanceof KinesisError && err.type === 'ExpiredIteratorException') { iterator = await fresh(); continue }
      throw err
    }
    for (const r of page.Records) {
      lastSeq = r.SequenceNumber
      o.onRecord({ shardId, sequenceNumber: r.SequenceNumber, partitionKey: r.PartitionKey, arrival: new Date(r.ApproximateArrivalTimestamp * 1000), data: Buffer.from(r.Data, 'base64') })
    }
    iterator = page.NextShardIterator ?? null
    if (page.Records.length === 0) await sleep(o.pollMs ?? 250, o.signal)
  }
}

/** One line per record: time, shard, key, and the data as text when it is printable. */
export function formatPretty(r: TailRecord): string {
  const text = r.data.toString('utf8')
  const printable = !/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text)
  return `${r.arrival.toISOString()}  ${r.shardId.replace('shardId-', '#')}  ${r.partitionKey.padEnd(16)}  ${printable ? text : `<${r.data.length} bytes> ${r.data.subarray(0, 32).toString('hex')}`}`
}

export function formatJson(r: TailRecord): string {
  const text = r.data.toString('utf8')
  let data: unknown = r.data.toString('base64')
  try { data = JSON.parse(text) } catch { /* not JSON: base64 */ }
  return JSON.stringify({ shardId: r.shardId, sequenceNumber: r.sequenceNumber, partitionKey: r.partitionKey, arrival: r.arrival.toISOString(), data })
}
