/**
 * Chunk assembly (relay/video/assembly.ts) as a pure machine on a manual clock: chunks in order make
 * the fragment; a repeat of the chunk just taken is ignored; anything else out of order drops the
 * fragment; chunk 0 again restarts it; reservations are capped per device and per relay and are
 * released by completion, refusal, discard and expiry.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { codec, manualClock } from '../../hardware/index.js'
import { MAX_CHUNK_DATA, VideoAckError, decodeVideoChunk, encodeFragmentChunks, type VideoChunk } from '../../shared/video.js'
import { Assemblies, type AssemblyLimits } from '../../relay/video/assembly.js'

const LIMITS: AssemblyLimits = { maxPerDevice: 2, maxBytesPerDevice: 1024 * 1024, maxFragments: 3, maxBytes: 2 * 1024 * 1024, timeoutMs: 10_000 }

function fragment(sequence: number, bytes = 3 * MAX_CHUNK_DATA - 10, session = 1n): { data: Buffer; chunks: VideoChunk[] } {
  const data = randomBytes(bytes)
  const chunks = encodeFragmentChunks({ session, sequence, init: false, keyFrame: true, clockSynced: true, fragmentBytes: bytes, crc32c: codec.crc32c(data), producerTimeMs: 5, durationMs: 2000 }, data)
  return { data, chunks: chunks.map((c) => decodeVideoChunk(c)) }
}

t.test('chunks in order make the fragment, byte for byte; a one-chunk fragment is complete at once', async (t) => {
  const a = new Assemblies(LIMITS, manualClock())
  const { data, chunks } = fragment(1)
  t.same(a.offer('d', 's', chunks[0]!), { kind: 'taken' })
  t.same(a.offer('d', 's', chunks[1]!), { kind: 'taken' })
  const done = a.offer('d', 's', chunks[2]!)
  t.equal(done.kind, 'complete')
  t.ok(done.kind === 'complete' && done.data.equals(data))
  t.same(a.held(), { fragments: 0, bytes: 0, devices: 1 }, 'the reservation is released (the device is remembered for a repeated last chunk)')
  const small = fragment(2, 100)
  const one = a.offer('d', 's', small.chunks[0]!)
  t.ok(one.kind === 'complete' && one.data.equals(small.data))
  const again = a.offer('d', 's', small.chunks[0]!)
  t.equal(again.kind, 'complete', 'sent again whole, a one-chunk fragment is complete again (the store answers with its number)')
})

t.test('repeats of the chunk just taken are ignored; other disorder drops the fragment', async (t) => {
  const a = new Assemblies(LIMITS, manualClock())
  const { data, chunks } = fragment(1)
  a.offer('d', 's', chunks[0]!)
  t.equal(a.offer('d', 's', chunks[0]!).kind, 'ignored', 'chunk 0 twice')
  a.offer('d', 's', chunks[1]!)
  t.equal(a.offer('d', 's', chunks[1]!).kind, 'ignored', 'chunk 1 twice')
  const done = a.offer('d', 's', chunks[2]!)
  t.ok(done.kind === 'complete' && done.data.equals(data))
  t.equal(a.offer('d', 's', chunks[2]!).kind, 'ignored', 'the last chunk of the fragment just completed, again')
  t.match(a.offer('d', 's', chunks[1]!), { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER }, 'an earlier chunk of it is not')

  a.offer('d', 's', chunks[0]!)
  t.match(a.offer('d', 's', chunks[2]!), { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER, message: /where chunk 1 was due/ }, 'a skipped chunk')
  t.equal(a.held().fragments, 0, 'the fragment was dropped')
  t.match(a.offer('d', 's', chunks[1]!), { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER, message: /no fragment under way/ })

  const other = fragment(1, 3 * MAX_CHUNK_DATA - 10)
  a.offer('d', 's', chunks[0]!)
  t.match(a.offer('d', 's', other.chunks[1]!), { kind: 'refused', code: VideoAckError.CHUNK_MISMATCH }, 'a chunk of another fragment under the same name')
  a.offer('d', 's', chunks[0]!)
  a.offer('d', 's', chunks[1]!)
  t.same(a.offer('d', 's', other.chunks[0]!), { kind: 'taken' }, 'chunk 0 of new bytes restarts the fragment')
  a.offer('d', 's', other.chunks[1]!)
  const redone = a.offer('d', 's', other.chunks[2]!)
  t.ok(redone.kind === 'complete' && redone.data.equals(other.data), 'and the restarted fragment completes with its own bytes')
  t.same(a.offer('d', 'other-stream', chunks[1]!).kind, 'refused', 'the stream is part of the name')
})

t.test('reservations are capped per device and per relay, and released', async (t) => {
  const a = new Assemblies(LIMITS, manualClock())
  const big = fragment(9, 1024 * 1024 + 1)
  t.match(a.offer('d', 's', big.chunks[0]!), { kind: 'refused', code: VideoAckError.FRAGMENT_TOO_LARGE })
  const f = [1, 2, 3].map((s) => fragment(s))
  a.offer('d', 's', f[0]!.chunks[0]!)
  a.offer('d', 's', f[1]!.chunks[0]!)
  t.match(a.offer('d', 's', f[2]!.chunks[0]!), { kind: 'refused', code: VideoAckError.TOO_MANY_PENDING, message: /d has 2 incomplete fragments/ })
  a.offer('e', 's', f[0]!.chunks[0]!)
  t.match(a.offer('g', 's', f[0]!.chunks[0]!), { kind: 'refused', code: VideoAckError.TOO_MANY_PENDING, message: /the relay holds 3/ })
  t.same(a.held(), { fragments: 3, bytes: 3 * f[0]!.data.length, devices: 2 })
  t.ok(a.discard('d', Assemblies.keyOf('s', 1n, 1)))
  t.same(a.offer('g', 's', f[0]!.chunks[0]!), { kind: 'taken' }, 'room again once one is discarded')
  a.discardDevice('e')
  t.same(a.held(), { fragments: 2, bytes: 2 * f[0]!.data.length, devices: 2 })
})

t.test('an incomplete fragment expires after the timeout without a chunk, on the given clock', async (t) => {
  const clock = manualClock()
  const a = new Assemblies(LIMITS, clock)
  const expired: string[] = []
  a.onExpired = (device, key) => expired.push(`${device} ${key}`)
  const { chunks } = fragment(1)
  a.offer('d', 's', chunks[0]!)
  clock.advance(9_000)
  a.offer('d', 's', chunks[1]!)
  clock.advance(9_000)
  t.equal(a.expire(), 0, 'each chunk restarts the wait')
  clock.advance(1_000)
  t.equal(a.expire(), 1)
  t.same(expired, ['d s/1/1'])
  t.same(a.held(), { fragments: 0, bytes: 0, devices: 0 }, 'nothing is left of the device')
  t.match(a.offer('d', 's', chunks[2]!), { kind: 'refused', code: VideoAckError.CHUNK_OUT_OF_ORDER })
})
