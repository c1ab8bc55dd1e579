/**
 * The relay's open files against the process's open-file limit (issue 17): the segment-file cache
 * takes its size from the limit Node.js raised at start, and a relay held to 1,024 files keeps
 * thousands of shards, each written and read back, without running out of descriptors.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand, ListShardsCommand } from '@aws-sdk/client-kinesis'
import { fileLimit, openSegmentsFor, MIN_OPEN_SEGMENTS, MAX_AUTO_OPEN_SEGMENTS } from '../../relay/filelimit.js'
import { ROOT, freePort } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const PRLIMIT = '/usr/bin/prlimit'

t.test('the limit is read from /proc/self/limits; the cache takes half of it, 256 to 65,536 (half of a tiny one)', async (t) => {
  const dir = tempDir(t)
  const limits = (soft: string, hard: string) => {
    const file = join(dir, `limits-${soft}-${hard}`)
    writeFileSync(file, [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             95322                95322                processes ',
      `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
      'Max locked memory         8388608              8388608              bytes     ',
    ].join('\n') + '\n')
    return file
  }
  t.same(fileLimit(limits('1024', '524288')), { soft: 1024, hard: 524288 })
  t.same(fileLimit(limits('unlimited', 'unlimited')), { soft: Infinity, hard: Infinity })
  t.equal(fileLimit(join(dir, 'missing')), null, 'no file: nothing known')
  t.equal(fileLimit(limits('lots', '1')), null, 'an unreadable figure: nothing known')
  const own = fileLimit()
  t.ok(own && own.soft > 0 && own.soft <= own.hard, `this process's own limit reads (${JSON.stringify(own)})`)

  t.equal(openSegmentsFor(null), MIN_OPEN_SEGMENTS, 'unknown: 256')
  t.equal(openSegmentsFor(1024), MIN_OPEN_SEGMENTS, 'a select()-era 1,024: 256, the rest for sockets')
  t.equal(openSegmentsFor(256), 128, 'a tiny limit: half of it, never all')
  t.equal(openSegmentsFor(20_000), 10_000, 'half')
  t.equal(openSegmentsFor(524_288), MAX_AUTO_OPEN_SEGMENTS, "systemd's hard limit: capped")
  t.equal(openSegmentsFor(Infinity), MAX_AUTO_OPEN_SEGMENTS)
})

/** Runs the relay under prlimit; resolves with its HTTP port, its file_limit log line and the child. */
async function relayUnder(t: Test, nofile: string, dataDir: string, extra: string[] = []) {
  const port = await freePort()
  const child = spawn(PRLIMIT, [`--nofile=${nofile}`, '--', process.execPath, '--import', 'tsx', join(ROOT, 'relay/cli/entry.ts'), 'relay',
    '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', String(port), '--shard-limit', '2000', ...extra],
  { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let log = ''
  child.stderr!.on('data', (d: Buffer) => { log += d.toString() })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('tributary relay ready')) resolve() })
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code}: ${log.slice(-2000)}`)))
  })
  const line = log.split('\n').find((l) => l.includes('"event":"file_limit"'))
  return { port, child, fileLimit: line ? JSON.parse(line) as Record<string, unknown> : null, log: () => log }
}

t.test('a relay held to 1,024 files keeps 1,500 shards open for writing and reading; one allowed more is given a larger cache', async (t) => {
  const dir = tempDir(t)
  // The hard limit is above the soft one: Node.js raises the soft limit to it at start.
  const roomy = await relayUnder(t, '1024:8192', join(dir, 'roomy'))
  t.match(roomy.fileLimit, { soft: 8192, hard: 8192, maxOpenSegments: 4096, chosen: 'auto' }, 'soft raised to the hard limit, the cache at half')
  roomy.child.kill('SIGKILL')
  const set = await relayUnder(t, '1024:8192', join(dir, 'set'), ['--max-open-segments', '100'])
  t.match(set.fileLimit, { maxOpenSegments: 100, chosen: 'set' }, 'the setting wins')
  set.child.kill('SIGKILL')

  const tight = await relayUnder(t, '1024:1024', join(dir, 'tight'))
  t.match(tight.fileLimit, { soft: 1024, hard: 1024, maxOpenSegments: 256, chosen: 'auto' })
  const client = new KinesisClient({ endpoint: `http://127.0.0.1:${tight.port}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  // Three streams of 500 shards (CreateStream's most at once), one record to every shard: an explicit hash key at the start of each shard's range.
  const shards: { StreamName: string; ShardId: string; StartingHashKey: string }[] = []
  for (const StreamName of ['wide-0', 'wide-1', 'wide-2']) {
    await client.send(new CreateStreamCommand({ StreamName, ShardCount: 500 }))
    while ((await client.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 50))
    const mine: typeof shards = []
    for (let token: string | undefined; ;) {
      const page = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName }))
      mine.push(...page.Shards!.map((s) => ({ StreamName, ShardId: s.ShardId!, StartingHashKey: s.HashKeyRange!.StartingHashKey! })))
      if (!(token = page.NextToken)) break
    }
    const out = await client.send(new PutRecordsCommand({ StreamName, Records: mine.map((s) => ({ PartitionKey: 'k', ExplicitHashKey: s.StartingHashKey, Data: Buffer.from(s.ShardId) })) }))
    t.equal(out.FailedRecordCount, 0, `${StreamName}: 500 records stored, one a shard`)
    shards.push(...mine)
  }
  t.equal(shards.length, 1500)
  const fds = readdirSync(`/proc/${tight.child.pid}/fd`).length
  t.ok(fds < 600, `the relay holds ${fds} descriptors with 1,500 shards written`)
  // Every shard reads back its own record (the cache reopens what it closed).
  let read = 0
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < shards.length) {
      const s = shards[next++]!
      const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: s.StreamName, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))
      const { Records } = await client.send(new GetRecordsCommand({ ShardIterator }))
      if (Records?.length === 1 && Buffer.from(Records[0]!.Data!).toString() === s.ShardId) read++
    }
  }))
  t.equal(read, 1500, 'every shard read back its record')
  t.notMatch(tight.log(), /EMFILE|too many open files/i, 'no descriptor ran out')
})
