/**
 * A camera: one long-lived ffmpeg writing fragmented MP4 to stdout, split into the session's init
 * segment and its media fragments as they arrive.
 *
 * Each ffmpeg run is a **session** (a random u64 id) with its own init segment. A run ends when
 * ffmpeg exits (`exited`, with its last stderr lines), writes nothing for `stallMs` (`hung`: killed),
 * writes what is not fragmented MP4 (`invalid`: killed), or when a V4L2 device is missing before or
 * after it (`absent`); the camera then waits (exponential backoff on the injected clock, reset once a
 * run delivers a fragment) and starts a new session. The next ffmpeg starts only after the last one
 * has exited, so a V4L2 device is free again.
 *
 * Events: 'session' (CameraSession, once its init segment is read), 'fragment' (CapturedFragment),
 * 'restart' (CameraRestart, once the run has ended and the next attempt is scheduled). No 'error'
 * event: every failure is a restart with its reason, counted in stats().
 *
 * Memory: the splitter holds at most one fragment (≤ maxFragmentBytes), stderr is kept as a ring of
 * its last lines.
 */
import { EventEmitter } from 'node:events'
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { MAX_FRAGMENT_BYTES } from '../../shared/video.js'
import type { Clock } from '../clock.js'
import { CameraError, CameraProblem } from './errors.js'
import { ffmpegArgs, validateCameraInput } from './ffmpeg.js'
import { Mp4Splitter } from './mp4.js'
import type { CameraInput, CameraSession, CameraState, CameraStats, CapturedFragment } from './types.js'

/** Why a run ended. */
export type RestartReason = 'exited' | 'hung' | 'absent' | 'invalid'

export interface CameraRestart {
  reason: RestartReason
  /** What happened, for status and logs (ffmpeg's last stderr lines when it exited). */
  message: string
  /** The session that ended, or null when none had started (no init segment yet, or no process). */
  session: bigint | null
  /** When the next attempt starts, in ms of the camera's clock. */
  delayMs: number
}

/** Starts a process with stdout and stderr piped (child_process.spawn's shape). */
export type SpawnProcess = (command: string, args: string[]) => ChildProcess

export interface CameraOptions {
  input: CameraInput
  clock: Clock
  /** Whether the wall clock is synchronised when a fragment's time is taken; default clock.synced. */
  synced?: () => boolean
  /** The ffmpeg binary; default `ffmpeg` on the PATH. */
  ffmpegPath?: string
  spawn?: SpawnProcess
  /** No stdout bytes for this long means ffmpeg hangs; default max(10 s, 5 fragments). */
  stallMs?: number
  /** First restart delay, doubled per failed run up to restartMaxMs; default 1 s and 60 s. */
  restartInitialMs?: number
  restartMaxMs?: number
  /** Largest init segment or fragment accepted; default the wire's MAX_FRAGMENT_BYTES (16 MiB). */
  maxFragmentBytes?: number
  /** How many of ffmpeg's last stderr lines are kept; default 20. */
  stderrLines?: number
}

export interface CameraEvents {
  session: [CameraSession]
  fragment: [CapturedFragment]
  restart: [CameraRestart]
}

/** Longest stderr line kept, and the longest partial line waited for before it is cut. */
const STDERR_LINE_MAX = 400
/** How long stop() waits after SIGTERM before SIGKILL (real time: it bounds a process, not the schedule). */
const STOP_GRACE_MS = 2000

const defaultSpawn: SpawnProcess = (command, args) => nodeSpawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })

interface Run {
  id: bigint
  child: ChildProcess
  splitter: Mp4Splitter
  startedWallMs: number
  lastByteMs: number
  session: CameraSession | null
  sequence: number
  /** Set when the camera decided to end the run (hung, invalid, stop): later output is ignored. */
  ending: { reason: RestartReason; message: string } | null
  finished: boolean
  /** ffmpeg has exited (its pipes may still be open). */
  exited: boolean
  cancelStall: () => void
  closed: Promise<void>
  markClosed: () => void
}

export class Camera extends EventEmitter<CameraEvents> {
  readonly input: CameraInput
  private readonly clock: Clock
  private readonly synced: () => boolean
  private readonly ffmpegPath: string
  private readonly spawnProcess: SpawnProcess
  private readonly stallMs: number
  private readonly restartInitialMs: number
  private readonly restartMaxMs: number
  private readonly maxFragmentBytes: number
  private readonly stderrLineCount: number
  private readonly args: string[]
  private readonly counters = { sessions: 0, fragments: 0, bytes: 0 }
  private readonly restarts: Record<RestartReason, number> = { exited: 0, hung: 0, absent: 0, invalid: 0 }
  private lastError: string | null = null
  private state: CameraState = 'stopped'
  private started = false
  private stopped = false
  private run: Run | null = null
  private backoffMs: number
  private cancelRetry: (() => void) | null = null
  private stderrRing: string[] = []
  private stderrPartial = ''

