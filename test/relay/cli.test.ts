/**
 * The `tributary` command as a user runs it: a child process against an in-process relay.
 * Streams, put and tail, device credentials (checked with a real MQTT client), and the relay's
 * refusal of bad flags.
 */
import t, { type Test } from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterCalls, apiCalls, testRelay } from '../helpers/relay.js'
import { cli, spawnCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'


/** A running `tributary tail --json`: parsed lines as they arrive. */
interface Tail {
  lines: Record<string, unknown>[]
  /** Resolves once at least `n` records have arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Record<string, unknown>[]>
  stop(): Promise<void>
  stderr(): string
}

function startTail(t: Test, args: string[]): Tail {
  const child = spawnCli(['tail', ...args])
  child.stdin!.end()
  const lines: Record<string, unknown>[] = []
  const waiters: (() => void)[] = []
  let buf = ''
  let stderr = ''
  let exited = false
  const exit = new Promise<void>((resolve) => child.on('close', () => { exited = true; resolve(); for (const w of waiters) w() }))
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>)
    }
    for (const w of waiters) w()
  })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const stop = async () => {
    if (!exited) child.kill('SIGKILL')
    await exit
  }
  t.teardown(stop)
  return {
    lines,
    stderr: () => stderr,
    stop,
    waitFor: (n, timeoutMs = 20_000) => new Promise((resolve, reject) => {
      const check = () => {
        if (lines.length >= n) { clearTimeout(timer); resolve(lines.slice()) }
        else if (exited) { clearTimeout(timer); reject(new Error(`tail exited after ${lines.length} of ${n} records; stderr: ${stderr}`)) }
      }
      const timer = setTimeout(() => reject(new Error(`tail printed ${lines.length} of ${n} records in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      waiters.push(check)
      check()
    }),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** One Kinesis API call over plain JSON 1.1 (setup that is not what a test is about). */
async function kinesis(endpoint: string, action: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Kinesis_20131202.${action}` }, body: JSON.stringify(body) })
  // An action without output answers with an empty body, as AWS's do.
  const text = await res.text()
  const json = (text ? JSON.parse(text) : {}) as Record<string, unknown>
  if (!res.ok) throw new Error(`${action}: ${JSON.stringify(json)}`)
  return json
}

/** Puts text records with keys spread over the key space (so over every shard). */
async function putRecords(endpoint: string, stream: string, data: string[]): Promise<void> {
  const out = await kinesis(endpoint, 'PutRecords', { StreamName: stream, Records: data.map((d, i) => ({ PartitionKey: `k-${i}-${d}`, Data: Buffer.from(d).toString('base64') })) }) as { FailedRecordCount: number }
  if (out.FailedRecordCount) throw new Error(`PutRecords failed ${out.FailedRecordCount} records`)
}

/** What `tail --json` prints as `data`: the value when the bytes are JSON, else base64. */
function jsonData(text: string): unknown {
  try { return JSON.parse(text) } catch { return Buffer.from(text).toString('base64') }
}

/** `ShardId\tSequenceNumber` lines printed by `tributary put`, in input order. */
function putResults(stdout: string): { shardId: string; sequenceNumber: string }[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [shardId, sequenceNumber] = l.split('\t')
    return { shardId: shardId!, sequenceNumber: sequenceNumber! }
  })
}

type MqttResult = { ok: true } | { ok: false; code: unknown; message: string }

/** Tries an MQTT 3.1.1 connection; closes it again when it succeeds. */
async function mqttConnect(port: number, username?: string, password?: string, clientId = username ?? 'anon-1'): Promise<MqttResult> {
  try {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 })
    const connected = client.connected
    await client.endAsync(true)
    return connected ? { ok: true } : { ok: false, code: undefined, message: 'connectAsync resolved without a connection' }
  } catch (err) {
    return { ok: false, code: (err as { code?: unknown }).code, message: (err as Error).message }
  }
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? filesUnder(p) : [p]
  })
}

t.test('streams create, list, describe and delete print what a user expects', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]

  const [created, one] = await Promise.all([
    cli(['streams', 'create', 'orders', '--shards', '2', ...ep]),
    cli(['streams', 'create', 'single', ...ep]),
  ])
  t.equal(created.code, 0, `create exits 0 (stderr: ${created.stderr})`)
  t.match(created.stdout, /created stream orders with 2 shards/, 'create names the stream and its shard count')
  t.match(one.stdout, /created stream single with 1 shard\b/, 'one shard by default, in the singular')

  const [listed, described, missing, dup, badVerb, badShards, noName] = await Promise.all([
    cli(['streams', 'list', ...ep]),
    cli(['streams', 'describe', 'orders', ...ep]),
    cli(['streams', 'describe', 'no-such-stream', ...ep]),
    cli(['streams', 'create', 'single', ...ep]),
    cli(['streams', 'frobnicate', ...ep]),
    cli(['streams', 'create', 'typo', '--shards', 'two', ...ep]),
    cli(['streams', 'create', ...ep]),
  ])
  t.equal(listed.code, 0, 'list exits 0')
  const rows = listed.stdout.trim().split('\n').map((l) => l.split('\t'))
  t.same(rows.map((r) => r[0]).sort(), ['orders', 'single'], 'list shows exactly the two streams, one per line (a bad create made none)')
  for (const r of rows) t.match(r[1], /^(ACTIVE|CREATING)$/, `list shows ${r[0]}'s status`)

  t.equal(described.code, 0, 'describe exits 0')
  const d = JSON.parse(described.stdout) as { StreamDescription: { StreamName: string; StreamARN: string; Shards: { ShardId: string }[] } }
  t.equal(d.StreamDescription.StreamName, 'orders', 'describe prints the stream description as JSON')
  t.same(d.StreamDescription.Shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001'], 'describe lists both shards')
  t.match(d.StreamDescription.StreamARN, /^arn:aws:kinesis:[^:]+:\d{12}:stream\/orders$/, 'with the stream ARN')

  const deleted = await cli(['streams', 'delete', 'orders', ...ep])
  t.equal(deleted.code, 0, 'delete exits 0')
  t.match(deleted.stdout, /deleted stream orders/, 'delete names the stream')
  // Deletion may pass through DELETING; it must be gone, or going, from the list.
  const after = await cli(['streams', 'list', ...ep])
  const remaining = after.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'))
  t.notOk(remaining.some((r) => r[0] === 'orders' && r[1] !== 'DELETING'), 'the deleted stream no longer lists as usable')
  t.ok(remaining.some((r) => r[0] === 'single'), 'the other stream is still listed')

  t.equal(missing.code, 1, 'describing an unknown stream exits 1')
  t.match(missing.stderr, /ResourceNotFoundException/, 'and says the stream was not found')
  t.equal(missing.stdout, '', 'and prints nothing on stdout')

  t.equal(dup.code, 1, 'creating an existing stream exits 1')
  t.match(dup.stderr, /ResourceInUseException/, 'naming the AWS error')

  t.equal(badVerb.code, 1, 'an unknown streams subcommand exits 1')
  t.match(badVerb.stderr, /frobnicate/, 'naming the subcommand')
  t.equal(badShards.code, 1, 'a --shards that is not a number exits 1')
  t.match(badShards.stderr, /--shards/, `naming --shards: ${badShards.stderr.trim()}`)
  t.notMatch(badShards.stdout, /created/, 'and claims to have created nothing')
  t.equal(noName.code, 1, 'create without a name exits 1')
  t.match(noName.stderr, /name the stream/, `saying a name is needed: ${noName.stderr.trim()}`)
})

t.test('put (arguments and stdin lines) then tail --json --from trim-horizon returns exactly those records with their keys', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]
  t.equal((await cli(['streams', 'create', 'events', '--shards', '2', ...ep])).code, 0, 'stream created')

  const argData = ['alpha', 'beta gamma', '{"n":1,"tag":"x"}']
  const stdinLines = ['first line', '', '{"temp":21.5}', 'third: with spaces and ünïcode']
  const [byArgs, byStdin] = await Promise.all([
    cli(['put', 'events', '--key', 'sensor-7', ...argData, ...ep]),
    cli(['put', 'events', ...ep], stdinLines.join('\n') + '\n'),
  ])
  t.equal(byArgs.code, 0, `put with arguments exits 0 (stderr: ${byArgs.stderr})`)
  const argResults = putResults(byArgs.stdout)
  t.equal(argResults.length, 3, 'put prints one shard/sequence line per record')
  t.equal(new Set(argResults.map((r) => r.shardId)).size, 1, 'records with one key land in one shard')

  t.equal(byStdin.code, 0, `put from stdin exits 0 (stderr: ${byStdin.stderr})`)
  const stdinData = stdinLines.filter((l) => l.length)
  const stdinResults = putResults(byStdin.stdout)
  t.equal(stdinResults.length, 3, 'one record per non-empty stdin line')

  const expected = [
    ...argData.map((data, i) => ({ key: 'sensor-7', data, ...argResults[i]! })),
    ...stdinData.map((data, i) => ({ key: `key-${i}`, data, ...stdinResults[i]! })),
  ]
  t.equal(new Set(expected.map((e) => e.sequenceNumber)).size, expected.length, 'sequence numbers are unique')

  const tail = startTail(t, ['events', '--json', '--from', 'trim-horizon', ...ep])
  await tail.waitFor(expected.length)
  await afterCalls(relay.endpoint, 'GetRecords', 6) // three more polls of each shard: anything extra would show up now
  await tail.stop()
  t.equal(tail.lines.length, expected.length, 'tail prints exactly the records that were put, no more')
  for (const e of expected) {
    const got = tail.lines.find((l) => l.sequenceNumber === e.sequenceNumber)
    t.ok(got, `record ${JSON.stringify(e.data)} is in the tail`)
    if (!got) continue
    t.equal(got.shardId, e.shardId, `${JSON.stringify(e.data)}: the shard put reported`)
    t.equal(got.partitionKey, e.key, `${JSON.stringify(e.data)}: its partition key`)
    t.same(got.data, jsonData(e.data), `${JSON.stringify(e.data)}: its data (JSON as a value, text as base64)`)
    t.ok(!Number.isNaN(Date.parse(String(got.arrival))), `${JSON.stringify(e.data)}: an arrival time`)
  }
  // Within a shard, a tail prints records in sequence order.
  for (const shard of new Set(tail.lines.map((l) => l.shardId))) {
    const seqs = tail.lines.filter((l) => l.shardId === shard).map((l) => BigInt(String(l.sequenceNumber)))
    t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `${String(shard)}: in increasing sequence order`)
  }
  const sensor = tail.lines.filter((l) => l.partitionKey === 'sensor-7').map((l) => l.data)
  t.same(sensor, argData.map(jsonData), 'records of one key come out in the order they were put')
})

