/**
 * Power cuts under the agent (issue 19). Its outbox (SQLite in WAL mode) is on crashfs
 * (test/helpers/crashfs.py), which keeps every write in memory until an fsync or fdatasync reaches
 * its file. Each round: the agent starts on what the last cut left, records are put through its put
 * API while its uplink sends batches to a relay (on an ordinary disk), and at a seeded moment, puts
 * going on, the power is cut (every unsynced write lost, or a seeded part of them landed in any
 * order with the last torn) and the agent killed. After each cut, every record the agent said it
 * stored must be in the outbox (each producer's in the order it put them) or at the relay, at the relay at most once, and
 * nothing it never took anywhere. At the end the agent drains: the relay then holds each stored
 * record exactly once (a batch acknowledged whose deletion the cut lost is resent and deduplicated).
 * TRIBUTARY_SOAK=1 runs 100 cuts, `npm test` a handful; TRIBUTARY_CUT_SEED repeats a run.
 */
import t from 'tap'
import { join } from 'node:path'
import { Outbox } from '../../agent/outbox/outbox.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { testRelay } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'
import { seeded } from '../helpers/random.js'
import { crashDisk, crashFsMissing } from '../helpers/crashfs.js'
import { tempDir } from '../helpers/tmp.js'

const CUTS = process.env.TRIBUTARY_SOAK ? 100 : 3
const SEED = Number(process.env.TRIBUTARY_CUT_SEED ?? Date.now() % 1_000_000)
/** Who puts records: one put at a time first, then two at once while the power is cut. */
const PRODUCERS = ['s', 'p0', 'p1'] as const
/** The producer a record's data names (`r{round}-{producer}-{put}-{record}:…`). */
const producerOf = (data: string) => data.split('-')[1]

/** Every record in the outbox at `path`, in capture order (its formed batches first, then the rest as new batches). */
function outboxRecords(path: string): string[] {
  const box = new Outbox({ path, maxBytes: 64 << 20, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {} })
  try {
    const out: string[] = []
    for (const batch of box.formedBatches()) out.push(...box.rows(batch).map((r) => r.data.toString()))
    for (let batch = box.formBatch(500, 1 << 20); batch; batch = box.formBatch(500, 1 << 20)) out.push(...box.rows(batch).map((r) => r.data.toString()))
    return out
  } finally {
    box.close()
  }
}

