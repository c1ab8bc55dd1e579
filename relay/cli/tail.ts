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
  /** Resume from this consumer's server-side checkpoints and keep them as records are printed. */
  consumer?: string
  onRecord: (record: TailRecord) => void
  signal: AbortSignal
  pollMs?: number
}

interface ShardJson { ShardId: string; ParentShardId?: string; AdjacentParentShardId?: string }
interface RecordJson { SequenceNumber: string; PartitionKey: string; ApproximateArrivalTimestamp: number; Data: string }
interface ChildJson { ShardId: string; ParentShards: string[] }

const SHARD_END = 'SHARD_END'

/** Waits `ms` or until aborted; the abort listener goes when the wait ends, so polls do not pile them up. */
const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
  const t = setTimeout(done, ms)
  signal.addEventListener('abort', done, { once: true })
})

/**
 * Follows every shard, parents before children (as KCL does): a closed shard is read to its end, then
 * each child starts once all its parents are done. With a consumer, a shard resumes after its
 * checkpoint, a shard checkpointed at SHARD_END is skipped, and each page read is checkpointed.
 */
export async function tail(client: KinesisClient, o: TailOptions): Promise<void> {
  const { Shards } = await client.call<{ Shards: ShardJson[] }>('ListShards', { StreamName: o.stream })
  const known = new Map(Shards.map((s) => [s.ShardId, s]))
  const checkpoints = new Map<string, string>()
  if (o.consumer) {
    const path = `/checkpoints/${encodeURIComponent(o.stream)}/${encodeURIComponent(o.consumer)}`
    const { status, json } = await client.request<{ Checkpoints?: { ShardId: string; SequenceNumber: string }[]; code?: string; message?: string }>('GET', path)
    if (status !== 200) throw new KinesisError('ResourceNotFoundException', `checkpoints of ${o.consumer}: ${json.code ?? status}: ${json.message ?? ''}`)
    for (const c of json.Checkpoints ?? []) checkpoints.set(c.ShardId, c.SequenceNumber)
  }
  const finished = new Set<string>()
  const started = new Set<string>()
  const running: Promise<void>[] = []
  const parentsOf = (s: { ParentShardId?: string; AdjacentParentShardId?: string }) => [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p)
  const start = (shardId: string, parents: string[]) => {
    if (started.has(shardId) || finished.has(shardId) || !parents.every((p) => finished.has(p) || !known.has(p))) return
    started.add(shardId)
    running.push(followShard(client, shardId, o, checkpoints.get(shardId), (children) => {
      finished.add(shardId)
      for (const c of children) start(c.ShardId, c.ParentShards)
    }))
  }
  for (const s of Shards) if (checkpoints.get(s.ShardId) === SHARD_END) finished.add(s.ShardId)
  // LATEST (with nothing to resume) starts at the open shards; otherwise every shard starts once its parents are done.
  const latest = o.from === 'LATEST' && !checkpoints.size
  for (const s of Shards) {
    if (finished.has(s.ShardId)) continue
    if (!latest) start(s.ShardId, parentsOf(s))
    else if (!Shards.some((c) => parentsOf(c).includes(s.ShardId))) start(s.ShardId, [])
  }
  for (let i = 0; i < running.length; i++) await running[i]
}

async function followShard(client: KinesisClient, shardId: string, o: TailOptions, checkpoint: string | undefined, onEnd: (children: ChildJson[]) => void): Promise<void> {
  const start = o.from instanceof Date
    ? { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: o.from.getTime() / 1000 }
    : { ShardIteratorType: o.from }
  let lastSeq: string | null = checkpoint ?? null
  const fresh = async () => {
    const req = lastSeq ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: lastSeq } : start
    return (await client.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: o.stream, ShardId: shardId, ...req })).ShardIterator
  }
  const save = async (sequenceNumber: string) => {
    if (!o.consumer) return
    const path = `/checkpoints/${encodeURIComponent(o.stream)}/${encodeURIComponent(o.consumer)}/${encodeURIComponent(shardId)}`
    const { status, json } = await client.request<{ code?: string; message?: string }>('PUT', path, { SequenceNumber: sequenceNumber })
    if (status !== 200) throw new KinesisError('InvalidArgumentException', `checkpoint of ${shardId}: ${json.code ?? status}: ${json.message ?? ''}`)
  }
  let iterator: string | null = await fresh()
  while (!o.signal.aborted && iterator) {
    let page: { Records: RecordJson[]; NextShardIterator?: string; MillisBehindLatest: number; ChildShards?: ChildJson[] }
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
    if (page.Records.length) await save(lastSeq!)
    iterator = page.NextShardIterator ?? null
    if (!iterator) {
      await save(SHARD_END)
      onEnd(page.ChildShards ?? [])
    } else if (page.Records.length === 0) await sleep(o.pollMs ?? 250, o.signal)
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
