/**
 * The object stores of delivery streams on this machine: the memory store and the files store run
 * the ObjectStore contract; then what only files have (the directory boundary, atomic replace,
 * errors) and what only the memory store has (told failures).
 */
import t from 'tap'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileObjectStore, MemoryObjectStore, openObjectStore } from '../../relay/delivery/store/index.js'
import { DeliveryError } from '../../relay/delivery/types.js'
import { objectStoreContract, REFUSED_KEYS } from '../contracts/objectstore.js'
import { tempDir } from '../helpers/tmp.js'

const json = { contentType: 'application/json' }

objectStoreContract(t, 'memory', async () => new MemoryObjectStore())
objectStoreContract(t, 'files', async (t) => openObjectStore({ type: 'files', directory: join(tempDir(t), 'out') }))

/** Every file and directory under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort()
}

t.test('files: an object is the file <directory>/<key>, directories created as needed', async (t) => {
  const root = tempDir(t)
  const store = new FileObjectStore(join(root, 'sink'))
  await store.put('events/2024/05/06/07/shardId-000000000000-1-9', Buffer.from('{"a":1}\n'), json)
  t.same(tree(join(root, 'sink')), ['events', 'events/2024', 'events/2024/05', 'events/2024/05/06', 'events/2024/05/06/07', 'events/2024/05/06/07/shardId-000000000000-1-9'],
    'only the object and its directories: no temporary file is left behind')
  t.equal(store.description, `files in ${join(root, 'sink')}`)
})

t.test('files: refused keys leave nothing outside (or inside) the directory', async (t) => {
  const root = tempDir(t)
  const sink = join(root, 'a', 'sink')
  mkdirSync(sink, { recursive: true })
  const store = new FileObjectStore(sink)
  for (const key of REFUSED_KEYS) await t.rejects(store.put(key, Buffer.from('x'), json), { code: 'Files.InvalidKey' })
  t.same(tree(root), ['a', 'a/sink'], 'no file was created anywhere under the test directory')
  t.notOk(existsSync('/etc/passwd.tmp'))
})

t.test('files: a key whose directory is an object fails with a WriteFailed that names it and is not retried', async (t) => {
  const root = tempDir(t)
  const store = new FileObjectStore(root)
  await store.put('a/b', Buffer.from('object'), json)
  const err = await store.put('a/b/c', Buffer.from('x'), json).then(() => null, (e: unknown) => e)
  t.ok(err instanceof DeliveryError)
  t.match(err, { code: 'Files.WriteFailed', retryable: false, message: /writing a\/b\/c to .*(ENOTDIR|EEXIST)/ })
  await store.put('d/e/f', Buffer.from('deep'), json)
  const err2 = await store.put('d/e', Buffer.from('x'), json).then(() => null, (e: unknown) => e)
  t.match(err2, { code: 'Files.WriteFailed', retryable: false }, 'nor can an object replace a directory')
  t.same(await store.get('d/e/f'), Buffer.from('deep'), 'which is untouched')
  t.same(tree(root), ['a', 'a/b', 'd', 'd/e', 'd/e/f'], 'and no temporary file is left behind by either failure')
})

t.test('files: a reader sees the old object or the new one, never a partial one', async (t) => {
  const store = new FileObjectStore(tempDir(t))
  const old = Buffer.alloc(1 << 20, 'o')
  const next = Buffer.alloc(2 << 20, 'n')
  await store.put('k', old, json)
  const seen = new Set<string>()
  let writing = true
  const reading = (async () => {
    while (writing) {
      const b = await store.get('k')
      seen.add(b === undefined ? 'absent' : b.equals(old) ? 'old' : b.equals(next) ? 'new' : `torn (${b.length} bytes)`)
    }
  })()
  for (let i = 0; i < 10; i++) await store.put('k', i % 2 === 0 ? next : old, json)
  writing = false
  await reading
  t.same([...seen].filter((s) => s !== 'old' && s !== 'new'), [], 'every read was one whole object')
})

t.test('files: temporary files of an interrupted put are not listed', async (t) => {
  const root = tempDir(t)
  const store = new FileObjectStore(root)
  await store.put('p/real', Buffer.from('x'), json)
  // What a crash between write and rename leaves.
  writeFileSync(join(root, 'p', '.tributary-tmp-0123456789abcdef'), 'partial')
  t.same(await store.list('p/'), ['p/real'])
  t.same(await store.list(''), ['p/real'])
})

t.test('files: a directory path the store cannot write to fails retryably or not, by what failed', async (t) => {
  const root = tempDir(t)
  writeFileSync(join(root, 'file'), 'not a directory')
  const store = new FileObjectStore(join(root, 'file', 'sink'))
  await t.rejects(store.put('k', Buffer.from('x'), json), { code: 'Files.WriteFailed', retryable: false, message: /ENOTDIR/ }, 'a misconfigured directory is not retried')
  t.same(await store.list(''), [], 'and lists as empty')
  t.equal(await store.get('k'), undefined)
})

t.test('memory: puts told to fail throw and store nothing; the next put works', async (t) => {
  const store = new MemoryObjectStore('unit')
  store.failNextPuts(2)
  await t.rejects(store.put('k', Buffer.from('1'), json), { code: 'Memory.Unavailable', retryable: true })
  const permanent = new DeliveryError('S3.AccessDenied', 'denied', { retryable: false })
  store.failNextPuts(1, permanent)
  await t.rejects(store.put('k', Buffer.from('2'), json), { code: 'Memory.Unavailable' }, 'failures come in the order they were told')
  await t.rejects(store.put('k', Buffer.from('3'), json), permanent)
  t.equal(await store.get('k'), undefined)
  await store.put('k', Buffer.from('4'), { contentType: 'text/csv', contentEncoding: 'gzip' })
  t.same(await store.get('k'), Buffer.from('4'))
  t.same(store.info('k'), { contentType: 'text/csv', contentEncoding: 'gzip' })
  const body = Buffer.from('mutable')
  await store.put('m', body, json)
  body.fill(0)
  t.same(await store.get('m'), Buffer.from('mutable'), 'the store keeps a copy, not the caller\'s buffer')
  await store.close()
  await t.rejects(store.get('k'), { code: 'Memory.Closed' })
})
