/**
 * The cameras' offline buffer: every init segment and media fragment as a file of its own under
 * `<dir>/<camera>/`, indexed in a small SQLite file (`<dir>/index.db`, schema.ts says why its own).
 *
 * Durable in this order: the file is written and fsynced (and its directory fsynced), then its index
 * row commits at synchronous=FULL; a fragment leaves (PERSISTED, or dropped and counted) row first,
 * file second. So a crash leaves at worst a file without a row (an orphan, removed at the next start)
 * and never a row without its bytes; a row whose file is nonetheless missing or short (a disk that
 * lied) is dropped at start and counted as `missing_file`.
 *
 * Each camera has its own caps, apart from the records' outbox: bytes (init segments included) and
 * age. At the byte cap `drop-oldest` drops the oldest media fragments to make room for the new one
 * (never the new one itself), `pause-capture` drops new fragments while capture keeps running; a
 * session's init segment stays as long as any fragment of the session is buffered (and while the
 * session is the camera's current one). Every drop is counted by camera and reason, durably.
 *
 * Ages are measured on the buffer's own running time (monotonic, carried across restarts in the
 * index), as the outbox measures its records', so a wall-clock jump changes nothing.
 */
import Database from 'better-sqlite3'
import { EventEmitter } from 'node:events'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs'
import { open, readFile, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { runningTime, type Clock } from '../../hardware/index.js'
import type { CameraSession, CapturedFragment } from '../../hardware/video/types.js'
import type { CameraOnFull } from '../config.js'
import type { LogFn } from '../log.js'
import { migrateVideo } from './schema.js'

/** Why a buffered fragment left without being persisted by the relay: the caps, the disk, or the relay's permanent error code. */
export type VideoDropReason = 'cap' | 'age' | 'missing_file' | 'storage_failed' | 'no_init' | (string & {})

/** One camera's buffer settings (the camera source's, or defaults for a camera no longer configured). */
export interface CameraBuffer {
  name: string
  stream: string
  maxBytes: number
  maxAgeSeconds: number
  onFull: CameraOnFull
}

/** An init segment (sequence 0) or a media fragment, as buffered. */
export interface StoredFragment {
  id: number
  camera: string
  stream: string
  /** The session as a decimal u64. */
  session: string
  sequence: number
  init: boolean
  producerTimeMs: number
  clockSynced: boolean
  durationMs: number
  keyFrame: boolean
  crc32c: number
  size: number
  /** The buffer's running time when it was stored. */
  storedMonoMs: number
  /** Relative to the buffer directory. */
  file: string
}

export interface CameraBufferStats {
  /** Media fragments buffered (init segments not counted). */
  fragments: number
  /** Bytes buffered, init segments included. */
  bytes: number
  /** Media seconds buffered. */
  seconds: number
  oldestAgeSeconds: number
  /** Every fragment dropped since the buffer was created, by reason. */
  dropped: Record<string, number>
}

export interface VideoStoreOptions {
  /** The buffer directory, e.g. `<outbox dir>/video`. */
  dir: string
  cameras: CameraBuffer[]
  clock: Clock
  log: LogFn
  crc32c: (buf: Uint8Array) => number
  synchronous?: 'FULL' | 'NORMAL'
}

interface CameraState {
  policy: CameraBuffer
  /** Media fragments by id, oldest first. */
  media: Map<number, StoredFragment>
  /** Init segments by session. */
  inits: Map<string, StoredFragment>
  /** Media fragments buffered per session. */
  perSession: Map<string, number>
  bytes: number
  durationMs: number
  /** The session the camera is capturing now (its init stays while it runs). */
  current: string | null
  /** Bytes being written for fragments not yet indexed (pause-capture counts them). */
  reserved: number
  /** Adds run one at a time per camera. */
  chain: Promise<unknown>
  dropped: Map<string, number>
}

interface FragmentRow {
  id: number
  camera: string
  stream: string
  session: string
  sequence: number
  init: number
  producer_ms: number
  clock_synced: number
  duration_ms: number
  key_frame: number
  crc32c: number
  size: number
  stored_mono_ms: number
  file: string
}

/** For a camera found in the index but no longer configured: drained as it is, never added to. */
const LEFTOVER: Omit<CameraBuffer, 'name' | 'stream'> = { maxBytes: Number.MAX_SAFE_INTEGER, maxAgeSeconds: 0, onFull: 'drop-oldest' }

const fromRow = (r: FragmentRow): StoredFragment => ({
  id: r.id, camera: r.camera, stream: r.stream, session: r.session, sequence: r.sequence, init: r.init === 1,
  producerTimeMs: r.producer_ms, clockSynced: r.clock_synced === 1, durationMs: r.duration_ms, keyFrame: r.key_frame === 1,
  crc32c: r.crc32c, size: r.size, storedMonoMs: r.stored_mono_ms, file: r.file,
})

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}

