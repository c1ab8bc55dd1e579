/**
 * Recovery of segment files (relay/log/recovery.ts) where the damage is shaped to test each rule the
 * walk and the resync follow: a length field that claims too much or too little, damage at a read
 * chunk's edge and at a segment's end, a hole found again by a later read, a saved index trusted or
 * thrown away, and how much of a segment open and reads have to read. The common cases (a torn tail,
 * a flipped byte, a record inside a damaged one) are in log.test.ts.
 */
import t, { type Test } from 'tap'
import { promises as fsp, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { LOG_MAX_FRAME } from '../../shared/logframe.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import type { CorruptionReport } from '../../relay/log/types.js'
import { tempDir } from '../helpers/tmp.js'

const SHARD = 'shardId-000000000000'
/** What recovery reads at a time (recovery.ts's READ_CHUNK). */
const CHUNK = 1024 * 1024
/** The segment store's index interval and entry size (segment.ts). */
const INDEX_INTERVAL = 4096
const INDEX_ENTRY = 24

/** Record `i` with `size` bytes of data, every byte `i`. */
const rec = (i: number, size = 100) => ({ partitionKey: `k${i}`, data: Buffer.alloc(size, i & 0xff), producerTimeMs: i, flags: 0 })
/** Record `i` whose whole frame is `frame` bytes (64 of header, its key, the rest data). */
const recOfFrame = (i: number, frame: number) => rec(i, frame - 64 - Buffer.byteLength(`k${i}`))

const shardDir = (root: string) => join(root, 's', SHARD)
const segmentFiles = (root: string, ext: 'log' | 'idx') => readdirSync(shardDir(root)).filter((n) => n.endsWith(`.${ext}`)).sort().map((n) => join(shardDir(root), n))

/** Appends each group of records in its own commit, then closes the store. */
async function write(root: string, commits: ReturnType<typeof rec>[][], segmentBytes?: number) {
  const store = new FileLogStore({ root, segmentBytes })
  const log = await store.open('s', SHARD)
  for (const records of commits) {
    log.append(records)
    await store.commit()
  }
  await store.close()
}

/** Where each record of a segment file starts, by walking its length fields (before any damage). */
async function positions(file: string): Promise<number[]> {
  const bytes = await fsp.readFile(file)
  const out: number[] = []
  for (let at = 0; at < bytes.length; at += bytes.readUInt32LE(at)) out.push(at)
  return out
}

/** The saved index of a sealed segment: [offset, position] per entry. */
async function indexEntries(file: string): Promise<[number, number][]> {
  const buf = await fsp.readFile(file)
  return Array.from({ length: buf.length / INDEX_ENTRY }, (_, i) => [buf.readDoubleLE(i * INDEX_ENTRY), buf.readDoubleLE(i * INDEX_ENTRY + 8)])
}

async function patch(file: string, change: (bytes: Buffer) => void) {
  const bytes = await fsp.readFile(file)
  change(bytes)
  await fsp.writeFile(file, bytes)
}

/** Opens the store again and reads every record it serves, with the damage it reports. */
async function reopenAndRead(root: string, segmentBytes?: number) {
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, segmentBytes, onCorruption: (r) => reports.push(r) })
  const log = await store.open('s', SHARD)
  const records: { offset: number; device: string; intact: boolean }[] = []
  for (let next = 0; next < log.endOffset();) {
    const page = await log.read(next, 1000, 1 << 24)
    records.push(...page.records.map((r) => ({ offset: r.offset, device: r.device, intact: r.data.every((b) => b === (r.offset & 0xff)) })))
    if (page.nextOffset <= next) break
    next = page.nextOffset
  }
  const endOffset = log.endOffset()
  await store.close()
  return { reports, records, offsets: records.map((r) => r.offset), endOffset }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Bytes read through any file handle while `during` runs. */
async function bytesRead(t: Test, during: () => Promise<void>): Promise<number> {
  const probe = await fsp.open(join(tempDir(t), 'probe'), 'w')
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> }
  await probe.close()
  const read = proto.read
  let total = 0
  proto.read = async function (this: unknown, ...args: unknown[]) {
    const result = await read.apply(this, args)
    total += result.bytesRead
    return result
  }
  try {
    await during()
  } finally {
    proto.read = read
  }
  return total
}

