/**
 * What the relay knows of each device's agent, for the console: the last status document the agent
 * published (retained, on `tributary/v1/{device}/status`; its MQTT will publishes `online: false` when
 * the connection is lost), when that was, and the figures an operator looks for in it. Kept in memory
 * from the broker's own publish events, so it costs nothing on the ingest path; after a restart the
 * agents reconnect and publish again.
 */
import type { Aedes, PublishPacket } from 'aedes'
import { parseTopic } from '../shared/topics.js'
import type { Devices } from './devices.js'
import type { DeviceView } from './console/views.js'

/** Devices a relay keeps the status of; past this the longest silent go first. */
const MAX_TRACKED = 20_000
/** A status document larger than this is not kept (the agent's are a few KB). */
const MAX_STATUS_BYTES = 256 * 1024

/** What is kept of a device's last status: the figures the page shows, not the whole document. */
type Summary = Omit<DeviceView, 'id' | 'registered' | 'createdMs' | 'rotatedMs' | 'lastSeenMs'>

interface Seen {
  summary: Summary
  atMs: number
}

type Obj = Record<string, unknown>
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {})
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)

export class Fleet {
  private readonly seen = new Map<string, Seen>()
  private readonly listeners = new Set<(device: string) => void>()

  constructor(private readonly now: () => number) {}

  /** Follows the broker's status topics. */
  attach(aedes: Aedes): void {
    aedes.on('publish', (packet: PublishPacket) => {
      // Every message passes here, device batches too: only a status topic is parsed.
      if (!packet.topic.endsWith('/status')) return
      const parsed = parseTopic(packet.topic)
      if (parsed?.kind === 'status') this.status(parsed.device, packet.payload as Buffer)
    })
  }

  /** A status document arrived for `device` (one that is not JSON is ignored: a device's mistake, not the console's). */
  status(device: string, payload: Buffer | string): void {
    if (payload.length > MAX_STATUS_BYTES) return
    let doc: unknown
    try {
      doc = JSON.parse(payload.toString())
    } catch {
      return
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return
    this.seen.delete(device)
    this.seen.set(device, { summary: summarize(doc as Obj), atMs: this.now() })
    if (this.seen.size > MAX_TRACKED) this.seen.delete(this.seen.keys().next().value!)
    for (const fn of this.listeners) fn(device)
  }

  /** A device was added, rotated or removed (its status, if any, is forgotten on removal). */
  changed(device: string, removed = false): void {
    if (removed) this.seen.delete(device)
    for (const fn of this.listeners) fn(device)
  }

  /** `fn` runs whenever a device's status changes; returns the unsubscribe. */
  subscribe(fn: (device: string) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Every registered device, and every device heard from, with what its status says. */
  async list(devices: Devices): Promise<DeviceView[]> {
    const registered = await devices.list()
    const out = new Map<string, DeviceView>()
    for (const d of registered) out.set(d.id, this.view(d.id, true, d.createdMs, d.rotatedMs))
    for (const id of this.seen.keys()) if (!out.has(id)) out.set(id, this.view(id, false, null, null))
    return [...out.values()].sort((a, b) => a.id.localeCompare(b.id))
  }

  private view(id: string, registered: boolean, createdMs: number | null, rotatedMs: number | null): DeviceView {
    const seen = this.seen.get(id)
    const summary = seen?.summary ?? summarize(null)
    return { id, registered, createdMs, rotatedMs, lastSeenMs: seen?.atMs ?? null, ...summary }
  }
}

/** The page's figures from an agent's status document (`null`: never heard from). */
function summarize(doc: Obj | null): Summary {
  const d = doc ?? {}
  const outbox = obj(d.outbox)
  const link = obj(d.link)
  const drops: Record<string, number> = {}
  for (const x of Array.isArray(outbox.drops) ? outbox.drops : []) {
    const reason = str(obj(x).reason)
    const count = num(obj(x).count)
    if (reason && count !== null) drops[reason] = (drops[reason] ?? 0) + count
  }
  let deadLetters = 0
  for (const x of Array.isArray(outbox.deadLetters) ? outbox.deadLetters : []) deadLetters += num(obj(x).count) ?? 0
  // The oldest record among streams that hold any.
  const ages = Object.values(obj(outbox.streams)).filter((s) => (num(obj(s).backlog) ?? 0) > 0).map((s) => num(obj(s).oldestAgeSeconds)).filter((a): a is number => a !== null)
  const video = obj(d.video)
  return {
    online: doc ? d.online === true : null,
    backlog: num(outbox.backlog),
    oldestAgeMs: ages.length ? Math.round(Math.max(...ages) * 1000) : null,
    drops,
    deadLetters,
    link: str(link.state),
    lastPubackMs: num(link.lastPubackWallMs) || null,
    version: str(d.version),
    // At most 64 of each: a status document is the device's to write.
    serial: Object.entries(obj(d.serial)).slice(0, 64).map(([name, s]) => ({ name, state: str(obj(obj(s).link).state) ?? 'unknown', readings: num(obj(s).readings) ?? 0 })),
    cameras: Object.entries(obj(video.cameras)).slice(0, 64).map(([name, c]) => ({ name, state: str(obj(c).state) ?? 'unknown' })),
    alarms: (Array.isArray(outbox.alarms) ? outbox.alarms : []).slice(0, 64).map((a) => str(obj(a).code)).filter((c): c is string => c !== null),
  }
}
