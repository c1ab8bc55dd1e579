/**
 * What playback reads of stored media, cached: each capture session's init segment row and its
 * parsed track (sample entry, avcC), and each fragment's sample table. Rows and files are the
 * store's; entries are small and bounded (least recently used go first).
 */
import type { FragmentRecord } from '../catalog.js'
import type { VideoStore } from '../store.js'
import { readInitTrack, readSamples, type FragmentSamples, type InitTrack } from './samples.js'

const MAX_INITS = 256
const MAX_SAMPLE_TABLES = 4096
const MAX_ANCHORS = 4096

/** Where a capture session's media time lies on a clock: add `ticks` to its decode times, or `ms` to its times in ms. */
export interface Anchor { ms: number; ticks: number }

class Lru<K, V> {
  private readonly map = new Map<K, V>()
  constructor(private readonly max: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v) }
    return v
  }
  set(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!)
  }
}

export interface FragmentMedia {
  row: FragmentRecord
  init: InitTrack
  samples: FragmentSamples
  data: Buffer
}

export class MediaReader {
  private readonly initRows = new Lru<string, FragmentRecord>(MAX_INITS * 4)
  private readonly tracks = new Lru<number, InitTrack>(MAX_INITS)
  private readonly tables = new Lru<number, FragmentSamples>(MAX_SAMPLE_TABLES)
  private readonly anchors = new Lru<string, Anchor>(MAX_ANCHORS)

  constructor(private readonly store: VideoStore) {}

  /** The init segment row of a fragment's capture session (undefined when retention took it). */
  initRow(f: FragmentRecord): FragmentRecord | undefined {
    const key = `${f.streamId}\u0000${f.device}\u0000${f.session}`
    const cached = this.initRows.get(key)
    if (cached) return cached
    const row = this.store.catalog.fragment(f.streamId, f.device, f.session, 0)
    if (row) this.initRows.set(key, row)
    return row
  }

  async track(initRow: FragmentRecord): Promise<InitTrack> {
    const cached = this.tracks.get(initRow.id)
    if (cached) return cached
    const track = readInitTrack(await this.store.read(initRow))
    this.tracks.set(initRow.id, track)
    return track
  }

  read(row: FragmentRecord): Promise<Buffer> {
    return this.store.read(row)
  }

  /** A fragment's bytes, its session's track and its sample table. */
  async media(row: FragmentRecord): Promise<FragmentMedia> {
    const initRow = this.initRow(row)
    if (!initRow) throw new Error(`fragment ${row.id} has no init segment`)
    const init = await this.track(initRow)
    const data = await this.store.read(row)
    return { row, init, data, samples: this.samples(row, init, data) }
  }

  /**
   * The offset that puts `row`'s capture session on the producer or server clock: taken from the
   * session's first fragment (else this one) — its timestamp less its media time — and kept, so
   * every fragment of the session moves by the same amount and stays continuous.
   */
  async anchor(row: FragmentRecord, by: 'producer' | 'server'): Promise<Anchor> {
    const key = `${row.streamId}\u0000${row.device}\u0000${row.session}\u0000${by}`
    const cached = this.anchors.get(key)
    if (cached) return cached
    const first = this.store.catalog.fragment(row.streamId, row.device, row.session, 1) ?? row
    const m = await this.media(first)
    const { timescale } = m.init.info
    const ms = (by === 'producer' ? first.producerMs : first.serverMs) - (m.samples.decodeTime * 1000) / timescale
    const anchor = { ms, ticks: Math.round((ms * timescale) / 1000) }
    this.anchors.set(key, anchor)
    return anchor
  }

  /** A fragment's sample table: cached, or read from its file. */
  async table(row: FragmentRecord, init: InitTrack): Promise<FragmentSamples> {
    return this.tables.get(row.id) ?? this.samples(row, init, await this.store.read(row))
  }

  samples(row: FragmentRecord, init: InitTrack, data: Buffer): FragmentSamples {
    const cached = this.tables.get(row.id)
    if (cached) return cached
    const table = readSamples(data, init.info)
    this.tables.set(row.id, table)
    return table
  }
}
