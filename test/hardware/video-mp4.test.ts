/**
 * The fragmented-MP4 splitter and readers, on real ffmpeg output (FIELD-NOTES' command, testsrc2
 * 320x240@15, 2 s key-frame fragments) and on damaged, garbage and oversized boxes.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import {
  Mp4Error, Mp4Splitter, isSyncSample, ntpToUnixMs, parseFragment, parseInit, type Mp4Unit,
} from '../../hardware/index.js'
import { probe } from './video-fixtures.js'

const run = promisify(execFile)

/** 6 s of the synthetic source as the camera encodes it: 3 fragments of 2 s. */
async function ffmpegOutput(seconds: number): Promise<{ bytes: Buffer; startMs: number; endMs: number }> {
  const startMs = Date.now()
  const { stdout } = await run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-force_key_frames', 'expr:gte(t,n_forced*2)', '-bf', '0',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof+skip_trailer', '-write_prft', 'wallclock', '-an', '-f', 'mp4', 'pipe:1',
  ], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  return { bytes: stdout, startMs, endMs: Date.now() }
}

/** A seeded PRNG (mulberry32), so a failing chunking can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function feed(bytes: Buffer, sizes: () => number): Mp4Unit[] {
  const s = new Mp4Splitter()
  const units: Mp4Unit[] = []
  let maxHeld = 0
  for (let i = 0; i < bytes.length;) {
    const n = Math.max(1, Math.min(bytes.length - i, sizes()))
    units.push(...s.push(bytes.subarray(i, i + n)))
    maxHeld = Math.max(maxHeld, s.bufferedBytes)
    i += n
  }
  s.end()
  return units
}

function errorOf(fn: () => unknown): Mp4Error {
  try { fn() } catch (err) { if (err instanceof Mp4Error) return err; throw err }
  throw new Error('expected an Mp4Error; nothing was thrown')
}

/** A box of `type` around the payloads. */
function box(type: string, ...payloads: Buffer[]): Buffer {
  const body = Buffer.concat(payloads)
  const head = Buffer.alloc(8)
  head.writeUInt32BE(8 + body.length, 0)
  head.write(type, 4, 'latin1')
  return Buffer.concat([head, body])
}
const u32 = (...values: number[]) => { const b = Buffer.alloc(4 * values.length); values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i)); return b }
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b }

/** Top-level boxes of a buffer: [type, start, size]. */
function topBoxes(b: Buffer): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = []
  for (let at = 0; at + 8 <= b.length;) {
    const size = b.readUInt32BE(at)
    out.push([b.toString('latin1', at + 4, at + 8), at, size])
    at += size
  }
  return out
}

/** Finds `type` (a four-character string) inside b, from `from`, and returns the offset of its size field. */
function find(b: Buffer, type: string, from = 0): number {
  const at = b.indexOf(type, from, 'latin1')
  if (at < 4) throw new Error(`no ${type}`)
  return at - 4
}