t.test('a length field damaged to claim more bytes than its sealed segment holds costs that record only, even at the start of a read chunk', async (t) => {
  const root = tempDir(t)
  // Record 1 straddles the first read chunk, so the walk starts its second chunk on it; more than a
  // chunk lies after it, so that chunk does not reach the segment's end either.
  await write(root, [[rec(0, 900_000), rec(1, 300_000), rec(2, 800_000)], [rec(3)]], 1_900_000)
  const [sealed] = segmentFiles(root, 'log')
  const at = (await positions(sealed!))[1]!
  const size = statSync(sealed!).size
  t.ok(at < CHUNK && at + 300_000 > CHUNK && size - at > CHUNK, 'record 1 straddles the first chunk, and a chunk from it does not reach the end')
  await patch(sealed!, (b) => b.writeUInt32LE(LOG_MAX_FRAME, at)) // a believable frame length, but past the end
  t.ok(at + LOG_MAX_FRAME > size)
  const { reports, offsets, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 4)
  t.same(offsets, [0, 2, 3], 'record 2, right after the damaged one, is served')
  t.ok(records.every((r) => r.intact), 'each with its own data')
  t.match(reports, [{ firstOffset: 1, lastOffset: 1, position: at }], 'the damage is reported as record 1')
  t.equal(reports.length, 1)
})

t.test('a length field damaged to claim more than any record may be is not believed: the records within that length are kept', async (t) => {
  const root = tempDir(t)
  // Record 10's length is made one byte over the largest frame; records 11..14 lie within that many bytes of it.
  await write(root, [[...range(0, 12).map((i) => rec(i)), rec(12, 800_000), rec(13, 800_000), rec(14, 800_000), rec(15)]])
  const [file] = segmentFiles(root, 'log')
  const at = (await positions(file!))[10]!
  const size = statSync(file!).size
  t.ok(at + LOG_MAX_FRAME + 1 < size, 'the claimed length would end inside the segment')
  await patch(file!, (b) => b.writeUInt32LE(LOG_MAX_FRAME + 1, at))
  const { reports, offsets, records, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 16, 'nothing was cut')
  t.same(offsets, [...range(0, 10), ...range(11, 16)], 'only record 10 is withheld')
  t.ok(records.every((r) => r.intact))
  t.match(reports, [{ firstOffset: 10, lastOffset: 10 }])
  t.equal(reports.length, 1)
})

/** A whole, checksummed log record numbered `offset`, from a device that never sent it. */
function forgedRecord(offset: number): Buffer {
  const buf = Buffer.alloc(300)
  const n = codec.encodeLogRecord(buf, 0, offset, 1, { partitionKey: 'x', data: Buffer.from(`forged-${offset}`), producerTimeMs: 0, flags: 4, device: 'victim', epoch: 7n, batchSequence: 42, batchIndex: 0 })
  return buf.subarray(0, n)
}

t.test('damage in the last record of a sealed segment, whose data holds a whole record numbered like it: the hole runs to the segment end, the record inside is never adopted', async (t) => {
  const root = tempDir(t)
  const carrier = { partitionKey: 'carrier', data: Buffer.concat([Buffer.alloc(100, 0xab), forgedRecord(10), Buffer.alloc(100, 0xcd)]), producerTimeMs: 0, flags: 0 }
  await write(root, [[...range(0, 10).map((i) => rec(i)), carrier], [rec(11), rec(12)]], 1000)
  const [sealed, active] = segmentFiles(root, 'log')
  t.ok(active?.endsWith('00000000000000000011.log'), 'record 10 is the last of the sealed segment')
  await patch(sealed!, (b) => { const at = b.indexOf(Buffer.alloc(100, 0xab)) + 50; b[at] = b[at]! ^ 0xff })
  const { reports, records, offsets, endOffset } = await reopenAndRead(root, 1000)
  t.equal(endOffset, 13)
  t.same(offsets, [...range(0, 10), 11, 12], 'every record but the damaged one')
  t.notOk(records.some((r) => r.device === 'victim'), 'the record inside the damaged one is not served')
  t.match(reports, [{ firstOffset: 10, lastOffset: 10 }])
  t.equal(reports.length, 1)
})

t.test('the length field of the last record of a sealed segment damaged to a small value: resync searches the rest of the segment, finds nothing and ends the hole there', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 10).map((i) => rec(i)), [rec(10), rec(11)]], 1000)
  const [sealed] = segmentFiles(root, 'log')
  const at = (await positions(sealed!))[9]!
  await patch(sealed!, (b) => b.writeUInt32LE(10, at))
  const { reports, offsets, records, endOffset } = await reopenAndRead(root, 1000)
  t.equal(endOffset, 12)
  t.same(offsets, [...range(0, 9), 10, 11], 'record 9 is withheld; reading goes on into the next segment')
  t.ok(records.every((r) => r.intact))
  t.match(reports, [{ firstOffset: 9, lastOffset: 9 }])
  t.equal(reports.length, 1)
})

