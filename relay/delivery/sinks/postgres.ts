/**
 * PostgreSQL sink: each batch loads in one transaction, idempotent on (stream, shard, sequence
 * number), so a batch delivered again (a retry, a rebuild after a crash) adds no second copy.
 *
 * The table, created when absent (CREATE TABLE IF NOT EXISTS; its schema must exist):
 *
 *   column           type         from
 *   delivery_stream  text         the delivery stream's name
 *   shard_id         text         the record's shard
 *   sequence_number  numeric      the record's sequence number (decimal, up to 57 digits: numeric keeps their order)
 *   partition_key    text         the record's partition key (a NUL, which text cannot hold, as U+FFFD)
 *   arrival_time     timestamptz  when the relay stored the record
 *   data             bytea        the record's bytes (after any transform)
 *   data_json        jsonb NULL   the same bytes when they are UTF-8 JSON that jsonb accepts, else NULL
 *                                 (not \u0000, not a \uD800–\uDFFF escape outside a high-low pair)
 *   PRIMARY KEY (delivery_stream, shard_id, sequence_number)
 *
 * A table that already exists needs these columns (others may have defaults) and a unique index
 * the rows conflict on: rows go in with ON CONFLICT DO NOTHING.
 *
 * Modes:
 *   insert  multi-row INSERT … ON CONFLICT DO NOTHING, `insertRows` rows per statement (5 parameters
 *           a row plus 2 for the batch, under PostgreSQL's 65,535), full chunks as a prepared statement
 *   copy    binary COPY FROM STDIN into a temporary staging table (ON COMMIT DELETE ROWS), then one
 *           INSERT … SELECT … ON CONFLICT DO NOTHING. COPY goes through pg's `client.query` with a
 *           small Submittable (CopyIn below) that answers the server's CopyInResponse with CopyData
 *           messages: pg has no COPY API of its own and pg-copy-streams is not a dependency. Binary
 *           format sends `data` as its bytes, where text COPY would send twice as many as hex.
 *
 * Table names: `name` or `schema.name`; an unquoted part is a plain identifier ([A-Za-z_][A-Za-z0-9_$]*,
 * folded to lower case as PostgreSQL does), a double-quoted part may hold anything but NUL (`""` for
 * a quote). Anything else is refused before any SQL runs; in SQL every part is quoted.
 *
 * Errors (DeliveryError.code): Postgres.ConnectionFailed (cannot connect, connection lost; retryable),
 * Postgres.<SQLSTATE> (e.g. Postgres.42P01; retryable for classes 08, 40, 53, 57P), Postgres.Aborted.
 */
import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import pg from 'pg'
import { DeliveryError, type OutputRecord, type PostgresTarget, type RecordBatch, type RecordSink } from '../types.js'

/** PostgreSQL's limit on a statement's parameters (a 16-bit count). */
const MAX_PARAMETERS = 65_535
const ROW_PARAMETERS = 5
export const DEFAULT_INSERT_ROWS = 2_000

export interface PostgresSinkOptions {
  /** Connections kept; a delivery stream loads one batch at a time per shard. */
  poolSize?: number
  connectTimeoutMs?: number
  /** Rows per INSERT statement in `insert` mode. */
  insertRows?: number
}

export class PostgresSink implements RecordSink {
  readonly description: string
  private readonly target: PostgresTarget
  private readonly pool: pg.Pool
  private readonly table: string
  private readonly insertRows: number
  /** Names this table's prepared statements and staging table apart from other sinks' on a shared server. */
  private readonly tag: string
  private created: Promise<void> | undefined

  constructor(target: PostgresTarget, options: PostgresSinkOptions = {}) {
    this.target = target
    this.table = quoteTableName(target.table)
    this.insertRows = options.insertRows ?? DEFAULT_INSERT_ROWS
    if (!Number.isInteger(this.insertRows) || this.insertRows < 1 || 2 + this.insertRows * ROW_PARAMETERS > MAX_PARAMETERS) {
      throw new TypeError(`insertRows must be an integer from 1 to ${Math.floor((MAX_PARAMETERS - 2) / ROW_PARAMETERS)}, got ${this.insertRows}`)
    }
    this.tag = createHash('sha1').update(this.table).digest('hex').slice(0, 12)
    this.pool = new pg.Pool({
      connectionString: target.connectionString,
      max: options.poolSize ?? 2,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
    })
    // An idle connection that drops is discarded by the pool; the next batch connects again.
    this.pool.on('error', () => {})
    this.description = `PostgreSQL ${this.table} (${target.mode})`
  }

