/**
 * GetRecords' answer rendered straight into bytes (relay/kinesis/render.ts): byte for byte what
 * JSON.stringify gives for the answer object, over random pages of awkward partition keys, binary
 * data, timestamps and the optional members; CBOR answers are the answer object encoded. PutRecords'
 * answer likewise, over random spreads of records across shards and refusals.
 */
import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { LogFlag, type LogRecord } from '../../shared/logframe.js'
import { cbor, json } from '../../relay/kinesis/protocol.js'
import { putAnswer, putJson, recordsAnswer, recordsJson, renderPut, renderRecords, type PutPage, type RecordsPage } from '../../relay/kinesis/render.js'
import { sequenceOf } from '../../relay/sequence.js'
import type { ShardState } from '../../relay/streams.js'

const shardOf = (index: number, createdSec: number) => ({ meta: { index, shardId: `shardId-${String(index).padStart(12, '0')}` }, createdSec }) as unknown as ShardState

/** Characters a partition key may hold that JSON must escape or encode in several bytes. */
const AWKWARD = ['"', '\\', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '\u2028', '\u2029', '€', '\ud83d\ude00', '𝄞', '\ud800', '\udfff', '/', '<', ' ']

function randomKey(): string {
  const length = randomInt(1, 257)
  let key = ''
  while (key.length < length) {
    const pick = randomInt(0, 4)
    if (pick === 0) key += AWKWARD[randomInt(0, AWKWARD.length)]
    else if (pick === 1) key += String.fromCodePoint(randomInt(0, 0x110000 - 0x800) + (randomInt(0, 2) ? 0 : 0x800))
    else key += String.fromCharCode(randomInt(0x20, 0x7f))
  }
  return key
}

/** A timestamp in milliseconds: whole seconds, round tenths, and arbitrary milliseconds alike. */
function randomArrival(): number {
  const base = randomInt(0, 2 ** 36) * 1000
  return [base, base + 100 * randomInt(0, 10), base + randomInt(0, 1000), randomInt(0, 1000)][randomInt(0, 4)]!
}

function randomPage(): RecordsPage {
  const shard = shardOf(randomInt(0, 2000), randomInt(0, 2 ** 32))
  const count = [0, 1, randomInt(2, 40)][randomInt(0, 3)]!
  let offset = randomInt(0, 2 ** 40)
  const records: LogRecord[] = []
  let arrivalMs = randomArrival()
  for (let i = 0; i < count; i++) {
    // Runs of records stored by one commit share their arrival time.
    if (randomInt(0, 3) === 0) arrivalMs = randomArrival()
    records.push({
      offset: offset++, arrivalMs, producerTimeMs: 0,
      flags: randomInt(0, 2) ? LogFlag.encrypted : 0,
      partitionKey: randomKey(), device: '', epoch: 0n, batchSequence: 0, batchIndex: 0,
      data: randomBytes([0, 1, 2, 3, randomInt(0, 1025)][randomInt(0, 5)]!),
    })
  }
  const ended = randomInt(0, 3) === 0
  return {
    records, shard,
    nextShardIterator: ended ? undefined : randomBytes(randomInt(1, 300)).toString('base64'),
    millisBehindLatest: [0, randomInt(0, 2 ** 40)][randomInt(0, 2)]!,
    childShards: ended
      ? [{ ShardId: 'shardId-000000000003', ParentShards: ['shardId-000000000001', 'shardId-000000000002'], HashKeyRange: { StartingHashKey: '0', EndingHashKey: '340282366920938463463374607431768211455' } }].slice(0, randomInt(0, 2))
      : undefined,
  }
}

/** The answer as GetRecords built it before it was rendered, written out here member by member. */
function expectedAnswer(page: RecordsPage) {
  return {
    Records: page.records.map((r) => ({
      SequenceNumber: sequenceOf(page.shard, r.offset, r.arrivalMs),
      ApproximateArrivalTimestamp: r.arrivalMs / 1000,
      Data: r.data.toString('base64'),
      PartitionKey: r.partitionKey,
      ...(r.flags & LogFlag.encrypted ? { EncryptionType: 'KMS' } : {}),
    })),
    ...(page.nextShardIterator === undefined ? {} : { NextShardIterator: page.nextShardIterator }),
    MillisBehindLatest: page.millisBehindLatest,
    ...(page.childShards === undefined ? {} : { ChildShards: page.childShards }),
  }
}

t.test('a rendered JSON answer is byte for byte JSON.stringify of the answer object, over 2,000 random pages', async (t) => {
  let mismatches = 0
  for (let i = 0; i < 2000; i++) {
    const page = randomPage()
    const expected = Buffer.from(JSON.stringify(expectedAnswer(page)))
    const rendered = recordsJson(page)
    if (!rendered.equals(expected)) {
      if (mismatches++ < 3) t.same(rendered.toString(), expected.toString(), `page ${i}`)
    }
  }
  t.equal(mismatches, 0, 'no page differs')
})

