/**
 * A real agent with a real synthetic camera (ffmpeg, real time) against a real relay: the camera's
 * figures in `/status` and `/metrics`, fragments persisted by the relay and gone from the buffer,
 * a killed ffmpeg restarted as a new session, and a stop that leaves no ffmpeg behind. (The long
 * runs and kill -9 of the relay are the end-to-end tests'.)
 */
import t from 'tap'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { validateAgentConfig } from '../../agent/config.js'
import { startAgent } from '../../agent/agent.js'
import { loadCodec } from '../../hardware/index.js'
import { testRelay } from '../helpers/relay.js'
import { storedFragments } from '../helpers/video.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}
const hasFfmpeg = (() => { try { execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' }); return true } catch { return false } })()

t.test('a synthetic camera on a real agent: fragments reach the relay, status and metrics say so, and a killed ffmpeg is a new session', { skip: hasFfmpeg ? false : 'ffmpeg is not installed' }, async (t) => {
  const relay = await testRelay(t)
  const dir = tempDir(t)
  const config = validateAgentConfig({
    device: 'edge-cam', relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` }, outbox: { path: join(dir, 'outbox.db'), commitIntervalMs: 5 },
    status: { port: 0 }, streams: {},
    sources: [{ type: 'camera', name: 'yard', stream: 'yard-cam', width: 160, height: 120, fps: 10, bitrateKbps: 150, fragmentMs: 1000 }],
  })
  const agent = await startAgent(config, { log: () => {}, codec: loadCodec(process.env), camera: { restartInitialMs: 200 } })
  let stopped = false
  t.teardown(async () => { if (!stopped) await agent.stop() })
  await until('three fragments are persisted', () => (agent.status().video?.cameras.yard?.fragments.persisted ?? 0) >= 3)
  const status = await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json() as { video: { dir: string; cameras: Record<string, Record<string, unknown>> } }
  t.equal(status.video.dir, join(dir, 'video'), 'the buffer is beside the outbox')
  t.match(status.video.cameras.yard, {
    stream: 'yard-cam', input: 'synthetic', state: 'running', sessions: 1, restarts: { exited: 0, hung: 0, absent: 0, invalid: 0 },
    fragments: { captured: Number, stored: Number, sent: Number, persisted: Number }, dropped: {}, errors: {}, timeouts: 0,
    backlog: { fragments: Number, bytes: Number, seconds: Number }, oldestAgeSeconds: Number,
  })
  const yard = status.video.cameras.yard as { fragments: { captured: number; persisted: number }; backlog: { fragments: number } }
  t.ok(yard.fragments.captured >= yard.fragments.persisted && yard.backlog.fragments <= 2, `captured ${yard.fragments.captured}, persisted ${yard.fragments.persisted}, ${yard.backlog.fragments} buffered: live video does not pile up`)
  const metrics = await (await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`)).text()
  for (const name of ['tributary_agent_video_fragments_captured_total', 'tributary_agent_video_fragments_persisted_total', 'tributary_agent_video_fragments_sent_total', 'tributary_agent_video_backlog_fragments', 'tributary_agent_video_backlog_seconds', 'tributary_agent_video_capturing']) {
    t.match(metrics, new RegExp(`^${name}\\{camera="yard"\\} \\d`, 'm'), name)
  }
  t.match(metrics, /^tributary_agent_video_capturing\{camera="yard"\} 1$/m, 'capturing')
  const persisted = Number(/^tributary_agent_video_fragments_persisted_total\{camera="yard"\} (\d+)/m.exec(metrics)![1])
  t.ok(persisted >= 3, `${persisted} persisted by the metrics`)
  const stored = storedFragments(relay.config.dataDir, 'yard-cam')
  t.ok(stored.length >= 3 && stored.every((f) => f.device === 'edge-cam' && f.keyFrame), `${stored.length} fragments on the relay, each starting on a key frame`)
  // ffmpeg killed: a new session with its own init segment; both sessions' fragments reach the relay.
  process.kill(agent.video!.cameras.get('yard')!.pid!, 'SIGKILL')
  await until('a second session delivers', () => new Set(storedFragments(relay.config.dataDir, 'yard-cam').map((f) => f.session)).size === 2)
  t.match(agent.status().video?.cameras.yard, { sessions: 2, restarts: { exited: 1 } }, 'the restart is counted by reason')
  t.match(await (await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`)).text(), /^tributary_agent_video_restarts_total\{camera="yard",reason="exited"\} 1$/m)
  const pid = agent.video!.cameras.get('yard')!.pid!
  t.ok(pid > 0, 'ffmpeg runs')
  await agent.stop()
  stopped = true
  t.notOk(existsSync(`/proc/${pid}`), 'stop() leaves no ffmpeg behind')
})