t.test(`${CUTS} power cuts under the agent lose no record it said it stored`, { skip: crashFsMissing() ?? false, timeout: 1_200_000 }, async (t) => {
  t.comment(`seed ${SEED} (TRIBUTARY_CUT_SEED=${SEED} repeats it)`)
  const rnd = seeded(SEED)
  const disk = crashDisk(t, 'tributary-agent-cut-')
  const mnt = disk.mnt
  // A relay (on an ordinary disk) takes the batches as the uplink sends them: a record the agent
  // stored is either still in the outbox or at the relay, once, whatever the cuts.
  const relay = await testRelay(t, { allowAnonymous: true })
  const config = writeAgentConfig(tempDir(t), {
    device: 'cut-1',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    // Commits back to back: a cut is likelier to land among a commit's writes.
    outbox: { path: join(mnt, 'outbox.db'), commitIntervalMs: 5 },
    status: { port: 0 },
    sources: [{ type: 'put-api', port: 0 }],
  })
  /** What the agent said it stored, in the order it said so. */
  const stored: string[] = []
  let unanswered: string[] = []
  const figures = { stored: 0, unansweredFound: 0 }

  for (let round = 0; round <= CUTS; round++) {
    await disk.mount(SEED + round)
    if (round > 0) {
      const inOutbox = outboxRecords(join(mnt, 'outbox.db'))
      const atRelay = (await readStream(relay.endpoint, 'cuts')).map((r) => r.data)
      const waiting = new Set(unanswered)
      const known = new Set(stored)
      if (inOutbox.length !== new Set(inOutbox).size) t.fail(`round ${round}: a record is in the outbox twice`)
      if (atRelay.length !== new Set(atRelay).size) t.fail(`round ${round}: a record is stored twice at the relay`)
      const have = new Set([...inOutbox, ...atRelay])
      const missing = stored.filter((d) => !have.has(d))
      if (missing.length) t.fail(`round ${round}: ${missing.length} of the ${stored.length} records stored are neither in the outbox nor at the relay (${missing.slice(0, 3).map((d) => d.split(':')[0]).join(', ')}…)`)
      // The outbox keeps capture order: each producer's records in the order it put them. Two
      // producers' puts interleave as the agent took them, which the order their answers arrived in
      // need not be; and an interrupted put found stored joins stored only now, after the
      // answered puts of the other producer.
      const keptSet = new Set(inOutbox.filter((d) => known.has(d)))
      for (const producer of PRODUCERS) {
        const kept = inOutbox.filter((d) => keptSet.has(d) && producerOf(d) === producer)
        const order = stored.filter((d) => keptSet.has(d) && producerOf(d) === producer)
        if (kept.some((d, i) => d !== order[i])) t.fail(`round ${round}: the outbox holds producer ${producer}'s records out of their order`)
      }
      const extra = [...have].filter((d) => !known.has(d) && !waiting.has(d))
      if (extra.length) t.fail(`round ${round}: records never put (or damaged): ${extra.slice(0, 3).map((d) => d.slice(0, 40)).join(', ')}`)
      // Interrupted puts found whole count as stored from now on.
      for (const d of have) if (waiting.has(d)) { stored.push(d); figures.unansweredFound++ }
      unanswered = []
    }
    const agent = await spawnAgent(config)
    if (round === CUTS) {
      // The last start drains the outbox: then the relay holds every stored record exactly once.
      const deadline = Date.now() + 120_000
      for (;;) {
        const s = await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json() as { outbox: { backlog: number } }
        if (s.outbox.backlog === 0 || Date.now() > deadline) break
        await new Promise((r) => setTimeout(r, 100))
      }
      agent.process.kill('SIGTERM')
      await agent.exited
      await disk.cut('lose')
      const atRelay = (await readStream(relay.endpoint, 'cuts')).map((r) => r.data)
      t.equal(atRelay.length, stored.length, `after the drain the relay holds ${atRelay.length} records, as many as were stored`)
      t.same(new Set(atRelay), new Set(stored), 'each stored record exactly once', { diagnostic: false })
      break
    }
    try {
      const put = async (producer: string, i: number) => {
        // Records up to 2 KB: a commit's writes take long enough for a cut to land among them.
        const batch = Array.from({ length: 1 + Math.floor(rnd() * 100) }, (_, j) => ({ key: `k${j % 7}`, data: `r${round}-${producer}-${i}-${j}:${'x'.repeat(Math.floor(rnd() * 2000))}` }))
        unanswered.push(...batch.map((r) => r.data))
        const res = await putRecords(agent.putApiPort!, 'cuts', batch)
        if (res.status !== 200) throw new Error(`put answered ${res.status}: ${await res.text()}`)
        const body = await res.json() as { Records: { RecordId?: number }[] }
        const answered = new Set<string>()
        batch.forEach((r, j) => {
          if (body.Records[j]?.RecordId === undefined) return
          answered.add(r.data)
          stored.push(r.data)
          figures.stored++
        })
        unanswered = unanswered.filter((d) => !answered.has(d))
      }
      const puts = 1 + Math.floor(rnd() * 6)
      for (let i = 0; i < puts; i++) await put(PRODUCERS[0], i)
      // Two producers go on putting while the power is cut under the running agent (which is killed
      // right after: nothing it does without its disk is durable).
      let next = puts
      let cut = false
      // A put the cut interrupts fails (its commit cannot sync): its records stay unanswered.
      const producers = PRODUCERS.slice(1).map(async (producer) => { while (!cut) await put(producer, next++) }).map((p) => p.catch(() => {}))
      await new Promise((r) => setTimeout(r, rnd() * 100))
      await disk.cut(rnd() < 0.5 ? 'tear' : 'lose')
      cut = true
      agent.process.kill('SIGKILL')
      await agent.exited
      await Promise.all(producers)
    } finally {
      agent.process.kill('SIGKILL')
      await agent.exited
      await disk.cut('lose')
    }
  }
  t.comment(`${CUTS} cuts (seed ${SEED}): ${figures.stored} records stored, none lost (each in the outbox or at the relay, once); ${figures.unansweredFound} of interrupted puts found stored; torn cuts landed ${disk.cuts.landed} of ${disk.cuts.pending} unsynced writes (${disk.cuts.torn} torn)`)
  t.ok(figures.stored > 0, `${figures.stored} stored records, every one in the outbox or at the relay after every cut`)
})
