/**
 * What the console's streams and delivery pages show, built when a page asks (a tab open on it asks
 * once per ten-second step), never on the ingest path: each data stream's shards, its incoming rates
 * from the relay's ring, and its readers with how far behind they are; each delivery stream's
 * freshness, backlog and failures.
 */
import type { Consumers } from '../consumers.js'
import { checkpointConsumer } from '../delivery/runner.js'
import type { DeliveryStreamDescription } from '../delivery/types.js'
import type { Fanout } from '../fanout.js'
import type { MetadataStore } from '../meta/types.js'
import { decodeSequence } from '../sequence.js'
import type { StreamRates } from '../stream-rates.js'
import type { ShardState, StreamState } from '../streams.js'
import type { ConsumerView, DeliveryView, StreamView } from './views.js'

const SPACE = 2 ** 128
/**
 * A reader's age behind (ms) costs one read of a record per shard it follows; past this many shards
 * in a stream only its records behind are counted.
 */
export const MAX_AGE_LOOKUPS = 64

export interface OverviewSources {
  streams: () => readonly StreamState[]
  rates: StreamRates
  encrypted: (streamId: string) => boolean
  consumers: Consumers
  fanout: Fanout
  meta: MetadataStore
  /** The delivery streams' names (their checkpoints are a reader of their source like any other). */
  deliveries: () => DeliveryStreamDescription[]
  /** The relay's wall clock (ms). */
  now: () => number
}

/** What the console shows of each data stream, by name. */
export async function streamViews(o: OverviewSources): Promise<StreamView[]> {
  const list = [...o.streams()].sort((a, b) => a.meta.name.localeCompare(b.meta.name))
  const deliveries = new Set(o.deliveries().map((d) => checkpointConsumer(d.config.name)))
  return Promise.all(list.map(async (s) => ({
    name: s.meta.name,
    status: s.meta.status,
    mode: s.meta.mode,
    retentionHours: s.meta.retentionHours,
    encrypted: o.encrypted(s.meta.id),
    shards: s.shards.map((sh) => ({
      shardId: sh.meta.shardId,
      from: Number(sh.start) / SPACE,
      to: (Number(sh.end) + 1) / SPACE,
      open: sh.meta.endOffset === null,
      parent: sh.meta.parentShardId,
      adjacentParent: sh.meta.adjacentParentShardId,
      records: sh.log.endOffset(),
    })),
    incoming: o.rates.of(s.meta.name),
    consumers: await readersOf(s, deliveries, o),
  })))
}

/** The stream's enhanced fan-out consumers and its checkpointing readers, each with its lag. */
async function readersOf(s: StreamState, deliveries: Set<string>, o: OverviewSources): Promise<ConsumerView[]> {
  const now = o.now()
  const lookAges = s.shards.length <= MAX_AGE_LOOKUPS
  const byId = new Map(s.shards.map((sh) => [sh.meta.shardId, sh]))
  const out: ConsumerView[] = []
  for (const c of o.consumers.list(s.meta.id)) {
    // A subscription's position is the next offset it reads.
    const positions = o.fanout.positions(c.arn).flatMap((p) => {
      const shard = byId.get(p.shardId)
      return shard ? [{ shard, next: p.offset }] : []
    })
    out.push({ name: c.name, kind: 'fan-out', status: c.status, shardsFollowed: positions.length, ...(await lag(positions, lookAges, now)), updatedMs: null })
  }
  const checkpoints = await o.meta.listCheckpoints(s.meta.id)
  for (let i = 0; i < checkpoints.length;) {
    const consumer = checkpoints[i]!.consumer
    const positions: { shard: ShardState; next: number }[] = []
    let updatedMs = 0
    for (; i < checkpoints.length && checkpoints[i]!.consumer === consumer; i++) {
      const cp = checkpoints[i]!
      updatedMs = Math.max(updatedMs, cp.updatedMs)
      const shard = byId.get(cp.shardId)
      if (!shard) continue
      // SHARD_END: the shard was read to its end.
      const seq = decodeSequence(cp.sequenceNumber)
      positions.push({ shard, next: seq ? seq.offset + 1 : shard.log.endOffset() })
    }
    const delivery = deliveries.has(consumer)
    out.push({
      name: delivery ? consumer.slice(checkpointConsumer('').length) : consumer, kind: delivery ? 'delivery' : 'checkpoints', status: 'ACTIVE',
      shardsFollowed: positions.length, ...(await lag(positions, lookAges, now)), updatedMs,
    })
  }
  return out
}

/** Records stored after each position, summed, and the age of the oldest of them (one read per shard behind). */
async function lag(positions: { shard: ShardState; next: number }[], lookAges: boolean, now: number): Promise<{ behindRecords: number; behindMs: number | null }> {
  let behindRecords = 0
  let oldest: number | null = null
  for (const { shard, next } of positions) {
    const from = Math.max(next, shard.log.startOffset())
    const behind = shard.log.endOffset() - from
    if (behind <= 0) continue
    behindRecords += behind
    if (!lookAges) continue
    try {
      const first = (await shard.log.read(from, 1, 1024 * 1024)).records[0]
      if (first && (oldest === null || first.arrivalMs < oldest)) oldest = first.arrivalMs
    } catch {
      // A shard expired or deleted under the look: its records behind are counted, its age is not.
    }
  }
  return { behindRecords, behindMs: !lookAges ? null : oldest === null ? 0 : Math.max(0, now - oldest) }
}

/** What the console shows of each delivery stream. */
export function deliveryViews(list: DeliveryStreamDescription[]): DeliveryView[] {
  return list.map((d) => ({
    name: d.config.name,
    status: d.status,
    source: d.config.source.type === 'direct' ? 'direct put' : d.config.source.stream,
    destination: destinationOf(d),
    recordsDelivered: d.stats.recordsDelivered,
    bytesDelivered: d.stats.bytesDelivered,
    backlogRecords: d.stats.backlogRecords,
    freshnessSeconds: d.stats.freshnessSeconds,
    lastDeliveryMs: d.stats.lastDeliveryMs,
    failuresByCode: d.stats.failuresByCode,
    recordsFailed: d.stats.recordsFailed,
    lastError: d.stats.lastError,
  }))
}

/** Where it delivers, without what may be secret (a connection string's password, a URL's query or user). */
function destinationOf(d: DeliveryStreamDescription): string {
  const sink = d.config.sink
  const origin = (url: string) => {
    try {
      return new URL(url).origin
    } catch {
      return '(an invalid URL)'
    }
  }
  switch (sink.type) {
    case 'files': return `files in ${sink.directory}`
    case 's3': return `s3://${sink.bucket}${sink.endpoint ? ` at ${origin(sink.endpoint)}` : ''}`
    case 'postgres': return `PostgreSQL table ${sink.table}`
    case 'http': return `HTTP endpoint ${sink.name ? `${sink.name} ` : ''}at ${origin(sink.url)}`
    case 'splunk': return `Splunk at ${origin(sink.url)}`
  }
}
