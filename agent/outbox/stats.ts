/** The outbox's figures for the status endpoint, the metrics and the CLI. */
import type { DeadCount } from './dead-letters.js'
import type { DropCount } from './drops.js'
import type { LedgerState } from './ledger.js'
import type { Alarm } from './types.js'

export interface StreamStats {
  backlog: number
  bytes: number
  oldestAgeSeconds: number
  priority: number
}

export interface OutboxStats {
  epoch: string
  backlog: number
  streams: Record<string, StreamStats>
  drops: DropCount[]
  deadLetters: DeadCount[]
  inFlightBatches: number
  alarms: Alarm[]
  fileBytes: number
}

export interface StatsSources {
  epoch: bigint
  state: LedgerState
  /** The outbox clock now, and when a stream's oldest record was stored. */
  monoNow: number
  firstMono: (stream: string) => number | undefined
  priority: (stream: string) => number
  drops: DropCount[]
  deadLetters: DeadCount[]
  alarms: Alarm[]
  fileBytes: number
}

export function outboxStats(from: StatsSources): OutboxStats {
  const streams: Record<string, StreamStats> = {}
  for (const [name, s] of from.state.streams) {
    const oldest = from.firstMono(name)
    streams[name] = { backlog: s.count, bytes: s.bytes, oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (from.monoNow - oldest) / 1000), priority: from.priority(name) }
  }
  return {
    epoch: from.epoch.toString(),
    backlog: from.state.backlog(),
    streams,
    drops: from.drops,
    deadLetters: from.deadLetters,
    inFlightBatches: from.state.formed.size,
    alarms: from.alarms,
    fileBytes: from.fileBytes,
  }
}
