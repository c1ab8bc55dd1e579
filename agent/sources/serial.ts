/**
 * A serial sensor: a link (hardware/serial: open, lock, health, reopen) feeding a parser; each
 * reading becomes a record with the configured partition key, committed to the outbox in the order
 * its bytes arrived. Framing errors are counted by code and logged at most once per code every 10 s
 * with how many there were; a lost link discards only the unfinished line (counted as PARTIAL).
 */
import { SerialLink, type SerialBinding, type LinkStats } from '../../hardware/index.js'
import { partitionKeyProblem } from '../../shared/limits.js'
import type { SerialSource } from '../config.js'
import type { Clock } from '../../hardware/index.js'
import type { OutboxInput } from '../outbox/index.js'
import type { LogFn } from '../log.js'
import { createParser, type FramingError, type Reading } from './parsers/index.js'

export interface SerialStats {
  path: string
  stream: string
  link: LinkStats
  readings: number
  /** Readings the outbox refused (its caps); the outbox counts them as drops too. */
  refused: number
  framingErrors: Partial<Record<FramingError, number>>
  /** Monotonic ms of the last reading stored, or null. */
  lastReadingMonoMs: number | null
}

export interface SerialSensor {
  name: string
  stats: SerialStats
  link: SerialLink
  stop(): Promise<void>
}

export interface SerialDeps {
  binding: SerialBinding
  clock: Clock
  store: (rows: OutboxInput[]) => Promise<unknown>
  log: LogFn
  /** Called for every framing error and loss, for metrics. */
  onFramingError?: (code: FramingError) => void
  onLoss?: (reason: string) => void
}

const LOG_EVERY_MS = 10_000

export function startSerial(config: SerialSource, deps: SerialDeps): SerialSensor {
  const { clock, log } = deps
  const source = config.name
  const link = new SerialLink(config, deps.binding, () => clock.monoMs())
  const stats: SerialStats = { path: config.path, stream: config.stream, link: link.stats, readings: 0, refused: 0, framingErrors: {}, lastReadingMonoMs: null }

  const keyOf = (r: Reading): string => {
    if (!config.partitionKeyField || !r.fields) return config.partitionKey
    const v = r.fields[config.partitionKeyField]
    const key = typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : null
    return key !== null && !partitionKeyProblem(key) ? key : config.partitionKey
  }

  // Framing errors: counted always, logged once per code per interval.
  const lastLogged = new Map<string, { at: number; suppressed: number }>()
  const framingError = (code: FramingError, detail: string) => {
    stats.framingErrors[code] = (stats.framingErrors[code] ?? 0) + 1
    deps.onFramingError?.(code)
    const now = clock.monoMs()
    const seen = lastLogged.get(code)
    if (seen && now - seen.at < LOG_EVERY_MS) { seen.suppressed++; return }
    log('serial_framing_error', { source, code, detail, ...(seen?.suppressed ? { since_last_log: seen.suppressed } : {}) })
    lastLogged.set(code, { at: now, suppressed: 0 })
  }

  let batch: OutboxInput[] = []
  const parser = createParser(config.parser, {
    reading: (r) => {
      batch.push({ stream: config.stream, partitionKey: keyOf(r), data: r.data, capturedMs: clock.wallMs(), clockSynced: clock.synced() })
    },
    error: framingError,
  })

  let refusedLoggedAt = -Infinity
  link.on('data', (chunk: Buffer) => {
    parser.push(chunk)
    if (!batch.length) return
    const rows = batch
    batch = []
    stats.readings += rows.length
    stats.lastReadingMonoMs = clock.monoMs()
    deps.store(rows).catch((err: Error) => {
      stats.refused += rows.length
      if (clock.monoMs() - refusedLoggedAt > LOG_EVERY_MS) {
        refusedLoggedAt = clock.monoMs()
        log('serial_store_failed', { source, records: rows.length, error: err.message, code: (err as { code?: string }).code })
      }
    })
  })
  link.on('open', (realPath: string) => log('serial_open', { source, path: config.path, device: realPath, baud: config.baudRate, opens: link.stats.opens }))
  link.on('lost', (reason: string, detail: string) => {
    parser.reset()
    deps.onLoss?.(reason)
    log('serial_lost', { source, path: config.path, reason, detail })
  })
  let lastOpenError = ''
  link.on('openFailed', (err: { code: string; message: string }) => {
    // Retries repeat the same failure: say it when it changes.
    if (err.code === lastOpenError) return
    lastOpenError = err.code
    log('serial_open_failed', { source, path: config.path, code: err.code, error: err.message })
  })
  link.on('open', () => { lastOpenError = '' })
  link.start()

  return {
    name: source,
    stats,
    link,
    stop: async () => {
      await link.close()
      parser.reset()
    },
  }
}