t.test('real ffmpeg output', async (t) => {
  const { bytes, startMs, endMs } = await ffmpegOutput(6)
  const units = feed(bytes, () => bytes.length)

  t.test('splits into the init segment and one unit per fragment, byte for byte', async (t) => {
    t.same(units.map((u) => u.kind), ['init', 'fragment', 'fragment', 'fragment'])
    t.ok(Buffer.concat(units.map((u) => u.data)).equals(bytes), 'the units laid end to end are the stream')
    const types = topBoxes(bytes).map(([type]) => type)
    t.same(types.slice(0, 2), ['ftyp', 'moov'])
    const init = units[0]!
    t.same(topBoxes(init.data).map(([type]) => type), ['ftyp', 'moov'], 'the init segment is ftyp + moov exactly')
    for (const u of units.slice(1)) t.same(topBoxes(u.data).map(([type]) => type), ['prft', 'moof', 'mdat'], 'a fragment is prft moof mdat')
  })

  t.test('the init segment names the track as ffmpeg wrote it', async (t) => {
    const init = units[0]!
    if (init.kind !== 'init') return t.fail('not init')
    t.equal(init.info.width, 320)
    t.equal(init.info.height, 240)
    t.equal(init.info.timescale, 15360, 'libx264 at 15 fps: 1024 ticks a frame')
    t.match(init.info.codec, /^avc1\.42C0[0-9A-F]{2}$/, `constrained baseline (${init.info.codec})`)
    t.equal(init.info.trackId, 1)
    t.same(parseInit(init.data), init.info, 'parseInit reads the same alone')
    t.same(parseInit(init.data.subarray(find(init.data, 'moov'))), init.info, 'moov without ftyp reads the same')
  })

  t.test('fragments: key frames, durations that add up, continuous decode times, prft near the wall clock', async (t) => {
    let expectedDecode = 0n
    let totalMs = 0
    for (const u of units.slice(1)) {
      if (u.kind !== 'fragment') return t.fail('not a fragment')
      t.equal(u.info.keyFrame, true, `fragment ${u.info.sequenceNumber} starts on a key frame`)
      t.equal(u.info.decodeTime, expectedDecode, 'its decode time follows the last one')
      t.equal(u.info.durationMs, 2000, 'about 2 s: 30 frames')
      t.equal(u.info.sampleCount, 30)
      t.ok(u.info.prftTimeMs! >= startMs - 1000 && u.info.prftTimeMs! <= endMs + 1000, `prft ${u.info.prftTimeMs} within the run [${startMs}, ${endMs}]`)
      t.equal(u.info.prftMediaTime, u.info.decodeTime, 'prft belongs to the first sample')
      expectedDecode += BigInt(u.info.duration)
      totalMs += u.info.durationMs
      t.same(parseFragment(u.data, 15360), u.info, 'the timescale alone is enough for ffmpeg\'s fragments (tfhd carries the defaults)')
    }
    t.equal(totalMs, 6000, 'durations add up to the 6 s captured')
  })

  t.test('byte by byte and in random chunk sizes gives the same units', async (t) => {
    const one = feed(bytes, () => 1)
    t.same(one, units, 'one byte at a time')
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = prng(seed)
      const chunked = feed(bytes, () => 1 + Math.floor(r() ** 3 * 70_000))
      t.same(chunked, units, `random chunks, seed ${seed}`)
    }
  })

  t.test('init + any later fragment decodes cleanly with ffprobe', async (t) => {
    const whole = await probe(Buffer.concat(units.map((u) => u.data)))
    t.equal(whole.errors, '', 'no errors over the whole stream')
    t.equal(whole.frames, 90, '6 s at 15 fps')
    const late = await probe(Buffer.concat([units[0]!.data, units[2]!.data, units[3]!.data]))
    t.equal(late.errors, '', 'starting at the second fragment: no errors (it starts on a key frame)')
    t.equal(late.frames, 60)
  })

  t.test('the splitter holds one unit at most', async (t) => {
    const s = new Mp4Splitter()
    let maxHeld = 0
    for (let i = 0; i < bytes.length; i += 4096) {
      s.push(bytes.subarray(i, i + 4096))
      maxHeld = Math.max(maxHeld, s.bufferedBytes)
    }
    const largest = Math.max(...units.map((u) => u.data.length))
    t.ok(maxHeld <= largest, `held at most ${maxHeld} bytes (largest unit ${largest})`)
    t.equal(s.bufferedBytes, 0, 'nothing held between units')
  })

  t.test('a stream cut anywhere inside a unit ends as truncated; the units before it stand', async (t) => {
    const boxes = topBoxes(bytes)
    const lastMdat = boxes[boxes.length - 1]!
    for (const cut of [lastMdat[1] + 100, lastMdat[1] + 3, lastMdat[1], boxes[3]![1] + 20]) {
      const s = new Mp4Splitter()
      const got = s.push(bytes.subarray(0, cut))
      t.ok(got.length >= 1 && got.every((u, i) => u.data.equals(units[i]!.data)), `cut at ${cut}: ${got.length} whole units first`)
      const err = errorOf(() => s.end())
      t.equal(err.code, 'MP4_TRUNCATED', err.message)
    }
    t.equal(errorOf(() => parseInit(units[0]!.data.subarray(0, 200))).code, 'MP4_TRUNCATED', 'parseInit on a cut init')
    t.equal(errorOf(() => parseFragment(units[1]!.data.subarray(0, 1000), 15360)).code, 'MP4_TRUNCATED', 'parseFragment on a cut fragment')
  })

  t.test('boxes out of order are refused', async (t) => {
    const init = units[0]!.data
    const frag = units[1]!.data
    const moof = frag.subarray(find(frag, 'moof'))
    const mdat = frag.subarray(find(frag, 'mdat', find(frag, 'moof') + 8))
    const cases: Array<[string, Buffer]> = [
      ['a fragment before the init segment', frag],
      ['moov without ftyp', init.subarray(find(init, 'moov'))],
      ['a second init segment', Buffer.concat([init, frag, init])],
      ['mdat without moof', Buffer.concat([init, mdat])],
      ['two moofs', Buffer.concat([init, moof.subarray(0, moof.readUInt32BE(0)), moof])],
      ['an unknown top-level box', Buffer.concat([init, box('zzzz', Buffer.alloc(4))])],
    ]
    for (const [name, b] of cases) {
      const err = errorOf(() => new Mp4Splitter().push(b))
      t.equal(err.code, 'MP4_UNEXPECTED_BOX', `${name}: ${err.message}`)
    }
    const s = new Mp4Splitter()
    s.push(Buffer.concat([init, box('free', Buffer.alloc(100))]))
    t.equal(s.push(frag).length, 1, 'a free box between fragments is skipped')
  })

  t.test('a key frame is read from trun, and a non-key first sample is reported', async (t) => {
    const frag = Buffer.from(units[2]!.data)
    const trun = find(frag, 'trun')
    // ffmpeg's trun: flags 0x205 (data offset, first sample flags, sizes): first_sample_flags at +16.
    t.equal(frag.readUInt32BE(trun + 8) & 0xffffff, 0x205)
    t.equal(frag.readUInt32BE(trun + 20), 0x02000000, 'sample_depends_on = 2')
    frag.writeUInt32BE(0x01010000, trun + 20)
    t.equal(parseFragment(frag, 15360).keyFrame, false)
  })

  t.test('garbage sizes in a real fragment are refused without allocation or a long loop', async (t) => {
    const frag = Buffer.from(units[1]!.data)
    const trun = find(frag, 'trun')
    frag.writeUInt32BE(0xffffffff, trun + 12)
    const started = performance.now()
    t.equal(errorOf(() => parseFragment(frag, 15360)).code, 'MP4_TRUNCATED', 'a sample count past its box')
    t.ok(performance.now() - started < 50)
    const moved = Buffer.from(units[1]!.data)
    moved.writeInt32BE(1_000_000, trun + 16)
    t.equal(errorOf(() => parseFragment(moved, 15360)).code, 'MP4_BAD_FRAGMENT', 'samples outside mdat')
    const badInit = Buffer.from(units[0]!.data)
    badInit.write('hvc1', find(badInit, 'avc1') + 4, 'latin1')
    t.equal(errorOf(() => parseInit(badInit)).code, 'MP4_UNSUPPORTED_CODEC', 'not H.264')
    const zeroScale = Buffer.from(units[0]!.data)
    zeroScale.writeUInt32BE(0, find(zeroScale, 'mdhd') + 8 + 4 + 8)
    t.equal(errorOf(() => parseInit(zeroScale)).code, 'MP4_BAD_INIT', 'timescale 0')
    t.equal(errorOf(() => parseInit(units[1]!.data)).code, 'MP4_BAD_INIT', 'a fragment is not an init segment')
    t.equal(errorOf(() => parseFragment(units[0]!.data, 15360)).code, 'MP4_BAD_FRAGMENT', 'an init segment is not a fragment')
  })
})