  async deliver(batch: RecordBatch, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw aborted(signal)
    if (batch.records.length === 0) return
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw postgresError(err)
    }
    let broken = false
    try {
      await (this.created ??= this.createTable(client).catch((err: unknown) => {
        this.created = undefined
        throw err
      }))
      await client.query('BEGIN')
      try {
        if (this.target.mode === 'copy') await this.copy(client, batch, signal)
        else await this.insert(client, batch, signal)
        if (signal.aborted) throw aborted(signal)
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => { broken = true })
        throw err
      }
    } catch (err) {
      if (!(err instanceof DeliveryError) && !isSqlError(err)) broken = true
      throw err instanceof DeliveryError ? err : postgresError(err)
    } finally {
      client.release(broken)
    }
  }

  private async createTable(client: pg.PoolClient): Promise<void> {
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        delivery_stream text NOT NULL,
        shard_id text NOT NULL,
        sequence_number numeric NOT NULL,
        partition_key text NOT NULL,
        arrival_time timestamptz NOT NULL,
        data bytea NOT NULL,
        data_json jsonb NULL,
        PRIMARY KEY (delivery_stream, shard_id, sequence_number))`)
    } catch (err) {
      // Two sinks creating the same table at once: the loser sees the winner's type or table.
      const code = (err as { code?: string }).code
      if (code !== '23505' && code !== '42P07') throw err
    }
  }

  private async insert(client: pg.PoolClient, batch: RecordBatch, signal: AbortSignal): Promise<void> {
    const records = batch.records
    for (let from = 0; from < records.length; from += this.insertRows) {
      if (signal.aborted) throw aborted(signal)
      const rows = records.slice(from, from + this.insertRows)
      const values: unknown[] = [batch.deliveryStream, batch.shardId]
      for (const r of rows) values.push(r.sequenceNumber, textColumn(r.partitionKey), new Date(r.arrivalMs).toISOString(), r.data, jsonText(r.data))
      const full = rows.length === this.insertRows
      await client.query({
        // Full chunks share one prepared statement per connection; the tail is parsed each time.
        name: full ? `tributary_ins_${this.tag}_${rows.length}` : undefined,
        text: insertStatement(this.table, rows.length),
        values,
      })
    }
  }

  private async copy(client: pg.PoolClient, batch: RecordBatch, signal: AbortSignal): Promise<void> {
    const stage = `tributary_stage_${this.tag}`
    // Created once per connection, emptied by every commit or rollback.
    await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${stage} (
      sequence_number text, partition_key text, arrival_time timestamptz, data bytea, data_json jsonb) ON COMMIT DELETE ROWS`)
    if (signal.aborted) throw aborted(signal)
    await copyIn(client, `COPY ${stage} FROM STDIN (FORMAT binary)`, encodeBinaryCopy(batch.records))
    if (signal.aborted) throw aborted(signal)
    await client.query(
      `INSERT INTO ${this.table} (delivery_stream, shard_id, sequence_number, partition_key, arrival_time, data, data_json)
       SELECT $1, $2, sequence_number::numeric, partition_key, arrival_time, data, data_json FROM ${stage}
       ON CONFLICT DO NOTHING`,
      [batch.deliveryStream, batch.shardId],
    )
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}

const statements = new Map<string, string>()

function insertStatement(table: string, rows: number): string {
  const key = `${table}\u0000${rows}`
  let text = statements.get(key)
  if (text === undefined) {
    const tuples: string[] = []
    for (let i = 0, p = 3; i < rows; i++, p += ROW_PARAMETERS) tuples.push(`($1,$2,$${p},$${p + 1},$${p + 2},$${p + 3},$${p + 4})`)
    text = `INSERT INTO ${table} (delivery_stream, shard_id, sequence_number, partition_key, arrival_time, data, data_json) VALUES ${tuples.join(',')} ON CONFLICT DO NOTHING`
    if (statements.size > 256) statements.clear()
    statements.set(key, text)
  }
  return text
}

/**
 * A string as PostgreSQL's text can hold it: text refuses NUL (22021), which would fail the whole
 * batch, so each NUL becomes U+FFFD (the replacement character; the exact key is lost, the row is not).
 */
export function textColumn(s: string): string {
  return s.includes('\u0000') ? s.replaceAll('\u0000', '\ufffd') : s
}

/** A JSON escape: \uXXXX, or any other (so an escaped backslash is not taken for the start of one). */
const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|[^])/g