t.test('tail --from latest shows only records put after it started', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]
  await kinesis(relay.endpoint, 'CreateStream', { StreamName: 'live', ShardCount: 2 })
  await putRecords(relay.endpoint, 'live', ['old-1', 'old-2', 'old-3'])

  const iteratorsBefore = await apiCalls(relay.endpoint, 'GetShardIterator')
  const tail = startTail(t, ['live', '--json', '--from', 'latest', ...ep])
  // The tail has its LATEST position once it holds an iterator for both shards.
  await until('the tail to get its shard iterators', async () => (await apiCalls(relay.endpoint, 'GetShardIterator')) >= iteratorsBefore + 2)
  t.same(tail.lines, [], 'nothing printed before new records arrive')

  await putRecords(relay.endpoint, 'live', ['new-1', 'new-2', 'new-3', 'new-4'])
  await tail.waitFor(4)
  await afterCalls(relay.endpoint, 'GetRecords', 6)
  await tail.stop()
  t.same(tail.lines.map((l) => Buffer.from(String(l.data), 'base64').toString()).sort(), ['new-1', 'new-2', 'new-3', 'new-4'], 'exactly the new records, none of the old ones')
})

t.test('tail --from with a bad time exits 1 naming --from', async (t) => {
  const relay = await testRelay(t)
  const run = await cli(['tail', 'whatever', '--from', 'yesterday-ish', '--endpoint', relay.endpoint])
  t.equal(run.code, 1, 'exit code 1')
  t.match(run.stderr, /--from/, 'the message names --from')
})

