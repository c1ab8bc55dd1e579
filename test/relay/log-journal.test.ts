/**
 * The file store's write-ahead journal (relay/log/journal.ts): a group commit costs one fdatasync
 * however many shards it touched, and a power cut that loses, tears or zeroes the segment writes
 * that were never synced loses nothing acknowledged, because the journal's replay writes them again.
 * A power cut is simulated by leaving the store unclosed (nothing more reaches the files) and then
 * damaging the segments as lost page-cache writes would; the journal itself was synced.
 * Checkpoints of many segments go through the addon's batched write and syncfs (counted, and made to
 * fail, through an injected wrapper of the real ones); under TRIBUTARY_NATIVE=0 every test but those
 * runs on the per-segment writes and fdatasyncs.
 */
import t from 'tap'
import { promises as fsp, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { FileLogStore } from '../../relay/log/filelog.js'
import { loadFileIo, type FileIo } from '../../relay/log/fileio.js'
import type { Replayed } from '../../relay/log/journal.js'
import { HandleCache, HEAD_BUDGET, Segment } from '../../relay/log/segment.js'
import type { LogRecordInput } from '../../shared/logframe.js'
import { tempDir } from '../helpers/tmp.js'

const shard = (n: number) => `shardId-${String(n).padStart(12, '0')}`
const rec = (i: number): LogRecordInput => ({ partitionKey: `k${i}`, data: Buffer.from(`record-${i}-${'x'.repeat(i % 50)}`), producerTimeMs: 1000 + i, flags: 0 })

function dirs(t: Parameters<typeof tempDir>[0]) {
  return { root: tempDir(t), journalPath: join(tempDir(t), 'streams.journal') }
}

/** The sizes of the journal's two files (each holds a 16-byte header once in use). */
const journalSizes = async (journalPath: string) => Promise.all([0, 1].map(async (i) => (await fsp.stat(`${journalPath}-${i}`)).size))

/** Counts fdatasync and fsync calls on every file handle while `work` runs. */
async function countSyncs(work: () => Promise<void>): Promise<number> {
  const probe = await fsp.open(import.meta.filename, 'r')
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; sync: () => Promise<void> }
  await probe.close()
  const { datasync, sync } = proto
  let calls = 0
  proto.datasync = function (this: unknown) { calls++; return datasync.call(this) }
  proto.sync = function (this: unknown) { calls++; return sync.call(this) }
  try {
    await work()
  } finally {
    proto.datasync = datasync
    proto.sync = sync
  }
  return calls
}

/** Appends `perShard` records to each of `shards` shards of `stream` in one group commit. */
async function commitRound(store: FileLogStore, stream: string, shards: number, perShard: number, start: number): Promise<void> {
  const logs = await Promise.all(Array.from({ length: shards }, (_, s) => store.open(stream, shard(s))))
  for (const log of logs) log.append(Array.from({ length: perShard }, (_, i) => rec(start + i)))
  await store.commit()
}

async function readAll(store: FileLogStore, stream: string, s: number): Promise<string[]> {
  const log = await store.open(stream, shard(s))
  const { records } = await log.read(0, 1_000_000, 1 << 30)
  return records.map((r) => `${r.offset}:${r.partitionKey}:${Buffer.from(r.data).toString()}`)
}

t.test('a commit over 100 shards costs one fdatasync, not one per shard', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.teardown(() => store.close())
  // Open the shards (creating their segment files) before counting.
  await commitRound(store, 's', 100, 1, 0)
  const journaled = await countSyncs(() => commitRound(store, 's', 100, 5, 1))
  t.equal(journaled, 1, 'the journal\'s fdatasync, and no segment\'s')

  const plain = new FileLogStore({ root: tempDir(t) })
  t.teardown(() => plain.close())
  await commitRound(plain, 's', 100, 1, 0)
  t.equal(await countSyncs(() => commitRound(plain, 's', 100, 5, 1)), 100, 'without a journal, each touched segment is fdatasynced')
})