t.test('resync finds the next record exactly one read chunk after where it starts searching', async (t) => {
  const root = tempDir(t)
  // Record 1's length field is damaged to under a header, so resync starts one byte into it; record 2
  // starts exactly one chunk after that byte.
  await write(root, [[rec(0), recOfFrame(1, CHUNK + 1), rec(2), rec(3)]])
  const [file] = segmentFiles(root, 'log')
  const [, at, next] = await positions(file!)
  t.equal(next! - (at! + 1), CHUNK)
  await patch(file!, (b) => b.writeUInt32LE(10, at!))
  const { reports, offsets, endOffset } = await reopenAndRead(root)
  t.equal(endOffset, 4, 'nothing was cut')
  t.same(offsets, [0, 2, 3], 'record 2 is found and served')
  t.match(reports, [{ firstOffset: 1, lastOffset: 1 }])
})

t.test('damage found by a read right after a known hole, from an index entry at the hole: the report names the record after the hole and nothing before the first damage', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 120).map((i) => rec(i)), [rec(120)]], 16 * 1024)
  const [sealed] = segmentFiles(root, 'log')
  const [idx] = segmentFiles(root, 'idx')
  const entries = await indexEntries(idx!)
  t.ok(entries.length >= 3, 'the sealed segment has index entries')
  const [x, xAt] = entries[2]!
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, segmentBytes: 16 * 1024, onCorruption: (r) => reports.push(r) })
  t.teardown(() => store.close())
  const log = await store.open('s', SHARD)
  // The disk fails under the running store: first record x, which an index entry points at ...
  const flip = async (position: number) => patch(sealed!, (b) => { b[position + 120] = b[position + 120]! ^ 0x55 })
  await flip(xAt)
  let served = (await log.read(0, 1000, 1 << 20)).records.map((r) => r.offset)
  t.notOk(served.includes(x), `record ${x} is withheld`)
  t.match(reports, [{ firstOffset: x, lastOffset: x }])
  // ... then the record after it.
  const xLength = (await fsp.readFile(sealed!)).readUInt32LE(xAt)
  await flip(xAt + xLength)
  served = (await log.read(x, 1000, 1 << 20)).records.map((r) => r.offset)
  t.equal(served[0], x + 2, `a read from ${x} starts at ${x + 2}`)
  t.equal(reports.length, 2)
  t.equal(reports[1]?.lastOffset, x + 1, `the new damage is record ${x + 1}`)
  t.ok(reports[1]!.firstOffset >= x && reports[1]!.firstOffset <= x + 1, `and starts at the known hole or after it (${reports[1]?.firstOffset})`)
  t.same((await log.read(0, 1000, 1 << 20)).records.map((r) => r.offset), [...range(0, x), ...range(x + 2, 121)], 'both records are withheld from then on')
  t.equal(reports.length, 2, 'and not reported again')
})

t.test('damage in the record a sealed segment\'s last index entry points at is found at open and reported as that record', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 120).map((i) => rec(i)), [rec(120)]], 16 * 1024)
  const [sealed] = segmentFiles(root, 'log')
  const [idx] = segmentFiles(root, 'idx')
  const [last, lastAt] = (await indexEntries(idx!)).at(-1)!
  t.ok(last > 0 && last < 119, `the last entry is record ${last}, inside the segment`)
  await patch(sealed!, (b) => { b[lastAt + 120] = b[lastAt + 120]! ^ 0x55 })
  const { reports, offsets } = await reopenAndRead(root, 16 * 1024)
  t.match(reports, [{ firstOffset: last, lastOffset: last }], 'reported at open as exactly that record')
  t.equal(reports.length, 1)
  t.same(offsets, [...range(0, last), ...range(last + 1, 121)])
})

