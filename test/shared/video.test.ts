/**
 * The video chunk frame (shared/video.ts): fragments of any size travel as chunks and come back
 * whole; every malformed chunk payload is refused with a VideoFrameError naming the problem, and
 * nothing else (a fuzz loop over random damage to valid chunks).
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { codec } from '../../hardware/index.js'
import {
  CHUNK_HEADER_SIZE, MAX_CHUNK_DATA, MAX_CHUNK_PAYLOAD, MAX_CHUNKS, MAX_FRAGMENT_BYTES, V_OFF_CHUNK_COUNT, V_OFF_CHUNK_INDEX, V_OFF_CHUNK_LENGTH,
  V_OFF_CHUNK_OFFSET, V_OFF_FLAGS, V_OFF_FRAGMENT_BYTES, V_OFF_HEADER_LENGTH, V_OFF_MAGIC, V_OFF_PRODUCER_TIME, V_OFF_SEQUENCE, V_OFF_VERSION,
  VideoFlag, VideoFrameError, VideoFrameProblem, chunkCountOf, decodeVideoChunk, encodeFragmentChunks, type FragmentHeader, type VideoChunk,
} from '../../shared/video.js'

const headerOf = (fragment: Buffer, over: Partial<FragmentHeader> = {}): FragmentHeader => ({
  session: 0xfedcba9876543210n, sequence: 7, init: false, keyFrame: true, clockSynced: true,
  fragmentBytes: fragment.length, crc32c: codec.crc32c(fragment), producerTimeMs: 1_800_000_000_123.5, durationMs: 2000, ...over,
})

/** Decodes every chunk and puts the fragment back together from the chunks' own offsets. */
function reassemble(chunks: Buffer[]): { fragment: Buffer; decoded: VideoChunk[] } {
  const decoded = chunks.map((c) => decodeVideoChunk(c))
  const fragment = Buffer.alloc(decoded[0]!.fragmentBytes)
  for (const c of decoded) fragment.set(c.data, c.chunkOffset)
  return { fragment, decoded }
}

t.test('a fragment comes back whole from its chunks, at every size that matters', async (t) => {
  const sizes = [1, 1000, MAX_CHUNK_DATA - 1, MAX_CHUNK_DATA, MAX_CHUNK_DATA + 1, 2 * MAX_CHUNK_DATA, 2 * MAX_CHUNK_DATA + 1, Math.floor(3.5 * MAX_CHUNK_DATA), MAX_FRAGMENT_BYTES]
  for (const size of sizes) {
    const fragment = randomBytes(size)
    const header = headerOf(fragment)
    const chunks = encodeFragmentChunks(header, fragment)
    t.equal(chunks.length, chunkCountOf(size), `${size} bytes: ${chunkCountOf(size)} chunks`)
    t.ok(chunks.every((c) => c.length <= MAX_CHUNK_PAYLOAD), `${size} bytes: every chunk fits the 96 KiB payload`)
    const { fragment: back, decoded } = reassemble(chunks)
    t.ok(back.equals(fragment), `${size} bytes: the bytes come back`)
    t.equal(codec.crc32c(back), header.crc32c)
    decoded.forEach((c, i) => {
      t.equal(c.chunkIndex, i)
      t.equal(c.chunkCount, chunks.length)
      t.equal(c.session, header.session)
      t.equal(c.sequence, header.sequence)
      t.equal(c.fragmentBytes, size)
      t.equal(c.crc32c, header.crc32c)
      t.equal(c.producerTimeMs, header.producerTimeMs)
      t.equal(c.durationMs, 2000)
      t.equal(c.keyFrame, true)
      t.equal(c.clockSynced, true)
      t.equal(c.init, false)
    })
  }
  t.equal(chunkCountOf(MAX_FRAGMENT_BYTES), MAX_CHUNKS)
})

t.test('header fields keep their extremes: the largest session and sequence, the init segment, flags off', async (t) => {
  const fragment = randomBytes(500)
  const init = decodeVideoChunk(encodeFragmentChunks(headerOf(fragment, { sequence: 0, init: true, keyFrame: false, clockSynced: false, session: 2n ** 64n - 1n, durationMs: 0, producerTimeMs: 0 }), fragment)[0]!)
  t.same({ session: init.session, sequence: init.sequence, init: init.init, keyFrame: init.keyFrame, clockSynced: init.clockSynced, durationMs: init.durationMs, producerTimeMs: init.producerTimeMs },
    { session: 2n ** 64n - 1n, sequence: 0, init: true, keyFrame: false, clockSynced: false, durationMs: 0, producerTimeMs: 0 })
  const last = decodeVideoChunk(encodeFragmentChunks(headerOf(fragment, { sequence: Number.MAX_SAFE_INTEGER, durationMs: 2 ** 32 - 1 }), fragment)[0]!)
  t.equal(last.sequence, Number.MAX_SAFE_INTEGER)
  t.equal(last.durationMs, 2 ** 32 - 1)
})

