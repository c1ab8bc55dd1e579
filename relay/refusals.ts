/**
 * Refused subscriptions and publishes, counted per connection. They are logged as one line per
 * kind and window with a count and a few of the topics (a SUBSCRIBE of 20,000 refused filters is one
 * line, not 20,000), and a connection whose refusals pass the limit is to be closed. Windows run on
 * the relay's clock.
 */
import type { Clock } from '../hardware/index.js'

export type RefusalKind = 'subscribe_refused' | 'publish_refused'

export interface RefusalOptions {
  clock: Clock
  /** One log line per kind per window. */
  windowMs: number
  /** Refusals a connection may make; the one past this says to close it. */
  maxRefusals: number
  log: (event: string, fields: Record<string, unknown>) => void
}

/** Topics named in one log line, at most. */
const SAMPLE = 5

interface Pending { count: number; topics: string[] }

interface ConnectionRefusals {
  who: { device: string | undefined; client: string }
  total: number
  pending: Map<RefusalKind, Pending>
  cancel: (() => void) | null
}

export class Refusals {
  private readonly o: RefusalOptions
  private readonly byConnection = new WeakMap<object, ConnectionRefusals>()

  constructor(options: RefusalOptions) {
    this.o = options
  }

  /** Counts one refusal of `connection`; true exactly once, when its refusals pass the limit. */
  note(connection: object, who: ConnectionRefusals['who'], kind: RefusalKind, topic: string): boolean {
    let c = this.byConnection.get(connection)
    if (!c) {
      c = { who, total: 0, pending: new Map(), cancel: null }
      this.byConnection.set(connection, c)
    }
    c.total++
    const p = c.pending.get(kind) ?? { count: 0, topics: [] }
    p.count++
    if (p.topics.length < SAMPLE) p.topics.push(topic)
    c.pending.set(kind, p)
    const state = c
    c.cancel ??= this.o.clock.after(this.o.windowMs, () => { state.cancel = null; this.flush(state) })
    return c.total === this.o.maxRefusals + 1
  }

  /** Refusals of `connection` so far. */
  count(connection: object): number {
    return this.byConnection.get(connection)?.total ?? 0
  }

  /** Logs what is pending now; call when the connection closes. */
  closed(connection: object): void {
    const c = this.byConnection.get(connection)
    if (!c) return
    c.cancel?.()
    c.cancel = null
    this.flush(c)
  }

  private flush(c: ConnectionRefusals): void {
    for (const [kind, p] of c.pending) this.o.log(kind, { ...c.who, count: p.count, topics: p.topics })
    c.pending.clear()
  }
}