t.test('box headers that cannot be are refused as they arrive, before anything is held', async (t) => {
  const ftyp = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2avc1mp41', 'latin1'))
  const header = (size: number, type: string) => { const b = Buffer.alloc(8); b.writeUInt32BE(size); b.write(type, 4, 'latin1'); return b }
  const cases: Array<[string, Buffer, string]> = [
    ['17 MiB', header(17 * 1024 * 1024, 'ftyp'), 'MP4_TOO_LARGE'],
    ['a 64-bit size of 2^40', Buffer.concat([header(1, 'ftyp'), u64(2n ** 40n)]), 'MP4_TOO_LARGE'],
    ['size 4', header(4, 'ftyp'), 'MP4_BAD_BOX'],
    ['size 0 (to end of file)', header(0, 'ftyp'), 'MP4_BAD_BOX'],
    ['a type that is not text', Buffer.from([0, 0, 0, 16, 0xff, 0, 1, 2]), 'MP4_BAD_BOX'],
    ['a moov that would pass the limit with its ftyp', Buffer.concat([ftyp, header(16 * 1024 * 1024 - 8, 'moov')]), 'MP4_TOO_LARGE'],
  ]
  for (const [name, bytes, code] of cases) {
    const s = new Mp4Splitter()
    const err = errorOf(() => s.push(bytes))
    t.equal(err.code, code, `${name}: ${err.message}`)
    t.equal(s.bufferedBytes, 0, 'nothing held')
    t.equal(errorOf(() => s.push(Buffer.alloc(1))), err, 'the splitter stays failed')
  }
  const small = new Mp4Splitter({ maxBytes: 1000 })
  t.equal(errorOf(() => small.push(header(1001, 'ftyp'))).code, 'MP4_TOO_LARGE', 'the limit is configurable')
  t.throws(() => new Mp4Splitter({ maxBytes: -1 }), RangeError)
})

