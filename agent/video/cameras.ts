/**
 * The agent's cameras, assembled: one Camera (one long-lived ffmpeg, hardware/video) per camera
 * source writing into the video buffer beside the outbox, and the sender that shares the uplink's
 * connection; their figures for `/status` and `/metrics`.
 */
import { Camera, type CameraOptions, type CameraStats, type Clock, type Codec } from '../../hardware/index.js'
import type { Registry } from '../../shared/metrics.js'
import type { AgentConfig, CameraSource } from '../config.js'
import type { LogFn } from '../log.js'
import { withoutCredentials } from '../log.js'
import type { Uplink } from '../uplink/index.js'
import { VideoSender, type CameraSendStats } from './sender.js'
import { VideoStore } from './store.js'
import { videoDir, videoWanted } from './wanted.js'

/** The backfill cap for a camera found in the buffer but no longer configured (its backlog still drains). */
const LEFTOVER_BACKFILL_BYTES_PER_SECOND = 1024 * 1024

/** What a test (or a device with ffmpeg elsewhere) may change about how cameras run. */
export type CameraDeps = Pick<CameraOptions, 'ffmpegPath' | 'spawn' | 'restartInitialMs' | 'restartMaxMs'>

export interface CameraStatus {
  stream: string
  input: string
  state: CameraStats['state'] | 'not-configured'
  sessions: number
  /** ffmpeg restarts by reason (exited, hung, absent, invalid). */
  restarts: Record<string, number>
  lastError: string | null
  fragments: { captured: number; stored: number; sent: number; resent: number; persisted: number; inFlight: number }
  /** Every fragment dropped since the buffer was created, by reason (cap, age, missing_file, or the relay's code). */
  dropped: Record<string, number>
  /** The relay's ERROR answers by code, and sends that had no answer in time. */
  errors: Record<string, number>
  timeouts: number
  backlog: { fragments: number; bytes: number; seconds: number }
  oldestAgeSeconds: number
}

export interface VideoStatus {
  dir: string
  cameras: Record<string, CameraStatus>
  /** A damaged buffer index moved aside at start. */
  alarms: { code: string; message: string }[]
  /** What the start-up recovery removed: files without a row, rows without their bytes. */
  recovered: { orphanFiles: number; missingFiles: number }
}

export interface Video {
  store: VideoStore
  sender: VideoSender
  cameras: Map<string, Camera>
  status(): VideoStatus
  /** Brings the counters kept by the sender up to date: call before rendering the metrics. */
  beforeScrape(): void
  /** Drops fragments past their camera's age limit. */
  expire(): void
  stop(): Promise<void>
}

export interface VideoDeps {
  config: AgentConfig
  uplink: Uplink
  clock: Clock
  log: LogFn
  codec: Pick<Codec, 'crc32c'>
  registry: Registry
  camera?: CameraDeps
}

