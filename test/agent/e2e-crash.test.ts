/**
 * The agent's promise, end to end: 100,000 records written through the local put API while the relay
 * is down; the relay started; kill -9 of the relay in the middle of the drain and a restart; kill -9
 * of the agent in the middle and a restart. Every record arrives exactly once, in capture order per
 * partition key.
 */
import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { freePort, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig, type ChildAgent } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'

const TOTAL = 100_000
const KEYS = 50
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function acked(agent: ChildAgent): Promise<{ backlog: number; acked: number }> {
  const s = await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json() as { outbox: { backlog: number }; link: { recordsAcked: number } }
  return { backlog: s.outbox.backlog, acked: s.link.recordsAcked }
}

t.test('100,000 records through an outage and kill -9 of both sides arrive exactly once, in order per key', async (t) => {
  const dir = tempDir(t)
  const mqttPort = await freePort()
  const relayArgs = ['--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0', '--allow-anonymous', '--auto-create-shards', '4']
  const config = writeAgentConfig(dir, {
    device: 'edge-1',
    relay: { url: `mqtt://127.0.0.1:${mqttPort}`, maxInflight: 8 },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    // Paced so that both kills land in the middle of the drain, however fast this machine is.
    uplink: { backoffInitialMs: 100, backoffMaxMs: 1000, drainRatePerSecond: 20_000 },
    status: { port: 0 },
    streams: { readings: { priority: 1 } },
    sources: [{ type: 'put-api', port: 0 }],
  })
  let agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })

  // The relay is down: everything goes to the outbox.
  let n = 0
  while (n < TOTAL) {
    const batch = Array.from({ length: 500 }, (_, i) => ({ key: `key-${(n + i) % KEYS}`, data: String(n + i) }))
    const res = await putRecords(agent.putApiPort!, 'readings', batch)
    if (res.status !== 200) t.fail(`put API answered ${res.status}: ${await res.text()}`)
    n += 500
  }
  t.equal((await acked(agent)).backlog, TOTAL, 'all 100,000 are in the outbox while the relay is down')

  let relay: ChildRelay = await spawnRelay(relayArgs)
  t.teardown(() => { relay.process.kill('SIGKILL') })
  // kill -9 the relay in the middle of the drain, then bring it back.
  while ((await acked(agent)).acked < 15_000) await sleep(20)
  relay.process.kill('SIGKILL')
  await relay.exited
  // Nothing can be acknowledged while the relay is down. The outbox deletes acknowledged batches
  // with a later group commit (up to a second later), so its backlog may still hold them all.
  const atRelayKill = await acked(agent)
  t.ok(atRelayKill.acked >= 15_000 && atRelayKill.acked < TOTAL && atRelayKill.backlog > 0, `the relay was killed mid-drain (${atRelayKill.acked} records acknowledged, ${atRelayKill.backlog} still in the outbox)`)
  relay = await spawnRelay(relayArgs)
  // kill -9 the agent in the middle of the drain, then bring it back on the same outbox.
  while ((await acked(agent)).backlog > 50_000) await sleep(20)
  agent.process.kill('SIGKILL')
  await agent.exited
  // Read the dead agent's outbox as the restarted one will find it (read-only: the hot WAL stays).
  const outbox = new Database(join(dir, 'agent', 'outbox.db'), { readonly: true })
  const unsent = (outbox.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM chunks').get() as { n: number }).n
  const formed = (outbox.prepare('SELECT count(*) AS n FROM batches').get() as { n: number }).n
  outbox.close()
  t.ok(unsent > 0 && unsent <= 50_000, `the agent was killed with ${unsent} records unsent, ${formed} batches formed`)
  agent = await spawnAgent(config)
  const deadline = Date.now() + 120_000
  while ((await acked(agent)).backlog > 0 && Date.now() < deadline) await sleep(100)
  t.equal((await acked(agent)).backlog, 0, 'the outbox drained')

  const records = await readStream(relay.endpoint, 'readings')
  const seen = new Map<number, number>()
  for (const r of records) seen.set(Number(r.data), (seen.get(Number(r.data)) ?? 0) + 1)
  const missing: number[] = []
  const doubled: number[] = []
  for (let i = 0; i < TOTAL; i++) {
    const c = seen.get(i) ?? 0
    if (c === 0) missing.push(i)
    if (c > 1) doubled.push(i)
  }
  t.same(missing.slice(0, 10), [], `no record is missing (${records.length} read)`)
  t.same(doubled.slice(0, 10), [], 'no record arrives twice')
  // Per key, records come out of their shard in capture order.
  const last = new Map<string, number>()
  const outOfOrder: string[] = []
  records.forEach((r, i) => {
    const v = Number(r.data)
    const prev = last.get(r.key) ?? -1
    if (prev > v) outOfOrder.push(`${r.key} in ${r.shardId}: ${v} after ${prev} (neighbours ${records.slice(Math.max(0, i - 3), i + 3).map((x) => x.data).join(',')})`)
    last.set(r.key, v)
  })
  t.same(outOfOrder.slice(0, 5), [], 'capture order holds within every partition key')
  agent.process.kill('SIGTERM')
  await agent.exited
  relay.process.kill('SIGTERM')
  await relay.exited
})