/**
 * Whether jsonb takes the text's \u escapes: not \u0000, and a surrogate only as a high one
 * directly followed by a low one. JSON.parse takes a lone surrogate (a string of UTF-16 code units),
 * jsonb refuses it (22P02).
 */
function escapesFitJsonb(text: string): boolean {
  if (!text.includes('\\u')) return true
  let highEnd = -1
  for (const m of text.matchAll(JSON_ESCAPE)) {
    const code = m[1] === undefined ? -1 : parseInt(m[1], 16)
    if (highEnd >= 0) {
      if (m.index !== highEnd || code < 0xdc00 || code > 0xdfff) return false
      highEnd = -1
      continue
    }
    if (code === 0 || (code >= 0xdc00 && code <= 0xdfff)) return false
    if (code >= 0xd800 && code <= 0xdbff) highEnd = m.index + m[0].length
  }
  return highEnd < 0
}

/**
 * The record's text for data_json, or null: UTF-8 that JSON.parse accepts and jsonb can hold
 * (a record jsonb refuses would fail the whole batch).
 */
export function jsonText(data: Buffer): string | null {
  // Cheap first look: JSON text starts with one of these after optional whitespace.
  let i = 0
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x0a || data[i] === 0x0d || data[i] === 0x09)) i++
  if (i === data.length) return null
  if (!isUtf8(data)) return null
  const text = data.toString('utf8')
  if (!escapesFitJsonb(text)) return null
  try {
    JSON.parse(text)
  } catch {
    return null
  }
  return text
}

// --- Table names -------------------------------------------------------------------------------

const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/

/** `name` or `schema.name` as quoted SQL (`"schema"."name"`), or a TypeError naming what is wrong. */
export function quoteTableName(name: string): string {
  const parts: string[] = []
  let i = 0
  while (true) {
    let part: string
    if (name[i] === '"') {
      let j = i + 1
      part = ''
      while (true) {
        const q = name.indexOf('"', j)
        if (q < 0) throw new TypeError(`table name ${JSON.stringify(name)}: unterminated quoted identifier`)
        part += name.slice(j, q)
        if (name[q + 1] === '"') {
          part += '"'
          j = q + 2
          continue
        }
        i = q + 1
        break
      }
      if (part.length === 0) throw new TypeError(`table name ${JSON.stringify(name)}: empty quoted identifier`)
    } else {
      const dot = name.indexOf('.', i)
      const raw = dot < 0 ? name.slice(i) : name.slice(i, dot)
      if (!PLAIN_IDENTIFIER.test(raw)) {
        throw new TypeError(`table name ${JSON.stringify(name)}: ${JSON.stringify(raw)} is not an identifier (letters, digits, _ and $; double-quote it to use other characters)`)
      }
      part = raw.toLowerCase()
      i += raw.length
    }
    if (part.includes('\u0000')) throw new TypeError(`table name ${JSON.stringify(name)}: NUL in an identifier`)
    if (Buffer.byteLength(part) > 63) throw new TypeError(`table name ${JSON.stringify(name)}: ${JSON.stringify(part)} is longer than PostgreSQL's 63 bytes`)
    parts.push(part)
    if (i === name.length) break
    if (name[i] !== '.') throw new TypeError(`table name ${JSON.stringify(name)}: unexpected ${JSON.stringify(name[i])} after an identifier`)
    i++
  }
  if (parts.length > 2) throw new TypeError(`table name ${JSON.stringify(name)}: at most schema.table`)
  return parts.map((p) => `"${p.replaceAll('"', '""')}"`).join('.')
}

// --- Binary COPY ---------------------------------------------------------------------------------

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000
const JSONB_VERSION = 1
/** CopyData messages of about this size. */
const COPY_CHUNK_BYTES = 256 * 1024

/**
 * The staging rows in PostgreSQL's binary COPY format: signature, flags (0), header extension
 * length (0); per row the field count (int16) and each field as int32 length (-1: NULL) and bytes;
 * a trailer of -1 (int16). Big-endian throughout. Fields: sequence_number text, partition_key text,
 * arrival_time timestamptz (int64 µs since 2000-01-01), data bytea, data_json jsonb (version byte 1, then text).
 */
