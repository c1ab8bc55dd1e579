/**
 * A Kinesis server that does no work: the ceiling the relay's Kinesis API is measured against
 * (issue 17). Every answer is rendered once at start, in the shape and size the relay answers, so the
 * same AWS SDK client flow runs against it and only the transport and the client are left:
 *
 * - PutRecords: the request body is read whole and its records counted by the occurrences of
 *   `"PartitionKey"` (a byte search, no JSON parse); the answer is a per-record success page for that
 *   count (a 56-digit SequenceNumber and a ShardId each, as the relay's), rendered on first use of a
 *   count and kept.
 * - GetRecords: pages of up to 10,000 records of 100 bytes (the relay's fields: SequenceNumber,
 *   ApproximateArrivalTimestamp, Data in base64, PartitionKey), sliced from one pre-rendered page. The
 *   shard iterator carries how many records the shard has left, so a reader gets, over its 4 shards,
 *   as many records as were put since the last CreateStream, then an empty page.
 * - CreateStream, DescribeStream, DescribeStreamSummary, ListShards, GetShardIterator: fixed answers
 *   (an ACTIVE stream of 4 shards, whatever its name).
 *
 * HTTP/1.1 (node:http) and HTTP/2 without TLS (node:http2) listen on ports of their own.
 * As a program: `node --import tsx bench/canned-kinesis.ts [http1Port=0] [http2Port=0]` prints
 * {"http1":PORT,"http2":PORT} on stdout once both listen, and runs until it is sent SIGTERM.
 */