t.test('a power cut that loses, tears or zeroes unsynced segment writes loses no acknowledged record', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 20; round++) await commitRound(store, 's', 4, 25, round * 25)
  const before = await Promise.all([0, 1, 2, 3].map((s) => readAll(store, 's', s)))
  t.equal(before[0]!.length, 500)
  // The power goes: the store is never closed, and the kernel had not written the segments out.
  const segment = (s: number) => join(root, 's', shard(s), '00000000000000000000.log')
  await fsp.truncate(segment(0), 0)
  const size1 = (await fsp.stat(segment(1))).size
  await fsp.truncate(segment(1), Math.floor(size1 / 3))
  const size2 = (await fsp.stat(segment(2))).size
  const f2 = await fsp.open(segment(2), 'r+')
  await f2.write(Buffer.alloc(8192), 0, 8192, Math.floor(size2 / 2))
  await f2.close()
  // Shard 3's writes all reached the disk.

  const replays: Replayed[] = []
  const reports: unknown[] = []
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0, onReplay: (r) => replays.push(r), onCorruption: (r) => reports.push(r) })
  const after = await Promise.all([0, 1, 2, 3].map((s) => readAll(again, 's', s)))
  t.same(after, before, 'every acknowledged record, byte for byte, at its offset')
  t.same(reports, [], 'and no damage is found: the redo restored the bytes')
  t.equal(replays.length, 1)
  t.match(replays[0], { entries: 20 * 4, files: 4, tornBytes: 0 })
  // The journal keeps what it replayed until a checkpoint has synced the rewritten files: a clean close is one.
  await again.close()
  t.ok((await journalSizes(journalPath)).every((size) => size <= 16), 'once closed cleanly after the replay, the journal holds no entry')
  const third = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.teardown(() => third.close())
  t.same(await Promise.all([0, 1, 2, 3].map((s) => readAll(third, 's', s))), before, 'and everything is still there')
  // Appends carry on after the recovered records.
  const log = await third.open('s', shard(0))
  t.equal(log.append([rec(9999)]).firstOffset, 500)
  await third.commit()
  t.equal((await readAll(third, 's', 0)).length, 501)
})

t.test('a torn last journal entry (a commit never acknowledged) ends the replay; what came before is intact', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 5; round++) await commitRound(store, 's', 2, 10, round * 10)
  const before = await Promise.all([0, 1].map((s) => readAll(store, 's', s)))
  const journal = await fsp.readFile(`${journalPath}-0`)
  // A sixth commit whose journal write was cut half-way: its first entry is there in part (each entry is a tenth of the journal after its header).
  const torn = Math.floor((journal.length - 16) / 20)
  await fsp.appendFile(`${journalPath}-0`, journal.subarray(16, 16 + torn))
  await fsp.truncate(join(root, 's', shard(0), '00000000000000000000.log'), 0)

  const replays: Replayed[] = []
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0, onReplay: (r) => replays.push(r) })
  t.teardown(() => again.close())
  t.same(await Promise.all([0, 1].map((s) => readAll(again, 's', s))), before)
  t.match(replays[0], { entries: 10, tornBytes: torn })
})

t.test('checkpoints keep the journal small; a clean close leaves it empty; a dropped stream is not brought back', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 64 * 1024 })
  let peak = 0
  for (let round = 0; round < 200; round++) {
    await commitRound(store, round % 2 ? 'a' : 'b', 3, 20, round * 20)
    peak = Math.max(peak, ...(await journalSizes(journalPath)))
  }
  t.ok(peak < 64 * 1024 + 16 * 1024, `each journal file stayed under its size plus one commit (peak ${peak} bytes)`)
  const kept = await readAll(store, 'a', 1)
  await store.drop('b')
  // Unclosed: the power goes after the drop.
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.same(await readAll(again, 'a', 1), kept)
  await t.rejects(fsp.stat(join(root, 'b')), { code: 'ENOENT' }, 'the dropped stream\'s directory was not recreated by a replay')
  await again.close()
  t.ok((await journalSizes(journalPath)).every((size) => size <= 16), 'a clean close checkpoints: no entry is left')
})

t.test('a thousand shards with at most 16 segment files open: every record reads back, and the process holds few files', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 256 * 1024, segmentBytes: 4096, maxOpenFiles: 16 })
  t.teardown(() => store.close())
  const fds = () => readdirSync('/proc/self/fd').length
  const before = fds()
  let most = 0
  for (let round = 0; round < 6; round++) {
    await commitRound(store, 's', 1000, 3, round * 3)
    most = Math.max(most, store.handles.size)
  }
  // 16 kept open, plus those in use at that moment beyond them (a checkpoint syncs up to 16 at once): never near 1,000.
  t.ok(most <= 16 + 16, `at most 16 segment files were open, and the few in use (${most})`)
  t.ok(fds() - before < 16 + 16 + 8, `the process holds few more files than before (${fds() - before} more)`)
  const samples = [0, 1, 499, 998, 999]
  for (const s of samples) {
    const rows = await readAll(store, 's', s)
    t.equal(rows.length, 18, `shard ${s}: all 18 records`)
    t.equal(rows[17], `17:k17:${Buffer.from(rec(17).data).toString()}`)
  }
  t.ok(store.handles.size <= 16 + 16, 'after the reads too')
})

