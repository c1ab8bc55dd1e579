/**
 * The `tributary` command as a user runs it, for tests: a child process (through tsx) with an
 * environment that points it nowhere and signs nothing unless the test says so.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './relay.js'

const ENTRY = join(ROOT, 'relay/cli/entry.ts')

/** The environment without anything that would point the CLI elsewhere or sign its requests. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('TRIBUTARY_')) env[k] = v
  return env
}

export interface CliRun { code: number | null; stdout: string; stderr: string }

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
}

/** Runs the CLI to completion, feeding `input` on stdin (stdin is always closed). */
export function cli(args: string[], input = '', timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`tributary ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`)) }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    child.stdin!.on('error', () => {})
    child.stdin!.end(input)
  })
}
