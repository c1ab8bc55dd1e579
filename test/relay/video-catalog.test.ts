/**
 * The contract every VideoCatalog keeps (relay/video/catalog.ts), run against the SQLite catalog (in a
 * real meta.db beside the metadata store's own tables) and the in-memory one. Each case pins one
 * behaviour the video store relies on: dedupe by producer identity, numbers that only grow, time
 * ranges and paging positions, retention's choice of rows, and byte totals.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { fragmentNumberOf, idOfFragmentNumber, MemoryVideoCatalog, SqliteVideoCatalog, type VideoCatalog, type VideoStreamRecord } from '../../relay/video/index.js'
import type { NewFragment } from '../../relay/video/catalog.js'
import { SqliteMetadataStore } from '../../relay/meta/sqlite.js'
import { tempDir } from '../helpers/tmp.js'

/** Opens a catalog over the same backing state each time it is called within one test. */
type Factory = (t: Test) => () => VideoCatalog

const stream = (name: string, id = `${name}.1`): VideoStreamRecord => ({
  id, name, arn: `arn:aws:kinesisvideo:us-east-1:000000000000:stream/${name}/1000`, status: 'ACTIVE', version: 'v1', createdMs: 1000,
  retentionHours: 0, deviceName: null, mediaType: null, kmsKeyId: null, createdBy: null,
})
const row = (streamId: string, sequence: number, over: Partial<NewFragment> = {}): NewFragment => {
  const r = {
    streamId, device: 'cam', session: '7', sequence, producerMs: 5000 + sequence * 100, serverMs: 9000 + sequence * 10, durationMs: sequence ? 2000 : 0,
    bytes: 100 + sequence, codec: 'avc1.42C01E', width: 640, height: 480, timescale: 90000, keyFrame: sequence > 0, clockSynced: true, crc32c: 0xdeadbeef, ...over,
  }
  return { ...r, file: over.file ?? `${r.streamId}/${r.device}/${r.session}/${r.sequence}` }
}

