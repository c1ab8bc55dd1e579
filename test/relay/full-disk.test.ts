/**
 * A full disk that comes back brings the relay back (issue 19), tried as an operator would: the
 * relay's data directory on a 6 MB tmpfs, PutRecords until ENOSPC, then the file system grown. The
 * relay must answer "unavailable" while full, lose nothing it acknowledged, take writes again within
 * seconds of the space returning without a restart, keep nothing a failed commit wrote, and come
 * back from a kill -9 afterwards with exactly the acknowledged records. Needs root (mount).
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { KinesisClient, PutRecordsCommand, CreateStreamCommand } from '@aws-sdk/client-kinesis'
import { ROOT, spawnUntilReady } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'

const root = process.getuid?.() === 0
const mounted = (dir: string, size: string) => spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]).status === 0

interface Relay { endpoint: string; mqttPort: number; kill(): Promise<void>; lines: string[] }

async function startRelay(t: Test, dataDir: string, args: string[] = []): Promise<Relay> {
  const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', ...args], 'tributary relay ready')
  const lines: string[] = []
  child.stderr!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter((l) => l.startsWith('{'))))
  let dead = false
  const kill = async () => { if (!dead) { dead = true; child.kill('SIGKILL'); await exited } }
  t.teardown(kill)
  return { endpoint: `http://${/ (http:\/\/[^ ]+)/.exec(ready)![1]!.slice(7)}`, mqttPort: Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1]), kill, lines }
}

function client(endpoint: string): KinesisClient {
  return new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 })
}

/** One PutRecords of `n` records of ~1 KB; the records it acknowledged, by data. */
async function put(kinesis: KinesisClient, stream: string, tag: string, n: number): Promise<{ acked: Map<string, string>; failed: number; error?: string }> {
  const records = Array.from({ length: n }, (_, i) => ({ PartitionKey: `k${i}-${tag}`, Data: Buffer.from(`${tag}-${i}-${'x'.repeat(1000)}`) }))
  const acked = new Map<string, string>()
  try {
    const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records }))
    out.Records!.forEach((r, i) => { if (r.SequenceNumber) acked.set(records[i]!.Data.toString(), r.SequenceNumber) })
    return { acked, failed: out.FailedRecordCount ?? 0 }
  } catch (err) {
    return { acked, failed: n, error: `${(err as Error).name}: ${(err as Error).message}` }
  }
}

