/**
 * The agent as its systemd unit starts it: node with the ExecStart's flags (deploy/tributary-agent.service:
 * a small heap, one thread for V8) takes records on the put API while the relay is down, and delivers
 * every one of them once the relay is up, each exactly once.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, ROOT, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('with the unit\'s node flags the agent stores records through an outage and delivers each once', async (t) => {
  const execStart = /^ExecStart=@NODE@ (.*) @AGENT@ run --config @CONFIG@$/m.exec(readFileSync(join(ROOT, 'deploy/tributary-agent.service'), 'utf8'))
  t.ok(execStart, 'the unit starts node with flags, then the agent')
  const flags = execStart![1]!.split(' ')
  t.ok(flags.includes('--single-threaded'), `V8 runs on one thread (${flags.join(' ')})`)
  const dir = tempDir(t)
  const mqttPort = await freePort()
  const config = writeAgentConfig(dir, {
    device: 'edge-unit',
    relay: { url: `mqtt://127.0.0.1:${mqttPort}` },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    uplink: { backoffInitialMs: 100, backoffMaxMs: 500 },
    status: { port: 0 },
    streams: { readings: {} },
    sources: [{ type: 'put-api', port: 0 }],
  })
  const agent = await spawnAgent(config, [], flags)
  t.teardown(() => { agent.process.kill('SIGKILL') })
  t.same(readFileSync(`/proc/${agent.process.pid}/cmdline`, 'utf8').split('\0').slice(1, 1 + flags.length), flags, 'the agent\'s node runs with those flags')
  for (let n = 0; n < 2000; n += 500) {
    const res = await putRecords(agent.putApiPort!, 'readings', Array.from({ length: 500 }, (_, i) => ({ key: `k${(n + i) % 16}`, data: String(n + i) })))
    t.equal(res.status, 200, `records ${n}–${n + 499} stored`)
  }
  const relay: ChildRelay = await spawnRelay(['--data-dir', join(dir, 'relay'), '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0', '--allow-anonymous'])
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const status = async () => (await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { outbox: { backlog: number }; link: { recordsAcked: number } }
  const deadline = Date.now() + 60_000
  while ((await status()).outbox.backlog > 0 && Date.now() < deadline) await sleep(100)
  t.equal((await status()).outbox.backlog, 0, 'the outbox drained')
  const seen = (await readStream(relay.endpoint, 'readings')).map((r) => Number(r.data)).sort((a, b) => a - b)
  t.same(seen, Array.from({ length: 2000 }, (_, i) => i), 'every record, exactly once')
})