/** The buffer directory: `video/` beside the outbox file. */
/** Null when there is no camera and no buffer left from an earlier config (`videoWanted`). */
export function startVideo(deps: VideoDeps): Video | null {
  const { config, clock, log } = deps
  const sources = config.sources.filter((s): s is CameraSource => s.type === 'camera')
  const dir = videoDir(config)
  if (!videoWanted(config)) return null
  const store = new VideoStore({
    dir, clock, log, synchronous: config.outbox.synchronous, crc32c: (b) => deps.codec.crc32c(b),
    cameras: sources.map((s) => ({ name: s.name, stream: s.stream, maxBytes: s.maxBytes, maxAgeSeconds: s.maxAgeSeconds, onFull: s.onFull })),
  })
  const byName = new Map(sources.map((s) => [s.name, s]))
  const sender = new VideoSender({
    device: config.device, store, clock, log,
    backfillBytesPerSecond: (camera) => byName.get(camera)?.backfillBytesPerSecond ?? LEFTOVER_BACKFILL_BYTES_PER_SECOND,
  })
  deps.uplink.attach(sender)
  for (const left of store.cameras().filter((c) => !byName.has(c))) {
    if (store.stats(left).fragments) log('video_camera_not_configured', { camera: left, fragments: store.stats(left).fragments, message: 'its buffered fragments are still sent' })
  }

  const { registry } = deps
  const captured = registry.counter('tributary_agent_video_fragments_captured_total', 'Fragments read from the camera, by camera.', ['camera'])
  const stored = registry.counter('tributary_agent_video_fragments_stored_total', 'Fragments committed to the video buffer, by camera.', ['camera'])
  const dropped = registry.counter('tributary_agent_video_fragments_dropped_total', 'Fragments dropped without being persisted by the relay, by camera and reason.', ['camera', 'reason'])
  const restarts = registry.counter('tributary_agent_video_restarts_total', 'ffmpeg restarts, by camera and reason (exited, hung, absent, invalid).', ['camera', 'reason'])
  const sent = registry.counter('tributary_agent_video_fragments_sent_total', 'Fragment sends whose every chunk the relay took, resends included, by camera.', ['camera'])
  const resent = registry.counter('tributary_agent_video_fragments_resent_total', 'Fragment sends after the first (no answer in time, a retryable error), by camera.', ['camera'])
  const persisted = registry.counter('tributary_agent_video_fragments_persisted_total', 'Fragments the relay persisted (and the agent then deleted), by camera.', ['camera'])
  const errors = registry.counter('tributary_agent_video_ack_errors_total', 'ERROR acknowledgements from the relay, by camera and code.', ['camera', 'code'])
  const timeouts = registry.counter('tributary_agent_video_ack_timeouts_total', 'Fragment sends the relay did not answer in time, by camera.', ['camera'])
  const perCamera = (value: (camera: string) => number) => () => store.cameras().map((camera) => ({ labels: { camera }, value: value(camera) }))
  registry.gauge('tributary_agent_video_backlog_fragments', 'Fragments in the video buffer not yet persisted by the relay, by camera.', ['camera'], perCamera((c) => store.stats(c).fragments))
  registry.gauge('tributary_agent_video_backlog_bytes', 'Bytes in the video buffer (init segments included), by camera.', ['camera'], perCamera((c) => store.stats(c).bytes))
  registry.gauge('tributary_agent_video_backlog_seconds', 'Media seconds in the video buffer, by camera.', ['camera'], perCamera((c) => store.stats(c).seconds))
  registry.gauge('tributary_agent_video_oldest_fragment_age_seconds', 'Age of the oldest buffered fragment, by camera.', ['camera'], perCamera((c) => store.stats(c).oldestAgeSeconds))
  registry.gauge('tributary_agent_video_capturing', '1 while the camera\'s ffmpeg runs and delivers (state running).', ['camera'],
    () => [...cameras].map(([camera, c]) => ({ labels: { camera }, value: c.stats().state === 'running' ? 1 : 0 })))
  registry.gauge('tributary_agent_video_in_flight_fragments', 'Fragments sent and not yet answered, by camera.', ['camera'], perCamera((c) => sender.stats(c).inFlight))
  store.on('dropped', (camera: string, reason: string, n: number) => dropped.inc({ camera, reason }, n))
  store.on('added', (f: { camera: string; init: boolean }) => { if (!f.init) stored.inc({ camera: f.camera }) })
  // The sender keeps its own tallies; the counters catch up with them before each scrape.
  const catchUp = () => {
    for (const camera of store.cameras()) {
      const s = sender.stats(camera)
      for (const [counter, value] of [[sent, s.sent], [resent, s.resent], [persisted, s.persisted], [timeouts, s.timeouts]] as const) {
        counter.inc({ camera }, Math.max(0, value - counter.get({ camera })))
      }
      for (const [code, n] of Object.entries(s.errors)) {
        const delta = n - errors.get({ camera, code })
        if (delta > 0) errors.inc({ camera, code }, delta)
      }
    }
  }

  const cameras = new Map<string, Camera>()
  const capturedBy = new Map<string, number>()
  for (const s of sources) {
    const { kind, device, width, height, fps, bitrateKbps, fragmentMs, codec, inputFormat } = s
    const camera = new Camera({ input: { kind, device, width, height, fps, bitrateKbps, fragmentMs, codec, inputFormat }, clock, stallMs: s.stallMs, ...deps.camera })
    const fail = (what: string) => (err: Error) => {
      log('video_store_failed', { camera: s.name, what, error: err.message })
      if (what === 'fragment') store.countDropped(s.name, 'storage_failed')
    }
    camera.on('session', (session) => {
      log('camera_session', { camera: s.name, session: session.id.toString(), codec: session.codec, width: session.width, height: session.height })
      store.addSession(s.name, session).catch(fail('session'))
    })
    camera.on('fragment', (f) => {
      captured.inc({ camera: s.name })
      capturedBy.set(s.name, (capturedBy.get(s.name) ?? 0) + 1)
      store.addFragment(s.name, f).catch(fail('fragment'))
    })
    camera.on('restart', (r) => {
      restarts.inc({ camera: s.name, reason: r.reason })
      log('camera_restart', { camera: s.name, reason: r.reason, message: r.message, session: r.session?.toString() ?? null, delayMs: r.delayMs })
    })
    cameras.set(s.name, camera)
    log('camera_started', { camera: s.name, stream: s.stream, input: s.kind, device: withoutCredentials(s.device), codec: s.codec, size: `${s.width}x${s.height}`, fps: s.fps })
    camera.start()
  }

  const status = (): VideoStatus => {
    const out: Record<string, CameraStatus> = {}
    for (const name of store.cameras()) {
      const source = byName.get(name)
      // A camera no longer configured is shown while it still has fragments to send.
      if (!source && store.stats(name).fragments === 0) continue
      const c = cameras.get(name)?.stats()
      const b = store.stats(name)
      const s = sender.stats(name)
      out[name] = {
        stream: store.policy(name).stream,
        input: source ? `${source.kind}${source.device ? ` ${withoutCredentials(source.device)}` : ''}` : '',
        state: c?.state ?? 'not-configured',
        sessions: c?.sessions ?? 0,
        restarts: c?.restarts ?? {},
        lastError: c?.lastError ?? null,
        fragments: { captured: capturedBy.get(name) ?? 0, stored: stored.get({ camera: name }), sent: s.sent, resent: s.resent, persisted: s.persisted, inFlight: s.inFlight },
        dropped: b.dropped,
        errors: s.errors,
        timeouts: s.timeouts,
        backlog: { fragments: b.fragments, bytes: b.bytes, seconds: b.seconds },
        oldestAgeSeconds: b.oldestAgeSeconds,
      }
    }
    return { dir, cameras: out, alarms: store.alarms, recovered: store.recovered }
  }

  return {
    store, sender, cameras, status, beforeScrape: catchUp,
    expire: () => { try { store.expire() } catch (err) { log('video_expire_failed', { error: (err as Error).message }) } },
    stop: async () => {
      await Promise.all([...cameras.values()].map((c) => c.stop()))
      sender.stop()
      await store.close()
    },
  }
}