t.test('the encoder refuses a header that does not describe its fragment', async (t) => {
  const fragment = randomBytes(10)
  t.throws(() => encodeFragmentChunks(headerOf(fragment, { fragmentBytes: 11 }), fragment), RangeError)
  t.throws(() => encodeFragmentChunks(headerOf(Buffer.alloc(0)), Buffer.alloc(0)), RangeError)
  t.throws(() => encodeFragmentChunks(headerOf(fragment, { sequence: 0 }), fragment), RangeError, 'sequence 0 without the init flag')
  t.throws(() => encodeFragmentChunks(headerOf(fragment, { init: true }), fragment), RangeError, 'the init flag on sequence 7')
  t.throws(() => encodeFragmentChunks(headerOf(fragment, { sequence: -1 }), fragment), RangeError)
  t.throws(() => encodeFragmentChunks(headerOf(fragment, { sequence: 1.5 }), fragment), RangeError)
})

/** A valid chunk payload (chunk `index` of a 3-chunk fragment) to damage. */
function validChunk(index = 1): Buffer {
  const fragment = randomBytes(2 * MAX_CHUNK_DATA + 100)
  return encodeFragmentChunks(headerOf(fragment), fragment)[index]!
}

function expectProblem(t: Test, payload: Uint8Array, code: VideoFrameProblem, why: string, pattern?: RegExp) {
  try {
    decodeVideoChunk(payload)
    t.fail(`${why}: decoded`)
  } catch (err) {
    if (!(err instanceof VideoFrameError)) throw err
    t.equal(err.code, code, why)
    t.equal(err.name, 'VideoFrameError')
    if (pattern) t.match(err.message, pattern, `${why}: the message names it`)
  }
}

t.test('each malformed chunk is refused with its own code', async (t) => {
  const good = validChunk()
  const damaged = (change: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good)
    change(b)
    return b
  }
  for (const length of [0, 1, 2, CHUNK_HEADER_SIZE - 1]) expectProblem(t, good.subarray(0, length), VideoFrameProblem.TRUNCATED, `${length} bytes`, /64-byte header/)
  expectProblem(t, damaged((b) => { b[V_OFF_MAGIC] = 0x00 }), VideoFrameProblem.BAD_MAGIC, 'first magic byte', /magic/)
  expectProblem(t, damaged((b) => { b[V_OFF_MAGIC + 1] = 0x57 }), VideoFrameProblem.BAD_MAGIC, 'second magic byte', /magic/)
  expectProblem(t, damaged((b) => { b[V_OFF_VERSION] = 2 }), VideoFrameProblem.BAD_VERSION, 'version 2', /version 2/)
  expectProblem(t, damaged((b) => { b[V_OFF_VERSION] = 0 }), VideoFrameProblem.BAD_VERSION, 'version 0', /version 0/)
  expectProblem(t, damaged((b) => { b[V_OFF_FLAGS]! |= 0x08 }), VideoFrameProblem.BAD_FIELD, 'an unknown flag', /flags 0x/)
  expectProblem(t, damaged((b) => b.writeUInt16LE(72, V_OFF_HEADER_LENGTH)), VideoFrameProblem.BAD_FIELD, 'header length 72', /header length 72/)
  expectProblem(t, damaged((b) => b.writeUInt16LE(0, V_OFF_HEADER_LENGTH)), VideoFrameProblem.BAD_FIELD, 'header length 0', /header length 0/)
  expectProblem(t, damaged((b) => b.writeBigUInt64LE(2n ** 53n, V_OFF_SEQUENCE)), VideoFrameProblem.BAD_FIELD, 'sequence past 2^53-1', /2\^53-1/)
  expectProblem(t, damaged((b) => b.writeBigUInt64LE(0n, V_OFF_SEQUENCE)), VideoFrameProblem.BAD_FIELD, 'sequence 0 without the init flag', /init flag/)
  expectProblem(t, damaged((b) => { b[V_OFF_FLAGS]! |= VideoFlag.init }), VideoFrameProblem.BAD_FIELD, 'the init flag on sequence 7', /init segment must be sequence 0/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(0, V_OFF_FRAGMENT_BYTES)), VideoFrameProblem.BAD_FIELD, 'fragment size 0', /fragment size 0/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(MAX_FRAGMENT_BYTES + 1, V_OFF_FRAGMENT_BYTES)), VideoFrameProblem.BAD_FIELD, 'fragment over 16 MiB', /outside/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(4, V_OFF_CHUNK_COUNT)), VideoFrameProblem.BAD_FIELD, 'chunk count 4 for a 3-chunk size', /travels in 3 chunks, not 4/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(MAX_CHUNK_DATA, V_OFF_FRAGMENT_BYTES)), VideoFrameProblem.BAD_FIELD, 'size of 1 chunk with count 3', /travels in 1 chunks, not 3/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(3, V_OFF_CHUNK_INDEX)), VideoFrameProblem.BAD_FIELD, 'index = count', /chunk 3 of 3/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(2 ** 32 - 1, V_OFF_CHUNK_INDEX)), VideoFrameProblem.BAD_FIELD, 'index 2^32-1', /of 3/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(0, V_OFF_CHUNK_OFFSET)), VideoFrameProblem.BAD_FIELD, 'offset of chunk 0 on chunk 1', /must cover/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(MAX_CHUNK_DATA + 1, V_OFF_CHUNK_OFFSET)), VideoFrameProblem.BAD_FIELD, 'offset one byte late', /must cover/)
  expectProblem(t, damaged((b) => b.writeUInt32LE(MAX_CHUNK_DATA - 1, V_OFF_CHUNK_LENGTH)), VideoFrameProblem.TRUNCATED, 'length field one short of the payload', /does not match the payload/)
  expectProblem(t, good.subarray(0, good.length - 1), VideoFrameProblem.TRUNCATED, 'payload one byte short', /does not match the payload/)
  expectProblem(t, Buffer.concat([good, Buffer.alloc(1)]), VideoFrameProblem.TRUNCATED, 'payload one byte long', /does not match the payload/)
  // A shorter middle chunk whose length field agrees with its payload: still not what chunk 1 must cover.
  const short = Buffer.concat([good.subarray(0, good.length - 10)])
  short.writeUInt32LE(MAX_CHUNK_DATA - 10, V_OFF_CHUNK_LENGTH)
  expectProblem(t, short, VideoFrameProblem.BAD_FIELD, 'a middle chunk shorter than a full one', /must cover/)
  for (const time of [NaN, Infinity, -Infinity, -1]) {
    expectProblem(t, damaged((b) => b.writeDoubleLE(time, V_OFF_PRODUCER_TIME)), VideoFrameProblem.BAD_FIELD, `producer time ${time}`, /is not a time/)
  }
})

