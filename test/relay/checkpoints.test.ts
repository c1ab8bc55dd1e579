/**
 * Server-side checkpoints: the relay's /checkpoints route (validation, conditional writes, SigV4 when
 * keys are set), and `tributary tail --consumer NAME` resuming from them, across a restart of the
 * tail and across a split of a shard it was reading. A checkpoint's UpdatedAt is read from a manual
 * clock, so it is checked exactly.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { getEventListeners } from 'node:events'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { tail } from '../../relay/cli/tail.js'
import { ROOT, afterCalls, apiCalls, manualClock, testRelay } from '../helpers/relay.js'

const ENTRY = join(ROOT, 'relay/cli/entry.ts')

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('TRIBUTARY_')) env[k] = v
  return env
}

/** `tributary tail --json …` in a child process; resolves lines as they come. */
function startTail(t: Test, args: string[]) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'tail', '--json', ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: { shardId: string; sequenceNumber: string; data: unknown }[] = []
  let buf = ''
  let stderr = ''
  const exit = new Promise<void>((resolve) => child.on('close', () => resolve()))
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (line.trim()) lines.push(JSON.parse(line) as (typeof lines)[number])
    }
  })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  /** Stops the tail; says whether it was still running (not exited on an error of its own) and what it wrote to stderr. */
  const stop = async () => {
    const wasRunning = child.exitCode === null && child.signalCode === null
    child.kill('SIGTERM')
    await exit
    return { wasRunning, stderr }
  }
  t.teardown(() => { child.kill('SIGKILL') })
  const waitFor = async (n: number, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs
    while (lines.length < n) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tail printed ${lines.length} of ${n} lines; stderr: ${stderr}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    return lines.slice()
  }
  return { lines, waitFor, stop }
}

async function put(kinesis: KinesisClient, StreamName: string, from: number, count: number): Promise<void> {
  await kinesis.call('PutRecords', { StreamName, Records: Array.from({ length: count }, (_, i) => ({ PartitionKey: `key-${(from + i) % 17}`, Data: Buffer.from(String(from + i)).toString('base64') })) })
}

t.test('the checkpoint route stores, returns and guards checkpoints, with clear errors', async (t) => {
  const clock = manualClock()
  const relay = await testRelay(t, {}, { clock })
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'cp', ShardCount: 1 })
  const { SequenceNumber } = await kinesis.call<{ SequenceNumber: string }>('PutRecord', { StreamName: 'cp', PartitionKey: 'a', Data: 'eA==' })
  const path = '/checkpoints/cp/app/shardId-000000000000'

  t.same(await kinesis.request('GET', '/checkpoints/cp/app'), { status: 200, json: { Checkpoints: [] } }, 'none at first')
  t.match(await kinesis.request('PUT', path, { SequenceNumber, ExpectedSequenceNumber: null }), { status: 200 })
  const checkpoints = async () => (await kinesis.request<{ Checkpoints: { ShardId: string; SequenceNumber: string; UpdatedAt: number }[] }>('GET', '/checkpoints/cp/app')).json.Checkpoints
  t.same(await checkpoints(), [{ ShardId: 'shardId-000000000000', SequenceNumber, UpdatedAt: clock.now() / 1000 }], "with when it was stored, in epoch seconds on the relay's clock")
  t.same((await kinesis.request('GET', '/checkpoints/cp/other')).json, { Checkpoints: [] }, 'per consumer')

  t.match(await kinesis.request('PUT', path, { SequenceNumber, ExpectedSequenceNumber: null }), { status: 409, json: { code: 'CONFLICT' } }, 'a second worker expecting none loses')
  clock.advance(1500)
  t.match(await kinesis.request('PUT', path, { SequenceNumber, ExpectedSequenceNumber: SequenceNumber }), { status: 200 }, 'a worker expecting the stored one wins')
  t.same(await checkpoints(), [{ ShardId: 'shardId-000000000000', SequenceNumber, UpdatedAt: clock.now() / 1000 }], 'stored again 1.5 s later: UpdatedAt moves with it')
  t.match(await kinesis.request('PUT', path, { SequenceNumber: '12345' }), { status: 400, json: { code: 'REQUEST_INVALID', message: /not a sequence number of shard shardId-000000000000/ } })
  t.match(await kinesis.request('PUT', path, { SequenceNumber: 'SHARD_END' }), { status: 400, json: { message: /is open/ } })
  t.match(await kinesis.request('PUT', path, {}), { status: 400, json: { code: 'REQUEST_INVALID' } })
  t.match(await kinesis.request('PUT', '/checkpoints/cp/bad%20name!/shardId-000000000000', { SequenceNumber }), { status: 400, json: { message: /consumer name/ } })
  t.match(await kinesis.request('GET', '/checkpoints/cp/a%ZZ'), { status: 400, json: { code: 'REQUEST_INVALID', message: /percent-encoding/ } }, 'a broken escape is a clear 400')
  t.match(await kinesis.request('PUT', '/checkpoints/nope/app/shardId-000000000000', { SequenceNumber }), { status: 404, json: { code: 'STREAM_NOT_FOUND' } })
  t.match(await kinesis.request('PUT', '/checkpoints/cp/app/shardId-000000000009', { SequenceNumber }), { status: 404, json: { code: 'NOT_FOUND' } })
  t.match(await kinesis.request('DELETE', path), { status: 405 })

  await kinesis.call('DeleteStream', { StreamName: 'cp' })
  await kinesis.call('CreateStream', { StreamName: 'cp', ShardCount: 1 })
  t.same((await kinesis.request('GET', '/checkpoints/cp/app')).json, { Checkpoints: [] }, 'a stream created again starts without checkpoints')
})