function contract(t: Test, name: string, factory: Factory): void {
  t.test(`${name}: a fragment is stored once per (stream, device, session, sequence); the same key answers with its row`, async (t) => {
    const c = factory(t)()
    c.insertStream(stream('s'), {})
    const [first] = c.insertFragments([row('s.1', 1)])
    t.equal(first!.inserted, true)
    t.match(first!.row, { ...row('s.1', 1), id: Number })
    const again = c.insertFragments([row('s.1', 1, { bytes: 999, serverMs: 1 }), row('s.1', 1, { device: 'other' }), row('s.1', 1, { session: '8' })])
    t.same(again.map((r) => r.inserted), [false, true, true], 'another device or session is another fragment')
    t.same(again[0]!.row, first!.row, 'the held row, unchanged')
    t.same(c.fragment('s.1', 'cam', '7', 1), first!.row)
    t.equal(c.fragment('s.1', 'cam', '7', 2), undefined)
    t.equal(c.totalBytes(), 101 * 3, 'only inserted rows count')
    t.same(c.insertFragments([row('gone.1', 1)]), [{ row: null, inserted: false }], 'a row of a stream that does not exist is refused')
    c.close()
  })

  t.test(`${name}: ids only grow, even past deleted rows, and make 47-digit fragment numbers in the same order`, async (t) => {
    const c = factory(t)()
    c.insertStream(stream('s'), {})
    const ids = c.insertFragments([1, 2, 3].map((i) => row('s.1', i))).map((r) => r.row!.id)
    c.deleteFragments([ids[2]!])
    const next = c.insertFragments([row('s.1', 4)])[0]!.row!.id
    t.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]! && ids[2]! < next, 'the deleted id is not reused')
    const numbers = [...ids, next].map(fragmentNumberOf)
    t.ok(numbers.every((n) => n.length === 47))
    t.same([...numbers].sort(), numbers, 'string order is number order')
    t.same(numbers.map(idOfFragmentNumber), [...ids, next])
    t.equal(idOfFragmentNumber('123'), null)
    t.same(c.fragmentById('s.1', ids[0]!), c.fragment('s.1', 'cam', '7', 1))
    t.equal(c.fragmentById('other', ids[0]!), undefined, 'an id belongs to its stream')
    c.close()
  })

  t.test(`${name}: fragments list by producer time, server time or number, bounds included, resuming after a position`, async (t) => {
    const c = factory(t)()
    c.insertStream(stream('s'), {})
    c.insertStream(stream('o'), {})
    c.insertFragments([0, 1, 2, 3, 4, 5].map((i) => row('s.1', i)))
    c.insertFragments([row('o.1', 1)])
    // Two fragments with one server time: the id breaks the tie.
    c.insertFragments([row('s.1', 6, { serverMs: 9050, producerMs: 1 })])
    const seq = (rows: { sequence: number }[]) => rows.map((r) => r.sequence)
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'number', limit: 100 })), [1, 2, 3, 4, 5, 6], 'media only (no init), this stream only')
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'producer', from: 5200, to: 5400, limit: 100 })), [2, 3, 4])
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'server', from: 9030, to: 9050, limit: 100 })), [3, 4, 5, 6])
    const page = c.listFragments({ streamId: 's.1', by: 'server', limit: 4 })
    t.same(seq(page), [1, 2, 3, 4])
    const last = page[3]!
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'server', after: { at: last.serverMs, id: last.id }, limit: 2 })), [5, 6])
    const five = c.fragment('s.1', 'cam', '7', 5)!
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'server', after: { at: five.serverMs, id: five.id }, limit: 9 })), [6], 'a tie resumes by id')
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'number', after: { at: 0, id: five.id }, limit: 9 })), [6])
    t.same(seq(c.listFragments({ streamId: 's.1', by: 'producer', limit: 2 })), [6, 1], 'by producer time, whatever the ingest order')
    c.close()
  })

  t.test(`${name}: retention picks media fragments stored before the cutoff, then init segments whose session has nothing left`, async (t) => {
    const c = factory(t)()
    c.insertStream(stream('s'), {})
    c.insertFragments([row('s.1', 0, { serverMs: 100 }), row('s.1', 1, { serverMs: 200 }), row('s.1', 2, { serverMs: 300 })])
    c.insertFragments([row('s.1', 0, { session: '8', serverMs: 100 }), row('s.1', 1, { session: '8', serverMs: 900 })])
    const seqs = (before: number) => c.expired('s.1', before, 100).map((r) => `${r.session}:${r.sequence}`)
    t.same(seqs(250), ['7:1'], 'the init segment stays while its session has a fragment')
    t.same(seqs(301), ['7:1', '7:2', '7:0'], 'and goes with the last of them')
    t.same(seqs(1000), ['7:1', '7:2', '8:1', '7:0', '8:0'])
    t.same(c.expired('s.1', 1000, 2).length, 2, 'at most the limit')
    const before = c.totalBytes()
    c.deleteFragments(c.expired('s.1', 301, 100).map((r) => r.id))
    t.equal(c.totalBytes(), before - 101 - 102 - 100)
    t.same(seqs(1000), ['8:1', '8:0'])
    t.same([...c.files()].sort(), ['s.1/cam/8/0', 's.1/cam/8/1'], 'files of the rows left')
    c.close()
  })

  t.test(`${name}: streams keep their fields, names are unique, updates and tags stick, deleting drops every row`, async (t) => {
    const open = factory(t)
    const c = open()
    c.insertStream(stream('s'), { a: '1' })
    t.throws(() => c.insertStream(stream('s', 's.2'), {}), { name: 'VideoNameTaken' })
    c.updateStream('s.1', { retentionHours: 5, version: 'v2', mediaType: 'video/h264' })
    c.putTags('s.1', { b: '2', a: '3' })
    c.removeTags('s.1', ['b', 'missing'])
    t.same(c.tags('s.1'), { a: '3' })
    c.insertFragments([row('s.1', 0), row('s.1', 1)])
    t.same(c.streams(), [{ ...stream('s'), retentionHours: 5, version: 'v2', mediaType: 'video/h264' }])
    c.deleteStream('s.1')
    t.same(c.streams(), [])
    t.same(c.tags('s.1'), {})
    t.equal(c.fragment('s.1', 'cam', '7', 1), undefined)
    t.equal(c.totalBytes(), 0)
    c.insertStream(stream('s', 's.3'), {})
    t.same(c.streams().map((s) => s.id), ['s.3'], 'the name is free again')
    c.close()
  })
}

contract(t, 'memory', () => {
  let c: MemoryVideoCatalog | null = null
  return () => (c ??= new MemoryVideoCatalog())
})

contract(t, 'sqlite', (t) => {
  const path = join(tempDir(t), 'meta.db')
  return () => new SqliteVideoCatalog(path)
})

t.test('sqlite: the catalog lives beside the metadata store in one meta.db, each with its own schema version, and survives a reopen', async (t) => {
  const path = join(tempDir(t), 'meta.db')
  const meta = new SqliteMetadataStore(path)
  let c = new SqliteVideoCatalog(path)
  c.insertStream(stream('s'), { k: 'v' })
  const id = c.insertFragments([row('s.1', 0), row('s.1', 1)])[1]!.row!.id
  await meta.putSetting('x', 'y')
  c.close()
  await meta.close()
  const meta2 = new SqliteMetadataStore(path)
  c = new SqliteVideoCatalog(path)
  t.equal(await meta2.getSetting('x'), 'y', 'the metadata store is untouched')
  t.equal(c.fragment('s.1', 'cam', '7', 1)!.id, id)
  t.equal(c.totalBytes(), 201, 'the byte total is read back')
  t.equal(c.insertFragments([row('s.1', 2)])[0]!.row!.id, id + 1, 'numbering goes on')
  t.same(c.tags('s.1'), { k: 'v' })
  c.close()
  await meta2.close()
})