t.test('an index whose first entries look right but point wrong is thrown away whole when a later entry fails: reads from every offset start exactly there and nothing is reported', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 120).map((i) => rec(i)), [rec(120)]], 16 * 1024)
  const [idx] = segmentFiles(root, 'idx')
  const saved = await fsp.readFile(idx!)
  const entries = saved.length / INDEX_ENTRY
  t.ok(entries >= 3)
  const bad = Buffer.from(saved)
  // Entry 1 names the record before the one at its position (still ascending), and the last entry goes backwards.
  const wrong = bad.readDoubleLE(INDEX_ENTRY) - 1
  bad.writeDoubleLE(wrong, INDEX_ENTRY)
  bad.writeDoubleLE(0, (entries - 1) * INDEX_ENTRY)
  await fsp.writeFile(idx!, bad)
  const reports: CorruptionReport[] = []
  const store = new FileLogStore({ root, segmentBytes: 16 * 1024, onCorruption: (r) => reports.push(r) })
  const log = await store.open('s', SHARD)
  const wrongFrom: number[] = []
  for (let from = 0; from < 121; from++) {
    const page = await log.read(from, 1, 1 << 20)
    if (page.records[0]?.offset !== from) wrongFrom.push(from)
  }
  t.same(wrongFrom, [], 'every read starts at its offset')
  t.same(reports, [], 'no damage is reported')
  await store.close()
  t.same(await fsp.readFile(idx!), saved, 'the index is saved again as sealing wrote it')
})

t.test('open reads only what follows the last index entry of each sealed segment, and a read starts from the index entry before its offset', async (t) => {
  const root = tempDir(t)
  const segmentBytes = 64 * 1024
  await write(root, Array.from({ length: 40 }, (_, c) => range(c * 50, c * 50 + 50).map((i) => rec(i))), segmentBytes)
  const sealed = segmentFiles(root, 'log').slice(0, -1)
  t.ok(sealed.length >= 4, `${sealed.length} sealed segments`)
  const sealedBytes = sealed.reduce((n, f) => n + statSync(f).size, 0)
  const activeBytes = statSync(segmentFiles(root, 'log').at(-1)!).size
  const store = new FileLogStore({ root, segmentBytes })
  t.teardown(() => store.close())
  let log!: Awaited<ReturnType<FileLogStore['open']>>
  const atOpen = await bytesRead(t, async () => { log = await store.open('s', SHARD) })
  t.ok(atOpen < activeBytes + sealed.length * (INDEX_INTERVAL + 1024), `open read ${atOpen} bytes of ${sealedBytes + activeBytes}`)
  t.equal(log.endOffset(), 2000)
  // A record in the next-to-last index interval of the second segment (reads go on to the segment's end).
  const second = await indexEntries(segmentFiles(root, 'idx')[1]!)
  const target = second.at(-2)![0] + 3
  let page!: Awaited<ReturnType<typeof log.read>>
  const forRead = await bytesRead(t, async () => { page = await log.read(target, 1, 1 << 20) })
  t.same(page.records.map((r) => r.offset), [target])
  t.ok(forRead < statSync(sealed[1]!).size / 4, `the read took ${forRead} bytes of a ${statSync(sealed[1]!).size}-byte segment`)
})

t.test('an index rebuilt at open is readable by the relay\'s user only, and index files lie beside sealed segments only', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 60).map((i) => rec(i)), range(60, 120).map((i) => rec(i)), [rec(120)]], 8 * 1024)
  const idx = segmentFiles(root, 'idx')
  const logs = segmentFiles(root, 'log')
  t.equal(idx.length, logs.length - 1)
  await fsp.rm(idx[0]!)
  await fsp.writeFile(idx[1]!, Buffer.from('nonsense'))
  const store = new FileLogStore({ root, segmentBytes: 8 * 1024 })
  const log = await store.open('s', SHARD)
  t.equal(log.endOffset(), 121)
  t.same(segmentFiles(root, 'idx'), idx, 'both indexes are there again, and none beside the active segment')
  t.equal(statSync(idx[0]!).mode & 0o777, 0o600, 'a rebuilt index is private')
  await store.close()
})

t.test('a sealed segment with a few stray bytes after its last record still opens, and every record is served', async (t) => {
  const root = tempDir(t)
  await write(root, [range(0, 10).map((i) => rec(i)), [rec(10), rec(11)]], 1000)
  const [sealed] = segmentFiles(root, 'log')
  await fsp.appendFile(sealed!, Buffer.from([1, 2, 3]))
  const { reports, offsets, endOffset } = await reopenAndRead(root, 1000)
  t.equal(endOffset, 12)
  t.same(offsets, range(0, 12))
  t.ok(reports.every((r) => r.lastOffset < r.firstOffset), 'whatever is reported of the stray bytes names no record as lost')
})