t.test('with access keys, checkpoint requests must be signed', async (t) => {
  const relay = await testRelay(t, { accessKeys: [{ accessKeyId: 'AKIDCHECKPOINT', secretAccessKey: 'secret-checkpoint' }] })
  const signed = new KinesisClient({ endpoint: relay.endpoint, credentials: { accessKeyId: 'AKIDCHECKPOINT', secretAccessKey: 'secret-checkpoint' } })
  const unsigned = new KinesisClient({ endpoint: relay.endpoint })
  const wrong = new KinesisClient({ endpoint: relay.endpoint, credentials: { accessKeyId: 'AKIDCHECKPOINT', secretAccessKey: 'nope' } })
  t.teardown(() => { signed.close(); unsigned.close(); wrong.close() })
  await signed.call('CreateStream', { StreamName: 'cps', ShardCount: 1 })
  t.match(await signed.request('GET', '/checkpoints/cps/app'), { status: 200 })
  t.match(await unsigned.request('GET', '/checkpoints/cps/app'), { status: 403, json: { code: 'AUTH_FAILED' } })
  t.match(await wrong.request('GET', '/checkpoints/cps/app'), { status: 403, json: { code: 'AUTH_FAILED' } })
})

t.test('tail --consumer resumes after its checkpoints, and follows a split shard into its children', async (t) => {
  const relay = await testRelay(t)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  const StreamName = 'cp-tail'
  await kinesis.call('CreateStream', { StreamName, ShardCount: 2 })
  await put(kinesis, StreamName, 0, 30)
  const ep = ['--endpoint', relay.endpoint]

  let tail = startTail(t, [StreamName, '--consumer', 'app', ...ep])
  await tail.waitFor(30)
  // The checkpoint lands after the page is printed; wait until both shards have one (the bound only guards a hang).
  for (const deadline = Date.now() + 30_000; ;) {
    const { json } = await kinesis.request<{ Checkpoints: unknown[] }>('GET', `/checkpoints/${StreamName}/app`)
    if (json.Checkpoints.length === 2) break
    if (Date.now() > deadline) throw new Error(`tail checkpointed ${json.Checkpoints.length} of 2 shards`)
    await new Promise((r) => setTimeout(r, 25))
  }
  await tail.stop()
  t.same(tail.lines.map((l) => Number(l.data)).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i))

  await put(kinesis, StreamName, 30, 20)
  await kinesis.call('SplitShard', { StreamName, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 126n).toString() })
  await put(kinesis, StreamName, 50, 20)
  tail = startTail(t, [StreamName, '--consumer', 'app', ...ep])
  const lines = await tail.waitFor(40)
  await afterCalls(relay.endpoint, 'GetRecords', 6) // two more polls of each open shard: a record printed again would show now
  await tail.stop()
  t.same(tail.lines.map((l) => Number(l.data)).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => 30 + i), 'exactly the records written since, none again')
  t.ok(lines.some((l) => l.shardId === 'shardId-000000000002' || l.shardId === 'shardId-000000000003'), 'records from the children')
  const perKey = new Map<number, number[]>()
  for (const l of tail.lines) { const n = Number(l.data); const list = perKey.get(n % 17) ?? []; list.push(n); perKey.set(n % 17, list) }
  t.ok([...perKey.values()].every((ns) => ns.every((n, i) => i === 0 || n > ns[i - 1]!)), 'per key in order: the parent before its children')
  const { json } = await kinesis.request<{ Checkpoints: { ShardId: string; SequenceNumber: string }[] }>('GET', `/checkpoints/${StreamName}/app`)
  t.match(json.Checkpoints.find((c) => c.ShardId === 'shardId-000000000000'), { SequenceNumber: 'SHARD_END' }, 'the closed parent is checkpointed at its end')

  const polled = await apiCalls(relay.endpoint, 'GetRecords')
  tail = startTail(t, [StreamName, '--consumer', 'app', ...ep])
  await afterCalls(relay.endpoint, 'GetRecords', 6, polled) // it has read each open shard twice
  const third = await tail.stop()
  t.same(tail.lines, [], 'a third run has nothing new to print')
  t.ok(third.wasRunning, 'it was still polling when stopped, not ended by an error')
  t.notMatch(third.stderr, /error|exception/i, 'and it reported no error')
})

t.test('tail polling an idle stream for a while leaves no abort listeners behind', async (t) => {
  const relay = await testRelay(t)
  const client = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => client.close())
  await client.call('CreateStream', { StreamName: 'idle', ShardCount: 2 })
  const controller = new AbortController()
  const polled = await apiCalls(relay.endpoint, 'GetRecords')
  const tailing = tail(client, { stream: 'idle', from: 'LATEST', signal: controller.signal, pollMs: 5, onRecord: () => {} })
  await afterCalls(relay.endpoint, 'GetRecords', 160, polled)
  // 160 idle polls have run, about 80 per shard (counted, not timed); each wait's listener must have gone with it.
  t.ok(getEventListeners(controller.signal, 'abort').length <= 2, `listeners now: ${getEventListeners(controller.signal, 'abort').length}`)
  controller.abort()
  await tailing
})