import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import type { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'

export const PAGE_RECORDS = 10_000
export const SHARDS = 4
const RECORD_BYTES = 100
const PARTITION_KEY = Buffer.from('"PartitionKey"')
const JSON_TYPE = 'application/x-amz-json-1.1'
const ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/bench'
const CREATED = 1796585604.131
const SEQUENCE_BASE = 49680900472222879299294822083216930691033389401569755138n
const SEQUENCE_STEP = 1208925819614629174706176n

const shardId = (i: number) => `shardId-${String(i).padStart(12, '0')}`
const sequence = (i: number) => String(SEQUENCE_BASE + BigInt(i) * SEQUENCE_STEP)
const shards = Array.from({ length: SHARDS }, (_, i) => ({
  ShardId: shardId(i),
  HashKeyRange: { StartingHashKey: String((2n ** 128n / BigInt(SHARDS)) * BigInt(i)), EndingHashKey: String((2n ** 128n / BigInt(SHARDS)) * BigInt(i + 1) - 1n) },
  SequenceNumberRange: { StartingSequenceNumber: sequence(0) },
}))

const fixed: Record<string, Buffer> = {
  CreateStream: Buffer.from('{}'),
  DescribeStream: Buffer.from(JSON.stringify({ StreamDescription: { StreamName: 'bench', StreamARN: ARN, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' }, Shards: shards, HasMoreShards: false, RetentionPeriodHours: 24, StreamCreationTimestamp: CREATED, EncryptionType: 'NONE', EnhancedMonitoring: [{ ShardLevelMetrics: [] }] } })),
  DescribeStreamSummary: Buffer.from(JSON.stringify({ StreamDescriptionSummary: { StreamName: 'bench', StreamARN: ARN, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' }, RetentionPeriodHours: 24, StreamCreationTimestamp: CREATED, EncryptionType: 'NONE', EnhancedMonitoring: [{ ShardLevelMetrics: [] }], ConsumerCount: 0, OpenShardCount: SHARDS } })),
  ListShards: Buffer.from(JSON.stringify({ Shards: shards })),
}

/** The page of every GetRecords answer: `{"Records":[` and 10,000 records; ends[n] is where record n ends. */
const page = (() => {
  const data = Buffer.alloc(RECORD_BYTES, 0x61).toString('base64')
  const parts = ['{"Records":[']
  const ends: number[] = [parts[0]!.length]
  let length = parts[0]!.length
  for (let i = 0; i < PAGE_RECORDS; i++) {
    const record = `${i ? ',' : ''}${JSON.stringify({ SequenceNumber: sequence(i), ApproximateArrivalTimestamp: 1796585605.181, Data: data, PartitionKey: `k${i % 4}-${Math.floor(i / 500)}-${i % 500}` })}`
    parts.push(record)
    length += record.length
    ends.push(length)
  }
  return { bytes: Buffer.from(parts.join('')), ends }
})()

/** An iterator of the relay's length that says how many records its shard has left. */
const iterator = (left: number) => `AQ${String(left).padStart(12, '0')}`.padEnd(68, 'A')
const leftOf = (it: string) => Number(it.slice(2, 14))

const putAnswers = new Map<number, Buffer>()
function putAnswer(count: number): Buffer {
  let answer = putAnswers.get(count)
  if (!answer) {
    const records = Array.from({ length: count }, (_, i) => ({ SequenceNumber: sequence(i), ShardId: shardId(i % SHARDS) }))
    answer = Buffer.from(JSON.stringify({ FailedRecordCount: 0, Records: records, EncryptionType: 'NONE' }))
    putAnswers.set(count, answer)
  }
  return answer
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let n = 0
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) n++
  return n
}

type Request = http.IncomingMessage | http2.Http2ServerRequest
type Response = http.ServerResponse | http2.Http2ServerResponse

/** The canned server's state: records put since the last CreateStream, which the reads then return. */
export function cannedHandler(): (req: Request, res: Response) => void {
  let put = 0
  const send = (res: Response, status: number, body: Buffer, tail?: Buffer) => {
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': body.length + (tail?.length ?? 0), 'x-amzn-requestid': 'canned' })
    // Both responses are Writables; the union of their overloads is not callable as it stands.
    const out: Writable = res
    if (tail) out.write(body)
    out.end(tail ?? body)
  }
  return (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '')
    const action = target.slice(target.indexOf('.') + 1)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      switch (action) {
        case 'PutRecords': {
          const count = occurrences(body, PARTITION_KEY)
          put += count
          return send(res, 200, putAnswer(count))
        }
        case 'GetRecords': {
          const left = leftOf(String(JSON.parse(body.toString()).ShardIterator))
          const n = Math.min(left, PAGE_RECORDS)
          const tail = Buffer.from(`],"NextShardIterator":"${iterator(left - n)}","MillisBehindLatest":${left > n ? 1000 : 0}}`)
          return send(res, 200, page.bytes.subarray(0, page.ends[n]), tail)
        }
        case 'GetShardIterator': {
          const shard = Number(String(JSON.parse(body.toString()).ShardId).slice(-12))
          const left = Math.floor(put / SHARDS) + (shard < put % SHARDS ? 1 : 0)
          return send(res, 200, Buffer.from(`{"ShardIterator":"${iterator(left)}"}`))
        }
        case 'CreateStream':
          put = 0
          return send(res, 200, fixed.CreateStream!)
        default: {
          const answer = fixed[action]
          if (answer) return send(res, 200, answer)
          return send(res, 400, Buffer.from('{"__type":"UnknownOperationException"}'))
        }
      }
    })
  }
}

export interface CannedKinesis {
  http1Port: number
  http2Port: number
  close(): Promise<void>
}

export async function startCannedKinesis(host = '127.0.0.1', http1Port = 0, http2Port = 0): Promise<CannedKinesis> {
  const handler = cannedHandler()
  const h1 = http.createServer({ keepAliveTimeout: 60_000 }, handler)
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 100 } }, handler)
  const listen = (server: net.Server, port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port))
  })
  const ports = [await listen(h1, http1Port), await listen(h2, http2Port)] as const
  return {
    http1Port: ports[0],
    http2Port: ports[1],
    close: async () => {
      h1.closeAllConnections()
      await Promise.all([h1, h2].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const canned = await startCannedKinesis('127.0.0.1', Number(process.argv[2] ?? 0), Number(process.argv[3] ?? 0))
  console.log(JSON.stringify({ http1: canned.http1Port, http2: canned.http2Port }))
  process.on('SIGTERM', () => process.exit(0))
}