  constructor(options: CameraOptions) {
    super()
    validateCameraInput(options.input)
    const opt = (field: string, value: number | undefined, fallback: number, min: number, max: number): number => {
      const v = value ?? fallback
      if (!Number.isInteger(v) || v < min || v > max) throw new CameraError(CameraProblem.OPTION_INVALID, field, `must be an integer in ${min}..${max}, not ${v}`)
      return v
    }
    this.input = { ...options.input }
    this.clock = options.clock
    this.synced = options.synced ?? (() => options.clock.synced())
    this.ffmpegPath = options.ffmpegPath ?? 'ffmpeg'
    this.spawnProcess = options.spawn ?? defaultSpawn
    this.stallMs = opt('stallMs', options.stallMs, Math.max(10_000, 5 * this.input.fragmentMs), 100, 3_600_000)
    this.restartInitialMs = opt('restartInitialMs', options.restartInitialMs, 1000, 1, 3_600_000)
    this.restartMaxMs = opt('restartMaxMs', options.restartMaxMs, 60_000, this.restartInitialMs, 86_400_000)
    this.maxFragmentBytes = opt('maxFragmentBytes', options.maxFragmentBytes, MAX_FRAGMENT_BYTES, 1024, MAX_FRAGMENT_BYTES)
    this.stderrLineCount = opt('stderrLines', options.stderrLines, 20, 1, 1000)
    this.backoffMs = this.restartInitialMs
    this.args = ffmpegArgs(this.input)
  }

  /** The ffmpeg command line this camera runs (binary first). */
  get command(): string[] {
    return [this.ffmpegPath, ...this.args]
  }

  /** The current session, once its init segment has been read. */
  get session(): CameraSession | null {
    return this.run?.session ?? null
  }

  /** The running ffmpeg's process id, if one runs. */
  get pid(): number | undefined {
    return this.run?.finished === false ? this.run.child.pid : undefined
  }

  /** ffmpeg's last stderr lines (the current run's, or the last one's). */
  get stderr(): string[] {
    return this.stderrPartial ? [...this.stderrRing, this.stderrPartial] : [...this.stderrRing]
  }

  stats(): CameraStats {
    return { state: this.state, ...this.counters, restarts: { ...this.restarts }, lastError: this.lastError }
  }

  /** Starts capturing; the camera keeps ffmpeg running until stop(). */
  start(): void {
    if (this.started) return
    this.started = true
    this.launch()
  }