/** mkdir -p, fsyncing the parent of each directory it creates, so the directory survives power loss. */
function makeDirDurably(path: string): void {
  if (existsSync(path)) return
  makeDirDurably(dirname(path))
  mkdirSync(path)
  fsyncPath(dirname(path))
}

/**
 * Events, each once the change is committed: 'added' (fragment), 'removed' (fragments: persisted or
 * dropped), 'dropped' (camera, reason, n).
 */
export class VideoStore extends EventEmitter {
  readonly dir: string
  /** Running time in ms, carried across restarts. */
  readonly monoNow: () => number
  /** What the start-up recovery found: files without a row, rows without their bytes. */
  readonly recovered: { orphanFiles: number; missingFiles: number }
  readonly alarms: { code: string; message: string }[] = []
  private readonly db: Database.Database
  private readonly o: VideoStoreOptions
  private readonly cams = new Map<string, CameraState>()
  private readonly byId = new Map<number, StoredFragment>()
  private readonly byFile = new Map<string, StoredFragment>()
  private readonly insertRow: Database.Statement
  private readonly deleteRow: Database.Statement
  private readonly addDrop: Database.Statement
  private readonly putMeta: Database.Statement
  private closed = false

  constructor(options: VideoStoreOptions) {
    super()
    this.o = options
    this.dir = options.dir
    makeDirDurably(this.dir)
    this.db = this.openChecked(join(this.dir, 'index.db'))
    this.insertRow = this.db.prepare(`INSERT INTO fragments (camera, stream, session, sequence, init, producer_ms, clock_synced, duration_ms, key_frame, crc32c, size, stored_mono_ms, file)
      VALUES (@camera, @stream, @session, @sequence, @init, @producerTimeMs, @clockSynced, @durationMs, @keyFrame, @crc32c, @size, @storedMonoMs, @file)`)
    this.deleteRow = this.db.prepare('DELETE FROM fragments WHERE id = ?')
    this.addDrop = this.db.prepare('INSERT INTO drops (camera, reason, count) VALUES (?, ?, ?) ON CONFLICT(camera, reason) DO UPDATE SET count = count + excluded.count')
    this.putMeta = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
    const carried = (this.db.prepare("SELECT value FROM meta WHERE key = 'mono_ms'").get() as { value: string } | undefined)?.value
    this.monoNow = runningTime(options.clock, Number(carried ?? '0'))
    for (const c of options.cameras) this.camera(c.name, c)
    this.recovered = this.recover()
  }

  /** Cameras with a buffer: the configured ones and any left over in the index from an earlier config. */
  cameras(): string[] {
    return [...this.cams.keys()]
  }

  policy(camera: string): CameraBuffer {
    return this.state(camera).policy
  }

  /** The camera started a new capture session: its init segment is stored (outside the byte cap's drops). */
  addSession(camera: string, session: CameraSession): Promise<StoredFragment> {
    const cam = this.state(camera)
    return this.serial(cam, async () => {
      const s = session.id.toString()
      cam.current = s
      const existing = cam.inits.get(s)
      if (existing) return existing
      const entry = this.entry(cam, { session: s, sequence: 0, init: true, producerTimeMs: session.startedWallMs, clockSynced: true, durationMs: 0, keyFrame: false, size: session.init.length, crc32c: this.o.crc32c(session.init) })
      await this.writeFile(entry.file, session.init)
      this.db.transaction(() => {
        entry.id = Number(this.insertRow.run(this.rowOf(entry)).lastInsertRowid)
        this.saveMono()
      })()
      this.indexed(cam, entry)
      // Sessions that ended with nothing left to send no longer need their init segments.
      this.removeDone(cam)
      return entry
    })
  }