t.test('a second power cut right after a restart (before the replayed files were synced) still loses nothing; commits after the restart follow', async (t) => {
  const { root, journalPath } = dirs(t)
  const first = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 5; round++) await commitRound(first, 's', 2, 10, round * 10)
  const segment = join(root, 's', shard(1), '00000000000000000000.log')
  await fsp.truncate(segment, 0)
  // Restart, append more, and lose power again before any checkpoint; the replay's writes are lost too.
  const second = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  await commitRound(second, 's', 2, 10, 50)
  const before = await Promise.all([0, 1].map((s) => readAll(second, 's', s)))
  t.equal(before[1]!.length, 60)
  await fsp.truncate(segment, 0)
  const third = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.teardown(() => third.close())
  t.same(await Promise.all([0, 1].map((s) => readAll(third, 's', s))), before, 'both runs\' acknowledged records are there')
})

t.test('a restart writes the journal\'s entries into each segment file at its shard\'s open, opening each file once', async (t) => {
  const { root, journalPath } = dirs(t)
  const crashed = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 3; round++) await commitRound(crashed, 's', 20, 5, round * 5)
  const before = await Promise.all(Array.from({ length: 20 }, (_, s) => readAll(crashed, 's', s)))
  // The power goes before any segment write reached the disk.
  for (let s = 0; s < 20; s++) await fsp.truncate(join(root, 's', shard(s), '00000000000000000000.log'), 0)
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.teardown(() => again.close())
  const opened: string[] = []
  const { open } = fsp
  // Segment files are opened through fsp.open: count them while the shards open.
  ;(fsp as { open: typeof fsp.open }).open = (async (...args: Parameters<typeof fsp.open>) => {
    if (String(args[0]).endsWith('.log')) opened.push(String(args[0]))
    return open(...args)
  }) as typeof fsp.open
  try {
    await Promise.all(Array.from({ length: 20 }, (_, s) => again.open('s', shard(s))))
  } finally {
    ;(fsp as { open: typeof fsp.open }).open = open
  }
  t.equal(opened.length, 20, 'one open per segment file, for the redo and the recovery together')
  t.same(await Promise.all(Array.from({ length: 20 }, (_, s) => readAll(again, 's', s))), before, 'and every record is back')
})

t.test('entries of a shard no one opens after a restart still reach its files before the journal lets them go', async (t) => {
  const { root, journalPath } = dirs(t)
  const crashed = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 4; round++) await commitRound(crashed, 's', 3, 10, round * 10)
  const before = await Promise.all([0, 1, 2].map((s) => readAll(crashed, 's', s)))
  const segment = (s: number) => join(root, 's', shard(s), '00000000000000000000.log')
  for (const s of [0, 1, 2]) await fsp.truncate(segment(s), 0)
  // The restarted store opens and writes shard 0 only, then closes cleanly (a checkpoint empties the journal).
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  const log = await again.open('s', shard(0))
  log.append([rec(40)])
  await again.commit()
  await again.close()
  t.ok((await journalSizes(journalPath)).every((size) => size <= 16), 'the journal holds no entry')
  t.equal((await fsp.stat(segment(1))).size, (await fsp.stat(segment(2))).size, 'shards 1 and 2 were written again without being opened')
  const third = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  t.teardown(() => third.close())
  const after = await Promise.all([0, 1, 2].map((s) => readAll(third, 's', s)))
  t.same(after.slice(1), before.slice(1), 'their records are all there')
  t.same(after[0]!.slice(0, 40), before[0], 'and shard 0 keeps its own, followed by the new one')
  t.equal(after[0]!.length, 41)
})

