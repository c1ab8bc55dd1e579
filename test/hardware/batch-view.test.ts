/**
 * The batch view: named reads of a scanned frame's table, on the scans of both implementations, and
 * the header identity that names a batch even when it cannot be scanned.
 */
import t from 'tap'
import { loadCodec, batchIdentity, u128BEToBigint, BatchView } from '../../hardware/index.js'
import { HASH_KEY_SIZE, HEADER_SIZE, OFF_BATCH_SEQ, RECORD_HEADER_SIZE, RecordFlag, type Batch } from '../../shared/frame.js'
import { implementations } from '../helpers/codecs.js'

const batch: Batch = {
  epoch: 0xfeedface12345678n,
  sequence: 2 ** 40 + 3,
  records: [
    { partitionKey: 'sensor-1', data: Buffer.from('{"t":21.5}'), producerTimeMs: 1_700_000_000_123, clockSynced: true },
    { partitionKey: 'ключ-ü', data: Buffer.alloc(0), producerTimeMs: 0, clockSynced: false, explicitHashKey: (1n << 128n) - 1n },
    { partitionKey: 'x'.repeat(256), data: Buffer.alloc(70_000, 7), producerTimeMs: 5.5, clockSynced: true, explicitHashKey: 0n },
    // Four records or more, so the addon scans rather than handing the frame to JavaScript.
    { partitionKey: 'k', data: Buffer.from('last'), producerTimeMs: -1, clockSynced: false },
  ],
}

/** Where each record's parts sit in the frame, worked out from shared/frame.ts's layout. */
function expectedLayout(b: Batch): { keyStart: number; keyLength: number; dataStart: number; dataLength: number; hashKeyAt: number }[] {
  let at = HEADER_SIZE
  return b.records.map((r) => {
    at += RECORD_HEADER_SIZE
    const hashKeyAt = r.explicitHashKey !== undefined ? at : 0
    if (hashKeyAt) at += HASH_KEY_SIZE
    const keyLength = Buffer.byteLength(r.partitionKey)
    const place = { keyStart: at, keyLength, dataStart: at + keyLength, dataLength: r.data.length, hashKeyAt }
    at += keyLength + r.data.length
    return place
  })
}

for (const [name, make, skip] of implementations) {
  t.test(`${name}: each accessor reads its own field of the table`, { skip }, async (t) => {
    const c = make()
    const frame = c.encodeBatch(batch)
    const view = new BatchView(frame, c.scanBatch(frame))
    t.equal(view.count, 4)
    const layout = expectedLayout(batch)
    for (let i = 0; i < view.count; i++) {
      const want = batch.records[i]!
      const place = layout[i]!
      t.same(
        { keyStart: view.keyStart(i), keyLength: view.keyLength(i), dataStart: view.dataStart(i), dataLength: view.dataLength(i), hashKeyAt: view.hashKeyAt(i) },
        place, `record ${i}: positions in the frame`)
      t.equal(view.partitionKey(i), want.partitionKey, `record ${i}: the key`)
      t.ok(view.data(i).equals(want.data), `record ${i}: the data`)
      t.equal(view.data(i).buffer, frame.buffer, `record ${i}: the data is a view into the frame, not a copy`)
      t.equal(view.producerTimeMs(i), want.producerTimeMs, `record ${i}: the producer time`)
      t.ok(view.keyIsValidUtf8(i), `record ${i}: a valid key says so`)
      const frameFlags = (want.clockSynced ? RecordFlag.clockSynced : 0) | (want.explicitHashKey !== undefined ? RecordFlag.explicitHashKey : 0)
      t.equal(view.flags(i) & 0xff, frameFlags, `record ${i}: the frame's flags`)
      if (place.hashKeyAt) t.equal(u128BEToBigint(frame, view.hashKeyAt(i)), want.explicitHashKey, `record ${i}: the hash key is where it says`)
    }
  })

  t.test(`${name}: a key that is not valid UTF-8 reads as such`, { skip }, async (t) => {
    const c = make()
    const records = Array.from({ length: 4 }, (_, i) => ({ partitionKey: `ab${i}`, data: Buffer.from('d'), producerTimeMs: 0, clockSynced: false }))
    const frame = c.encodeBatch({ epoch: 1n, sequence: 1, records })
    const at = HEADER_SIZE + RECORD_HEADER_SIZE
    frame[at] = 0xff
    frame.writeUInt32LE(c.crc32c(frame, 0, 12, frame.length), 4)
    const view = new BatchView(frame, c.scanBatch(frame))
    t.same([0, 1, 2, 3].map((i) => view.keyIsValidUtf8(i)), [false, true, true, true])
  })
}

t.test('a batch is named from its header when it can be read, and said to be unreadable when not', async (t) => {
  const frame = loadCodec({ TRIBUTARY_NATIVE: '0' }).encodeBatch(batch)
  t.same(batchIdentity(frame), { epoch: batch.epoch, sequence: batch.sequence }, 'a whole frame')
  const damaged = Buffer.from(frame)
  damaged[HEADER_SIZE + 3] = 0xee
  t.same(batchIdentity(damaged), { epoch: batch.epoch, sequence: batch.sequence }, 'a frame whose body is damaged is still named')
  t.same(batchIdentity(frame.subarray(0, HEADER_SIZE)), { epoch: batch.epoch, sequence: batch.sequence }, 'a header alone is enough')
  t.equal(batchIdentity(frame.subarray(0, HEADER_SIZE - 1)), null, 'shorter than a header: unreadable')
  const foreign = Buffer.from(frame)
  foreign[0] = 0x7b
  t.equal(batchIdentity(foreign), null, 'another magic: unreadable')
  const huge = Buffer.from(frame)
  huge.writeUInt32LE(0x0020_0000, OFF_BATCH_SEQ + 4)
  t.notOk(Number.isSafeInteger(batchIdentity(huge)!.sequence), 'a sequence above 2^53-1 comes back for the caller to refuse')
})