export function encodeBinaryCopy(records: OutputRecord[]): Buffer[] {
  const chunks: Buffer[] = []
  let parts: Buffer[] = [COPY_SIGNATURE, Buffer.alloc(8)]
  let size = COPY_SIGNATURE.length + 8
  for (const r of records) {
    const seq = Buffer.from(r.sequenceNumber, 'utf8')
    const key = Buffer.from(textColumn(r.partitionKey), 'utf8')
    const json = jsonText(r.data)
    const head = Buffer.allocUnsafe(2 + 4 + seq.length + 4 + key.length + 4 + 8 + 4)
    let o = head.writeInt16BE(5, 0)
    o = head.writeInt32BE(seq.length, o)
    o += seq.copy(head, o)
    o = head.writeInt32BE(key.length, o)
    o += key.copy(head, o)
    o = head.writeInt32BE(8, o)
    o = head.writeBigInt64BE(BigInt(Math.round((r.arrivalMs - PG_EPOCH_MS) * 1000)), o)
    head.writeInt32BE(r.data.length, o)
    const tail = json === null ? Buffer.alloc(4, 0xff) : Buffer.allocUnsafe(4 + 1 + Buffer.byteLength(json))
    if (json !== null) {
      tail.writeInt32BE(tail.length - 4, 0)
      tail[4] = JSONB_VERSION
      tail.write(json, 5, 'utf8')
    }
    parts.push(head, r.data, tail)
    size += head.length + r.data.length + tail.length
    if (size >= COPY_CHUNK_BYTES) {
      chunks.push(Buffer.concat(parts, size))
      parts = []
      size = 0
    }
  }
  parts.push(Buffer.from([0xff, 0xff]))
  chunks.push(Buffer.concat(parts, size + 2))
  return chunks
}

/**
 * Runs a COPY … FROM STDIN and settles when the server has answered it. For a Submittable, pg's
 * client.query returns the Submittable itself, not a promise: awaiting that would go straight on,
 * and a COPY error would surface only as the next statement's 25P02 (transaction aborted).
 */
function copyIn(client: pg.PoolClient, text: string, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const copy = new CopyIn(text, chunks)
    copy.callback = (err) => (err ? reject(err) : resolve())
    client.query(copy)
  })
}

/** The connection methods CopyIn uses (pg's Connection, which its types do not export). */
interface CopyConnection {
  query(text: string): void
  sendCopyFromChunk(chunk: Buffer): void
  endCopyFrom(): void
}

/**
 * A COPY … FROM STDIN as a pg Submittable: pg hands it the server's messages. It sends the query,
 * answers CopyInResponse with the data and CopyDone, and settles at ReadyForQuery or at the first
 * error: pg stops passing a query messages once it has had an error (the ReadyForQuery after a
 * server error goes to the client alone, which sends the next query only then).
 */
class CopyIn implements pg.Submittable {
  callback: ((err: Error | null) => void) | undefined
  private error: Error | null = null
  private settled = false
  constructor(private readonly text: string, private readonly chunks: Buffer[]) {}

  submit(connection: pg.Connection): void {
    (connection as unknown as CopyConnection).query(this.text)
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (const chunk of this.chunks) connection.sendCopyFromChunk(chunk)
    connection.endCopyFrom()
  }

  handleError(err: Error): void {
    this.error ??= err
    this.settle()
  }

  handleReadyForQuery(): void {
    this.settle()
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  private settle(): void {
    if (this.settled) return
    this.settled = true
    this.callback?.(this.error)
  }
}

// --- Errors --------------------------------------------------------------------------------------

/** An error the server sent (with a SQLSTATE), as opposed to one of the socket or the client. */
function isSqlError(err: unknown): err is pg.DatabaseError & { code: string } {
  return err instanceof pg.DatabaseError && typeof err.code === 'string'
}

/** SQLSTATE classes where trying again later may succeed: connection, transaction rollback, resources, operator intervention. */
function transientSqlState(code: string): boolean {
  return code.startsWith('08') || code.startsWith('40') || code.startsWith('53') || code.startsWith('57P')
}

export function postgresError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err
  if (isSqlError(err)) {
    return new DeliveryError(`Postgres.${err.code}`, `PostgreSQL refused the batch (${err.code}): ${err.message}`, { retryable: transientSqlState(err.code), cause: err })
  }
  const message = err instanceof Error ? err.message : String(err)
  return new DeliveryError('Postgres.ConnectionFailed', `cannot reach PostgreSQL: ${message}`, { retryable: true, cause: err })
}

function aborted(signal: AbortSignal): DeliveryError {
  return new DeliveryError('Postgres.Aborted', 'the delivery was aborted', { retryable: true, cause: signal.reason })
}
