/**
 * Power cuts under the relay (issue 19). Its data directory (shard logs, journal, meta.db) is on
 * crashfs (test/helpers/crashfs.py), which keeps every write in memory until an fsync or fdatasync
 * reaches its file. Each round: the relay starts on what the last cut left, every record it ever
 * acknowledged must be read back exactly once and nothing undecodable served; then clients put
 * records, and at a seeded moment (a request in flight) the relay is killed and the power cut,
 * losing every unsynced write, or landing a seeded part of them in any order with the last torn.
 * TRIBUTARY_SOAK=1 runs 100 cuts, `npm test` a handful. The seed is printed: TRIBUTARY_CUT_SEED
 * repeats a run.
 */
import t from 'tap'
import { join } from 'node:path'
import { CreateStreamCommand, KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis'
import { ROOT, spawnUntilReady } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'
import { seeded } from '../helpers/random.js'
import { crashDisk, crashFsMissing } from '../helpers/crashfs.js'

const CUTS = process.env.TRIBUTARY_SOAK ? 100 : 3
const SEED = Number(process.env.TRIBUTARY_CUT_SEED ?? Date.now() % 1_000_000)
/**
 * One shard: commits written and fdatasynced in its segment. Sixteen: commits through the journal.
 * 128: the journal's checkpoints (every 1 MiB here) cover more than 64 segments, which is when the
 * store syncs them with one syncfs where the file system honours it (crashfs, as FUSE, does not).
 */
const STREAMS = { direct: 1, journaled: 16, wide: 128 } as const
type StreamName = keyof typeof STREAMS

const within = <T>(ms: number, p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms).unref())])

t.test(`${CUTS} power cuts under the relay lose no acknowledged record and serve none twice`, { skip: crashFsMissing() ?? false, timeout: 1_200_000 }, async (t) => {
  t.comment(`seed ${SEED} (TRIBUTARY_CUT_SEED=${SEED} repeats it)`)
  const rnd = seeded(SEED)
  const disk = crashDisk(t, 'tributary-cut-')
  const mnt = disk.mnt
  /** Records acknowledged (or found stored after a cut), by data: their sequence number. */
  const stored = Object.fromEntries(Object.keys(STREAMS).map((name) => [name, new Map<string, string>()])) as Record<StreamName, Map<string, string>>
  /** Records of requests the cut interrupted: they may be stored or not, but once found they stay. */
  let unanswered = new Set<string>()
  const lostSeen = new Set<string>()
  const figures = { acknowledged: 0, unansweredFound: 0, unansweredLost: 0, startMs: [] as number[] }

  for (let round = 0; round <= CUTS; round++) {
    await disk.mount(SEED + round)
    const started = performance.now()
    const { child, exited, ready } = await within(60_000, spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', join(mnt, 'data'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--journal-bytes', String(1 << 20)], 'tributary relay ready'), `round ${round}: the relay's start (recovery must not loop)`)
    figures.startMs.push(performance.now() - started)
    const endpoint = `http://${/ http:\/\/([^ ]+)/.exec(ready)![1]}`
    const kinesis = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 })
    try {
      if (round === 0) for (const [name, shards] of Object.entries(STREAMS)) await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }))
      // What the cut left: every acknowledged record once, interrupted ones at most once, nothing else.
      for (const name of Object.keys(STREAMS) as StreamName[]) {
        const read = await readStream(endpoint, name)
        const seen = new Set<string>()
        for (const r of read) {
          if (seen.has(r.data)) t.fail(`round ${round}, ${name}: ${r.data.split(':')[0]} served twice`)
          seen.add(r.data)
        }
        const bySeq = new Map(read.map((r) => [r.seq, r.data]))
        const lost = [...stored[name]].filter(([data, seq]) => bySeq.get(seq) !== data)
        if (lost.length) t.fail(`round ${round}, ${name}: ${lost.length} acknowledged records lost or moved (first: ${lost[0]![0].split(':')[0]})`)
        for (const [data] of lost) lostSeen.add(data)
        for (const r of read) {
          if (stored[name].get(r.data) === r.seq) continue
          if (!/^r\d+-[a-z]+-\d+-\d+:x*$/.test(r.data) || !unanswered.has(r.data) || stored[name].has(r.data)) {
            t.fail(`round ${round}, ${name}: served a record never put or already stored elsewhere: ${JSON.stringify(r.data.slice(0, 60))}`)
            continue
          }
          stored[name].set(r.data, r.seq)
          figures.unansweredFound++
        }
      }
      figures.unansweredLost += [...unanswered].filter((d) => !Object.values(stored).some((m) => m.has(d))).length
      unanswered = new Set()
      if (round === CUTS) break

      // Puts, then a cut with one in flight.
      const puts = 4 + Math.floor(rnd() * 12)
      const put = async (i: number) => {
        const name = (Object.keys(STREAMS) as StreamName[])[Math.floor(rnd() * 3)]!
        const records = Array.from({ length: 1 + Math.floor(rnd() * 60) }, (_, j) => ({ PartitionKey: `k${Math.floor(rnd() * 1000)}`, Data: Buffer.from(`r${round}-${name}-${i}-${j}:${'x'.repeat(Math.floor(rnd() * 1500))}`) }))
        for (const r of records) unanswered.add(r.Data.toString())
        const out = await kinesis.send(new PutRecordsCommand({ StreamName: name, Records: records }))
        out.Records!.forEach((r, j) => {
          const data = records[j]!.Data.toString()
          unanswered.delete(data)
          if (r.SequenceNumber) { stored[name].set(data, r.SequenceNumber); figures.acknowledged++ }
        })
      }
      for (let i = 0; i < puts; i++) await put(i)
      const inFlight = put(puts).catch(() => {})
      await new Promise((r) => setTimeout(r, rnd() * 15))
      child.kill('SIGKILL')
      await exited
      await inFlight
    } finally {
      kinesis.destroy()
      child.kill('SIGKILL')
      await exited
    }
    await disk.cut(rnd() < 0.5 ? 'tear' : 'lose')
  }
  const starts = figures.startMs.sort((a, b) => a - b)
  t.comment(`${CUTS} cuts (seed ${SEED}): ${figures.acknowledged} records acknowledged, ${lostSeen.size} lost; ${figures.unansweredFound} of interrupted requests found stored, ${figures.unansweredLost} not; torn cuts landed ${disk.cuts.landed} of ${disk.cuts.pending} unsynced writes (${disk.cuts.torn} torn); restarts ${Math.round(starts[0]!)}–${Math.round(starts[starts.length - 1]!)} ms`)
  t.ok(figures.acknowledged > 0, `${figures.acknowledged} acknowledged records, every one read back after every cut`)
})