t.test('device credentials from the CLI govern who may connect over MQTT', async (t) => {
  const relay = await testRelay(t, { allowAnonymous: false })
  const ep = ['--endpoint', relay.endpoint]
  const dir = ['--data-dir', relay.config.dataDir]

  const anon = await mqttConnect(relay.mqttPort, undefined, undefined, 'dev-anon')
  t.notOk(anon.ok, 'an anonymous client is refused when anonymous access is off')
  if (!anon.ok) {
    t.equal(anon.code, 5, 'with CONNACK code 5')
    t.match(anon.message, /Not authorized/, `mqtt.js says "${anon.message}"`)
  }

  const added = await cli(['devices', 'add', 'dev-1', ...dir, ...ep])
  t.equal(added.code, 0, `devices add exits 0 (stderr: ${added.stderr})`)
  const secret = /secret \(shown only now\): (\S+)\s*$/.exec(added.stdout)?.[1]
  t.ok(secret, `devices add prints the secret: ${added.stdout.trim()}`)
  if (!secret) return
  t.ok(secret.length >= 24, 'the secret is long enough to be a real secret')

  t.same(await mqttConnect(relay.mqttPort, 'dev-1', secret), { ok: true }, 'the printed secret lets dev-1 connect')
  const wrong = await mqttConnect(relay.mqttPort, 'dev-1', secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A'))
  t.notOk(wrong.ok, 'a wrong secret is refused')
  if (!wrong.ok) {
    t.equal(wrong.code, 4, 'with CONNACK code 4')
    t.match(wrong.message, /Bad username or password/, `mqtt.js says "${wrong.message}"`)
  }
  const other = await mqttConnect(relay.mqttPort, 'dev-2', secret)
  t.notOk(other.ok, "dev-1's secret does not let another device id in")

  const [again, listed] = await Promise.all([
    cli(['devices', 'add', 'dev-1', ...dir, ...ep]),
    cli(['devices', 'list', ...dir, ...ep]),
  ])
  t.equal(again.code, 1, 'adding the same device twice exits 1')
  t.match(again.stderr, /already exists/, 'saying it already exists')
  t.notMatch(again.stdout, /secret/, 'and prints no secret')

  t.equal(listed.code, 0, `devices list exits 0 (stderr: ${listed.stderr})`)
  t.match(listed.stdout, /^dev-1\t/m, 'devices list shows dev-1')
  t.notMatch(listed.stdout, secret, 'devices list never shows the secret')
  const stored = filesUnder(relay.config.dataDir).filter((f) => readFileSync(f).includes(secret))
  t.same(stored, [], 'the secret is stored nowhere in the data directory (shown once only)')

  const rotated = await cli(['devices', 'rotate', 'dev-1', ...dir, ...ep])
  t.equal(rotated.code, 0, 'devices rotate exits 0')
  const fresh = /old one no longer works\): (\S+)\s*$/.exec(rotated.stdout)?.[1]
  t.ok(fresh && fresh !== secret, 'rotate prints a new, different secret')
  const old = await mqttConnect(relay.mqttPort, 'dev-1', secret)
  t.notOk(old.ok, 'the old secret stops working after rotate')
  if (!old.ok) t.equal(old.code, 4, 'refused with CONNACK code 4')
  t.same(await mqttConnect(relay.mqttPort, 'dev-1', fresh), { ok: true }, 'the new secret works')

  const removed = await cli(['devices', 'remove', 'dev-1', ...dir, ...ep])
  t.equal(removed.code, 0, 'devices remove exits 0')
  t.match(removed.stdout, /dev-1 removed/, 'remove says so')
  const gone = await mqttConnect(relay.mqttPort, 'dev-1', fresh)
  t.notOk(gone.ok, 'a removed device cannot connect with its last secret')
  if (!gone.ok) t.equal(gone.code, 4, 'refused with CONNACK code 4')
  const [listedAfter, removeAgain] = await Promise.all([
    cli(['devices', 'list', ...dir, ...ep]),
    cli(['devices', 'remove', 'dev-1', ...dir, ...ep]),
  ])
  t.equal(listedAfter.code, 0, 'devices list still works with no devices')
  t.notMatch(listedAfter.stdout, /dev-1/, 'devices list no longer shows it')
  t.equal(removeAgain.code, 1, 'removing an unknown device exits 1')
  t.match(removeAgain.stderr, /does not exist/, 'saying it does not exist')
})

