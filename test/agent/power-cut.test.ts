/**
 * Power cuts under the agent (issue 19). Its outbox (SQLite in WAL mode) is on crashfs
 * (test/helpers/crashfs.py), which keeps every write in memory until an fsync or fdatasync reaches
 * its file. Each round: the agent starts on what the last cut left (the relay is unreachable, so
 * everything stays in the outbox), records are put through its put API, and at a seeded moment (a put
 * in flight) the agent is killed and the power cut, losing every unsynced write or landing a seeded
 * part of them in any order with the last torn. After each cut, the outbox opened on what survived
 * must hold every record the agent said it stored, once, in order, and nothing it never took.
 * TRIBUTARY_SOAK=1 runs 100 cuts, `npm test` a handful; TRIBUTARY_CUT_SEED repeats a run.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Outbox } from '../../agent/outbox/outbox.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { freePort } from '../helpers/relay.js'
import { crashFsMissing, mountCrashFs, type CrashFs } from '../helpers/crashfs.js'

const CUTS = process.env.TRIBUTARY_SOAK ? 100 : 5
const SEED = Number(process.env.TRIBUTARY_CUT_SEED ?? Date.now() % 1_000_000)

/** mulberry32: the same choices for the same seed. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

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
  const rnd = random(SEED)
  const base = mkdtempSync(join(tmpdir(), 'tributary-agent-cut-'))
  let fs: CrashFs | null = null
  t.teardown(async () => {
    await fs?.cut('lose')
    rmSync(base, { recursive: true, force: true })
  })
  const backing = join(base, 'disk')
  const mnt = join(base, 'mnt')
  mkdirSync(backing)
  mkdirSync(mnt)
  // Nobody listens there: the uplink keeps retrying and the records stay in the outbox.
  const config = writeAgentConfig(base, {
    device: 'cut-1',
    relay: { url: `mqtt://127.0.0.1:${await freePort()}` },
    // Commits back to back: a cut is likelier to land among a commit's writes.
    outbox: { path: join(mnt, 'outbox.db'), commitIntervalMs: 5 },
    status: { port: 0 },
    sources: [{ type: 'put-api', port: 0 }],
  })
  /** What the agent said it stored, in the order it said so. */
  const stored: string[] = []
  let unanswered: string[] = []
  const figures = { stored: 0, unansweredFound: 0, landed: 0, pending: 0, torn: 0 }

  for (let round = 0; round <= CUTS; round++) {
    fs = await mountCrashFs(backing, mnt, SEED + round)
    if (round > 0) {
      const found = outboxRecords(join(mnt, 'outbox.db'))
      const waiting = new Set(unanswered)
      const known = new Set(stored)
      if (found.length !== new Set(found).size) t.fail(`round ${round}: a record is in the outbox twice`)
      const acknowledged = found.filter((d) => !waiting.has(d))
      const have = new Set(found)
      const missing = stored.filter((d) => !have.has(d))
      if (missing.length) t.fail(`round ${round}: ${missing.length} of the ${stored.length} records stored are not in the outbox (${missing.slice(0, 3).map((d) => d.split(':')[0]).join(', ')}…)`)
      else if (acknowledged.some((d, i) => d !== stored[i])) {
        const i = acknowledged.findIndex((d, k) => d !== stored[k])
        t.fail(`round ${round}: the stored records are out of order from ${i}: ${acknowledged[i]?.split(':')[0]} where ${stored[i]?.split(':')[0]} was stored`)
      }
      const extra = found.filter((d) => !known.has(d) && !waiting.has(d))
      if (extra.length) t.fail(`round ${round}: records never put (or damaged): ${extra.slice(0, 3).map((d) => d.slice(0, 40)).join(', ')}`)
      // Interrupted puts found whole in the outbox count as stored from now on.
      for (const d of found) if (waiting.has(d)) { stored.push(d); figures.unansweredFound++ }
      unanswered = []
    }
    if (round === CUTS) break
    const agent = await spawnAgent(config)
    let said: string | undefined
    try {
      const put = async (i: number) => {
        // Records up to 2 KB: a commit's writes take long enough for a cut to land among them.
        const batch = Array.from({ length: 1 + Math.floor(rnd() * 100) }, (_, j) => ({ key: `k${j % 7}`, data: `r${round}-${i}-${j}:${'x'.repeat(Math.floor(rnd() * 2000))}` }))
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
      for (let i = 0; i < puts; i++) await put(i)
      // Two producers go on putting while the power is cut under the running agent (which is killed
      // right after: nothing it does without its disk is durable).
      let next = puts
      let cut = false
      // A put the cut interrupts fails (its commit cannot sync): its records stay unanswered.
      const producers = [0, 1].map(async () => { while (!cut) await put(next++) }).map((p) => p.catch(() => {}))
      await new Promise((r) => setTimeout(r, rnd() * 100))
      said = await fs.cut(rnd() < 0.5 ? 'tear' : 'lose')
      cut = true
      agent.process.kill('SIGKILL')
      await agent.exited
      await Promise.all(producers)
    } finally {
      agent.process.kill('SIGKILL')
      await agent.exited
      said ??= await fs.cut('lose')
    }
    fs = null
    const m = /cut: (\d+) writes pending, (\d+) landed \((\d)/.exec(said ?? '')
    if (m) { figures.pending += Number(m[1]); figures.landed += Number(m[2]); figures.torn += Number(m[3]) }
  }
  t.comment(`${CUTS} cuts (seed ${SEED}): ${figures.stored} records stored, none lost; ${figures.unansweredFound} of interrupted puts found stored; torn cuts landed ${figures.landed} of ${figures.pending} unsynced writes (${figures.torn} torn)`)
  t.ok(figures.stored > 0, `${figures.stored} stored records, every one in the outbox after every cut`)
})
