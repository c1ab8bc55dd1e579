/** Agents for tests: a config file in a temp dir, run in a child process (to kill -9) or in-process. */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { ROOT, spawnUntilReady } from './relay.js'

export interface ChildAgent {
  process: ChildProcess
  statusPort: number
  putApiPort: number | null
  exited: Promise<number | null>
}

export function writeAgentConfig(dir: string, config: Record<string, unknown>): string {
  const path = join(dir, `agent-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(path, stringify(config))
  return path
}

export async function spawnAgent(configPath: string, via: string[] = [], nodeArgs: string[] = []): Promise<ChildAgent> {
  const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'agent/entry.ts'), 'agent', 'run', '--config', configPath], 'tributary agent ready', {}, via, nodeArgs)
  const statusPort = Number(/status=http:\/\/[^:]+:(\d+)/.exec(ready)![1])
  const put = /put-api=http:\/\/[^:]+:(\d+)/.exec(ready)
  return { process: child, statusPort, putApiPort: put ? Number(put[1]) : null, exited }
}

/** Sends PutRecords to an agent's local put API. */
export async function putRecords(port: number, stream: string, records: { key: string; data: string }[]): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecords' },
    body: JSON.stringify({ StreamName: stream, Records: records.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data).toString('base64') })) }),
  })
}
