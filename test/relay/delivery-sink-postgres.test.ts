import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openRecordSink, PostgresSink, quoteTableName } from '../../relay/delivery/sinks/index.js'
import { DeliveryError, type OutputRecord, type PostgresTarget, type RecordBatch } from '../../relay/delivery/types.js'
import { freePort } from '../helpers/relay.js'

// The machine's PostgreSQL (trust auth); tables carry a random suffix since tap runs files in parallel.
const CONNECTION = process.env.TRIBUTARY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const context = { deliveryStream: 'orders', region: 'us-east-1', accountId: '000000000000' }
const never = new AbortController().signal

function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`
}

// Sequence numbers as the relay prints them: decimal strings of ~56 digits, increasing.
const SEQ_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000n
const seq = (i: number) => (SEQ_BASE + BigInt(i) * 1_000_000n).toString()

function record(i: number, data: Buffer | string, shardId = 'shardId-000000000000'): OutputRecord {
  return { shardId, sequenceNumber: seq(i), partitionKey: `key-${i % 7}`, arrivalMs: 1_700_000_000_000 + i, data: Buffer.from(data), partitionKeys: {} }
}

function batch(records: OutputRecord[], deliveryStream = 'orders'): RecordBatch {
  return {
    deliveryStream, shardId: records[0]!.shardId, firstSequence: records[0]!.sequenceNumber, lastSequence: records.at(-1)!.sequenceNumber,
    records, sourceArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/orders',
  }
}

const jsonRecords = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => record(from + k, JSON.stringify({ n: from + k, kind: 'order' })))

async function admin(t: Test): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: CONNECTION })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

/** A sink on a fresh table, dropped (and the sink closed) when the test ends. */
async function sinkOn(t: Test, mode: 'copy' | 'insert', table = uniqueName(`sink_${mode}`), options = {}): Promise<{ sink: PostgresSink; table: string; db: pg.Client }> {
  const db = await admin(t)
  const sink = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table, mode }, options)
  t.teardown(async () => {
    await sink.close()
    await db.query(`DROP TABLE IF EXISTS ${quoteTableName(table)}`)
  })
  return { sink, table, db }
}

for (const mode of ['insert', 'copy'] as const) {
  t.test(`${mode}: a batch lands as rows of the default layout, JSON data also in data_json`, async (t) => {
    const { sink, table, db } = await sinkOn(t, mode)
    const records = [...jsonRecords(0, 3), record(3, Buffer.from([0xff, 0x00, 0xfe])), record(4, 'plain text, not JSON'), record(5, '{"nul":"\\u0000"}')]
    await sink.deliver(batch(records), never)

    const columns = await db.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table])
    t.same(columns.rows.map((c) => `${c.column_name} ${c.data_type}`), [
      'delivery_stream text', 'shard_id text', 'sequence_number numeric', 'partition_key text',
      'arrival_time timestamp with time zone', 'data bytea', 'data_json jsonb',
    ])
    const rows = await db.query(`SELECT delivery_stream, shard_id, sequence_number::text AS seq, partition_key, arrival_time, data, data_json FROM ${quoteTableName(table)} ORDER BY sequence_number`)
    t.equal(rows.rowCount, 6)
    t.same(rows.rows.map((r) => r.seq), records.map((r) => r.sequenceNumber), 'sequence numbers keep every digit')
    t.same(rows.rows.map((r) => Buffer.compare(r.data, records[rows.rows.indexOf(r)]!.data)), [0, 0, 0, 0, 0, 0], 'data is the exact bytes')
    t.same(rows.rows[1].data_json, { n: 1, kind: 'order' })
    t.equal(rows.rows[3].data_json, null, 'bytes that are not UTF-8 have no JSON')
    t.equal(rows.rows[4].data_json, null, 'text that is not JSON has no JSON')
    t.equal(rows.rows[5].data_json, null, 'JSON that jsonb cannot hold (\\u0000) is kept as bytes only, without failing the batch')
    t.equal(rows.rows[2].arrival_time.getTime(), 1_700_000_000_002)
    t.same([rows.rows[0].delivery_stream, rows.rows[0].shard_id, rows.rows[0].partition_key], ['orders', 'shardId-000000000000', 'key-0'])
  })

  t.test(`${mode}: loading the same batch twice leaves one copy; an overlapping batch adds only its new rows`, async (t) => {
    const { sink, table, db } = await sinkOn(t, mode)
    await sink.deliver(batch(jsonRecords(0, 100)), never)
    await sink.deliver(batch(jsonRecords(0, 100)), never)
    const once = await db.query(`SELECT count(*)::int AS n, count(DISTINCT sequence_number)::int AS d FROM ${quoteTableName(table)}`)
    t.same(once.rows[0], { n: 100, d: 100 })

    await sink.deliver(batch(jsonRecords(50, 150)), never)
    const after = await db.query(`SELECT count(*)::int AS n, min(sequence_number)::text AS lo, max(sequence_number)::text AS hi FROM ${quoteTableName(table)}`)
    t.same(after.rows[0], { n: 150, lo: seq(0), hi: seq(149) })

    // The same sequence numbers from another shard or another delivery stream are other rows.
    await sink.deliver(batch(jsonRecords(0, 10).map((r) => ({ ...r, shardId: 'shardId-000000000001' }))), never)
    await sink.deliver(batch(jsonRecords(0, 10), 'returns'), never)
    const total = await db.query(`SELECT count(*)::int AS n FROM ${quoteTableName(table)}`)
    t.equal(total.rows[0].n, 170)
  })
}

t.test('insert: a batch larger than one statement allows goes in chunks within the 65,535-parameter limit', async (t) => {
  const { sink, table, db } = await sinkOn(t, 'insert', undefined, { insertRows: 13_106 })
  await sink.deliver(batch(jsonRecords(0, 30_000)), never)
  const n = await db.query(`SELECT count(*)::int AS n FROM ${quoteTableName(table)}`)
  t.equal(n.rows[0].n, 30_000)
  t.throws(() => new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table, mode: 'insert' }, { insertRows: 13_107 }), TypeError, 'more rows per statement than parameters allow is refused up front')
})

t.test('copy: a large batch (several CopyData messages) loads whole, in one transaction', async (t) => {
  const { sink, table, db } = await sinkOn(t, 'copy')
  const records = Array.from({ length: 20_000 }, (_, i) => record(i, randomBytes(200)))
  await sink.deliver(batch(records), never)
  const rows = await db.query(`SELECT count(*)::int AS n, sum(length(data))::int AS bytes FROM ${quoteTableName(table)}`)
  t.same(rows.rows[0], { n: 20_000, bytes: 4_000_000 })
})

t.test('a server that refuses connections gives a retryable Postgres.ConnectionFailed, fast', async (t) => {
  const port = await freePort()
  for (const mode of ['insert', 'copy'] as const) {
    const sink = openRecordSink({ type: 'postgres', connectionString: `postgres://postgres@127.0.0.1:${port}/test`, table: 'nowhere', mode }, context)
    const started = Date.now()
    const err = await sink.deliver(batch(jsonRecords(0, 5)), never).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof DeliveryError, `${mode}: a DeliveryError`)
    t.match(err, { code: 'Postgres.ConnectionFailed', retryable: true })
    t.ok(Date.now() - started < 3_000, `${mode}: fails within 3 s`)
    await sink.close()
  }
})

