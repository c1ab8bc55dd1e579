/**
 * Encryption at rest as a wrapper around a LogStore: what the store underneath is handed and holds.
 * (What readers see is the shard-log contract, run on both stores wrapped in log-contract.test.ts.)
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { codec } from '../../hardware/index.js'
import { LogFlag, type LogRecordInput } from '../../shared/logframe.js'
import { LocalKeyCipher, SEAL_OVERHEAD } from '../../relay/encryption.js'
import { EncryptedLogStore } from '../../relay/log/encrypted.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import { openLogStore } from '../../relay/log/index.js'
import { MemoryLogStore } from '../../relay/log/memory.js'
import { batchLogInputs, type BatchSlice, type ShardLog } from '../../relay/log/types.js'
import { tempDir } from '../helpers/tmp.js'

const SHARD = 'shardId-000000000000'
const rec = (i: number): LogRecordInput => ({ partitionKey: `k${i}`, data: Buffer.from(`secret-${i}`), producerTimeMs: i, flags: 0 })

function batch(): BatchSlice {
  const frame = codec.encodeBatch({
    epoch: 3n, sequence: 8,
    records: Array.from({ length: 4 }, (_, i) => ({ partitionKey: `d${i}`, data: Buffer.from(`reading-${i}`), producerTimeMs: 100 + i, clockSynced: true })),
  })
  return { frame, scan: codec.scanBatch(frame), indices: Uint32Array.of(0, 2, 3), device: 'dev-1' }
}

/** A cipher that seals the streams in `sealed` and counts what it is asked to do. */
function countingCipher(keyPath: string, sealed: Set<string>) {
  const cipher = new LocalKeyCipher(keyPath, (stream) => sealed.has(stream))
  const counts = { seal: 0, open: 0 }
  const seal = cipher.seal.bind(cipher)
  const open = cipher.open.bind(cipher)
  cipher.seal = (stream, data, partitionKey) => { counts.seal++; return seal(stream, data, partitionKey) }
  cipher.open = (stream, data) => { counts.open++; return open(stream, data) }
  return { cipher, counts }
}

/** Records the calls a shard log underneath receives. */
function spy(log: ShardLog) {
  const calls: { append: (readonly LogRecordInput[])[]; appendBatch: BatchSlice[] } = { append: [], appendBatch: [] }
  const append = log.append.bind(log)
  const appendBatch = log.appendBatch.bind(log)
  log.append = (records) => { calls.append.push(records); return append(records) }
  log.appendBatch = (slice) => { calls.appendBatch.push(slice); return appendBatch(slice) }
  return calls
}

t.test('records of a sealed stream are stored sealed and flagged, on disk too, and read back opened', async (t) => {
  const root = tempDir(t)
  const { cipher } = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret']))
  const files = new FileLogStore({ root })
  const store = new EncryptedLogStore(files, cipher)
  const log = await store.open('secret', SHARD)
  log.append([rec(0), rec(1)])
  await store.commit()
  const stored = (await files.get('secret', SHARD)!.read(0, 10, 1 << 20)).records
  t.same(stored.map((r) => r.flags & LogFlag.encrypted), [LogFlag.encrypted, LogFlag.encrypted], 'the store holds them flagged')
  t.same(stored.map((r) => r.data.length), [2 + 2 + 8 + SEAL_OVERHEAD, 2 + 2 + 8 + SEAL_OVERHEAD], 'and sealed, the partition key (a 2-byte length and the key) with the data')
  t.same(stored.map((r) => r.partitionKey), ['', ''], 'with no partition key in clear')
  const dir = join(root, 'secret', SHARD)
  const bytes = Buffer.concat(readdirSync(dir).filter((n) => n.endsWith('.log')).map((n) => readFileSync(join(dir, n))))
  t.equal(bytes.indexOf('secret-0'), -1, 'no plaintext reaches the disk')
  const read = (await log.read(0, 10, 1 << 20)).records
  t.same(read.map((r) => [r.data.toString(), r.flags]), [['secret-0', LogFlag.encrypted], ['secret-1', LogFlag.encrypted]], 'readers get the data, and the flag says it was sealed')
  await store.close()
})

t.test("an unencrypted stream's appends go straight through, device batches by their fast path", async (t) => {
  const inner = new MemoryLogStore()
  const { cipher, counts } = countingCipher(join(tempDir(t), 'encryption.key'), new Set())
  const store = new EncryptedLogStore(inner, cipher)
  const log = await store.open('plain', SHARD)
  const calls = spy(inner.get('plain', SHARD)!)
  const records = [rec(0)]
  const slice = batch()
  log.append(records)
  log.appendBatch(slice)
  t.equal(calls.append[0], records, 'append hands on the very same records')
  t.same(calls.appendBatch, [slice], 'appendBatch hands on the very same slice')
  await store.commit()
  const read = (await log.read(0, 10, 1 << 20)).records
  t.same(read.map((r) => r.data.toString()), ['secret-0', 'reading-0', 'reading-2', 'reading-3'])
  t.same(counts, { seal: 0, open: 0 }, 'the cipher is never asked to seal or open anything')
  await store.close()
})