t.test('shards opening while the first commit after a restart finishes the redo in the background: every record is in place, then and after another power cut', async (t) => {
  const { root, journalPath } = dirs(t)
  // Everything the crashed run wrote is in its journal (no checkpoint synced any of it).
  const crashed = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 6; round++) await commitRound(crashed, 's', 200, 2, round * 2)
  const before = await Promise.all(Array.from({ length: 200 }, (_, s) => readAll(crashed, 's', s)))
  for (let s = 0; s < 200; s++) await fsp.truncate(join(root, 's', shard(s), '00000000000000000000.log'), 0)
  // Its journal is already past this store's size: the first commit rotates it, once the redo is done.
  const again = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 64 * 1024 })
  const first = await again.open('s', shard(0))
  first.append([rec(12)])
  // The commit starts the redo's end (the rest written, the rewritten files synced) while 199 shards open.
  const [, ...opened] = await Promise.all([again.commit(), ...Array.from({ length: 199 }, (_, s) => again.open('s', shard(s + 1)))])
  t.equal(opened.length, 199)
  const after = await Promise.all(Array.from({ length: 200 }, (_, s) => readAll(again, 's', s)))
  t.same(after.slice(1), before.slice(1), 'every shard reads as before the crash')
  t.same(after[0], [...before[0]!, `12:k12:${Buffer.from(rec(12).data).toString()}`])
  // More commits, rotating the journal again, then the power goes (the store is left unclosed).
  for (let round = 0; round < 4; round++) await commitRound(again, 's', 200, 2, 13 + round * 2)
  const later = await Promise.all(Array.from({ length: 200 }, (_, s) => readAll(again, 's', s)))
  const third = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 64 * 1024 })
  t.teardown(() => third.close())
  t.same(await Promise.all(Array.from({ length: 200 }, (_, s) => readAll(third, 's', s))), later, 'and after a second power cut')
})

t.test('a segment keeps writes behind while a drain is under way: reads see every byte in place, the file gets them all', async (t) => {
  const dir = tempDir(t)
  const segment = await Segment.create(dir, 0)
  t.teardown(() => segment.close())
  const chunks = Array.from({ length: 400 }, (_, i) => Buffer.alloc(1 + (i * 37) % 300, i & 0xff))
  const expected = Buffer.concat(chunks)
  let at = 0
  const drains: Promise<void>[] = []
  for (const [i, chunk] of chunks.entries()) {
    // Some commits hand over their bytes in pieces (one per append), kept and written as they are.
    segment.writeBehind(i % 5 === 0 && chunk.length > 1 ? [chunk.subarray(0, chunk.length >> 1), chunk.subarray(chunk.length >> 1)] : [chunk], at)
    at += chunk.length
    // Drains start while more chunks arrive behind them.
    if (i % 50 === 7) drains.push(segment.sync())
    if (i % 13 === 0) {
      const from = Math.floor(at / 3)
      t.ok((await segment.readAt(from, at - from)).equals(expected.subarray(from, at)), `a read while chunk ${i} is behind`)
    }
  }
  await Promise.all(drains)
  t.ok((await segment.readAt(0, at)).equals(expected), 'everything reads back in place')
  await segment.sync()
  t.ok((await fsp.readFile(segment.logPath)).equals(expected), 'and the file holds every byte once drained')
})

t.test('a store without the journal still replays what a crashed run with it left, then leaves the journal empty', async (t) => {
  const { root, journalPath } = dirs(t)
  const crashed = new FileLogStore({ root, journalPath, directMaxSegments: 0 })
  for (let round = 0; round < 4; round++) await commitRound(crashed, 's', 2, 10, round * 10)
  const before = await Promise.all([0, 1].map((s) => readAll(crashed, 's', s)))
  await fsp.truncate(join(root, 's', shard(0), '00000000000000000000.log'), 0)
  const replays: Replayed[] = []
  const plain = new FileLogStore({ root, journalPath, directMaxSegments: 0, journal: false, onReplay: (r) => replays.push(r) })
  t.same(await Promise.all([0, 1].map((s) => readAll(plain, 's', s))), before)
  t.match(replays, [{ entries: 8 }])
  t.ok((await journalSizes(journalPath)).every((size) => size <= 16), 'the journal holds no entry afterwards')
  t.equal(await countSyncs(() => commitRound(plain, 's', 2, 5, 40)), 2, 'and commits fdatasync each segment')
  await plain.close()
})