t.test('SQL errors carry their SQLSTATE; only transient classes are retryable', async (t) => {
  const db = await admin(t)
  const table = uniqueName('sink_wrong')
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`)
  t.teardown(() => db.query(`DROP TABLE IF EXISTS ${table}`))
  for (const mode of ['insert', 'copy'] as const) {
    const sink = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table, mode })
    t.teardown(() => sink.close())
    const err = await sink.deliver(batch(jsonRecords(0, 5)), never).then(() => undefined, (e: unknown) => e)
    t.match(err, { name: 'DeliveryError', code: 'Postgres.42703', retryable: false }, `${mode}: a table without the columns is undefined_column, not retryable`)
  }
  const missingSchema = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table: `${uniqueName('no_schema')}.t`, mode: 'insert' })
  t.teardown(() => missingSchema.close())
  t.match(await missingSchema.deliver(batch(jsonRecords(0, 1)), never).catch((e: unknown) => e), { code: 'Postgres.3F000', retryable: false }, 'a schema that does not exist')
})

t.test('a failed batch leaves no rows behind (one transaction)', async (t) => {
  const { sink, table, db } = await sinkOn(t, 'insert', undefined, { insertRows: 10 })
  await sink.deliver(batch(jsonRecords(0, 1)), never)
  // A check that the 25th record breaks: the chunks before it are rolled back with it.
  await db.query(`ALTER TABLE ${quoteTableName(table)} ADD CONSTRAINT small CHECK (partition_key <> 'key-3' OR sequence_number < ${seq(20)})`)
  const err = await sink.deliver(batch(jsonRecords(1, 40)), never).catch((e: unknown) => e)
  t.match(err, { code: 'Postgres.23514', retryable: false })
  const n = await db.query(`SELECT count(*)::int AS n FROM ${quoteTableName(table)}`)
  t.equal(n.rows[0].n, 1)
})

t.test('schema-qualified and quoted table names work; an injection attempt does not execute', async (t) => {
  const db = await admin(t)
  const schema = `Sink Schema ${randomBytes(3).toString('hex')}`
  const victim = uniqueName('victim')
  await db.query(`CREATE SCHEMA "${schema}"`)
  await db.query(`CREATE TABLE ${victim} (id int)`)
  t.teardown(async () => {
    await db.query(`DROP SCHEMA "${schema}" CASCADE`)
    await db.query(`DROP TABLE IF EXISTS ${victim}`)
  })

  const quoted = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table: `"${schema}"."odd ""name"".x"`, mode: 'copy' })
  t.teardown(() => quoted.close())
  await quoted.deliver(batch(jsonRecords(0, 3)), never)
  const n = await db.query(`SELECT count(*)::int AS n FROM "${schema}"."odd ""name"".x"`)
  t.equal(n.rows[0].n, 3, 'rows land in the quoted schema.table')

  t.equal(quoteTableName('Public.Orders'), '"public"."orders"', 'unquoted parts fold to lower case, as in SQL')
  for (const table of [`x; DROP TABLE ${victim}; --`, `x" ; DROP TABLE ${victim}; --`, `"x"; DROP TABLE ${victim}`, 'a.b.c', '"unterminated', '']) {
    t.throws(() => openRecordSink({ type: 'postgres', connectionString: CONNECTION, table, mode: 'insert' }, context), TypeError, `refused: ${table}`)
  }
  // Inside quotes anything is a name, never SQL.
  const inside = `"x""; DROP TABLE ${victim}; --"`
  const odd = new PostgresSink({ type: 'postgres', connectionString: CONNECTION, table: `"${schema}".${inside}`, mode: 'insert' })
  t.teardown(() => odd.close())
  await odd.deliver(batch(jsonRecords(0, 2)), never)
  const still = await db.query(`SELECT to_regclass($1) AS t`, [victim])
  t.equal(still.rows[0].t, victim, 'the victim table still exists')
  const made = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema])
  t.same(made.rows.map((r) => r.table_name), ['odd "name".x', `x"; DROP TABLE ${victim}; --`])
})

