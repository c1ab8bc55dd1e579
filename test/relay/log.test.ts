import t from 'tap'
import { promises as fsp, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { FileLogStore } from '../../relay/log/filelog.js'
import type { CorruptionReport } from '../../relay/log/types.js'
import { tempDir } from '../helpers/tmp.js'

// What only segment files have: torn tails, damage, index files, recovery. What every store does is
// the shard-log contract, run against this store in log-contract.test.ts.

const rec = (i: number, size = 100) => ({ partitionKey: `k${i}`, data: Buffer.alloc(size, i & 0xff), producerTimeMs: i, flags: 0 })
const SHARD = 'shardId-000000000000'

/** The shard's oldest segment file. */
const firstSegment = (root: string) => {
  const dir = join(root, 's', SHARD)
  return join(dir, readdirSync(dir).filter((n) => n.endsWith('.log')).sort()[0]!)
}

/** Flips bits of the byte of `file` that `at` picks; returns the file's size. */
async function flipByte(file: string, at: (size: number) => number, mask: number): Promise<number> {
  const buf = await fsp.readFile(file)
  const i = at(buf.length)
  buf[i] = buf[i]! ^ mask
  await fsp.writeFile(file, buf)
  return buf.length
}

async function fill(root: string, count: number, segmentBytes = 1 << 20) {
  const store = new FileLogStore({ root, segmentBytes })
  const log = await store.open('s', SHARD)
  for (let i = 0; i < count; i += 10) {
    log.append(Array.from({ length: Math.min(10, count - i) }, (_, j) => rec(i + j)))
    await store.commit()
  }
  await store.close()
}

t.test('garbage appended to the active segment is cut on open', async (t) => {
  const root = tempDir(t)
  await fill(root, 100)
  const file = firstSegment(root)
  const goodSize = statSync(file).size
  await fsp.appendFile(file, Buffer.from('a torn write of garbage, not a record'))
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 100, 'every good record is still there')
  t.equal(statSync(file).size, goodSize, 'the tail was truncated')
  t.equal(store.corruptions().length, 0, 'a torn tail is not reported as corruption')
  log.append([rec(100)])
  await store.commit()
  const { records } = await log.read(95, 100, 1 << 20)
  t.same(records.map((r) => r.offset), [95, 96, 97, 98, 99, 100], 'appends continue where the good records end')
  t.same(store.corruptions(), [], 'right after them, with no gap to be taken for damage')
  await store.close()
})

t.test('damage in the last record of the active segment, with nothing good after it, is cut as a torn write', async (t) => {
  const root = tempDir(t)
  await fill(root, 100)
  const file = firstSegment(root)
  const size = await flipByte(file, (size) => size - 20, 0x55) // inside record 99's data: a whole record whose checksum fails
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 99)
  t.ok(statSync(file).size < size, 'the damaged tail was truncated')
  t.same(store.corruptions(), [], 'and not reported as a hole')
  log.append([rec(99)])
  await store.commit()
  t.same((await log.read(97, 10, 1 << 20)).records.map((r) => r.offset), [97, 98, 99])
  await store.close()
})

t.test('records larger than a read chunk, and records across chunk ends, are recovered and read whole', async (t) => {
  const root = tempDir(t)
  const sizes = [300_000, 300_000, 300_000, 300_000, 1_500_000, 700_000, 100, 100]
  let store = new FileLogStore({ root })
  let log = await store.open('s', SHARD)
  for (const [i, size] of sizes.entries()) log.append([rec(i, size)])
  await store.commit()
  const read = async () => {
    const out: number[] = []
    for (let next = 0; next < log.endOffset();) {
      const page = await log.read(next, 3, 1 << 24)
      out.push(...page.records.map((r) => r.data.length))
      next = page.nextOffset
    }
    return out
  }
  t.same(await read(), sizes)
  await store.close()
  store = new FileLogStore({ root })
  log = await store.open('s', SHARD)
  t.equal(log.endOffset(), sizes.length, 'recovery walked every record')
  t.same(await read(), sizes)
  t.same(store.corruptions(), [])
  await store.close()
})

