/**
 * The contract every ObjectStore keeps: the memory and files stores run it
 * (test/relay/delivery-store.test.ts) and the S3 store runs it against a real Swift with s3api
 * (test/relay/delivery-store-s3.test.ts). Object sinks rely on each case: a batch's object is
 * replaced, not duplicated, when the batch is delivered again; keys built from record data can
 * never escape the store.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { DeliveryError, type ObjectStore } from '../../relay/delivery/types.js'

/**
 * A fresh, empty store for one test (its own directory or bucket); the harness closes it. Stores
 * that upload in parts must do so for objects of `largeObjectBytes` (the S3 store's threshold and
 * part size are set below it by its test).
 */
export type ObjectStoreFactory = (t: Test) => Promise<ObjectStore>

export const LARGE_OBJECT_BYTES = 11 * 1024 * 1024 + 3

const json = { contentType: 'application/json' }
const sha = (b: Buffer | undefined) => (b === undefined ? 'absent' : createHash('sha256').update(b).digest('hex'))

/** Keys that reach no store: traversal, absolute paths, empty segments, NUL. */
export const REFUSED_KEYS = ['', '../escape', 'a/../../escape', 'a/./b', '/etc/passwd', 'a//b', 'a/', 'a\0b', '..', '.', `a/${'x'.repeat(256)}`]

export function objectStoreContract(t: Test, name: string, factory: ObjectStoreFactory): void {
  const open = async (t: Test): Promise<ObjectStore> => {
    const store = await factory(t)
    t.teardown(() => store.close())
    return store
  }

  t.test(`${name}: an object put is read back byte for byte; an absent key reads as undefined`, async (t) => {
    const store = await open(t)
    const body = randomBytes(4096)
    await store.put('stream/2024/01/02/03/batch-1', body, { contentType: 'application/octet-stream' })
    t.same(await store.get('stream/2024/01/02/03/batch-1'), body)
    t.equal(await store.get('stream/2024/01/02/03/batch-2'), undefined)
    t.equal(await store.get('stream/2024/01/02'), undefined, 'a prefix of a key is not an object')
    await store.put('empty', Buffer.alloc(0), json)
    t.same(await store.get('empty'), Buffer.alloc(0), 'an empty object exists and is empty')
  })

  t.test(`${name}: putting the same key again replaces the object, so a redelivered batch leaves one object`, async (t) => {
    const store = await open(t)
    await store.put('p/batch', Buffer.from('first delivery, longer than the second'), json)
    await store.put('p/batch', Buffer.from('second'), json)
    t.same(await store.get('p/batch'), Buffer.from('second'))
    t.same(await store.list('p/'), ['p/batch'])
  })

  t.test(`${name}: list gives the keys under a prefix, sorted, whatever the prefix ends with`, async (t) => {
    const store = await open(t)
    const keys = ['s/2024/02/01/00/c', 's/2024/01/31/23/b', 's/2024/01/01/00/a', 's/2024/01/01/00/a2', 't/2024/01/01/00/x', 'sa/y', 'top']
    // Put concurrently: two puts creating the same directories at once must both land.
    await Promise.all(keys.map((k) => store.put(k, Buffer.from(k), json)))
    t.same(await store.list('s/'), ['s/2024/01/01/00/a', 's/2024/01/01/00/a2', 's/2024/01/31/23/b', 's/2024/02/01/00/c'])
    t.same(await store.list('s/2024/01/'), ['s/2024/01/01/00/a', 's/2024/01/01/00/a2', 's/2024/01/31/23/b'], 'a prefix ending with a slash')
    t.same(await store.list('s/2024/01/3'), ['s/2024/01/31/23/b'], 'a prefix ending within a segment')
    t.same(await store.list('s/2024/01/01/00/a'), ['s/2024/01/01/00/a', 's/2024/01/01/00/a2'], 'a prefix that is a key')
    t.same(await store.list('s'), ['s/2024/01/01/00/a', 's/2024/01/01/00/a2', 's/2024/01/31/23/b', 's/2024/02/01/00/c', 'sa/y'])
    t.same(await store.list(''), [...keys].sort(), 'everything')
    t.same(await store.list('nothing/'), [], 'an unknown prefix lists nothing')
    for (const k of keys) t.same(await store.get(k), Buffer.from(k), `${k} holds its own body`)
  })

  t.test(`${name}: keys with partition values keep spaces, unicode and URL-special characters`, async (t) => {
    const store = await open(t)
    const keys = ['part/city=São Paulo/a+b%20c', 'part/city=東京/x?y#z&w', 'part/emoji=🚚/x', 'part/quote="q\'/x']
    for (const k of keys) await store.put(k, Buffer.from(k), json)
    t.same(await store.list('part/'), [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'sorted by UTF-8 bytes, as S3 sorts')
    for (const k of keys) t.same(await store.get(k), Buffer.from(k))
  })

  t.test(`${name}: a large object (uploaded in parts where the store does) reads back whole`, async (t) => {
    const store = await open(t)
    const body = randomBytes(LARGE_OBJECT_BYTES)
    await store.put('big/object.parquet', body, { contentType: 'application/vnd.apache.parquet' })
    t.equal(sha(await store.get('big/object.parquet')), sha(body))
    t.same(await store.list('big/'), ['big/object.parquet'])
  })

  t.test(`${name}: a key that could escape the store is refused with a typed error and writes nothing`, async (t) => {
    const store = await open(t)
    await store.put('ok', Buffer.from('ok'), json)
    for (const key of REFUSED_KEYS) {
      const err = await store.put(key, Buffer.from('x'), json).then(() => null, (e: unknown) => e)
      t.ok(err instanceof DeliveryError, `put ${JSON.stringify(key.slice(0, 40))} throws a DeliveryError`)
      t.match(err, { code: /\.InvalidKey$/, retryable: false }, 'InvalidKey, not retryable: the same key fails every time')
      t.match((err as Error).message, /invalid object key/)
      await t.rejects(store.get(key), { code: /\.InvalidKey$/ }, 'get refuses it too')
    }
    await t.rejects(store.list('../'), { code: /\.InvalidKey$/ }, 'a list prefix cannot climb out either')
    await t.rejects(store.list('/etc/'), { code: /\.InvalidKey$/ })
    t.same(await store.list(''), ['ok'], 'nothing else was written')
  })
}
