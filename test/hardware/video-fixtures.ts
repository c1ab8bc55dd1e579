/**
 * Helpers for the capture tests (not a test file): ffprobe's verdict on fragmented MP4 bytes, a
 * camera's output collected until a condition holds, and executable stand-ins for ffmpeg.
 */
import { spawn } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Camera, CameraRestart, CameraSession, CapturedFragment } from '../../hardware/index.js'

/** How many frames ffprobe decodes from `bytes` (fed on stdin), and what it says at -v error. */
export async function probe(bytes: Buffer): Promise<{ frames: number; errors: string }> {
  const p = spawn('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', '-i', 'pipe:0'])
  let out = ''
  let errors = ''
  p.stdout.on('data', (d: Buffer) => { out += d.toString() })
  p.stderr.on('data', (d: Buffer) => { errors += d.toString() })
  p.stdin.on('error', () => {})
  p.stdin.end(bytes)
  const code = await new Promise<number | null>((resolve) => p.on('close', resolve))
  if (code !== 0) errors += `\nffprobe exited ${code}`
  return { frames: Number(out.trim()), errors: errors.trim() }
}

/** Everything a camera announced, in order. */
export interface Recording {
  sessions: CameraSession[]
  fragments: CapturedFragment[]
  restarts: CameraRestart[]
  /** Resolves once `test` holds (checked after every event), or rejects after `timeoutMs` of real time. */
  until(test: (r: Recording) => boolean, timeoutMs: number, what: string): Promise<void>
}

export function record(camera: Camera): Recording {
  const waiters = new Set<() => void>()
  const r: Recording = {
    sessions: [],
    fragments: [],
    restarts: [],
    until: (test, timeoutMs, what) => new Promise<void>((resolve, reject) => {
      if (test(r)) return resolve()
      const check = () => { if (test(r)) { clearTimeout(timer); waiters.delete(check); resolve() } }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stats ${JSON.stringify(camera.stats())}; stderr ${camera.stderr.join(' | ')}`))
      }, timeoutMs)
      waiters.add(check)
    }),
  }
  const changed = () => { for (const w of [...waiters]) w() }
  camera.on('session', (s) => { r.sessions.push(s); changed() })
  camera.on('fragment', (f) => { r.fragments.push(f); changed() })
  camera.on('restart', (x) => { r.restarts.push(x); changed() })
  return r
}

/** An executable shell script at dir/name standing in for ffmpeg (it gets ffmpeg's arguments). */
export function fakeFfmpeg(dir: string, name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}

/** Whether a process id is alive. */
export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}