t.test('a half-written last record is cut on open', async (t) => {
  const root = tempDir(t)
  await fill(root, 20)
  const file = firstSegment(root)
  await fsp.truncate(file, statSync(file).size - 30)
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 19)
  await store.close()
})

t.test('a flipped byte in the middle of a segment is detected, reported and not served', async (t) => {
  const root = tempDir(t)
  await fill(root, 100)
  // Inside record 50's data.
  await flipByte(firstSegment(root), (size) => Math.floor((size / 100) * 50 + size / 100 / 2), 0xff)
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, onCorruption: (r) => reports.push(r) })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 100, 'the records after the damage are kept')
  t.equal(reports.length, 1, 'the damage is reported once')
  t.equal(reports[0]?.firstOffset, 50)
  t.equal(reports[0]?.lastOffset, 50)
  const { records } = await log.read(0, 1000, 1 << 20)
  t.equal(records.length, 99)
  t.notOk(records.some((r) => r.offset === 50), 'the damaged record is never served')
  t.same(records.slice(49, 51).map((r) => r.offset), [49, 51])
  await store.close()
})

t.test('damage in a sealed segment is found when read, reported once and skipped, and reads go on into the next segment', async (t) => {
  const root = tempDir(t)
  await fill(root, 200, 4096)
  const dir = join(root, 's', SHARD)
  const logs = readdirSync(dir).filter((n) => n.endsWith('.log')).sort()
  t.ok(logs.length > 3, `rolled into ${logs.length} segments`)
  const lastOfSecond = Number(logs[2]!.slice(0, 20)) - 1
  const store = new FileLogStore({ root, segmentBytes: 4096 })
  const log = await store.open('s', SHARD)
  t.same(store.corruptions(), [], 'nothing is damaged at open')
  // Damaged while the store runs (a failing disk): only a read can find it.
  await flipByte(join(dir, logs[1]!), (size) => size - 20, 0x55) // the last record of a sealed segment
  const all = await log.read(0, 1000, 1 << 20)
  t.equal(all.records.length, 199, 'one read returns every record but the damaged one, across the hole')
  t.notOk(all.records.some((r) => r.offset === lastOfSecond), `record ${lastOfSecond} is withheld`)
  t.match(store.corruptions(), [{ firstOffset: lastOfSecond, lastOffset: lastOfSecond }], 'the report names the damaged record')
  t.equal(store.corruptions().length, 1)
  // Again in pages: the hole is known now.
  const seen: number[] = []
  let next = 0
  for (;;) {
    const r = await log.read(next, 7, 1 << 20)
    if (!r.records.length && r.nextOffset >= log.endOffset()) break
    seen.push(...r.records.map((x) => x.offset))
    next = r.nextOffset
  }
  t.equal(seen.length, 199, 'one record is withheld')
  t.equal(new Set(seen).size, 199, 'no record is served twice')
  t.equal(store.corruptions().length, 1, 'and the damage is not reported again')
  await store.close()
})

