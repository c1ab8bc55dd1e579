/** `tributary consumers …` as a user runs it: a child process against an in-process relay. */
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, testRelay } from '../helpers/relay.js'

const ENTRY = join(ROOT, 'relay/cli/entry.ts')

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('TRIBUTARY_')) env[k] = v
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('register (waiting for ACTIVE), list, describe and deregister consumers', async (t) => {
  const relay = await testRelay(t)
  const e = ['--endpoint', relay.endpoint]
  t.equal((await cli(['streams', 'create', 'cli-c', ...e])).code, 0)
  const reg = await cli(['consumers', 'register', 'cli-c', 'reader', '--wait', ...e])
  t.equal(reg.code, 0, reg.stderr)
  t.match(reg.stdout, /^reader\tACTIVE\t\d{4}-\d\d-\d\dT[\d:.]+Z\tarn:aws:kinesis:us-east-1:\d{12}:stream\/cli-c\/consumer\/reader:\d+\n$/)
  t.equal((await cli(['consumers', 'register', 'cli-c', 'second', ...e])).code, 0)
  const list = await cli(['consumers', 'list', 'cli-c', ...e])
  t.same(list.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['reader', 'second'])
  const described = JSON.parse((await cli(['consumers', 'describe', 'cli-c', 'reader', ...e])).stdout)
  t.match(described, { ConsumerDescription: { ConsumerName: 'reader', ConsumerStatus: 'ACTIVE', StreamARN: /stream\/cli-c$/ } })
  const gone = await cli(['consumers', 'deregister', 'cli-c', 'reader', ...e])
  t.equal(gone.stdout, 'deregistered consumer reader of stream cli-c\n')
  const missing = await cli(['consumers', 'describe', 'cli-c', 'nobody', ...e])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^error: ResourceNotFoundException: Consumer nobody/)
  const noName = await cli(['consumers', 'register', 'cli-c', ...e])
  t.equal(noName.code, 1)
  t.match(noName.stderr, /name the consumer: tributary consumers register STREAM NAME/)
  const badVerb = await cli(['consumers', 'frobnicate', ...e])
  t.match(badVerb.stderr, /unknown subcommand "frobnicate"; use register, list, describe, deregister/)
})