t.test("a sealed stream's device batch takes the general path: the records of the batch, each sealed", async (t) => {
  const inner = new MemoryLogStore()
  const { cipher } = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret']))
  const store = new EncryptedLogStore(inner, cipher)
  const log = await store.open('secret', SHARD)
  const calls = spy(inner.get('secret', SHARD)!)
  const slice = batch()
  t.equal(log.appendBatch(slice).firstOffset, 0)
  t.equal(calls.appendBatch.length, 0, 'the fast path is not taken')
  const expected = batchLogInputs(slice)
  const handed = calls.append[0]!
  t.same(handed.map((r) => ({ ...r, data: null })), expected.map((r) => ({ ...r, partitionKey: '', flags: r.flags | LogFlag.encrypted, data: null })), 'the same records, flagged sealed, their partition keys blank')
  t.same(handed.map((r) => cipher.openRecord('secret', Buffer.from(r.data))), expected.map((r) => ({ partitionKey: r.partitionKey, data: Buffer.from(r.data) })), 'each one sealed, with its partition key')
  await store.close()
})

t.test('records sealed while encryption was on still open after it is turned off', async (t) => {
  const sealed = new Set(['s'])
  const { cipher } = countingCipher(join(tempDir(t), 'encryption.key'), sealed)
  const store = new EncryptedLogStore(new MemoryLogStore(), cipher)
  const log = await store.open('s', SHARD)
  log.append([rec(0)])
  sealed.delete('s')
  log.append([rec(1)])
  await store.commit()
  const read = (await log.read(0, 10, 1 << 20)).records
  t.same(read.map((r) => [r.data.toString(), r.flags & LogFlag.encrypted]), [['secret-0', LogFlag.encrypted], ['secret-1', 0]])
})

t.test('an append the store would refuse is refused before anything is sealed', async (t) => {
  const inner = new MemoryLogStore()
  const { cipher, counts } = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret', 'other']))
  const store = new EncryptedLogStore(inner, cipher)
  const log = await store.open('secret', SHARD)
  await store.drop('secret')
  t.throws(() => log.append([rec(0)]), { code: 'STREAM_NOT_FOUND' })
  t.throws(() => log.appendBatch(batch()), { code: 'STREAM_NOT_FOUND' })
  const other = await store.open('other', SHARD)
  other.append([rec(0)])
  ;(inner.get('other', SHARD) as unknown as { flush: () => Promise<void> }).flush = () => Promise.reject(new Error('EIO'))
  await t.rejects(store.commit(), { code: 'STORAGE_FAILED' })
  const before = counts.seal
  t.throws(() => other.append([rec(1)]), { code: 'STORAGE_FAILED' })
  t.equal(counts.seal, before, 'nothing was sealed for the refused appends')
  t.equal(before, 1, 'only the one accepted record was')
})

t.test('a record sealed under another key fails the read with DECRYPT_FAILED', async (t) => {
  const root = tempDir(t)
  const first = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret'])).cipher
  let store = new EncryptedLogStore(new FileLogStore({ root }), first)
  ;(await store.open('secret', SHARD)).append([rec(0)])
  await store.close()
  const other = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret'])).cipher
  store = new EncryptedLogStore(new FileLogStore({ root }), other)
  const log = await store.open('secret', SHARD)
  await t.rejects(log.read(0, 10, 1 << 20), { code: 'DECRYPT_FAILED' })
  await store.close()
})

t.test('openLogStore seals at rest when given a cipher; without one it seals nothing and refuses sealed records it finds', async (t) => {
  const { cipher } = countingCipher(join(tempDir(t), 'encryption.key'), new Set(['secret']))
  const root = tempDir(t)
  const sealing = openLogStore({ root, cipher })
  ;(await sealing.open('secret', SHARD)).append([rec(0)])
  await sealing.close()
  const files = new FileLogStore({ root })
  const [stored] = (await (await files.open('secret', SHARD)).read(0, 10, 1 << 20)).records
  t.equal(stored?.flags, LogFlag.encrypted, 'what it wrote is sealed')
  t.equal(cipher.open('secret', stored!.data).toString(), 'secret-0')
  await files.close()

  const keyless = openLogStore({ root })
  const log = await keyless.open('secret', SHARD)
  await t.rejects(log.read(0, 10, 1 << 20), { code: 'DECRYPT_FAILED', message: /no key configured/ }, 'a sealed record is never served as data')
  log.append([rec(1)])
  await keyless.commit()
  await keyless.close()
  const reread = new FileLogStore({ root })
  const [, plain] = (await (await reread.open('secret', SHARD)).read(0, 10, 1 << 20)).records
  t.equal(plain?.flags, 0, 'and what it appends is stored as it came')
  await reread.close()
})