t.test('the answer object keeps the members and order of the answer GetRecords gave before', async (t) => {
  for (let i = 0; i < 200; i++) {
    const page = randomPage()
    t.equal(JSON.stringify(recordsAnswer(page)), JSON.stringify(expectedAnswer(page)))
  }
})

t.test('each protocol gets what its encode gives for the answer object', async (t) => {
  const differ = { json: 0, cbor: 0 }
  for (let i = 0; i < 200; i++) {
    const page = randomPage()
    if (!renderRecords(page, json).equals(json.encode(expectedAnswer(page)))) differ.json++
    if (!renderRecords(page, cbor).equals(cbor.encode(expectedAnswer(page)))) differ.cbor++
  }
  t.same(differ, { json: 0, cbor: 0 }, 'no page differs in JSON 1.1 or CBOR 1.1')
})

t.test('a page of one large record and one of 10,000 small records render exactly', async (t) => {
  const shard = shardOf(7, 1_700_000_000)
  const big: RecordsPage = { records: [{ offset: 0, arrivalMs: 1_700_000_000_123, producerTimeMs: 0, flags: 0, partitionKey: 'k', device: '', epoch: 0n, batchSequence: 0, batchIndex: 0, data: randomBytes(1024 * 1024) }], shard, nextShardIterator: 'AAAA', millisBehindLatest: 0, childShards: undefined }
  t.ok(recordsJson(big).equals(Buffer.from(JSON.stringify(expectedAnswer(big)))))
  const records = Array.from({ length: 10_000 }, (_, i): LogRecord => ({ offset: i, arrivalMs: 1_700_000_000_000 + i, producerTimeMs: 0, flags: 0, partitionKey: `key-${i}`, device: '', epoch: 0n, batchSequence: 0, batchIndex: 0, data: randomBytes(100) }))
  const many: RecordsPage = { records, shard, nextShardIterator: 'AAAA', millisBehindLatest: 12, childShards: undefined }
  t.ok(recordsJson(many).equals(Buffer.from(JSON.stringify(expectedAnswer(many)))))
})

/** A PutRecords answer's parts: records spread over a few shards (consecutive offsets in each), some refused. */
function randomPut(): PutPage {
  const shards = Array.from({ length: randomInt(1, 6) }, (_, i) => ({ shard: shardOf(randomInt(0, 2000) * 10 + i, randomInt(0, 2 ** 32)), next: randomInt(0, 2 ** 40) }))
  const arrivalMs = randomArrival()
  const refuse = randomInt(0, 3) === 0
  const results: PutPage['results'][number][] = []
  for (let i = 0, n = [1, randomInt(2, 500)][randomInt(0, 2)]!; i < n; i++) {
    if (refuse && randomInt(0, 4) === 0) {
      results.push({ errorCode: 'ProvisionedThroughputExceededException', errorMessage: `Rate exceeded for shard ${randomKey()} in stream s under account 000000000000.` })
      continue
    }
    const s = shards[randomInt(0, shards.length)]!
    results.push({ shard: s.shard, offset: s.next++, arrivalMs })
  }
  return { results, failed: results.filter((r) => 'errorCode' in r).length, encrypted: randomInt(0, 2) === 0 }
}

/** The answer PutRecords built before it was rendered, written out here member by member. */
function expectedPut(page: PutPage) {
  return {
    FailedRecordCount: page.failed,
    Records: page.results.map((r) => ('errorCode' in r
      ? { ErrorCode: r.errorCode, ErrorMessage: r.errorMessage }
      : { SequenceNumber: sequenceOf(r.shard, r.offset, r.arrivalMs), ShardId: r.shard.meta.shardId })),
    ...(page.encrypted ? { EncryptionType: 'KMS' } : {}),
  }
}

t.test('a rendered PutRecords answer is byte for byte JSON.stringify of the answer object, and CBOR encodes that object', async (t) => {
  const differ = { json: 0, cbor: 0, object: 0 }
  for (let i = 0; i < 1000; i++) {
    const page = randomPut()
    const expected = expectedPut(page)
    if (!putJson(page).equals(Buffer.from(JSON.stringify(expected)))) {
      if (differ.json++ < 3) t.same(putJson(page).toString(), JSON.stringify(expected), `answer ${i}`)
    }
    if (!renderPut(page, json).equals(json.encode(expected))) differ.json++
    if (!renderPut(page, cbor).equals(cbor.encode(expected))) differ.cbor++
    if (JSON.stringify(putAnswer(page)) !== JSON.stringify(expected)) differ.object++
  }
  t.same(differ, { json: 0, cbor: 0, object: 0 }, '1,000 random answers, none differs')
})
