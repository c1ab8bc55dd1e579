/**
 * Issue 17's shard-count check through the real API: the relay in its own process, PutRecords from
 * 10 SDK clients (HTTP/1.1, 500 records of 100 bytes with random partition keys, one call in flight
 * each) into one 4-shard stream, then into 10 streams × 1,000 shards (round robin), in one run; the
 * 10,000-shard rate as a share of the 4-shard rate (goal ≥ 0.7); then the time a restart after
 * kill -9 takes until the API answers again with 10,000 shards (goal < 5 s). Also the relay's open
 * file descriptors. CSV on stdout, progress on stderr.
 * Usage: npm run build && npx tsx bench/shards-api.ts [seconds=8]
 * `restart [calls=200]` instead of seconds skips both timed phases: the same streams are created and
 * only filled with `calls` PutRecords of 500 (from the same 10 clients) before the kill, to time the
 * restart alone. SHARDS_API_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) goes to the
 * restarted relay's node; SHARDS_API_RELAY_LOG names a file for its log lines; SHARDS_API_DIST a
 * build other than dist/ (a folder of the checkout's top level, e.g. from `tsc --outDir .dist-b`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, ListStreamsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { freePort } from './processes.js'

const restartOnly = process.argv[2] === 'restart'
const seconds = restartOnly ? 0 : Number(process.argv[2] ?? 8)
const fillCalls = restartOnly ? Number(process.argv[3] ?? 200) : 0
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const CLIENTS = 10
const data = Buffer.alloc(100, 0x61)

async function answering(client: KinesisClient, deadlineMs: number): Promise<void> {
  for (;;) {
    try {
      await client.send(new ListStreamsCommand({ Limit: 1 }))
      return
    } catch (err) {
      if (Date.now() > deadlineMs) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

const entry = join(root, process.env.SHARDS_API_DIST ?? 'dist', 'relay/cli/entry.js')
if (!existsSync(entry)) throw new Error('build first: npm run build')
const dir = mkdtempSync(join(tmpdir(), 'tributary-shards-api-'))
const port = await freePort()
const startRelay = (nodeArgs: string[] = [], logFile?: string): ChildProcess => spawn(process.execPath, [...nodeArgs, entry, 'relay', '--data-dir', dir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', String(port), '--shard-limit', '10004'],
  { stdio: ['ignore', 'ignore', logFile ? openSync(logFile, 'w') : 'ignore'] })
let relay = startRelay()
const client = new KinesisClient({
  endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: 64 } as never }),
})
await answering(client, Date.now() + 30_000)

async function create(StreamName: string, ShardCount: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName, ShardCount }))
  while ((await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 20))
}

/** PutRecords from every client until `seconds` have passed, or (`calls` > 0) that many calls in all; records per second. */
async function put(streams: string[], calls = 0): Promise<number> {
  let records = 0
  let made = 0
  const deadline = Date.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    let n = 0
    while (calls > 0 ? made++ < calls : Date.now() < deadline) {
      const StreamName = streams[(c + n++) % streams.length]!
      await client.send(new PutRecordsCommand({ StreamName, Records: Array.from({ length: 500 }, () => ({ PartitionKey: Math.random().toString(36).slice(2), Data: data })) }))
      records += 500
    }
  }))
  return records / ((performance.now() - started) / 1000)
}

const fds = () => readdirSync(`/proc/${relay.pid}/fd`).length

console.log('benchmark,layout,records_per_s,share_of_4_shards,relay_fds')
process.stderr.write('1 stream x 4 shards: PutRecords…\n')
await create('small', 4)
const small = restartOnly ? await put(['small'], fillCalls / 10) : await put(['small'])
if (!restartOnly) console.log(`shards-api,1x4,${Math.round(small)},1.00,${fds()}`)
const large: string[] = []
for (let s = 0; s < 10; s++) {
  process.stderr.write(`\rcreating stream ${s + 1}/10 of 1,000 shards…`)
  large.push(`large-${s}`)
  await create(`large-${s}`, 1000)
}
process.stderr.write('\n10 streams x 1,000 shards: PutRecords…\n')
const many = restartOnly ? await put(large, fillCalls) : await put(large)
if (!restartOnly) console.log(`shards-api,10x1000,${Math.round(many)},${(many / small).toFixed(2)},${fds()}`)

process.stderr.write('kill -9 and restart…\n')
relay.kill('SIGKILL')
await new Promise((r) => relay.once('exit', r))
const t0 = performance.now()
relay = startRelay(process.env.SHARDS_API_NODE_ARGS?.split(' ').filter(Boolean), process.env.SHARDS_API_RELAY_LOG)
await answering(client, Date.now() + 120_000)
console.log(`restart-after-kill,10x1000+1x4,${((performance.now() - t0) / 1000).toFixed(2)} s,,${fds()}`)
relay.kill('SIGTERM')
await new Promise((r) => relay.once('exit', r))
client.destroy()
if (process.env.SHARDS_API_KEEP) process.stderr.write(`kept ${dir}\n`)
else rmSync(dir, { recursive: true, force: true })
