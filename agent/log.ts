/**
 * The agent's log: pino, one JSON line per event on stdout (journald records it under the unit),
 * `{"level":"info","time":"…","event":"serial_open","source":"gps",…}`. Secrets never reach it:
 * fields that hold them are censored wherever they appear.
 */
import pino from 'pino'

export type LogFn = (event: string, fields?: Record<string, unknown>) => void

/** Field names whose values are never written. */
export const SECRET_FIELDS = ['password', 'passwordFile', 'secret', 'token', 'authorization', 'key', 'accessKey', 'secretAccessKey']

const WARN = /(failed|error|lost|refused|quarantin|alarm|timeout)/

export function createLogger(options: { fd?: number; level?: string } = {}): LogFn & { logger: pino.Logger } {
  const paths = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`])
  const logger = pino({
    level: options.level ?? process.env.TRIBUTARY_LOG_LEVEL ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths, censor: '[redacted]' },
    // Synchronous: a line is written before the process can exit (SIGTERM, a fatal error).
  }, pino.destination({ fd: options.fd ?? 1, sync: true }))
  const log = ((event: string, fields: Record<string, unknown> = {}) => {
    if (WARN.test(event)) logger.warn({ event, ...fields })
    else logger.info({ event, ...fields })
  }) as LogFn & { logger: pino.Logger }
  log.logger = logger
  return log
}