t.test('any damage to a valid chunk either decodes consistently or throws a VideoFrameError, nothing else', async (t) => {
  const chunks = [validChunk(0), validChunk(1), validChunk(2)]
  const counts = { decoded: 0, refused: 0 } as Record<string, number>
  for (let i = 0; i < 20_000; i++) {
    const base = chunks[i % 3]!
    let input: Buffer
    switch (i % 6) {
      case 0: input = base.subarray(0, Math.floor(Math.random() * (base.length + 1))); break
      case 1: { input = Buffer.from(base); const at = Math.floor(Math.random() * CHUNK_HEADER_SIZE); input[at]! ^= 1 << (i % 8); break }
      case 2: { input = Buffer.from(base); for (let k = 0; k < 4; k++) input[Math.floor(Math.random() * CHUNK_HEADER_SIZE)] = Math.floor(Math.random() * 256); break }
      case 3: input = Buffer.concat([base, randomBytes(1 + (i % 17))]); break
      case 4: input = randomBytes(Math.floor(Math.random() * 200)); break
      default: { input = Buffer.from(base); randomBytes(8).copy(input, 8 * Math.floor(Math.random() * 8)); break }
    }
    let chunk: VideoChunk
    try {
      chunk = decodeVideoChunk(input)
    } catch (err) {
      if (!(err instanceof VideoFrameError)) throw new Error(`mutation ${i} threw ${String(err)}`)
      if (!Object.values(VideoFrameProblem).includes(err.code)) throw new Error(`mutation ${i}: unknown code ${err.code}`)
      counts.refused!++
      counts[err.code] = (counts[err.code] ?? 0) + 1
      continue
    }
    counts.decoded!++
    // What decodes is consistent with itself: the chunk lies inside its fragment, in its place.
    if (chunk.chunkIndex >= chunk.chunkCount || chunk.chunkCount !== chunkCountOf(chunk.fragmentBytes)) throw new Error(`mutation ${i}: index/count inconsistent`)
    if (chunk.chunkOffset !== chunk.chunkIndex * MAX_CHUNK_DATA || chunk.chunkOffset + chunk.data.length > chunk.fragmentBytes) throw new Error(`mutation ${i}: chunk outside its fragment`)
    if (chunk.init !== (chunk.sequence === 0) || !Number.isFinite(chunk.producerTimeMs)) throw new Error(`mutation ${i}: init or time inconsistent`)
  }
  t.ok(counts.refused! > 10_000, `most damage is refused (${JSON.stringify(counts)})`)
  for (const code of Object.values(VideoFrameProblem)) t.ok((counts[code] ?? 0) > 0, `${code} seen`)
})