t.test('an aborted delivery writes nothing and says so', async (t) => {
  const { sink, table, db } = await sinkOn(t, 'insert')
  const controller = new AbortController()
  controller.abort()
  t.match(await sink.deliver(batch(jsonRecords(0, 3)), controller.signal).catch((e: unknown) => e), { code: 'Postgres.Aborted', retryable: true })
  t.equal((await db.query(`SELECT to_regclass($1) AS t`, [table])).rows[0].t, null, 'not even the table was created')
})

t.test('copy: an error of the COPY itself is the batch\'s error, with its own SQLSTATE', async (t) => {
  const { sink, table, db } = await sinkOn(t, 'copy')
  // Microseconds that fit binary COPY's int64 but are past PostgreSQL's last timestamp (294276 AD).
  const late = { ...record(1, '{"n":1}'), arrivalMs: 946_684_800_000 + 9_223_372_000_000_000 }
  const err = await sink.deliver(batch([record(0, '{"n":0}'), late]), never).catch((e: unknown) => e)
  t.match(err, { name: 'DeliveryError', code: 'Postgres.22008', retryable: false, message: /timestamp out of range/ }, 'not 25P02 from the statement after it')
  t.equal((await db.query(`SELECT count(*)::int AS n FROM ${quoteTableName(table)}`)).rows[0].n, 0, 'nothing of the batch is kept')
  await sink.deliver(batch(jsonRecords(0, 3)), never)
  t.equal((await db.query(`SELECT count(*)::int AS n FROM ${quoteTableName(table)}`)).rows[0].n, 3, 'the connection serves the next batch')
})

for (const mode of ['insert', 'copy'] as const) {
  t.test(`${mode}: a record that jsonb or text cannot hold still loads with its batch, its row kept`, async (t) => {
    const { sink, table, db } = await sinkOn(t, mode)
    const data = [
      '{"a":"\\ud800"}', // a lone high surrogate escape: JSON.parse takes it, jsonb does not
      '{"a":"\\udc00 low"}',
      '{"a":"\\ud800\\u0041"}', // a high one followed by a non-surrogate
      '{"a":"\\ud83d\\ude00"}', // a pair: an emoji, jsonb takes it
      '{"a":"\\\\ud800"}', // an escaped backslash then "ud800": plain text
      '{"n":1}',
    ]
    const records = data.map((d, i) => record(i, d))
    records[5] = { ...records[5]!, partitionKey: 'before\u0000after' }
    await sink.deliver(batch(records), never)
    const rows = await db.query(`SELECT partition_key, data, data_json FROM ${quoteTableName(table)} ORDER BY sequence_number`)
    t.equal(rows.rowCount, 6, 'every record has its row')
    t.same(rows.rows.map((r) => r.data.toString()), data, 'data keeps the exact bytes')
    t.same(rows.rows.map((r) => r.data_json), [null, null, null, { a: '😀' }, { a: '\\ud800' }, { n: 1 }])
    t.equal(rows.rows[5].partition_key, 'before\ufffdafter', 'a NUL in the partition key is stored as U+FFFD')
  })
}