t.test('segments roll at the size limit and retention deletes only whole sealed segments', async (t) => {
  const root = tempDir(t)
  let now = 1_000_000
  const store = new FileLogStore({ root, segmentBytes: 2048, now: () => now })
  const log = await store.open('s', SHARD)
  for (let i = 0; i < 60; i++) {
    log.append([rec(i)])
    await store.commit()
    now += 1000
  }
  const dir = join(root, 's', SHARD)
  const before = readdirSync(dir).filter((n) => n.endsWith('.log')).length
  t.ok(before > 3)
  await store.enforceRetention(() => 30_000, now)
  const after = readdirSync(dir).filter((n) => n.endsWith('.log')).length
  t.ok(after < before, `${before} segments became ${after}`)
  t.ok(log.startOffset() > 0 && log.startOffset() <= 30, `records older than retention are gone (start ${log.startOffset()})`)
  const { records } = await log.read(0, 1000, 1 << 20)
  t.equal(records[0]?.offset, log.startOffset(), 'a read from a trimmed offset starts at the oldest record')
  t.equal(records[records.length - 1]?.offset, 59)
  await store.enforceRetention(() => 0, now + 10_000)
  t.equal(readdirSync(dir).filter((n) => n.endsWith('.log')).length, 1, 'the active segment is never deleted')
  await store.close()
  const reopened = new FileLogStore({ root, segmentBytes: 2048 })
  const again = await reopened.open('s', SHARD)
  t.equal(again.endOffset(), 60)
  await reopened.close()
  // Reopened from files that held several segments: only the last is active, and retention keeps it.
  await fill(root, 40, 2048)
  const third = new FileLogStore({ root, segmentBytes: 2048 })
  const log3 = await third.open('s', SHARD)
  t.ok(readdirSync(dir).filter((n) => n.endsWith('.log')).length >= 3)
  await third.enforceRetention(() => 0, Date.now() + 3_600_000)
  t.equal(readdirSync(dir).filter((n) => n.endsWith('.log')).length, 1, 'after a reopen too, only the active segment is left')
  log3.append([rec(1000)])
  await third.commit()
  t.equal(log3.endOffset(), 101, 'and appends go on in it')
  await third.close()
})

t.test('a missing or damaged index file is rebuilt from the log, saved again as it was, and finds every record', async (t) => {
  const root = tempDir(t)
  await fill(root, 300, 4096)
  const dir = join(root, 's', SHARD)
  const idx = readdirSync(dir).filter((n) => n.endsWith('.idx')).sort()
  t.ok(idx.length >= 3)
  const saved = await Promise.all(idx.slice(0, 3).map((n) => fsp.readFile(join(dir, n))))
  await fsp.rm(join(dir, idx[0]!))
  await fsp.writeFile(join(dir, idx[1]!), Buffer.from('nonsense'))
  // Its first entries still good, then one that goes backwards: half-loaded, it must be thrown away whole.
  const partly = Buffer.from(saved[2]!)
  t.ok(partly.length >= 2 * 24, 'an index of two entries or more')
  partly.writeDoubleLE(0, partly.length - 24)
  await fsp.writeFile(join(dir, idx[2]!), partly)
  const store = new FileLogStore({ root, segmentBytes: 4096 })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 300)
  const { records } = await log.read(0, 1000, 1 << 20)
  t.same(records.map((r) => r.offset), Array.from({ length: 300 }, (_, i) => i))
  let exact = 0
  for (let from = 0; from < 300; from++) {
    const page = await log.read(from, 2, 1 << 20)
    if (page.records[0]?.offset === from && page.records.length === 2 - Number(from === 299)) exact++
    else t.fail(`a read from ${from} returned ${page.records.map((r) => r.offset)}`)
  }
  t.equal(exact, 300, 'a read from any offset starts exactly there')
  await store.close()
  for (const [i, name] of idx.slice(0, 3).entries()) {
    t.same(await fsp.readFile(join(dir, name)), saved[i], `${name} was saved again, as sealing wrote it`)
  }
})

t.test('damage in the last record of a sealed segment is found at open, its index notwithstanding', async (t) => {
  const root = tempDir(t)
  await fill(root, 200, 4096)
  const dir = join(root, 's', SHARD)
  const logs = readdirSync(dir).filter((n) => n.endsWith('.log')).sort()
  const lastOfFirst = Number(logs[1]!.slice(0, 20)) - 1
  await flipByte(join(dir, logs[0]!), (size) => size - 20, 0x55)
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, segmentBytes: 4096, onCorruption: (r) => reports.push(r) })
  const log = await store.open('s', SHARD)
  t.match(reports, [{ firstOffset: lastOfFirst, lastOffset: lastOfFirst }], `record ${lastOfFirst} is reported at open`)
  t.equal(reports.length, 1)
  const { records } = await log.read(0, 1000, 1 << 20)
  t.equal(records.length, 199)
  t.notOk(records.some((r) => r.offset === lastOfFirst))
  t.equal(log.endOffset(), 200)
  await store.close()
})