  /**
   * Stores a media fragment; resolves with it once its file and row are on disk, or with null when
   * the buffer is full under pause-capture (or the session's init segment is missing), counted.
   */
  addFragment(camera: string, fragment: CapturedFragment): Promise<StoredFragment | null> {
    const cam = this.state(camera)
    return this.serial(cam, async () => {
      const s = fragment.session.toString()
      if (!cam.inits.has(s)) {
        this.countOutside(cam, 'no_init', 1)
        this.o.log('video_fragment_dropped', { camera, session: s, sequence: fragment.sequence, reason: 'no_init' })
        return null
      }
      const known = this.byFile.get(this.fileName(cam, s, fragment.sequence))
      if (known) return known // the same fragment again: it is stored already
      const size = fragment.data.length
      if (cam.policy.onFull === 'pause-capture' && cam.bytes + cam.reserved + size > cam.policy.maxBytes) {
        this.countOutside(cam, 'cap', 1)
        return null
      }
      const entry = this.entry(cam, {
        session: s, sequence: fragment.sequence, init: false, producerTimeMs: fragment.producerTimeMs, clockSynced: fragment.clockSynced,
        durationMs: fragment.durationMs, keyFrame: fragment.keyFrame, size, crc32c: this.o.crc32c(fragment.data),
      })
      cam.reserved += size
      try {
        await this.writeFile(entry.file, fragment.data)
      } finally {
        cam.reserved -= size
      }
      // Under drop-oldest: the oldest media fragments make room, never the new one; an init goes only with the last of its session.
      const dropped: StoredFragment[] = []
      if (cam.policy.onFull === 'drop-oldest') {
        let bytes = cam.bytes
        for (const f of cam.media.values()) {
          if (bytes + size <= cam.policy.maxBytes) break
          dropped.push(f)
          bytes -= f.size
        }
      }
      const inits = this.initsFreedBy(cam, dropped, s)
      try {
        this.db.transaction(() => {
          for (const f of [...dropped, ...inits]) this.deleteRow.run(f.id)
          if (dropped.length) this.addDrop.run(camera, 'cap', dropped.length)
          entry.id = Number(this.insertRow.run(this.rowOf(entry)).lastInsertRowid)
          this.saveMono()
        })()
      } catch (err) {
        await unlink(join(this.dir, entry.file)).catch(() => {})
        throw err
      }
      this.forget(cam, [...dropped, ...inits], dropped.length ? 'cap' : null)
      this.indexed(cam, entry)
      return entry
    })
  }

  /** Reads a buffered fragment's bytes; a missing or short file is a NOT_FOUND error (drop it as `missing_file`). */
  async read(f: StoredFragment): Promise<Buffer> {
    let data: Buffer
    try {
      data = await readFile(join(this.dir, f.file))
    } catch (err) {
      throw new TributaryError(ErrorCode.NOT_FOUND, `video fragment ${f.file} cannot be read: ${(err as Error).message}`, { cause: err })
    }
    if (data.length !== f.size) throw new TributaryError(ErrorCode.NOT_FOUND, `video fragment ${f.file} holds ${data.length} bytes, not ${f.size}`)
    return data
  }

  /** Whether these bytes are the fragment as it was stored. */
  intact(f: StoredFragment, data: Uint8Array): boolean {
    return data.length === f.size && this.o.crc32c(data) === f.crc32c
  }

  get(id: number): StoredFragment | undefined {
    return this.byId.get(id)
  }

  /** Media fragments of a camera, oldest first. */
  fragments(camera: string): IterableIterator<StoredFragment> {
    return this.state(camera).media.values()
  }

  newest(camera: string): StoredFragment | undefined {
    let last: StoredFragment | undefined
    for (const f of this.state(camera).media.values()) last = f
    return last
  }

  /** A media fragment by its identity on the wire. */
  find(camera: string, session: string, sequence: number): StoredFragment | undefined {
    const cam = this.state(camera)
    return sequence === 0 ? cam.inits.get(session) : this.byFile.get(this.fileName(cam, session, sequence))
  }

