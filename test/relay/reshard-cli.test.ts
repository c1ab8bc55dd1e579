/**
 * `tributary streams split|merge|scale|retention|tag` as a user runs them: a child process against an
 * in-process relay, printing the shard map or tags after each change, and clear errors for bad input.
 */
import t from 'tap'
import { testRelay } from '../helpers/relay.js'
import { cli, spawnCli } from '../helpers/cli.js'



const rows = (stdout: string) => stdout.trim().split('\n').map((l) => l.split('\t'))

t.test('streams split, merge, scale, retention and tag change the stream and print the result', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]
  t.equal((await cli(['streams', 'create', 'yard', '--shards', '2', ...ep])).code, 0)

  const split = await cli(['streams', 'split', 'yard', '0', ...ep])
  t.equal(split.code, 0, split.stderr)
  const half = (1n << 127n) - 1n
  t.same(rows(split.stdout), [
    ['shardId-000000000000', 'closed', '-', `0..${half}`],
    ['shardId-000000000001', 'open', '-', `${half + 1n}..${(1n << 128n) - 1n}`],
    ['shardId-000000000002', 'open', 'from shardId-000000000000', `0..${(half + 1n) / 2n - 1n}`],
    ['shardId-000000000003', 'open', 'from shardId-000000000000', `${(half + 1n) / 2n}..${half}`],
  ], 'split at the middle of the range by default; "0" names shardId-000000000000')

  const merge = await cli(['streams', 'merge', 'yard', 'shardId-000000000002', '3', ...ep])
  t.equal(merge.code, 0, merge.stderr)
  t.same(rows(merge.stdout).pop(), ['shardId-000000000004', 'open', 'from shardId-000000000002+shardId-000000000003', `0..${half}`])

  const scale = await cli(['streams', 'scale', 'yard', '4', ...ep])
  t.equal(scale.code, 0, scale.stderr)
  t.match(scale.stdout, /^scaled stream yard from 2 to 4 open shards\n/)
  t.equal(rows(scale.stdout).filter((r) => r[1] === 'open').length, 4)

  const longer = await cli(['streams', 'retention', 'yard', '72', ...ep])
  t.equal(longer.stdout.trim(), 'stream yard keeps records for 72 hours (was 24)')
  const shorter = await cli(['streams', 'retention', 'yard', '48', ...ep])
  t.equal(shorter.stdout.trim(), 'stream yard keeps records for 48 hours (was 72)', 'up or down, the right action is chosen')
  const tooShort = await cli(['streams', 'retention', 'yard', '12', ...ep])
  t.equal(tooShort.code, 1)
  t.match(tooShort.stderr, 'error: InvalidArgumentException: Minimum allowed retention period is 24 hours. Requested retention period (12 hours) is too short.')

  const tagged = await cli(['streams', 'tag', 'yard', 'team=edge', 'site=north yard', ...ep])
  t.equal(tagged.stdout, 'site=north yard\nteam=edge\n')
  const untagged = await cli(['streams', 'tag', 'yard', '--remove', 'site', ...ep])
  t.equal(untagged.stdout, 'team=edge\n')
  t.equal((await cli(['streams', 'tag', 'yard', ...ep])).stdout, 'team=edge\n', 'no arguments: the tags are listed')
})

t.test('streams subcommands refuse bad input with a clear message and exit 1', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]
  await cli(['streams', 'create', 'strict', '--shards', '2', ...ep])
  const cases: [string[], RegExp][] = [
    [['streams', 'split', 'strict'], /name the shard: tributary streams split NAME SHARD/],
    [['streams', 'split', 'strict', '0', '--at', 'middle'], /--at: must be a hash key/],
    [['streams', 'split', 'strict', '7'], /stream strict has no shard shardId-000000000007/],
    [['streams', 'merge', 'strict', '0'], /name the shard: tributary streams merge NAME SHARD ADJACENT/],
    [['streams', 'merge', 'strict', '0', '0'], /InvalidArgumentException: Shards shardId-000000000000 and shardId-000000000000 .* are not an adjacent pair/],
    [['streams', 'scale', 'strict', 'many'], /COUNT must be a whole number of at least 1/],
    [['streams', 'scale', 'strict', '5'], /LimitExceededException/],
    [['streams', 'retention', 'strict', 'long'], /HOURS must be a whole number/],
    [['streams', 'tag', 'strict', 'novalue'], /tags are KEY=VALUE/],
    [['streams', 'tag', 'strict', '--remove'], /name the tag keys to remove/],
    [['streams', 'split'], /name the stream: tributary streams split NAME/],
    [['streams', 'scale', 'missing', '2'], /ResourceNotFoundException: Stream missing under account 000000000000 not found/],
  ]
  for (const [args, message] of cases) {
    const run = await cli([...args, ...ep])
    t.equal(run.code, 1, `${args.join(' ')} exits 1`)
    t.match(run.stderr, message, args.join(' '))
  }
})

t.test('a running tail follows a shard split under it into the children, per key in order', async (t) => {
  const relay = await testRelay(t)
  const ep = ['--endpoint', relay.endpoint]
  await cli(['streams', 'create', 'live', '--shards', '1', ...ep])
  const child = spawnCli(['tail', 'live', '--json', ...ep])
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: { shardId: string; partitionKey: string; data: number }[] = []
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1) }
  })
  const waitFor = async (n: number) => {
    for (let i = 0; i < 400 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 50))
    return lines.length
  }
  const put = (from: number) => cli(['put', 'live', '--key', `k${from % 3}`, ...Array.from({ length: 10 }, (_, i) => String(from + i)), ...ep])
  await put(0)
  t.equal(await waitFor(10), 10)
  t.equal((await cli(['streams', 'split', 'live', '0', ...ep])).code, 0)
  await put(10)
  await put(20)
  t.equal(await waitFor(30), 30, 'records written after the split are printed too')
  t.ok(lines.slice(10).every((l) => l.shardId !== 'shardId-000000000000'), 'from the children')
  t.same(lines.map((l) => l.data).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i), 'each once')
  for (const key of ['k0', 'k1', 'k2']) {
    const ns = lines.filter((l) => l.partitionKey === key).map((l) => l.data)
    t.ok(ns.every((n, i) => i === 0 || n > ns[i - 1]!), `${key} in order`)
  }
})