t.test('a read running while retention deletes segments skips nothing that is still retained', async (t) => {
  const root = tempDir(t)
  let now = 1_000_000
  const store = new FileLogStore({ root, segmentBytes: 2048, now: () => now })
  const log = await store.open('s', SHARD)
  for (let i = 0; i < 100; i++) {
    log.append([rec(i)])
    await store.commit()
    now += 1000
  }
  const reading = log.read(10, 1000, 1 << 20)
  const trimming = store.enforceRetention(() => 50_000, now)
  const [{ records }] = await Promise.all([reading, trimming])
  const offsets = records.map((r) => r.offset)
  // A gap may only cover records retention deleted: after it, reading resumes at the oldest retained one.
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] !== offsets[i - 1]! + 1 && offsets[i]! > log.startOffset()) t.fail(`retained records between ${offsets[i - 1]} and ${offsets[i]} were skipped`)
  }
  t.equal(offsets[offsets.length - 1], 99, 'the read reaches the end')
  t.ok(log.startOffset() > 10, 'retention did delete segments')
  await store.close()
})

t.test('a torn record whose data looks like a record is cut, never adopted', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  log.append([rec(0)])
  await store.commit()
  // A producer's data that is itself a well-formed log record (offset 1, a forged device identity).
  const forged = Buffer.alloc(200)
  const { codec } = await import('../../hardware/index.js')
  const forgedLength = codec.encodeLogRecord(forged, 0, 1, Date.now(), { partitionKey: 'x', data: Buffer.from('forged'), producerTimeMs: 0, flags: 4, device: 'victim', epoch: 7n, batchSequence: 42, batchIndex: 0 })
  // The carrier's data ends with the forged record, or holds it whole before some padding.
  log.append([{ partitionKey: 'carrier', data: forged.subarray(0, forgedLength), producerTimeMs: 0, flags: 0 }])
  await store.commit()
  await store.close()
  const file = firstSegment(root)
  const whole = statSync(file).size
  await fsp.truncate(file, whole - 5) // the carrier's write was torn
  const again = new FileLogStore({ root })
  const reopened = await again.open('s', SHARD)
  t.equal(reopened.endOffset(), 1, 'only the first record survives')
  const { records } = await reopened.read(0, 10, 1 << 20)
  t.notOk(records.some((r) => r.device === 'victim'), 'the record inside the torn data was not taken for a real one')
  reopened.append([{ partitionKey: 'carrier', data: forged.subarray(0, forgedLength + 50), producerTimeMs: 0, flags: 0 }])
  await again.commit()
  await again.close()
  await fsp.truncate(file, statSync(file).size - 5) // torn in the padding: the forged record inside is whole
  const third = new FileLogStore({ root })
  const last = await third.open('s', SHARD)
  t.equal(last.endOffset(), 1, 'only the first record survives again')
  t.notOk((await last.read(0, 10, 1 << 20)).records.some((r) => r.device === 'victim'), 'a whole record inside torn data is not adopted either')
  t.same(third.corruptions(), [])
  await third.close()
})

t.test('a commit landing while a read waits for the disk does not make the read skip its records', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root })
  t.teardown(() => store.close())
  const log = await store.open('s', SHARD)
  log.append([rec(0), rec(1), rec(2)])
  await store.commit()
  // The next disk read of the segment waits for a commit of three more records to finish first.
  const segment = (log as unknown as { segments: { handle: { read: (...a: unknown[]) => Promise<unknown> } }[] }).segments[0]!
  const read = segment.handle.read.bind(segment.handle)
  let injected = false
  segment.handle.read = async (...args: unknown[]) => {
    const result = await read(...args)
    if (!injected) {
      injected = true
      log.append([rec(3), rec(4), rec(5)])
      await store.commit()
    }
    return result
  }
  const first = await log.read(0, 100, 1 << 20)
  t.same(first.records.map((r) => r.offset), [0, 1, 2], 'the read returns what was committed when it began')
  t.equal(first.nextOffset, 3, 'and continues right after it, not after the commit that landed meanwhile')
  const second = await log.read(first.nextOffset, 100, 1 << 20)
  t.same(second.records.map((r) => r.offset), [3, 4, 5])
})