t.test('random garbage is refused with an Mp4Error, never more', async (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = prng(seed)
    const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 4000) }, () => Math.floor(r() * 256)))
    const s = new Mp4Splitter()
    try {
      s.push(bytes)
      s.end()
      t.fail(`seed ${seed}: garbage accepted`)
    } catch (err) {
      if (!(err instanceof Mp4Error)) throw err
    }
    t.ok(s.bufferedBytes <= 16, `seed ${seed}: nothing held`)
    t.throws(() => parseInit(bytes), Mp4Error)
    t.throws(() => parseFragment(bytes, 90000), Mp4Error)
  }
  const text = Buffer.from('Input #0, lavfi, from testsrc2:\n  Duration: N/A\n')
  t.equal(errorOf(() => new Mp4Splitter().push(text)).code, 'MP4_TOO_LARGE', 'text: its first four bytes as a size')
})

t.test('fragments built by hand: tfhd and trex defaults, tfdt v0, no prft', async (t) => {
  /** A moof with one traf: tfhd (flags, fields), tfdt v0, trun (flags, samples) + an mdat of `data` bytes. */
  const fragment = (tfhdFlags: number, tfhdFields: number[], trunFlags: number, samples: number[][], data: number, firstFlags?: number) => {
    const trunFields = [samples.length]
    const build = (offset: number) => box('moof',
      box('mfhd', u32(0, 7)),
      box('traf',
        box('tfhd', u32(tfhdFlags | 0x020000, 1, ...tfhdFields)),
        box('tfdt', u32(0, 12345)),
        box('trun', u32(trunFlags | 1, ...trunFields, offset, ...(firstFlags === undefined ? [] : [firstFlags]), ...samples.flat()))))
    const moof = build(0)
    return Buffer.concat([build(moof.length + 8), box('mdat', Buffer.alloc(data))])
  }
  const track = { trackId: 1, timescale: 1000, defaultSampleDuration: 40, defaultSampleSize: 10, defaultSampleFlags: 0x01010000 }
  // trun with sizes only; durations and flags from trex; first sample flags given.
  const a = parseFragment(fragment(0, [], 0x200 | 0x4, [[10], [10], [10]], 30, 0x02000000), track)
  t.same({ d: a.duration, ms: a.durationMs, n: a.sampleCount, key: a.keyFrame, dt: a.decodeTime, seq: a.sequenceNumber, p: a.prftTimeMs },
    { d: 120, ms: 120, n: 3, key: true, dt: 12345n, seq: 7, p: null })
  // Every sample defaulted (no per-sample fields): trex durations, sizes and flags; not a key frame.
  const b = parseFragment(fragment(0, [], 0, [[], [], [], []], 40), track)
  t.same({ d: b.duration, key: b.keyFrame, n: b.sampleCount }, { d: 160, key: false, n: 4 })
  // tfhd defaults win over trex.
  const c = parseFragment(fragment(0x08 | 0x20, [33, 0x02000000], 0x200, [[5], [5]], 10), track)
  t.same({ d: c.duration, key: c.keyFrame }, { d: 66, key: true })
  // Per-sample durations and flags.
  const d = parseFragment(fragment(0, [], 0x100 | 0x200 | 0x400, [[50, 4, 0x00010000], [70, 4, 0]], 8), track)
  t.same({ d: d.duration, key: d.keyFrame }, { d: 120, key: false })
  // Durations from nowhere: an error, not a zero.
  t.equal(errorOf(() => parseFragment(fragment(0, [], 0x200, [[5]], 5), 1000)).code, 'MP4_BAD_FRAGMENT')
  // A fragment with no samples.
  t.equal(errorOf(() => parseFragment(fragment(0, [], 0x200, [], 0), track)).code, 'MP4_BAD_FRAGMENT')
  // Sizes that run past mdat.
  t.equal(errorOf(() => parseFragment(fragment(0, [], 0x200, [[10], [10]], 15), track)).code, 'MP4_BAD_FRAGMENT')
  // A huge sample count with every field defaulted costs no loop, and is caught by the mdat check.
  const started = performance.now()
  const huge = fragment(0, [], 0, [], 0)
  huge.writeUInt32BE(0xffffffff, find(huge, 'trun') + 12)
  t.equal(errorOf(() => parseFragment(huge, track)).code, 'MP4_BAD_FRAGMENT')
  t.ok(performance.now() - started < 50, 'at once')
})

t.test('sync samples and NTP times', async (t) => {
  t.equal(isSyncSample(0x02000000), true, 'depends on no other')
  t.equal(isSyncSample(0x01010000), false, 'depends on others, non-sync')
  t.equal(isSyncSample(0x00010000), false, 'non-sync')
  t.equal(isSyncSample(0x00000000), true, 'no flags: sync')
  t.equal(isSyncSample(0x01000000), false, 'depends on others')
  t.equal(ntpToUnixMs(3_155_673_600n << 32n), 946_684_800_000, '2000-01-01')
  t.equal(ntpToUnixMs((3_155_673_600n << 32n) | 0x8000_0000n), 946_684_800_500, 'half a second of fraction')
  t.equal(ntpToUnixMs(0n), null, 'before 1970')
})
