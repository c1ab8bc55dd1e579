/**
 * Served HLS fragments carry the stream's clock in their tfdt (relay/video/playback/retime.ts): the
 * 64-bit decode time ffmpeg writes is set in place; a 32-bit one (version 0, which other muxers
 * write) grows to 64 bits and every size and offset across it moves, giving the very bytes the
 * 64-bit original gives. Fragments are real ffmpeg output.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { withDecodeTime } from '../../relay/video/playback/retime.js'
import { readInitTrack, readSamples } from '../../relay/video/playback/samples.js'
import { tempDir } from '../helpers/tmp.js'
import { clip } from './video-fixtures.js'

const run = promisify(execFile)

/** The same fragment with a version 0 (32-bit) tfdt: the box 4 bytes shorter, moof, traf and trun's data offset moved back. */
function toVersion0(f: Buffer): Buffer {
  const tfdt = f.indexOf('tfdt', 0, 'latin1') - 4
  const moof = f.indexOf('moof', 0, 'latin1') - 4
  const traf = f.indexOf('traf', 0, 'latin1') - 4
  const trun = f.indexOf('trun', 0, 'latin1') - 4
  if (f[tfdt + 8] !== 1) throw new Error('expected a version 1 tfdt')
  const time = f.readBigUInt64BE(tfdt + 12)
  const v0 = Buffer.alloc(16)
  v0.writeUInt32BE(16, 0)
  v0.write('tfdt', 4, 'latin1')
  v0.writeUInt32BE(0, 8)
  v0.writeUInt32BE(Number(time), 12)
  const out = Buffer.concat([f.subarray(0, tfdt), v0, f.subarray(tfdt + 20)])
  out.writeUInt32BE(out.readUInt32BE(moof) - 4, moof)
  out.writeUInt32BE(out.readUInt32BE(traf) - 4, traf)
  const at = trun < tfdt ? trun : trun - 4
  if (out.readUInt32BE(at + 8) & 1) out.writeInt32BE(out.readInt32BE(at + 16) - 4, at + 16)
  return out
}

t.test('a 64-bit tfdt is set in place; nothing else changes', async (t) => {
  const c = clip(4, 1)
  const init = readInitTrack(c.init)
  const f = c.fragments[2]!
  const moved = withDecodeTime(f, 19_456_000_000_000)
  t.equal(moved.length, f.length)
  t.equal(readSamples(moved, init.info).decodeTime, 19_456_000_000_000)
  const differing = [...moved.keys()].filter((i) => moved[i] !== f[i])
  t.ok(differing.length <= 8 && differing.every((i) => i >= f.indexOf('tfdt', 0, 'latin1') + 8), 'only the decode time\'s bytes')
  t.not(withDecodeTime(f, 5), f, 'a copy: the stored bytes are kept')
})

t.test('a 32-bit tfdt becomes 64-bit, the same bytes the 64-bit original gives, and plays', async (t) => {
  const c = clip(4, 1)
  const init = readInitTrack(c.init)
  const dir = tempDir(t)
  const out: Buffer[] = [c.init]
  for (const [i, f] of c.fragments.entries()) {
    const v0 = toVersion0(f)
    t.equal(v0.length, f.length - 4)
    t.equal(readSamples(v0, init.info).decodeTime, readSamples(f, init.info).decodeTime, 'the version 0 copy reads as the original')
    const time = 1_900_000_000 * 10_240 + i * 10_240
    const grown = withDecodeTime(v0, time)
    t.same(grown, withDecodeTime(f, time), `fragment ${i}: identical to the original's rewrite`)
    out.push(grown)
  }
  const file = join(dir, 'moved.mp4')
  writeFileSync(file, Buffer.concat(out))
  const { stdout, stderr } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames,start_time', '-of', 'json', file])
  const s = (JSON.parse(stdout) as { streams: { nb_read_frames: string; start_time: string }[] }).streams[0]!
  t.equal(s.nb_read_frames, '40')
  t.equal(Math.round(Number(s.start_time)), 1_900_000_000, 'starts at the new decode time')
  t.equal(stderr.trim(), '')
  t.throws(() => withDecodeTime(c.fragments[0]!, -1), RangeError)
})