/**
 * Records 0..99 where record 50 carries `inner` (bytes that look like log records) in its data; returns
 * where the carrier and its inner bytes start in the segment file.
 */
async function withCarrier(root: string, inner: Buffer) {
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  for (let i = 0; i < 100; i++) {
    log.append([i === 50 ? { partitionKey: 'carrier', data: Buffer.concat([Buffer.alloc(100, 0xab), inner, Buffer.alloc(100, 0xcd)]), producerTimeMs: 50, flags: 0 } : rec(i)])
  }
  await store.commit()
  await store.close()
  const file = firstSegment(root)
  const bytes = await fsp.readFile(file)
  const innerAt = bytes.indexOf(inner)
  const carrierAt = bytes.lastIndexOf(Buffer.from('carrier'), innerAt) - 64
  return { file, bytes, innerAt, carrierAt }
}

/** A whole, checksummed log record numbered `offset`, from a device that never sent it. */
async function forgedRecord(offset: number): Promise<Buffer> {
  const { codec } = await import('../../hardware/index.js')
  const buf = Buffer.alloc(300)
  const n = codec.encodeLogRecord(buf, 0, offset, 1, { partitionKey: 'x', data: Buffer.from(`forged-${offset}`), producerTimeMs: 0, flags: 4, device: 'victim', epoch: 7n, batchSequence: 42, batchIndex: 0 })
  return buf.subarray(0, n)
}

/** Reopens the store and reads every record it serves, with the damage it reports. */
async function reopenAndRead(root: string) {
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, onCorruption: (r) => reports.push(r) })
  const log = await store.open('s', SHARD)
  const { records } = await log.read(0, 1000, 1 << 24)
  const endOffset = log.endOffset()
  await store.close()
  return { reports, records, endOffset }
}

const allBut50 = [...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: 49 }, (_, i) => 51 + i)]

t.test('damage inside a record whose data holds a whole record: the hole ends where the damaged record says it ends, and the record inside is never adopted', async (t) => {
  const root = tempDir(t)
  const { file, bytes, innerAt } = await withCarrier(root, await forgedRecord(50))
  bytes[innerAt - 50] = bytes[innerAt - 50]! ^ 0xff // in the carrier's data, before the record inside it
  await fsp.writeFile(file, bytes)
  const { reports, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 100)
  t.same(records.map((r) => r.offset), allBut50, 'every record but the damaged one is served')
  t.notOk(records.some((r) => r.device === 'victim'), 'the record inside the damaged one is not')
  t.same(records.map((r) => r.data.equals(rec(r.offset).data)), records.map(() => true), 'each with its own data')
  t.match(reports, [{ firstOffset: 50, lastOffset: 50 }], 'one hole, of record 50')
  t.equal(reports.length, 1)
})

t.test('when a length field is damaged, resync takes only a record that verifies and is numbered where the log expects it', async (t) => {
  const root = tempDir(t)
  const badChecksum = Buffer.from(await forgedRecord(50))
  badChecksum[badChecksum.length - 1] = badChecksum[badChecksum.length - 1]! ^ 0xff
  // Numbered as record 50 but not checksummed right; a whole copy of an old record; one numbered far beyond.
  const inner = Buffer.concat([badChecksum, await forgedRecord(3), await forgedRecord(50 + 10_000_001)])
  const { file, bytes, carrierAt } = await withCarrier(root, inner)
  bytes.writeUInt32LE(10, carrierAt) // the carrier's length: shorter than any header, so no end can be believed
  await fsp.writeFile(file, bytes)
  const { reports, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 100)
  t.same(records.map((r) => r.offset), allBut50, 'the walk resumes at record 51')
  t.notOk(records.some((r) => r.device === 'victim'), 'none of the look-alikes is served')
  t.match(reports, [{ firstOffset: 50, lastOffset: 50 }])
  t.equal(reports.length, 1)
})