  initOf(camera: string, session: string): StoredFragment | undefined {
    return this.state(camera).inits.get(session)
  }

  /**
   * A fragment leaves: persisted by the relay (reason null), or dropped and counted by reason. Its
   * session's init segment leaves with the session's last fragment, unless the session is current.
   */
  remove(id: number, reason: VideoDropReason | null): void {
    const f = this.byId.get(id)
    if (!f || f.init) return
    this.removeMany(f.camera, [f], reason)
  }

  /** Every buffered fragment of a session leaves, counted by reason (the relay refused its init segment for good). */
  removeSession(camera: string, session: string, reason: VideoDropReason): void {
    const cam = this.state(camera)
    const media = [...cam.media.values()].filter((f) => f.session === session)
    const init = cam.inits.get(session)
    if (cam.current === session) cam.current = null
    this.removeMany(camera, init ? [...media, init] : media, reason)
  }

  /** Drops fragments past their camera's age limit; returns how many. */
  expire(): number {
    let n = 0
    const now = this.monoNow()
    for (const [camera, cam] of this.cams) {
      if (cam.policy.maxAgeSeconds <= 0) continue
      const before = now - cam.policy.maxAgeSeconds * 1000
      const old: StoredFragment[] = []
      for (const f of cam.media.values()) {
        if (f.storedMonoMs > before) break
        old.push(f)
      }
      if (old.length) { this.removeMany(camera, old, 'age'); n += old.length }
    }
    return n
  }

  /** Counts fragments that never reached the buffer (a write that failed, say). */
  countDropped(camera: string, reason: VideoDropReason, n = 1): void {
    this.countOutside(this.state(camera), reason, n)
  }

  stats(camera: string): CameraBufferStats {
    const cam = this.state(camera)
    const oldest = cam.media.values().next()
    return {
      fragments: cam.media.size,
      bytes: cam.bytes,
      seconds: cam.durationMs / 1000,
      oldestAgeSeconds: oldest.done ? 0 : Math.max(0, (this.monoNow() - oldest.value.storedMonoMs) / 1000),
      dropped: Object.fromEntries(cam.dropped),
    }
  }

  /** Waits for the adds under way, then closes the index. */
  async close(): Promise<void> {
    if (this.closed) return
    await Promise.all([...this.cams.values()].map((c) => c.chain.catch(() => {})))
    this.closed = true
    try { this.saveMono() } catch { /* best effort */ }
    try { this.db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* best effort */ }
    this.db.close()
  }

  private state(camera: string): CameraState {
    const cam = this.cams.get(camera)
    if (!cam) throw new TributaryError(ErrorCode.NOT_FOUND, `no camera ${JSON.stringify(camera)} in the video buffer`)
    return cam
  }

  private camera(name: string, policy: CameraBuffer): CameraState {
    let cam = this.cams.get(name)
    if (!cam) {
      cam = { policy, media: new Map(), inits: new Map(), perSession: new Map(), bytes: 0, durationMs: 0, current: null, reserved: 0, chain: Promise.resolve(), dropped: new Map() }
      this.cams.set(name, cam)
    }
    return cam
  }

