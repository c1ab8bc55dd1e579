/**
 * Retrying a sink: exponential backoff with jitter on the relay's clock, for as long as the delivery
 * stream's retry duration allows (Firehose's RetryOptions.DurationInSeconds), counted from the first
 * failure. A failure that retrying cannot help ends the retries at once.
 */
import type { Clock } from '../../hardware/index.js'
import { DeliveryError } from './types.js'

export interface RetryOptions {
  clock: Clock
  /** 0: one attempt. */
  durationMs: number
  signal: AbortSignal
  onFailure?: (error: DeliveryError, attempt: number) => void
  initialDelayMs?: number
  maxDelayMs?: number
}

export type Attempted<T> = { ok: true; value: T; attempts: number } | { ok: false; error: DeliveryError; attempts: number }

/** Stops waiting when the delivery stream stops. */
export class Stopped extends Error {
  constructor() {
    super('delivery stopped')
    this.name = 'Stopped'
  }
}

export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Stopped())
    const onAbort = () => { cancel(); reject(new Stopped()) }
    const cancel = clock.after(ms, () => { signal.removeEventListener('abort', onAbort); resolve() })
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export function asDeliveryError(err: unknown, code: string): DeliveryError {
  if (err instanceof DeliveryError) return err
  return new DeliveryError(code, (err as Error)?.message ?? String(err), { retryable: true, cause: err })
}

export async function withRetries<T>(what: () => Promise<T>, fallbackCode: string, o: RetryOptions): Promise<Attempted<T>> {
  const started = o.clock.monoMs()
  let delay = o.initialDelayMs ?? 1000
  for (let attempt = 1; ; attempt++) {
    if (o.signal.aborted) throw new Stopped()
    try {
      return { ok: true, value: await what(), attempts: attempt }
    } catch (err) {
      if (err instanceof Stopped || o.signal.aborted) throw new Stopped()
      const error = asDeliveryError(err, fallbackCode)
      o.onFailure?.(error, attempt)
      const left = o.durationMs - (o.clock.monoMs() - started)
      if (!error.retryable || left <= 0) return { ok: false, error, attempts: attempt }
      const wait = Math.min(left, delay * (0.5 + Math.random() / 2))
      await sleep(o.clock, wait, o.signal)
      delay = Math.min(delay * 2, o.maxDelayMs ?? 30_000)
    }
  }
}