t.test('a read never serves records whose write has not been synced, even when their bytes are already in the file', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  log.append([rec(0), rec(1), rec(2)])
  await store.commit()
  // The next sync of the segment waits until the test lets it finish.
  const segment = (log as unknown as { segments: { handle: { datasync: () => Promise<void> } }[] }).segments[0]!
  const datasync = segment.handle.datasync.bind(segment.handle)
  let release = () => {}
  let syncing = () => {}
  const reached = new Promise<void>((resolve) => { syncing = resolve })
  segment.handle.datasync = async () => {
    syncing()
    await new Promise<void>((resolve) => { release = resolve })
    return datasync()
  }
  log.append([rec(3), rec(4)])
  const committed = store.commit()
  await reached
  t.ok(statSync(firstSegment(root)).size > 0, 'the new records are written')
  const during = await log.read(0, 100, 1 << 20)
  t.same(during.records.map((r) => r.offset), [0, 1, 2], 'a read before the sync sees only what was synced')
  t.equal(during.nextOffset, 3)
  release()
  await committed
  t.same((await log.read(0, 100, 1 << 20)).records.map((r) => r.offset), [0, 1, 2, 3, 4], 'and all of them after it')
  await store.close()
})

t.test('damage in the record before the last: resync still finds the last record, which ends where the file ends', async (t) => {
  const root = tempDir(t)
  await fill(root, 100)
  const file = firstSegment(root)
  const bytes = await fsp.readFile(file)
  bytes.writeUInt32LE(10, bytes.lastIndexOf(Buffer.from('k98')) - 64) // record 98's length field
  await fsp.writeFile(file, bytes)
  const { reports, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 100, 'nothing was cut')
  t.same(records.slice(-2).map((r) => r.offset), [97, 99], 'record 99 is served, 98 is not')
  t.equal(records.length, 99)
  t.match(reports, [{ firstOffset: 98, lastOffset: 98 }])
})

t.test('damage inside a record larger than a read chunk is found: the record is reported and not served', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  log.append([rec(0), rec(1, 1_500_000), rec(2), rec(3)])
  await store.commit()
  await store.close()
  const file = firstSegment(root)
  const bytes = await fsp.readFile(file)
  bytes[200 + 750_000] = bytes[200 + 750_000]! ^ 0x01 // the middle of record 1's data
  await fsp.writeFile(file, bytes)
  const { reports, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 4)
  t.same(records.map((r) => r.offset), [0, 2, 3], 'the damaged large record is withheld')
  t.match(reports, [{ firstOffset: 1, lastOffset: 1 }])
})

t.test('a write the disk takes in pieces is completed in order, and several appends in one commit are each found where they were put', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root })
  const log = await store.open('s', SHARD)
  log.append([rec(0)])
  await store.commit()
  // From now on the segment's file takes at most 100 bytes per write call.
  const segment = (log as unknown as { segments: { handle: { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> } }[] }).segments[0]!
  const write = segment.handle.write.bind(segment.handle)
  let calls = 0
  segment.handle.write = (buf: unknown, offset: unknown, length: unknown, position: unknown) => {
    calls++
    return write(buf, offset, Math.min(Number(length), 100), position)
  }
  // Three appends gather into one commit; records large enough that each gets an index entry.
  log.append([rec(1, 5000), rec(2, 5000)])
  log.append([rec(3, 5000)])
  log.append([rec(4, 5000), rec(5, 5000), rec(6, 5000)])
  await store.commit()
  t.ok(calls > 100, `the commit took ${calls} write calls`)
  for (let from = 0; from < 7; from++) {
    t.same((await log.read(from, 1, 1 << 20)).records.map((r) => [r.offset, r.data.equals(rec(r.offset, from ? 5000 : 100).data)]), [[from, true]], `record ${from} is read from its own offset, whole`)
  }
  await store.close()
  const { records, reports } = await reopenAndRead(root)
  t.same(records.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6], 'and after a reopen')
  t.same(reports, [])
})