t.test('a commit of a few segments skips the journal: each is written and fdatasynced itself, and a power cut between journaled commits loses nothing', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath })
  const segment = (s: number) => join(root, 's', shard(s), '00000000000000000000.log')
  // Journaled commits over 8 shards: their bytes wait behind the segments.
  for (let round = 0; round < 5; round++) await commitRound(store, 's', 8, 10, round * 10)
  const journalBefore = await journalSizes(journalPath)
  t.equal((await fsp.stat(segment(0))).size, 0, 'a journaled commit leaves the segment file as it was')
  // Three shards in one commit: direct, one fdatasync each, nothing in the journal.
  const direct = await countSyncs(() => commitRound(store, 's', 3, 10, 50))
  t.equal(direct, 3, 'one fdatasync per segment')
  t.same(await journalSizes(journalPath), journalBefore, 'the journal did not grow')
  const synced = await Promise.all([0, 1, 2].map(async (s) => (await fsp.stat(segment(s))).size))
  const logs = await Promise.all([0, 1, 2].map((s) => store.open('s', shard(s))))
  t.same(synced, logs.map((l) => l.sizeBytes()), 'the segments hold everything, the journaled commits before it included')
  // More journaled commits after it, then the power goes: all that reached the disk is what was synced.
  for (let round = 0; round < 3; round++) await commitRound(store, 's', 8, 10, 60 + round * 10)
  const before = await Promise.all(Array.from({ length: 8 }, (_, s) => readAll(store, 's', s)))
  t.equal(before[0]!.length, 90)
  t.equal(before[7]!.length, 80)
  for (let s = 0; s < 8; s++) await fsp.truncate(segment(s), s < 3 ? synced[s]! : 0)

  const reports: unknown[] = []
  const again = new FileLogStore({ root, journalPath, onCorruption: (r) => reports.push(r) })
  t.teardown(() => again.close())
  t.same(await Promise.all(Array.from({ length: 8 }, (_, s) => readAll(again, 's', s))), before, 'every acknowledged record, byte for byte, at its offset')
  t.same(reports, [], 'no damage found')
  // A restart's first few-segment commit lands after the redo's bytes.
  await commitRound(again, 's', 2, 1, 1000)
  t.equal((await readAll(again, 's', 0)).length, 91)
})

t.test('a direct commit whose fdatasync fails fails the store and keeps the journal: with the failed file\'s pages lost, a restart still finds every acknowledged record', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath })
  // Journaled commits over 8 shards; their bytes wait behind the segments.
  for (let round = 0; round < 3; round++) await commitRound(store, 's', 8, 5, round * 5)
  const acknowledged = await Promise.all([0, 1].map((s) => readAll(store, 's', s)))
  // A direct commit over 2 shards: its first fdatasync fails (EIO), after the writes went out.
  const probe = await fsp.open(import.meta.filename, 'r')
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> }
  await probe.close()
  const datasync = proto.datasync
  let calls = 0
  proto.datasync = function (this: unknown) { return calls++ === 0 ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : datasync.call(this) }
  try {
    await t.rejects(commitRound(store, 's', 2, 5, 100), { code: 'STORAGE_FAILED' })
  } finally {
    proto.datasync = datasync
  }
  t.ok(store.failed, 'the store failed')
  await store.close()
  t.ok((await journalSizes(journalPath)).some((size) => size > 16), 'closing a failed store keeps the journal: nothing was checkpointed over a failed sync')
  // The kernel dropped the pages of both files whose sync failed or never ran.
  for (const s of [0, 1]) await fsp.truncate(join(root, 's', shard(s), '00000000000000000000.log'), 0)
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  const after = await Promise.all([0, 1].map((s) => readAll(again, 's', s)))
  t.same(after.map((rows) => rows.slice(0, 15)), acknowledged, 'every acknowledged record, at its offset')
})

/**
 * Runs `work` with the next `times` writev calls of every file handle failing with ENOSPC after their
 * bytes went out, as a write the disk filled under: what a failed append or drain leaves in a file.
 */
async function diskFillsDuring<T>(work: () => Promise<T>, times = 1): Promise<T> {
  const probe = await fsp.open(import.meta.filename, 'r')
  const proto = Object.getPrototypeOf(probe) as { writev: (buffers: Buffer[], position?: number) => Promise<unknown> }
  await probe.close()
  const writev = proto.writev
  let left = times
  proto.writev = async function (this: unknown, buffers: Buffer[], position?: number) {
    const out = await writev.call(this, buffers, position)
    if (left-- > 0) throw Object.assign(new Error('ENOSPC: no space left on device, writev'), { code: 'ENOSPC', errno: -28, syscall: 'writev' })
    return out
  }
  try {
    return await work()
  } finally {
    proto.writev = writev
  }
}

t.test('a journal append the disk filled under: the store resumes without it, and no power cut brings its entries back', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath })
  for (let round = 0; round < 2; round++) await commitRound(store, 's', 8, 5, round * 5)
  // A journaled commit of 5 records a shard fails: its whole entries went into the journal file.
  await t.rejects(diskFillsDuring(() => commitRound(store, 's', 8, 5, 100)), { code: 'STORAGE_FAILED' })
  t.match(store.failed, { code: 'ENOSPC', syscall: 'writev' })
  t.throws(() => store.checkWritable(), { code: 'STORAGE_FAILED' }, 'appends refused while failed')
  t.equal(await store.resume(), true, 'resumed')
  t.equal(store.failed, null)
  // Five shards, records of the same sizes: its entries land exactly over the failed commit's first
  // five, so the failed commit's last three entries would follow them whole, were they left there.
  await commitRound(store, 's', 5, 5, 150)
  const good = Array.from({ length: 10 }, (_, i) => `${i}:k${i}:${rec(i).data.toString()}`)
  const after = [...good, ...Array.from({ length: 5 }, (_, i) => `${10 + i}:k${150 + i}:${rec(150 + i).data.toString()}`)]
  t.same(await readAll(store, 's', 3), after, 'the failed commit is not served; the next one follows the last good one')
  // A power cut now (the store never closed): the restart replays the journal.
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  for (const s of [0, 4]) t.same(await readAll(again, 's', s), after, `shard ${s} after a power cut: exactly the acknowledged records`)
  for (const s of [5, 7]) t.same(await readAll(again, 's', s), good, `shard ${s} after a power cut: nothing of the failed commit`)
})