t.test('the relay on a full disk refuses writes, loses nothing acknowledged, and takes writes again by itself once there is room', { skip: root ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dir = join(tempDir(t), 'data')
  mkdirSync(dir)
  if (!mounted(dir, '6m')) return t.fail('mount -t tmpfs failed')
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  let relay = await startRelay(t, dir)
  let kinesis = client(relay.endpoint)
  // One shard: its commits are written and synced in its segment. Sixteen: every commit goes through the journal.
  await kinesis.send(new CreateStreamCommand({ StreamName: 'direct', ShardCount: 1 }))
  await kinesis.send(new CreateStreamCommand({ StreamName: 'journaled', ShardCount: 16 }))
  const acked = { direct: new Map<string, string>(), journaled: new Map<string, string>() }
  let refusals = 0
  let lastError = ''
  for (let i = 0; refusals < 6 && i < 2000; i++) {
    const stream = i % 2 ? 'journaled' : 'direct'
    const out = await put(kinesis, stream, `a${i}`, 100)
    for (const [data, seq] of out.acked) acked[stream].set(data, seq)
    if (out.failed) { refusals++; lastError = out.error ?? 'records failed' }
  }
  t.ok(refusals >= 6, `the disk filled: ${acked.direct.size + acked.journaled.size} records acknowledged before (${lastError})`)
  t.match(lastError, /ServiceUnavailable|InternalFailure|records failed/)
  const health = await fetch(`${relay.endpoint}/healthz`)
  t.equal(health.status, 503)
  t.match(await health.json(), { status: 'failing', storage: /ENOSPC/ })

  // Still full: it stays refused (and says why in its log, once).
  await new Promise((r) => setTimeout(r, 1500))
  t.ok((await put(kinesis, 'direct', 'still-full', 10)).failed > 0, 'still refused while full')
  t.ok(relay.lines.some((l) => l.includes('"event":"storage_failed"') && l.includes('"level":"error"')), 'storage_failed logged at error')

  t.equal(spawnSync('mount', ['-o', 'remount,size=20m', dir]).status, 0, 'the file system grown to 20 MB')
  const grown = performance.now()
  let resumedAfter = -1
  while (performance.now() - grown < 60_000) {
    const out = await put(kinesis, 'direct', `b${Math.round(performance.now())}`, 10)
    for (const [data, seq] of out.acked) acked.direct.set(data, seq)
    if (out.failed === 0) { resumedAfter = performance.now() - grown; break }
    await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(resumedAfter >= 0, `writes taken again ${(resumedAfter / 1000).toFixed(2)} s after the space returned, no restart`)
  t.ok(relay.lines.some((l) => l.includes('"event":"storage_resumed"')), 'storage_resumed logged')
  t.equal((await fetch(`${relay.endpoint}/healthz`)).status, 200, '/healthz is ok again')
  // A few records only: fewer than a refused commit may have left in a file, which must not be found past them.
  const small = await put(kinesis, 'journaled', 'c', 10)
  t.equal(small.failed, 0, 'the journaled stream takes records again too')
  for (const [data, seq] of small.acked) acked.journaled.set(data, seq)

  const check = async (when: string) => {
    for (const stream of ['direct', 'journaled'] as const) {
      const read = await readStream(relay.endpoint, stream)
      const bySeq = new Map(read.map((r) => [r.seq, r.data]))
      const lost = [...acked[stream]].filter(([data, seq]) => bySeq.get(seq) !== data)
      const extra = read.filter((r) => acked[stream].get(r.data) !== r.seq)
      t.same(lost.length, 0, `${when}, ${stream}: every one of ${acked[stream].size} acknowledged records is read back`)
      t.same(extra.map((r) => r.data.slice(0, 20)), [], `${when}, ${stream}: nothing else (${read.length} read; nothing a refused commit wrote)`)
      t.equal(new Set(read.map((r) => r.seq)).size, read.length, `${when}, ${stream}: each once`)
    }
  }
  await check('after the resume')
  kinesis.destroy()

  await relay.kill()
  relay = await startRelay(t, dir)
  kinesis = client(relay.endpoint)
  await check('after kill -9 and a restart')
  for (let i = 0; i < 6; i++) {
    const stream = i % 2 ? 'journaled' : 'direct'
    const out = await put(kinesis, stream, `d${i}`, 100)
    t.equal(out.failed, 0, `put ${i} after the restart stored`)
    for (const [data, seq] of out.acked) acked[stream].set(data, seq)
  }
  await check('after more puts')
  kinesis.destroy()
})

t.test('an agent keeps its records while the relay\'s disk is full and delivers each once when it comes back', { skip: root ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dir = join(tempDir(t), 'data')
  mkdirSync(dir)
  if (!mounted(dir, '6m')) return t.fail('mount -t tmpfs failed')
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  const relay = await startRelay(t, dir, ['--allow-anonymous'])
  const agentDir = tempDir(t)
  const agent = await spawnAgent(writeAgentConfig(agentDir, {
    device: 'edge-full',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(agentDir, 'outbox.db') },
    uplink: { backoffInitialMs: 100, backoffMaxMs: 500 },
    status: { port: 0 },
    sources: [{ type: 'put-api', port: 0 }],
  }))
  t.teardown(() => { agent.process.kill('SIGKILL') })
  const backlog = async () => ((await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { outbox: { backlog: number } }).outbox.backlog
  const drained = async (what: string) => {
    const deadline = Date.now() + 60_000
    while (await backlog() > 0) {
      if (Date.now() > deadline) throw new Error(`${what}: the agent's backlog did not drain within 60 s`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const sent: string[] = []
  const putToAgent = async (tag: string, n: number) => {
    const batch = Array.from({ length: n }, (_, i) => ({ key: `k${i % 5}`, data: `${tag}-${i}` }))
    const res = await putRecords(agent.putApiPort!, 'from-agent', batch)
    t.equal(res.status, 200, `the agent stores ${tag}`)
    sent.push(...batch.map((r) => r.data))
  }
  await putToAgent('before', 50)
  await drained('before the disk filled')

  // Fill the relay's disk through the API.
  const kinesis = client(relay.endpoint)
  t.teardown(() => kinesis.destroy())
  await kinesis.send(new CreateStreamCommand({ StreamName: 'filler', ShardCount: 1 }))
  for (let i = 0; i < 2000; i++) if ((await put(kinesis, 'filler', `f${i}`, 100)).failed) break
  t.equal((await fetch(`${relay.endpoint}/healthz`)).status, 503, 'the relay is full')

  // The agent goes on storing: its batches are refused (not acknowledged), so they wait in its outbox.
  for (let i = 0; i < 5; i++) await putToAgent(`during-${i}`, 40)
  await new Promise((r) => setTimeout(r, 1500))
  t.ok(await backlog() > 0, `the agent holds ${await backlog()} records while the relay cannot store`)

  t.equal(spawnSync('mount', ['-o', 'remount,size=20m', dir]).status, 0, 'the file system grown')
  await drained('after the space returned')
  await putToAgent('after', 30)
  await drained('after')
  const read = (await readStream(relay.endpoint, 'from-agent')).map((r) => r.data)
  t.equal(read.length, sent.length, `the relay holds ${read.length} of the agent's records`)
  t.same(new Set(read), new Set(sent), 'each record the agent stored, exactly once')
})
