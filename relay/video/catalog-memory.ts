/** The video catalog in memory: the contract's second implementation, for unit tests and a diskless relay. */
import { VideoNameTaken, type FragmentQuery, type FragmentRecord, type Inserted, type NewFragment, type VideoCatalog, type VideoStreamRecord } from './catalog.js'

const keyOf = (streamId: string, device: string, session: string, sequence: number) => `${streamId}\u0000${device}\u0000${session}\u0000${sequence}`

export class MemoryVideoCatalog implements VideoCatalog {
  private readonly byId = new Map<string, VideoStreamRecord>()
  private readonly tagsOf = new Map<string, Map<string, string>>()
  /** Rows in id order (ids only grow). */
  private readonly rows = new Map<number, FragmentRecord>()
  private readonly byKey = new Map<string, number>()
  private nextId = 1
  private total = 0

  streams(): VideoStreamRecord[] {
    return [...this.byId.values()].map((s) => ({ ...s })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  insertStream(stream: VideoStreamRecord, tags: Record<string, string>): void {
    if ([...this.byId.values()].some((s) => s.name === stream.name || s.arn === stream.arn) || this.byId.has(stream.id)) throw new VideoNameTaken(stream.name)
    this.byId.set(stream.id, { ...stream })
    this.tagsOf.set(stream.id, new Map())
    this.putTags(stream.id, tags)
  }

  updateStream(id: string, change: Partial<Pick<VideoStreamRecord, 'status' | 'version' | 'retentionHours' | 'deviceName' | 'mediaType'>>): void {
    const s = this.byId.get(id)
    if (!s) return
    for (const [k, v] of Object.entries(change)) if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v
  }

  deleteStream(id: string): void {
    for (const [rowId, row] of this.rows) if (row.streamId === id) this.drop(rowId, row)
    this.tagsOf.delete(id)
    this.byId.delete(id)
  }

  tags(streamId: string): Record<string, string> {
    return Object.fromEntries([...(this.tagsOf.get(streamId) ?? new Map<string, string>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }

  putTags(streamId: string, tags: Record<string, string>): void {
    const held = this.tagsOf.get(streamId)
    if (held) for (const [k, v] of Object.entries(tags)) held.set(k, v)
  }

  removeTags(streamId: string, keys: readonly string[]): void {
    const held = this.tagsOf.get(streamId)
    if (held) for (const k of keys) held.delete(k)
  }

  fragment(streamId: string, device: string, session: string, sequence: number): FragmentRecord | undefined {
    const id = this.byKey.get(keyOf(streamId, device, session, sequence))
    return id === undefined ? undefined : { ...this.rows.get(id)! }
  }

  fragmentById(streamId: string, id: number): FragmentRecord | undefined {
    const row = this.rows.get(id)
    return row && row.streamId === streamId ? { ...row } : undefined
  }

  insertFragments(rows: readonly NewFragment[]): Inserted[] {
    return rows.map((r): Inserted => {
      const stream = this.byId.get(r.streamId)
      if (!stream || stream.status === 'DELETING') return { row: null, inserted: false }
      const key = keyOf(r.streamId, r.device, r.session, r.sequence)
      const held = this.byKey.get(key)
      if (held !== undefined) return { row: { ...this.rows.get(held)! }, inserted: false }
      const row = { ...r, id: this.nextId++ }
      this.rows.set(row.id, row)
      this.byKey.set(key, row.id)
      this.total += row.bytes
      return { row: { ...row }, inserted: true }
    })
  }

  newest(streamId: string): FragmentRecord | undefined {
    let newest: FragmentRecord | undefined
    for (const r of this.rows.values()) if (r.streamId === streamId && r.sequence > 0 && (!newest || r.id > newest.id)) newest = r
    return newest && { ...newest }
  }

  listFragments(q: FragmentQuery): FragmentRecord[] {
    const at = (r: FragmentRecord) => (q.by === 'producer' ? r.producerMs : q.by === 'server' ? r.serverMs : r.id)
    const picked = [...this.rows.values()].filter((r) => r.streamId === q.streamId && r.sequence > 0 &&
      (q.from === undefined || at(r) >= q.from) && (q.to === undefined || at(r) <= q.to) &&
      (!q.after || (q.by === 'number' ? r.id > q.after.id : at(r) > q.after.at || (at(r) === q.after.at && r.id > q.after.id))))
    picked.sort((a, b) => at(a) - at(b) || a.id - b.id)
    return picked.slice(0, q.limit).map((r) => ({ ...r }))
  }

  expired(streamId: string, beforeServerMs: number, limit: number): FragmentRecord[] {
    const rows = [...this.rows.values()].filter((r) => r.streamId === streamId)
    const byTime = (a: FragmentRecord, b: FragmentRecord) => a.serverMs - b.serverMs || a.id - b.id
    const media = rows.filter((r) => r.sequence > 0 && r.serverMs < beforeServerMs).sort(byTime).slice(0, limit)
    if (media.length >= limit) return media.map((r) => ({ ...r }))
    const inits = rows.filter((i) => i.sequence === 0 && i.serverMs < beforeServerMs &&
      !rows.some((m) => m.device === i.device && m.session === i.session && m.sequence > 0 && m.serverMs >= beforeServerMs)).sort(byTime)
    return [...media, ...inits].slice(0, limit).map((r) => ({ ...r }))
  }

  deleteFragments(ids: readonly number[]): void {
    for (const id of ids) {
      const row = this.rows.get(id)
      if (row) this.drop(id, row)
    }
  }

  private drop(id: number, row: FragmentRecord): void {
    this.rows.delete(id)
    this.byKey.delete(keyOf(row.streamId, row.device, row.session, row.sequence))
    this.total -= row.bytes
  }

  totalBytes(): number {
    return this.total
  }

  *files(): Iterable<string> {
    for (const row of this.rows.values()) yield row.file
  }

  close(): void {}
}