t.test('a direct commit\'s drain the disk filled under: the store resumes, and its bytes are cut from the files', async (t) => {
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath })
  await commitRound(store, 's', 8, 5, 0)
  await commitRound(store, 's', 2, 5, 5)
  // A direct commit over 2 shards: its writes went out, then the disk was full.
  await t.rejects(diskFillsDuring(() => commitRound(store, 's', 2, 20, 100)), { code: 'STORAGE_FAILED' })
  t.equal(await store.resume(), true, 'resumed')
  await commitRound(store, 's', 2, 1, 200)
  const expected = [...Array.from({ length: 10 }, (_, i) => `${i}:k${i}:${rec(i).data.toString()}`), `10:k200:${rec(200).data.toString()}`]
  t.same(await readAll(store, 's', 1), expected)
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  t.same(await readAll(again, 's', 0), expected, 'after a power cut: exactly the acknowledged records, none of the failed commit\'s past them')
})

t.test('a store that failed otherwise does not resume: an I/O error, or a full disk met by a sync', async (t) => {
  for (const failure of [{ code: 'EIO', syscall: 'writev' }, { code: 'ENOSPC', syscall: 'fdatasync' }]) {
    const { root, journalPath } = dirs(t)
    const store = new FileLogStore({ root, journalPath })
    t.teardown(() => store.close())
    await commitRound(store, 's', 8, 5, 0)
    const probe = await fsp.open(import.meta.filename, 'r')
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; writev: (b: Buffer[], p?: number) => Promise<unknown> }
    await probe.close()
    const original = failure.syscall === 'writev' ? proto.writev : proto.datasync
    const fail = () => Promise.reject(Object.assign(new Error(`${failure.code}: injected, ${failure.syscall}`), failure))
    if (failure.syscall === 'writev') proto.writev = fail
    else proto.datasync = fail
    try {
      await t.rejects(commitRound(store, 's', 8, 5, 100), { code: 'STORAGE_FAILED' })
    } finally {
      if (failure.syscall === 'writev') proto.writev = original as typeof proto.writev
      else proto.datasync = original as typeof proto.datasync
    }
    t.equal(await store.resume(), false, `${failure.code} in ${failure.syscall}: not resumed`)
    t.ok(store.failed, 'still failed: a restart recovers')
  }
})

t.test('segment heads kept from recovery stay within the store\'s 4 MiB budget, however many files the cache holds open', async (t) => {
  const dir = tempDir(t)
  const cache = new HandleCache(1000)
  const head = Buffer.alloc(16 * 1024, 1)
  const segments: Segment[] = []
  for (let i = 0; i < 300; i++) {
    const segment = await Segment.create(dir, i * 1000, cache)
    segment.keepOpened(head, head.length)
    segments.push(segment)
  }
  t.equal(cache.size, 300, 'all 300 files stay open')
  t.notOk(cache.keepHead(1), `the heads took the whole budget (${HEAD_BUDGET} bytes = ${HEAD_BUDGET / head.length} heads) and no more`)
  const kept = segments[0]!
  t.same(await kept.readAt(0, 4), head.subarray(0, 4), 'a kept head serves reads')
  await kept.release()
  t.ok(cache.keepHead(head.length), 'a released head gives its bytes back')
  cache.dropHead(head.length)
  for (const segment of segments) await segment.close()
})

