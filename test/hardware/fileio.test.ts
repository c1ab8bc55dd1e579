/**
 * The addon's file work on the thread pool (hardware/native/src/fileio.c, through relay/log/fileio.ts),
 * which the file store's checkpoints of many segments use: `writeAt` writes many ranges of one buffer
 * at positions of many files in one job, whole, and names each row's failure without stopping the
 * others; `syncfs` syncs a file system and names its failure; bad arguments are refused with a typed
 * error before any work is queued. Addon only: TRIBUTARY_NATIVE=0 has no such work (the store then
 * writes and fdatasyncs each segment itself, tested in test/relay/log-journal.test.ts).
 */
import t from 'tap'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadAddon } from '../../hardware/index.js'
import { loadFileIo } from '../../relay/log/fileio.js'
import { tempDir } from '../helpers/tmp.js'

const io = loadFileIo()
const skip = process.env.TRIBUTARY_NATIVE === '0' ? 'TRIBUTARY_NATIVE=0 forces the TypeScript implementation: the addon\'s file work is not loaded' : false

t.test('writeAt: ranges of one buffer land whole at their positions of several files; a bad descriptor fails only its own row', { skip }, async (t) => {
  if (!io) throw new Error('the addon is loaded but has no file work: rebuild it (npm install)')
  const dir = tempDir(t)
  const a = openSync(join(dir, 'a'), 'w+')
  const b = openSync(join(dir, 'b'), 'w+')
  const closed = openSync(join(dir, 'c'), 'w+')
  closeSync(closed)
  t.teardown(() => { closeSync(a); closeSync(b) })
  const big = randomBytes(8 * 1024 * 1024 + 3)
  const buf = Buffer.concat([Buffer.from('hello '), big, Buffer.from('world')])
  const errs = await io.writeAt(buf, new Float64Array([
    a, 0, 0, 6,
    b, 4096, 6, big.length,
    closed, 0, 0, 1,
    a, 6, 6 + big.length, 5,
  ]))
  t.same([...errs], [0, 0, 9, 0], 'one errno per row: EBADF (9) for the closed descriptor only')
  t.equal(readFileSync(join(dir, 'a'), 'latin1'), 'hello world', 'two rows into one file, each at its position')
  const bBytes = readFileSync(join(dir, 'b'))
  t.equal(bBytes.length, 4096 + big.length)
  t.ok(bBytes.subarray(0, 4096).every((x) => x === 0), 'before the position: a hole')
  t.ok(bBytes.subarray(4096).equals(big), 'an 8 MiB range written whole')
  t.same([...(await io.writeAt(buf, new Float64Array(0)))], [], 'no rows: nothing to do')
})

t.test('syncfs: resolves on an open descriptor, names the errno of a bad one', { skip }, async (t) => {
  if (!io) throw new Error('the addon is loaded but has no file work: rebuild it (npm install)')
  const dir = tempDir(t)
  const fd = openSync(dir, 'r')
  await io.syncfs(fd)
  closeSync(fd)
  await t.rejects(io.syncfs(fd), { code: 'EBADF', syscall: 'syncfs' }, 'a closed descriptor: EBADF')
})

t.test('bad arguments are refused with a typed error, before any work is queued', { skip }, async (t) => {
  const addon = loadAddon() as unknown as { writeAt: (...args: unknown[]) => unknown; syncfs: (...args: unknown[]) => unknown }
  const buf = Buffer.alloc(8)
  const cases: [unknown[], RegExp][] = [
    [[buf], /takes two arguments/],
    [['text', new Float64Array(0)], /buf must be a Uint8Array/],
    [[buf, new Uint32Array(4)], /table must be a Float64Array/],
    [[buf, new Float64Array(3)], /rows of four/],
    [[buf, new Float64Array([-1, 0, 0, 1])], /fd is not a file descriptor/],
    [[buf, new Float64Array([1.5, 0, 0, 1])], /fd is not a file descriptor/],
    [[buf, new Float64Array([1, -1, 0, 1])], /position is not a byte position/],
    [[buf, new Float64Array([1, NaN, 0, 1])], /position is not a byte position/],
    [[buf, new Float64Array([1, 0, 4, 5])], /range lies outside buf/],
    [[buf, new Float64Array([1, 0, 0, -1])], /range lies outside buf/],
  ]
  for (const [args, message] of cases) t.throws(() => addon.writeAt(...args), { code: 'ERR_TRIBUTARY_ARGUMENT', message }, `writeAt: ${message.source}`)
  for (const bad of [undefined, -1, 'x', 2.5]) t.throws(() => addon.syncfs(bad), { code: 'ERR_TRIBUTARY_ARGUMENT', message: /open file descriptor/ }, `syncfs(${String(bad)})`)
})
