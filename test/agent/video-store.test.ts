/**
 * The cameras' offline buffer on a real file system and a real SQLite index: durable in the order
 * file, fsync, row; healed at start (orphan files removed, rows without their bytes dropped and
 * counted), per-camera caps with both on-full policies, ages on the buffer's own running time, and
 * init segments kept exactly as long as their session needs them.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { VideoStore, type CameraBuffer } from '../../agent/video/store.js'
import { loadCodec, manualClock, type Clock } from '../../hardware/index.js'
import type { CameraSession, CapturedFragment } from '../../hardware/video/types.js'
import { tempDir } from '../helpers/tmp.js'
import { ROOT } from '../helpers/relay.js'

const codec = loadCodec(process.env)
const MiB = 1024 * 1024

function open(t: Test, dir: string, cameras: Partial<CameraBuffer>[] = [{}], clock: Clock = manualClock(), log: (e: string, f?: Record<string, unknown>) => void = () => {}): VideoStore {
  const store = new VideoStore({
    dir, clock, log, crc32c: (b) => codec.crc32c(b),
    cameras: cameras.map((c) => ({ name: 'cam', stream: 'front', maxBytes: 64 * MiB, maxAgeSeconds: 0, onFull: 'drop-oldest' as const, ...c })),
  })
  t.teardown(() => store.close())
  return store
}

const session = (id: bigint, bytes = 700): CameraSession => ({ id, init: randomBytes(bytes), codec: 'avc1.42C01E', width: 320, height: 240, timescale: 15360, startedWallMs: 1_800_000_000_000 })
const fragment = (s: bigint, sequence: number, bytes = 1000): CapturedFragment => ({
  session: s, sequence, data: randomBytes(bytes), producerTimeMs: 1_800_000_000_000 + sequence * 2000, clockSynced: true, durationMs: 2000, keyFrame: true, decodeTime: BigInt(sequence * 30720),
})
const files = (dir: string, camera = 'cam') => existsSync(join(dir, camera)) ? readdirSync(join(dir, camera)).sort() : []

t.test('a stored fragment keeps its bytes and its facts across a reopen', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  await store.addSession('cam', session(2n ** 64n - 1n))
  const frags = [fragment(2n ** 64n - 1n, 1, 5000), fragment(2n ** 64n - 1n, 2, 7000)]
  for (const f of frags) await store.addFragment('cam', f)
  await store.close()
  const again = open(t, dir)
  const stored = [...again.fragments('cam')]
  t.match(stored, [
    { camera: 'cam', stream: 'front', session: '18446744073709551615', sequence: 1, init: false, producerTimeMs: frags[0]!.producerTimeMs, clockSynced: true, durationMs: 2000, keyFrame: true, size: 5000, crc32c: codec.crc32c(frags[0]!.data) },
    { sequence: 2, size: 7000 },
  ], 'the u64 session as text, every field as captured')
  for (const [i, f] of stored.entries()) t.same(await again.read(f), frags[i]!.data, `fragment ${f.sequence} reads back`)
  t.ok(again.initOf('cam', '18446744073709551615'), 'the init segment is there for its fragments')
  t.same(again.recovered, { orphanFiles: 0, missingFiles: 0 }, 'a clean close leaves nothing to heal')
  t.match(again.stats('cam'), { fragments: 2, bytes: 700 + 5000 + 7000, seconds: 4 })
})

t.test('a file without its row (a crash between the two) is removed at start; a row without its bytes is dropped and counted', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  await store.addSession('cam', session(1n))
  await store.addSession('cam', session(2n))
  for (let i = 1; i <= 3; i++) await store.addFragment('cam', fragment(2n, i, 2000))
  await store.close()
  // Session 1 ended with no fragment: its init went when session 2 began.
  t.same(files(dir), ['2-00000001.m4s', '2-00000002.m4s', '2-00000003.m4s', '2-init.mp4'])
  writeFileSync(join(dir, 'cam', '2-00000004.m4s'), randomBytes(100)) // written, the row never committed
  writeFileSync(join(dir, 'cam', '9-init.mp4'), randomBytes(10))
  unlinkSync(join(dir, 'cam', '2-00000001.m4s')) // a disk that lost a file
  truncateSync(join(dir, 'cam', '2-00000003.m4s'), 500) // and one that kept a torn one
  const logged: string[] = []
  const again = open(t, dir, [{}], manualClock(), (e) => logged.push(e))
  t.same(again.recovered, { orphanFiles: 2, missingFiles: 2 })
  t.same([...again.fragments('cam')].map((f) => f.sequence), [2], 'only the whole fragment is left')
  t.same(again.stats('cam').dropped, { missing_file: 2 }, 'the lost ones are counted')
  t.same(files(dir), ['2-00000002.m4s', '2-init.mp4'], 'orphans and torn files are gone')
  t.ok(logged.includes('video_buffer_recovered'), 'and the healing is logged')
  await again.close()
  t.same(open(t, dir).stats('cam').dropped, { missing_file: 2 }, 'the count is durable')
})

t.test('a lost init segment takes its session\'s fragments with it, counted as missing_file', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  await store.addSession('cam', session(5n))
  for (let i = 1; i <= 3; i++) await store.addFragment('cam', fragment(5n, i))
  await store.close()
  unlinkSync(join(dir, 'cam', '5-init.mp4'))
  const again = open(t, dir)
  t.equal(again.stats('cam').fragments, 0)
  t.same(again.stats('cam').dropped, { missing_file: 3 })
  t.same(files(dir), [])
})

t.test('kill -9 at random moments while fragments are stored and deleted: every row has its whole file, and no orphan outlives a start', async (t) => {
  const dir = tempDir(t)
  const child = join(dir, 'child.mts')
  writeFileSync(child, `
    import { randomBytes } from 'node:crypto'
    import { VideoStore } from ${JSON.stringify(join(ROOT, 'agent/video/store.ts'))}
    import { loadCodec, systemClock } from ${JSON.stringify(join(ROOT, 'hardware/index.ts'))}
    const codec = loadCodec(process.env)
    const store = new VideoStore({ dir: process.argv[2], clock: systemClock, log: () => {}, crc32c: (b) => codec.crc32c(b),
      cameras: [{ name: 'cam', stream: 'front', maxBytes: 8 * 1024 * 1024, maxAgeSeconds: 0, onFull: 'drop-oldest' }] })
    const id = randomBytes(8).readBigUInt64LE()
    await store.addSession('cam', { id, init: randomBytes(600), codec: 'avc1', width: 2, height: 2, timescale: 1, startedWallMs: Date.now() })
    process.stdout.write('ready\\n')
    for (let seq = 1; ; seq++) {
      await store.addFragment('cam', { session: id, sequence: seq, data: randomBytes(20000 + Math.floor(Math.random() * 200000)), producerTimeMs: Date.now(), clockSynced: true, durationMs: 2000, keyFrame: true, decodeTime: 0n })
      const oldest = store.fragments('cam').next()
      if (seq % 3 === 0 && !oldest.done) store.remove(oldest.value.id, null)
    }
  `)
  let orphans = 0
  let rows = 0
  for (let round = 0; round < 6; round++) {
    const proc = spawn(process.execPath, ['--import=tsx', child, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
    const ready = await Promise.race([new Promise<boolean>((resolve) => proc.stdout.once('data', () => resolve(true))), exited.then(() => false)])
    if (!ready) { t.fail('the child died before it was ready'); return }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 300))
    proc.kill('SIGKILL')
    await exited
    const store = new VideoStore({ dir, clock: manualClock(), log: () => {}, crc32c: (b) => codec.crc32c(b), cameras: [{ name: 'cam', stream: 'front', maxBytes: 8 * MiB, maxAgeSeconds: 0, onFull: 'drop-oldest' }] })
    orphans += store.recovered.orphanFiles
    t.equal(store.recovered.missingFiles, 0, `round ${round}: no committed row lost its bytes`)
    const kept = [...store.fragments('cam')]
    rows += kept.length
    for (const f of kept) if (!store.intact(f, await store.read(f))) t.fail(`round ${round}: fragment ${f.file} is damaged`)
    for (const f of kept) if (!store.initOf('cam', f.session)) t.fail(`round ${round}: ${f.file} has no init segment`)
    const expected = new Set([...kept.map((f) => f.file.split('/')[1]), ...kept.map((f) => `${f.session}-init.mp4`)])
    t.same(files(dir), [...expected].sort(), `round ${round}: the files are exactly the rows' (${kept.length} fragments)`)
    await store.close()
  }
  t.comment(`${rows} fragments checked after 6 kills; ${orphans} orphan files removed`)
})

t.test('drop-oldest at the byte cap drops the oldest fragments, never the newest, and counts them', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir, [{ maxBytes: 4 * MiB }])
  const dropped: [string, string, number][] = []
  store.on('dropped', (camera: string, reason: string, n: number) => dropped.push([camera, reason, n]))
  await store.addSession('cam', session(1n, 1000))
  for (let i = 1; i <= 6; i++) t.ok(await store.addFragment('cam', fragment(1n, i, MiB)), `fragment ${i} is stored`)
  t.same([...store.fragments('cam')].map((f) => f.sequence), [4, 5, 6], 'the oldest made room')
  t.ok(store.stats('cam').bytes <= 4 * MiB, 'within the cap, init included')
  t.same(store.stats('cam').dropped, { cap: 3 })
  t.same(dropped, [['cam', 'cap', 1], ['cam', 'cap', 1], ['cam', 'cap', 1]], 'each drop announced')
  // One fragment larger than the whole cap: everything else goes, the newest stays.
  t.ok(await store.addFragment('cam', fragment(1n, 7, 5 * MiB)))
  t.same([...store.fragments('cam')].map((f) => f.sequence), [7], 'the newest is never dropped')
  t.same(store.stats('cam').dropped, { cap: 6 })
  t.ok(store.initOf('cam', '1'), 'the session\'s init stays while it has fragments')
  t.same(files(dir), ['1-00000007.m4s', '1-init.mp4'], 'dropped files are deleted')
})

t.test('a session\'s init segment is kept while any of its fragments is buffered, then goes with the last', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir, [{ maxBytes: 4 * MiB }])
  await store.addSession('cam', session(1n))
  for (let i = 1; i <= 2; i++) await store.addFragment('cam', fragment(1n, i, MiB))
  await store.addSession('cam', session(2n)) // ffmpeg restarted
  t.ok(store.initOf('cam', '1'), 'the old session still has fragments: its init stays')
  await store.addFragment('cam', fragment(2n, 1, MiB))
  await store.addFragment('cam', fragment(2n, 2, MiB)) // drops 1/1
  t.ok(store.initOf('cam', '1'), 'one fragment of session 1 left: its init stays')
  await store.addFragment('cam', fragment(2n, 3, MiB)) // drops 1/2, the last of session 1
  t.notOk(store.initOf('cam', '1'), 'session 1\'s last fragment dropped: its init goes too')
  t.same(store.stats('cam').dropped, { cap: 2 }, 'init segments are not counted as dropped fragments')
  // Persisted by the relay, one by one: the current session keeps its init even with nothing buffered.
  for (const f of [...store.fragments('cam')]) store.remove(f.id, null)
  t.equal(store.stats('cam').fragments, 0)
  t.ok(store.initOf('cam', '2'), 'the current session keeps its init segment')
  t.same(store.stats('cam').dropped, { cap: 2 }, 'persisted fragments are not drops')
  t.same(files(dir), ['2-init.mp4'])
  await store.close()
  // After a restart no session is current: an init with nothing to go with it is removed.
  const again = open(t, dir)
  t.notOk(again.initOf('cam', '2'))
  t.same(files(dir), [])
})

t.test('pause-capture at the byte cap drops new fragments (counted) while capture keeps going, and stores again once there is room', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir, [{ maxBytes: 4 * MiB, onFull: 'pause-capture' }])
  await store.addSession('cam', session(1n))
  const results = []
  for (let i = 1; i <= 6; i++) results.push(await store.addFragment('cam', fragment(1n, i, MiB)))
  t.same(results.map((r) => r?.sequence ?? null), [1, 2, 3, null, null, null], 'the buffer keeps what it had; new fragments are dropped')
  t.same(store.stats('cam').dropped, { cap: 3 })
  t.same(files(dir), ['1-00000001.m4s', '1-00000002.m4s', '1-00000003.m4s', '1-init.mp4'], 'nothing written for them')
  store.remove([...store.fragments('cam')][0]!.id, null) // the relay persisted the oldest
  t.ok(await store.addFragment('cam', fragment(1n, 7, MiB)), 'room again: stored')
  t.same([...store.fragments('cam')].map((f) => f.sequence), [2, 3, 7])
})

t.test('two cameras have their own caps: one at its cap never drops the other\'s fragments', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir, [{ name: 'a', stream: 'sa', maxBytes: 4 * MiB }, { name: 'b', stream: 'sb', maxBytes: 4 * MiB }])
  await store.addSession('a', session(1n))
  await store.addSession('b', session(2n))
  await store.addFragment('b', fragment(2n, 1, MiB))
  for (let i = 1; i <= 8; i++) await store.addFragment('a', fragment(1n, i, MiB))
  t.equal(store.stats('b').fragments, 1, 'b keeps its fragment')
  t.same(store.stats('b').dropped, {})
  t.same(store.stats('a').dropped, { cap: 5 })
  t.match([...store.fragments('b')], [{ stream: 'sb', camera: 'b' }])
})

t.test('fragments older than maxAgeSeconds are dropped as age, on the buffer\'s running time carried across restarts', async (t) => {
  const dir = tempDir(t)
  let clock = manualClock()
  let store = open(t, dir, [{ maxAgeSeconds: 10 }], clock)
  await store.addSession('cam', session(1n))
  await store.addFragment('cam', fragment(1n, 1))
  clock.advance(6000)
  await store.addFragment('cam', fragment(1n, 2))
  await store.close()
  clock = manualClock() // a new process: its monotonic clock starts again
  store = open(t, dir, [{ maxAgeSeconds: 10 }], clock)
  clock.jumpWall(-3_600_000) // a wall-clock step changes nothing
  clock.advance(3999)
  t.equal(store.expire(), 0, 'nothing is older than 10 s yet')
  t.equal(store.stats('cam').oldestAgeSeconds, 9.999)
  clock.advance(1)
  t.equal(store.expire(), 1, 'the first is 10 s old, counted across the restart')
  t.same([...store.fragments('cam')].map((f) => f.sequence), [2])
  clock.advance(6000)
  t.equal(store.expire(), 1)
  t.same(store.stats('cam').dropped, { age: 2 })
  t.same(files(dir), [], 'the old session\'s init left with its last fragment')
})

t.test('a fragment whose session has no init segment is dropped and counted, and the same fragment twice is stored once', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  t.equal(await store.addFragment('cam', fragment(3n, 1)), null)
  t.same(store.stats('cam').dropped, { no_init: 1 })
  await store.addSession('cam', session(3n))
  const f = fragment(3n, 1)
  const first = await store.addFragment('cam', f)
  const second = await store.addFragment('cam', { ...f, data: randomBytes(10) })
  t.equal(second?.id, first?.id)
  t.same(await store.read(first!), f.data, 'the stored bytes are the first\'s')
  t.throws(() => store.fragments('nobody'), { code: 'NOT_FOUND' }, 'an unknown camera is a typed error')
})

t.test('a damaged index is moved aside and started fresh, its files removed as orphans, with an alarm', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  await store.addSession('cam', session(1n))
  await store.addFragment('cam', fragment(1n, 1))
  await store.close()
  writeFileSync(join(dir, 'index.db'), Buffer.concat([Buffer.from('SQLite format 3\0'), randomBytes(8192)]))
  const again = open(t, dir)
  t.match(again.alarms, [{ code: 'VIDEO_BUFFER_QUARANTINED' }])
  t.same(again.recovered, { orphanFiles: 2, missingFiles: 0 })
  t.ok(readdirSync(dir).some((f) => f.startsWith('index.db.corrupt-')), 'the damaged file is kept aside')
})