t.test('a segment that holds exactly its size limit is sealed: the next commit starts a new segment', async (t) => {
  const root = tempDir(t)
  const probe = tempDir(t)
  await fill(probe, 10)
  const tenRecords = statSync(firstSegment(probe)).size
  await fill(root, 20, tenRecords) // two commits of ten records; the first fills the segment exactly
  const dir = join(root, 's', SHARD)
  t.same(readdirSync(dir).filter((n) => n.endsWith('.log')).sort(), ['00000000000000000000.log', '00000000000000000010.log'])
  t.equal(statSync(join(dir, '00000000000000000000.log')).size, tenRecords)
})

t.test('the index saved when a segment is sealed is the one a rebuild from the log makes, for appends gathered into one commit too', async (t) => {
  const root = tempDir(t)
  const store = new FileLogStore({ root, segmentBytes: 32 * 1024 })
  const log = await store.open('s', SHARD)
  let next = 0
  // Each commit gathers three appends of records large enough that each gets an index entry.
  for (let c = 0; c < 6; c++) {
    for (let a = 0; a < 3; a++) log.append([rec(next++, 5000), rec(next++, 5000)])
    await store.commit()
  }
  await store.close()
  const dir = join(root, 's', SHARD)
  const idx = readdirSync(dir).filter((n) => n.endsWith('.idx')).sort()
  t.ok(idx.length >= 2, `${idx.length} sealed segments`)
  const saved = await Promise.all(idx.map((n) => fsp.readFile(join(dir, n))))
  for (const n of idx) await fsp.rm(join(dir, n))
  const again = new FileLogStore({ root, segmentBytes: 32 * 1024 })
  await again.open('s', SHARD)
  await again.close()
  for (const [i, n] of idx.entries()) t.same(await fsp.readFile(join(dir, n)), saved[i], `${n}: rebuilt as sealing saved it`)
})

t.test('a read with views gives the same records as one with copies; copies hold only their own bytes, views lie in the read chunks', async (t) => {
  const root = tempDir(t)
  // 300 KB of records: a read chunk larger than Buffer's pool (8 KiB on Node 20, 64 KiB on Node 24),
  // where a copy of a 1,000-byte record lands.
  const writer = new FileLogStore({ root })
  const written = await writer.open('s', SHARD)
  for (let i = 0; i < 300; i += 10) {
    written.append(Array.from({ length: 10 }, (_, j) => rec(i + j, 1000)))
    await writer.commit()
  }
  await writer.close()
  const store = new FileLogStore({ root })
  t.teardown(() => store.close())
  const log = await store.open('s', SHARD)
  const copies = await log.read(0, 1000, 1 << 20)
  const views = await log.read(0, 1000, 1 << 20, { views: true })
  t.equal(copies.records.length, 300)
  t.same(views.records.map((r) => [r.offset, r.partitionKey, r.data.toString('hex')]), copies.records.map((r) => [r.offset, r.partitionKey, r.data.toString('hex')]), 'the same records, keys and bytes')
  t.ok(copies.records.every((r) => r.data.buffer.byteLength <= Buffer.poolSize), 'a copy holds its own bytes (or a slot of the small-buffer pool), not the read chunk')
  const sizes = new Set(views.records.map((r) => r.data.buffer.byteLength))
  t.ok(views.records.every((r) => r.data.buffer.byteLength > Buffer.poolSize), `each view lies in a read chunk, not a copy of its own (chunks of ${[...sizes].join(', ')} bytes)`)
})
