/**
 * The agent's log: pino, one JSON line per event on stdout (journald records it under the unit),
 * `{"level":"info","time":"…","event":"serial_open","source":"gps",…}`. Secrets never reach it:
 * fields that hold them are censored wherever they appear, and so are credentials inside URLs.
 * Under journald (JOURNAL_STREAM set) each line starts with its syslog priority (`<4>` for a
 * warning, as sd-daemon(3) describes), which journald strips and files, so `journalctl -p warning`
 * works.
 */
import pino from 'pino'

export type LogFn = (event: string, fields?: Record<string, unknown>) => void

/** Field names whose values are never written. */
export const SECRET_FIELDS = ['password', 'passwordFile', 'secret', 'token', 'authorization', 'key', 'accessKey', 'secretAccessKey']

const WARN = /(failed|error|lost|refused|quarantin|alarm|timeout|withheld|warning)/
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi
const PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 }

/** A URL without its `user:pass@`, for messages written outside the logger. */
export function withoutCredentials(url: string): string {
  return url.replace(URL_CREDENTIALS, '$1[redacted]@')
}

/** Strings with `scheme://user:pass@host` lose the credentials, at any depth. */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.includes('@') ? value.replace(URL_CREDENTIALS, '$1[redacted]@') : value
  if (depth > 4 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1)
  return out
}

export interface LoggerOptions {
  /** Default 1 (stdout). */
  fd?: number
  /** Default info. */
  level?: string
  /** Prefix each line with its syslog priority for journald. Default false. */
  journal?: boolean
}

/** The logger's options from the environment (read at the edge): TRIBUTARY_LOG_LEVEL, and JOURNAL_STREAM for stdout. */
export function loggerOptionsFromEnv(env: NodeJS.ProcessEnv, fd = 1): LoggerOptions {
  return { fd, level: env.TRIBUTARY_LOG_LEVEL, journal: Boolean(env.JOURNAL_STREAM) && fd === 1 }
}

export function createLogger(options: LoggerOptions = {}): LogFn & { logger: pino.Logger } {
  const paths = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`])
  const journal = options.journal ?? false
  const logger = pino({
    level: options.level ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: (obj) => scrub(obj) as Record<string, unknown> },
    redact: { paths, censor: '[redacted]' },
    ...(journal ? { hooks: { streamWrite: (s: string) => `<${PRIORITY[/"level":"(\w+)"/.exec(s)?.[1] ?? 'info'] ?? 6}>${s}` } } : {}),
    // Synchronous: a line is written before the process can exit (SIGTERM, a fatal error).
  }, pino.destination({ fd: options.fd ?? 1, sync: true }))
  const log = ((event: string, fields: Record<string, unknown> = {}) => {
    if (WARN.test(event)) logger.warn({ event, ...fields })
    else logger.info({ event, ...fields })
  }) as LogFn & { logger: pino.Logger }
  log.logger = logger
  return log
}