t.test('device commands without the right admin token fail clearly with exit code 1', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]

  const empty = tempDir(t)
  const [wrong, addWrong, none] = await Promise.all([
    cli(['devices', 'list', '--token', 'not-the-token', ...ep]),
    cli(['devices', 'add', 'dev-9', '--token', 'not-the-token', ...ep]),
    cli(['devices', 'list', '--data-dir', empty, ...ep]),
  ])
  t.equal(wrong.code, 1, 'a wrong --token exits 1')
  t.match(wrong.stderr, /admin token/i, `the message says the admin token is wrong: ${wrong.stderr.trim()}`)
  t.equal(wrong.stdout, '', 'nothing on stdout')
  t.equal(addWrong.code, 1, 'add with a wrong token exits 1')
  const check = await cli(['devices', 'list', '--token', relay.adminToken, ...ep])
  t.equal(check.code, 0, 'the right --token works')
  t.notMatch(check.stdout, /dev-9/, 'and the refused add created nothing')

  t.equal(none.code, 1, 'no token found exits 1')
  t.match(none.stderr, /--token/, 'and the message says how to give one')
})

t.test('tributary relay refuses bad flags with exit code 1', async (t) => {
  const dataDir = tempDir(t)
  const [unknown, badPort] = await Promise.all([
    cli(['relay', '--no-such-flag', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0']),
    cli(['relay', '--mqtt-port', 'abc', '--data-dir', dataDir, '--http-port', '0']),
  ])
  t.equal(unknown.code, 1, 'an unknown flag exits 1')
  t.match(unknown.stderr, /--no-such-flag/, `naming the flag: ${unknown.stderr.trim()}`)
  t.notMatch(unknown.stdout, /ready/, 'and the relay never became ready')
  t.equal(badPort.code, 1, 'a non-numeric --mqtt-port exits 1')
  t.match(badPort.stderr, /mqttPort|--mqtt-port/, `naming the setting: ${badPort.stderr.trim()}`)
  t.notMatch(badPort.stdout, /ready/, 'and the relay never became ready')
})