  /** Stops ffmpeg (SIGTERM, then SIGKILL after a grace) and resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopped = true
    this.started = true
    this.cancelRetry?.()
    this.cancelRetry = null
    this.state = 'stopped'
    const run = this.run
    if (!run || run.exited || run.child.pid === undefined) return
    run.cancelStall()
    run.ending ??= { reason: 'exited', message: 'stopped' }
    const exited = new Promise<void>((resolve) => run.child.once('exit', () => resolve()))
    run.child.kill('SIGTERM')
    const kill = setTimeout(() => run.child.kill('SIGKILL'), STOP_GRACE_MS)
    await exited
    clearTimeout(kill)
  }

  private launch(): void {
    this.cancelRetry = null
    if (this.stopped) return
    if (this.input.kind === 'v4l2' && !existsSync(this.input.device)) {
      return this.schedule(null, 'absent', `${this.input.device} does not exist (camera unplugged, or a wrong path)`)
    }
    this.stderrRing = []
    this.stderrPartial = ''
    let child: ChildProcess
    try {
      child = this.spawnProcess(this.ffmpegPath, this.args)
    } catch (err) {
      return this.schedule(null, 'exited', `cannot start ${this.ffmpegPath}: ${(err as Error)?.message ?? err}`)
    }
    let markClosed = () => {}
    const closed = new Promise<void>((resolve) => { markClosed = resolve })
    const run: Run = {
      id: randomBytes(8).readBigUInt64LE(0),
      child,
      splitter: new Mp4Splitter({ maxBytes: this.maxFragmentBytes }),
      startedWallMs: this.clock.wallMs(),
      lastByteMs: this.clock.monoMs(),
      session: null,
      sequence: 0,
      ending: null,
      finished: false,
      exited: false,
      cancelStall: () => {},
      closed,
      markClosed,
    }
    this.run = run
    this.state = 'starting'
    child.stdout?.on('data', (chunk: Buffer) => this.onData(run, chunk))
    child.stderr?.on('data', (chunk: Buffer) => this.onStderr(run, chunk))
    child.on('error', (err) => {
      // Never spawned (no such binary, not executable): there will be no exit.
      if (child.pid === undefined) this.finish(run, 'exited', `cannot start ${this.ffmpegPath}: ${err.message}`)
    })
    child.on('exit', () => this.onExit(run))
    child.on('close', (code, signal) => this.onClose(run, code, signal))
    this.armStall(run, this.stallMs)
  }

  private armStall(run: Run, ms: number): void {
    run.cancelStall = this.clock.after(ms, () => {
      if (run.finished || run.ending) return
      const idle = this.clock.monoMs() - run.lastByteMs
      if (idle >= this.stallMs) this.end(run, 'hung', `ffmpeg wrote nothing for ${Math.round(idle)} ms (stall timeout ${this.stallMs} ms)`)
      else this.armStall(run, this.stallMs - idle)
    })
  }

  private onData(run: Run, chunk: Buffer): void {
    if (run.finished || run.ending) return
    run.lastByteMs = this.clock.monoMs()
    this.counters.bytes += chunk.length
    let units
    try {
      units = run.splitter.push(chunk)
    } catch (err) {
      return this.end(run, 'invalid', `ffmpeg's output is not fragmented MP4 the camera can read: ${(err as Error).message}`)
    }
    for (const unit of units) {
      if (run.finished || run.ending || this.stopped) return
      if (unit.kind === 'init') {
        const { codec, width, height, timescale } = unit.info
        run.session = { id: run.id, init: unit.data, codec, width, height, timescale, startedWallMs: run.startedWallMs }
        this.state = 'running'
        this.counters.sessions++
        this.emit('session', run.session)
        continue
      }
      const info = unit.info
      const timescale = run.splitter.init!.timescale
      // prft's wall clock is when ffmpeg wrote the fragment out, about one fragment after its first frame (see FragmentInfo).
      const producerTimeMs = info.prftTimeMs !== null
        ? info.prftTimeMs - info.durationMs
        : run.startedWallMs + (Number(info.decodeTime) * 1000) / timescale
      run.sequence++
      this.counters.fragments++
      this.backoffMs = this.restartInitialMs
      this.emit('fragment', {
        session: run.id,
        sequence: run.sequence,
        data: unit.data,
        producerTimeMs: Math.max(0, producerTimeMs),
        clockSynced: this.synced(),
        durationMs: Math.round(info.durationMs),
        keyFrame: info.keyFrame,
        decodeTime: info.decodeTime,
      })
    }
  }

  private onStderr(run: Run, chunk: Buffer): void {
    if (run !== this.run) return
    const text = this.stderrPartial + chunk.toString('utf8')
    const lines = text.split(/\r?\n|\r/)
    this.stderrPartial = lines.pop()!.slice(-STDERR_LINE_MAX)
    for (const line of lines) {
      if (!line.trim()) continue
      this.stderrRing.push(line.length > STDERR_LINE_MAX ? `${line.slice(0, STDERR_LINE_MAX)}…` : line)
    }
    if (this.stderrRing.length > this.stderrLineCount) this.stderrRing.splice(0, this.stderrRing.length - this.stderrLineCount)
  }

  /** The camera ends a run itself: ffmpeg is killed, and the run finishes when it has exited. */
  private end(run: Run, reason: RestartReason, message: string): void {
    if (run.finished || run.ending) return
    run.ending = { reason, message }
    run.cancelStall()
    run.child.kill('SIGKILL')
  }

  /**
   * ffmpeg has exited. A run the camera ended is over now; one that ended by itself is read to the
   * end of its output first ('close'), unless something else holds its pipes open past a grace.
   */
  private onExit(run: Run): void {
    run.exited = true
    if (run.ending) return this.finish(run, run.ending.reason, run.ending.message)
    const drain = setTimeout(() => { run.child.stdout?.destroy(); run.child.stderr?.destroy() }, STOP_GRACE_MS)
    void run.closed.then(() => clearTimeout(drain))
  }

  private onClose(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    run.markClosed()
    if (run.finished) return
    if (run.ending) return this.finish(run, run.ending.reason, run.ending.message)
    if (this.input.kind === 'v4l2' && !existsSync(this.input.device)) {
      return this.finish(run, 'absent', `${this.input.device} went away (camera unplugged)`)
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
    const last = this.stderr.slice(-5).join(' | ')
    this.finish(run, 'exited', `ffmpeg ${how}${last ? `: ${last}` : ''}`)
  }

  private finish(run: Run, reason: RestartReason, message: string): void {
    if (run.finished) return
    run.finished = true
    run.cancelStall()
    if (this.run === run) this.run = null
    if (this.stopped) {
      this.state = 'stopped'
      return
    }
    this.schedule(run.session?.id ?? null, reason, message)
  }

  private schedule(session: bigint | null, reason: RestartReason, message: string): void {
    const delayMs = this.backoffMs
    this.backoffMs = Math.min(this.restartMaxMs, this.backoffMs * 2)
    this.restarts[reason]++
    this.lastError = `${reason}: ${message}`
    this.state = 'backoff'
    this.cancelRetry = this.clock.after(delayMs, () => this.launch())
    this.emit('restart', { reason, message, session, delayMs })
  }
}