/** The addon's file work, counted, with failures to inject; null under TRIBUTARY_NATIVE=0. */
function countedIo(fail: { syncfs?: boolean; writeRows?: number; errno?: number; writeCalls?: number } = {}) {
  const real = loadFileIo()
  if (!real) return null
  const calls = { syncfs: 0, writeAt: 0, rows: 0 }
  const io: FileIo = {
    async syncfs(fd) {
      calls.syncfs++
      if (fail.syncfs) throw Object.assign(new Error('EIO: syncfs of the store\'s file system failed'), { code: 'EIO', syscall: 'syncfs' })
      return real.syncfs(fd)
    },
    async writeAt(buf, table) {
      calls.writeAt++
      calls.rows += table.length / 4
      // The first `writeCalls` calls fail whole, with `errno`, before writing anything (a full disk).
      if (calls.writeAt <= (fail.writeCalls ?? 0)) return new Int32Array(table.length / 4).fill(fail.errno ?? 28)
      const errs = await real.writeAt(buf, table)
      // The first `writeRows` rows fail with EIO (after their bytes went out, as a write whose pages the kernel then dropped).
      for (let i = 0; i < Math.min(fail.writeRows ?? 0, errs.length); i++) errs[i] = 5
      return errs
    },
  }
  return { io, calls }
}
const noFileIo = process.env.TRIBUTARY_NATIVE === '0' ? 'TRIBUTARY_NATIVE=0 forces the TypeScript implementation: no batched writes or syncfs' : false

t.test('a checkpoint of 200 segments writes them in one job and syncs them with one syncfs, no fdatasync each; the files alone then hold every record', { skip: noFileIo }, async (t) => {
  const counted = countedIo()!
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, fileIo: counted.io })
  for (let round = 0; round < 5; round++) await commitRound(store, 's', 200, 3, round * 3)
  const before = await Promise.all([0, 57, 199].map((s) => readAll(store, 's', s)))
  t.equal(before[0]!.length, 15)
  const syncs = await countSyncs(() => store.close())
  t.equal(counted.calls.syncfs, 1, 'one syncfs')
  t.equal(counted.calls.writeAt, 1, 'one batched write')
  t.equal(counted.calls.rows, 200, 'of the 200 segments')
  t.ok(syncs <= 2, `no segment fdatasynced (${syncs} syncs: the journal's own)`)
  t.ok((await journalSizes(journalPath)).every((size) => size <= 16), 'and the journal was emptied')
  // Only the segment files now: the journal holds nothing to replay.
  const again = new FileLogStore({ root, journalPath, onReplay: () => t.fail('nothing to replay') })
  t.teardown(() => again.close())
  t.same(await Promise.all([0, 57, 199].map((s) => readAll(again, 's', s))), before, 'every record, from the files')
})

t.test('a checkpoint\'s segments on another file system than the store\'s root are fdatasynced each, the rest written in one job and synced with one syncfs', { skip: noFileIo }, async (t) => {
  const counted = countedIo()!
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, fileIo: counted.io })
  for (let round = 0; round < 3; round++) await commitRound(store, 's', 100, 2, round * 2)
  const before = await Promise.all([0, 9, 99].map((s) => readAll(store, 's', s)))
  // Ten shard directories as if mounted elsewhere: the store looks each directory's device up once and keeps it.
  const devices = (store as unknown as { devices: Map<string, number> }).devices
  for (let s = 0; s < 10; s++) devices.set(join(root, 's', shard(s)), -2)
  const syncs = await countSyncs(() => store.close())
  t.equal(counted.calls.syncfs, 1, 'one syncfs for the root\'s file system')
  t.equal(counted.calls.rows, 90, 'the 90 segments on it in the batch')
  t.ok(syncs >= 10 && syncs <= 12, `the 10 elsewhere fdatasynced each (${syncs} syncs, the journal's among them)`)
  const again = new FileLogStore({ root, journalPath, onReplay: () => t.fail('nothing to replay') })
  t.teardown(() => again.close())
  t.same(await Promise.all([0, 9, 99].map((s) => readAll(again, 's', s))), before, 'every record, from the files')
})

t.test('checkpoints of many segments with few files open: the closed ones are written on their own, the open ones in the batch, and everything reads back after a restart', { skip: noFileIo }, async (t) => {
  const counted = countedIo()!
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 32 * 1024, segmentBytes: 4096, maxOpenFiles: 16, fileIo: counted.io })
  for (let round = 0; round < 6; round++) await commitRound(store, 's', 300, 3, round * 3)
  await store.close()
  t.ok(counted.calls.syncfs >= 2, `rotations and the close each synced with syncfs (${counted.calls.syncfs})`)
  t.ok(counted.calls.rows > 0 && counted.calls.rows < counted.calls.syncfs * 300, `some segments went through the batch, the closed ones did not (${counted.calls.rows} rows)`)
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  for (const s of [0, 150, 299]) {
    const rows = await readAll(again, 's', s)
    t.equal(rows.length, 18, `shard ${s}: all 18 records`)
    t.equal(rows[17], `17:k17:${Buffer.from(rec(17).data).toString()}`)
  }
})

