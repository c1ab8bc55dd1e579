/**
 * Video fragments as the relay stored them, read back from its data directory (meta.db opened read-only,
 * files under video/), and ffprobe's verdict on them: for end-to-end tests that judge the store itself,
 * not only what the API says about it.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'

export interface StoredFragment {
  id: number
  device: string
  session: string
  sequence: number
  producerMs: number
  serverMs: number
  durationMs: number
  keyFrame: boolean
  bytes: number
  file: string
}

/** Every media fragment of a video stream, in ingest order, with its session's init segment's file. */
export function storedFragments(dataDir: string, streamName: string): (StoredFragment & { initFile: string })[] {
  const db = new Database(join(dataDir, 'meta.db'), { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare(`
      SELECT f.id, f.device, f.session, f.sequence, f.producer_ms AS producerMs, f.server_ms AS serverMs, f.duration_ms AS durationMs,
             f.key_frame AS keyFrame, f.bytes, f.file, i.file AS initFile
        FROM video_fragments f
        JOIN video_streams s ON s.id = f.stream_id
        JOIN video_fragments i ON i.stream_id = f.stream_id AND i.device = f.device AND i.session = f.session AND i.sequence = 0
       WHERE s.name = ? AND f.sequence > 0
       ORDER BY f.id`).all(streamName) as (Omit<StoredFragment, 'keyFrame'> & { keyFrame: number; initFile: string })[]
    return rows.map((r) => ({ ...r, keyFrame: r.keyFrame === 1 }))
  } finally {
    db.close()
  }
}

/** The bytes of a stored fragment behind its session's init segment: a playable fMP4 file. */
export function playable(dataDir: string, f: { file: string; initFile: string }): Buffer {
  return Buffer.concat([readFileSync(join(dataDir, 'video', f.initFile)), readFileSync(join(dataDir, 'video', f.file))])
}

/** ffprobe decodes every frame of `bytes`: how many, whether the first is a key frame, and any error it prints. */
export async function decodeCheck(bytes: Buffer): Promise<{ frames: number; firstKey: boolean; errors: string }> {
  const p = spawn('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', '-i', 'pipe:0'])
  let out = ''
  let errors = ''
  p.stdout.on('data', (d: Buffer) => { out += d.toString() })
  p.stderr.on('data', (d: Buffer) => { errors += d.toString() })
  p.stdin.on('error', () => {})
  p.stdin.end(bytes)
  const code = await new Promise<number | null>((resolve) => p.on('close', resolve))
  if (code !== 0) errors += `\nffprobe exited ${code}`
  // One line per frame ("1" or "0"; a frame with side data, such as the one a prft box stamps, gets a
  // trailing comma and a blank line after it).
  const frames = out.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(',')[0])
  return { frames: frames.length, firstKey: frames[0] === '1', errors: errors.trim() }
}