  private serial<T>(cam: CameraState, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TributaryError(ErrorCode.STORAGE_FAILED, 'the video buffer is closed'))
    const run = cam.chain.then(fn, fn)
    cam.chain = run.catch(() => {})
    return run
  }

  private fileName(cam: CameraState, session: string, sequence: number): string {
    return `${cam.policy.name}/${session}-${sequence === 0 ? 'init.mp4' : `${String(sequence).padStart(8, '0')}.m4s`}`
  }

  private entry(cam: CameraState, f: Omit<StoredFragment, 'id' | 'camera' | 'stream' | 'storedMonoMs' | 'file'>): StoredFragment {
    return { ...f, id: 0, camera: cam.policy.name, stream: cam.policy.stream, storedMonoMs: this.monoNow(), file: this.fileName(cam, f.session, f.sequence) }
  }

  private rowOf(f: StoredFragment) {
    return { ...f, init: f.init ? 1 : 0, clockSynced: f.clockSynced ? 1 : 0, keyFrame: f.keyFrame ? 1 : 0 }
  }

  /** Written and fsynced, with the directory entry fsynced too, before any row names it. */
  private async writeFile(rel: string, data: Uint8Array): Promise<void> {
    const path = join(this.dir, rel)
    makeDirDurably(dirname(path))
    const fh = await open(path, 'w', 0o600)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(path).catch(() => {})
      throw err
    }
    await fh.close()
    const dir = await open(dirname(path), 'r')
    try { await dir.sync() } finally { await dir.close() }
  }

  private indexed(cam: CameraState, f: StoredFragment): void {
    this.byId.set(f.id, f)
    this.byFile.set(f.file, f)
    cam.bytes += f.size
    if (f.init) cam.inits.set(f.session, f)
    else {
      cam.media.set(f.id, f)
      cam.durationMs += f.durationMs
      cam.perSession.set(f.session, (cam.perSession.get(f.session) ?? 0) + 1)
    }
    this.emit('added', f)
  }

  /** The init segments that are no longer needed once `leaving` are gone (keeping `keep`'s and the current session's). */
  private initsFreedBy(cam: CameraState, leaving: StoredFragment[], keep: string | null): StoredFragment[] {
    const left = new Map(cam.perSession)
    for (const f of leaving) if (!f.init) left.set(f.session, (left.get(f.session) ?? 0) - 1)
    const out: StoredFragment[] = []
    for (const [session, init] of cam.inits) {
      if (session === cam.current || session === keep || leaving.includes(init)) continue
      if ((left.get(session) ?? 0) <= 0) out.push(init)
    }
    return out
  }

  private removeMany(camera: string, leaving: StoredFragment[], reason: VideoDropReason | null): void {
    if (!leaving.length) return
    const cam = this.state(camera)
    const inits = this.initsFreedBy(cam, leaving, null)
    const counted = leaving.filter((f) => !f.init).length
    this.db.transaction(() => {
      for (const f of [...leaving, ...inits]) this.deleteRow.run(f.id)
      if (reason && counted) this.addDrop.run(camera, reason, counted)
      this.saveMono()
    })()
    this.forget(cam, [...leaving, ...inits], reason)
  }

  /** After the commit: memory, files, events. */
  private forget(cam: CameraState, leaving: StoredFragment[], reason: VideoDropReason | null): void {
    if (!leaving.length) return
    let counted = 0
    for (const f of leaving) {
      this.byId.delete(f.id)
      this.byFile.delete(f.file)
      cam.bytes -= f.size
      if (f.init) cam.inits.delete(f.session)
      else {
        counted++
        cam.media.delete(f.id)
        cam.durationMs -= f.durationMs
        const left = (cam.perSession.get(f.session) ?? 1) - 1
        if (left > 0) cam.perSession.set(f.session, left)
        else cam.perSession.delete(f.session)
      }
      // The row is gone: a file left behind by a failing unlink is an orphan, removed at the next start.
      try { unlinkSync(join(this.dir, f.file)) } catch { /* see above */ }
    }
    this.emit('removed', leaving)
    if (reason && counted) {
      cam.dropped.set(reason, (cam.dropped.get(reason) ?? 0) + counted)
      this.o.log('video_fragments_dropped', { camera: cam.policy.name, reason, count: counted })
      this.emit('dropped', cam.policy.name, reason, counted)
    }
  }

  private removeDone(cam: CameraState): void {
    const inits = this.initsFreedBy(cam, [], null)
    if (!inits.length) return
    this.db.transaction(() => { for (const f of inits) this.deleteRow.run(f.id) })()
    this.forget(cam, inits, null)
  }

  private countOutside(cam: CameraState, reason: VideoDropReason, n: number): void {
    // Counted durably when the index can take it; in memory at least when it cannot (a failing disk).
    try { this.addDrop.run(cam.policy.name, reason, n) } catch (err) { this.o.log('video_drop_count_failed', { camera: cam.policy.name, error: (err as Error).message }) }
    cam.dropped.set(reason, (cam.dropped.get(reason) ?? 0) + n)
    this.emit('dropped', cam.policy.name, reason, n)
  }

  private saveMono(): void {
    this.putMeta.run('mono_ms', String(this.monoNow()))
  }

  /**
   * At start: files without a row are removed (a crash between file and row); rows whose file is
   * missing or short are dropped and counted (with every fragment of a session whose init is gone);
   * init segments of sessions with nothing left are removed.
   */
  private recover(): { orphanFiles: number; missingFiles: number } {
    const rows = (this.db.prepare('SELECT * FROM fragments ORDER BY id').all() as FragmentRow[]).map(fromRow)
    const referenced = new Set(rows.map((r) => r.file))
    let orphanFiles = 0
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      for (const name of readdirSync(join(this.dir, entry.name))) {
        const rel = `${entry.name}/${name}`
        if (referenced.has(rel)) continue
        try { unlinkSync(join(this.dir, rel)); orphanFiles++ } catch { /* left for the next start */ }
      }
    }
    const sizeOf = (f: StoredFragment) => { try { return statSync(join(this.dir, f.file)).size } catch { return -1 } }
    const bad = new Set<StoredFragment>()
    const lostInits = new Set<string>()
    for (const r of rows) {
      if (sizeOf(r) === r.size) continue
      bad.add(r)
      if (r.init) lostInits.add(`${r.camera}/${r.session}`)
    }
    for (const r of rows) if (lostInits.has(`${r.camera}/${r.session}`)) bad.add(r)
    const missing = new Map<string, number>()
    for (const r of bad) if (!r.init) missing.set(r.camera, (missing.get(r.camera) ?? 0) + 1)
    this.db.transaction(() => {
      for (const r of bad) this.deleteRow.run(r.id)
      for (const [camera, n] of missing) this.addDrop.run(camera, 'missing_file', n)
    })()
    for (const r of bad) { try { unlinkSync(join(this.dir, r.file)) } catch { /* absent already */ } }
    for (const d of this.db.prepare('SELECT camera, reason, count FROM drops').all() as { camera: string; reason: string; count: number }[]) {
      this.camera(d.camera, { name: d.camera, stream: d.camera, ...LEFTOVER }).dropped.set(d.reason, d.count)
    }
    for (const r of rows) {
      if (bad.has(r)) continue
      this.indexed(this.camera(r.camera, { name: r.camera, stream: r.stream, ...LEFTOVER }), r)
    }
    // No session is current before the cameras start: inits without fragments are done.
    for (const cam of this.cams.values()) this.removeDone(cam)
    const missingFiles = [...missing.values()].reduce((a, b) => a + b, 0)
    if (orphanFiles || missingFiles) this.o.log('video_buffer_recovered', { dir: this.dir, orphanFiles, missingFiles })
    return { orphanFiles, missingFiles }
  }

  private openChecked(path: string): Database.Database {
    let db: Database.Database | null = null
    try {
      db = this.configure(new Database(path))
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new TributaryError(ErrorCode.LOG_CORRUPT, `quick_check: ${String(check)}`)
      migrateVideo(db)
      return db
    } catch (err) {
      const code = (err as { code?: string }).code ?? ''
      try { db?.close() } catch { /* already unusable */ }
      if (code !== 'LOG_CORRUPT' && !code.startsWith('SQLITE_CORRUPT') && code !== 'SQLITE_NOTADB') {
        if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) throw new TributaryError(ErrorCode.STORAGE_FAILED, `video buffer ${path} is in use by another process (is another agent running?)`, { cause: err })
        throw new TributaryError(ErrorCode.STORAGE_FAILED, `video buffer ${path} cannot be opened: ${(err as Error).message}`, { cause: err })
      }
      // A damaged index is moved aside and started fresh: its files become orphans, removed below.
      const aside = `${path}.corrupt-${new Date(this.o.clock.wallMs()).toISOString().replace(/[:.]/g, '-')}`
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix)
      this.alarms.push({ code: 'VIDEO_BUFFER_QUARANTINED', message: `video buffer index ${path} failed its check (${(err as Error).message}); moved to ${aside} and started fresh` })
      this.o.log('video_buffer_quarantined', { path, movedTo: aside, error: (err as Error).message })
      const fresh = this.configure(new Database(path))
      migrateVideo(fresh)
      return fresh
    }
  }

  private configure(db: Database.Database): Database.Database {
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma('cache_size = -512')
    db.pragma(`synchronous = ${this.o.synchronous ?? 'FULL'}`)
    db.pragma('journal_size_limit = 4194304')
    return db
  }
}
