/**
 * "Stored means on disk", checked at the system-call boundary in the agent: the outbox's syncs happen
 * inside SQLite (C), out of reach of a JavaScript wrapper, so the agent runs under strace and the test
 * reads its system calls in order. Every 200 the local put API answers must come after the request
 * was read, the outbox's WAL written, and every byte written to the outbox's files synced. kill -9
 * cannot see a missing sync (the data is still in the page cache); this test can. With
 * `outbox.synchronous: NORMAL` (a user's choice that trades the last commits for fewer syncs) the same
 * reading finds answers given before the sync, which shows the check can fail.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'

const REQUESTS = 20

interface Answer { request: number; unsynced: string[]; walWritten: boolean }

/**
 * Reads an strace log (-f -yy) and, for each 200 written to a put API connection, what was true at
 * that moment: the outbox files with written-but-unsynced bytes, and whether the WAL was written
 * since the request was read.
 */
function answersIn(trace: string, dir: string, putPort: number): Answer[] {
  const unsynced = new Set<string>()
  const pendingSync = new Map<string, string>() // pid → file whose sync has not returned yet
  const answers: Answer[] = []
  let walWritten = false
  const isPutSocket = (fd: string) => fd.includes(`TCP:[127.0.0.1:${putPort}->`)
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\(\d+<((?:->|[^>])*)>)(.*)$/.exec(line)
    if (!m) continue
    const [, pid, resumed, call, fd, rest] = m as unknown as [string, string, string | undefined, string | undefined, string | undefined, string]
    if (resumed) {
      // A sync counts when it returns: only then is what was written before it on disk.
      const file = pendingSync.get(pid)
      if ((resumed === 'fdatasync' || resumed === 'fsync') && file && /= 0$/.test(rest)) unsynced.delete(file)
      pendingSync.delete(pid)
      continue
    }
    if (!call || fd === undefined) continue
    const outboxFile = fd.startsWith(dir) ? fd : null
    if (outboxFile && /^p?writev?64$|^pwritev?$|^write$/.test(call)) {
      unsynced.add(outboxFile)
      if (outboxFile.endsWith('-wal')) walWritten = true
    } else if (outboxFile && (call === 'fdatasync' || call === 'fsync')) {
      if (rest.includes('<unfinished ...>')) pendingSync.set(pid, outboxFile)
      else if (/= 0$/.test(rest)) unsynced.delete(outboxFile)
    } else if (isPutSocket(fd) && (call === 'read' || call === 'recvfrom') && /"POST /.test(rest)) {
      walWritten = false
    } else if (isPutSocket(fd) && (call === 'write' || call === 'writev' || call === 'sendto') && /"HTTP\/1\.1 200/.test(rest)) {
      answers.push({ request: answers.length + 1, unsynced: [...unsynced].map((f) => f.slice(dir.length + 1)), walWritten })
    }
  }
  return answers
}

async function putUnderStrace(t: Test, synchronous?: 'NORMAL'): Promise<Answer[]> {
  const dir = tempDir(t)
  const traceFile = join(dir, 'agent.strace')
  const outboxDir = join(dir, 'outbox')
  const config = writeAgentConfig(dir, {
    device: 'edge-sync',
    relay: { url: `mqtt://127.0.0.1:${await freePort()}` }, // nobody there: every record stays in the outbox
    outbox: { path: join(outboxDir, 'outbox.db'), ...(synchronous ? { synchronous } : {}) },
    status: { port: 0 },
    streams: { readings: {} },
    sources: [{ type: 'put-api', port: 0 }],
  })
  const agent = await spawnAgent(config, [
    'strace', '-f', '-qq', '-yy', '--seccomp-bpf', '-s', '24', '-o', traceFile,
    '-e', 'trace=read,recvfrom,write,writev,sendto,pwrite64,pwritev,fdatasync,fsync',
  ])
  // The child is strace; the agent is its child, and strace ends when it does.
  t.teardown(() => { agent.process.kill('SIGKILL') })
  for (let i = 0; i < REQUESTS; i++) {
    const res = await putRecords(agent.putApiPort!, 'readings', Array.from({ length: 10 }, (_, k) => ({ key: `k${k}`, data: `r${i}-${k}` })))
    t.equal(res.status, 200, `request ${i + 1} stored`)
  }
  const status = (await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { outbox: { backlog: number } }
  t.equal(status.outbox.backlog, REQUESTS * 10, 'every record is in the outbox')
  const agentPid = Number(readFileSync(`/proc/${agent.process.pid}/task/${agent.process.pid}/children`, 'utf8').trim().split(/\s+/)[0])
  process.kill(agentPid, 'SIGTERM')
  t.equal(await agent.exited, 0, 'the agent stopped cleanly under strace')
  return answersIn(readFileSync(traceFile, 'utf8'), outboxDir, agent.putApiPort!)
}

t.test('every record the put API calls stored was written to the WAL and synced before the answer', async (t) => {
  const answers = await putUnderStrace(t)
  t.equal(answers.length, REQUESTS, 'every 200 is seen in the trace')
  t.same(answers.filter((a) => !a.walWritten).map((a) => a.request), [], 'each answer follows a write of its records to the WAL')
  t.same(answers.filter((a) => a.unsynced.length).map((a) => `${a.request}: ${a.unsynced.join(', ')}`), [], 'and nothing written to the outbox is unsynced when it goes')
})

t.test('with synchronous: NORMAL the same reading finds answers sent before the sync (the check can fail)', async (t) => {
  const answers = await putUnderStrace(t, 'NORMAL')
  t.equal(answers.length, REQUESTS, 'every 200 is seen in the trace')
  t.ok(answers.every((a) => a.walWritten), 'each answer still follows a write to the WAL')
  const early = answers.filter((a) => a.unsynced.some((f) => f.endsWith('-wal')))
  t.ok(early.length >= REQUESTS / 2, `${early.length} of ${REQUESTS} answers went with the WAL unsynced`)
})