for (const [what, fail] of [['a failed syncfs', { syncfs: true }], ['a batched write failing for some segments', { writeRows: 7 }]] as const) {
  t.test(`${what} fails the checkpoint and keeps the journal: with the segments' unsynced pages lost, a restart finds every acknowledged record`, { skip: noFileIo }, async (t) => {
    const counted = countedIo(fail)!
    const { root, journalPath } = dirs(t)
    const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, fileIo: counted.io })
    for (let round = 0; round < 4; round++) await commitRound(store, 's', 100, 3, round * 3)
    const acknowledged = await Promise.all([0, 6, 99].map((s) => readAll(store, 's', s)))
    await t.rejects(store.close(), fail.syncfs ? { code: 'EIO', syscall: 'syncfs' } : { code: 'EIO', syscall: 'write' }, 'the close\'s checkpoint fails')
    t.ok((await journalSizes(journalPath)).some((size) => size > 16), 'the journal keeps its entries')
    // The kernel dropped every segment's pages.
    for (let s = 0; s < 100; s++) await fsp.truncate(join(root, 's', shard(s), '00000000000000000000.log'), 0)
    const again = new FileLogStore({ root, journalPath })
    t.teardown(() => again.close())
    t.same(await Promise.all([0, 6, 99].map((s) => readAll(again, 's', s))), acknowledged, 'every acknowledged record, at its offset')
  })
}

t.test('a rotation whose background checkpoint fails fails the store at the next rotation: nothing is acknowledged over it, and a restart finds every acknowledged record', { skip: noFileIo }, async (t) => {
  const counted = countedIo({ syncfs: true })!
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 16 * 1024, fileIo: counted.io })
  const acknowledged = new Map<number, number>()
  let failure: unknown = null
  for (let round = 0; round < 100 && !failure; round++) {
    try {
      await commitRound(store, 's', 80, 1, round)
      for (let s = 0; s < 80; s++) acknowledged.set(s, round + 1)
    } catch (err) {
      failure = err
    }
  }
  t.match(failure, { code: 'STORAGE_FAILED' }, 'a commit after the failed checkpoint is refused')
  t.ok(counted.calls.syncfs >= 1)
  await store.close().catch(() => {})
  for (let s = 0; s < 80; s++) await fsp.truncate(join(root, 's', shard(s), '00000000000000000000.log'), 0)
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  for (const s of [0, 79]) t.ok((await readAll(again, 's', s)).length >= acknowledged.get(s)!, `shard ${s}: the ${acknowledged.get(s)} acknowledged records are back`)
})

t.test('a background checkpoint the disk filled under, then a rotation over other shards: a resume writes and syncs both checkpoints\' segments before it empties the journal', { skip: noFileIo }, async (t) => {
  const counted = countedIo({ writeCalls: 1, errno: 28 })!
  const { root, journalPath } = dirs(t)
  const store = new FileLogStore({ root, journalPath, directMaxSegments: 0, journalBytes: 16 * 1024, fileIo: counted.io })
  // Stream a until the journal file is full; the next commit (to stream b) rotates it, and the
  // checkpoint of a's 80 segments (one batched write) fails with ENOSPC in the background. No commit
  // touches a's segments after that: only the failed checkpoint knows them.
  await commitRound(store, 'a', 80, 1, 0)
  let round = 1
  for (; Math.max(...await journalSizes(journalPath)) < 16 * 1024 && round < 500; round++) await commitRound(store, 'a', 80, 1, round)
  const acknowledgedA = round
  await commitRound(store, 'b', 80, 1, 0)
  for (let waited = 0; counted.calls.writeAt < 1 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10))
  t.equal(counted.calls.writeAt, 1, 'the checkpoint of stream a ran, and failed')
  // Then stream b until a rotation meets that failure: the store fails.
  let failure: unknown = null
  for (let r = 1; r < 500 && !failure; r++) await commitRound(store, 'b', 80, 1, r).catch((err: unknown) => { failure = err })
  t.match(failure, { code: 'STORAGE_FAILED' }, 'the rotation after the failed checkpoint fails the store')
  t.match(store.failed, { code: 'ENOSPC' })
  t.equal(await store.resume(), true, 'resumed')
  // A crash now (the store never closed): whatever is still only in memory is lost.
  const again = new FileLogStore({ root, journalPath })
  t.teardown(() => again.close())
  for (const s of [0, 79]) t.equal((await readAll(again, 'a', s)).length, acknowledgedA, `stream a, shard ${s}: all ${acknowledgedA} acknowledged records, from the failed checkpoint's segments`)
})
