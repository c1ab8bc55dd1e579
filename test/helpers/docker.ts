/**
 * A Docker daemon of the test's own: Debian's dockerd started in the background with its data root,
 * exec root and socket in a temporary directory, stopped by its PID when the test ends (FIELD-NOTES,
 * "Containers"). Commands go through Debian's /usr/bin/docker, the client with BuildKit.
 */
import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'

export const DOCKERD = '/usr/sbin/dockerd'
export const DOCKER = '/usr/bin/docker'

export interface Docker {
  /** DOCKER_HOST for this daemon. */
  host: string
  /** Runs `docker ARGS`; resolves with its stdout, rejects with its stderr on a non-zero exit. */
  run(args: string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<string>
}

/** Why Docker cannot run here, or null when it can. */
export function dockerMissing(): string | null {
  if (!existsSync(DOCKERD) || !existsSync(DOCKER)) return `Debian's docker.io is not installed (${DOCKERD}, ${DOCKER}); .ci/run installs it`
  if (process.getuid?.() !== 0) return 'dockerd needs root'
  return null
}

/** Starts a daemon for this test; rejects with the daemon's last log lines when it does not come up. */
export async function startDocker(t: Test): Promise<Docker> {
  // Short paths: the socket's must fit in 108 bytes.
  const dir = mkdtempSync('/tmp/tdk-')
  const sock = join(dir, 'd.sock')
  const logPath = join(dir, 'dockerd.log')
  const daemon = spawn(DOCKERD, ['--data-root', join(dir, 'root'), '--exec-root', join(dir, 'x'), '--pidfile', join(dir, 'pid'), '-H', `unix://${sock}`, '--log-level', 'warn'], {
    stdio: ['ignore', openSync(logPath, 'a'), openSync(logPath, 'a')],
  })
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()))
  // A test process ended by a timeout runs no teardown: the daemon must not outlive it.
  const orphan = () => daemon.kill('SIGTERM')
  process.once('exit', orphan)
  t.teardown(async () => {
    process.off('exit', orphan)
    daemon.kill('SIGTERM')
    await Promise.race([exited, sleep(15_000)])
    if (daemon.exitCode === null) daemon.kill('SIGKILL')
    // A container's network namespace stays mounted under the exec root after the daemon has gone.
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const mountPoint = line.split(' ')[1]
      if (mountPoint?.startsWith(dir)) spawnSync('umount', ['-l', mountPoint])
    }
    rmSync(dir, { recursive: true, force: true })
  })
  const host = `unix://${sock}`
  const run: Docker['run'] = (args, options = {}) => new Promise((resolve, reject) => {
    execFile(DOCKER, args, { env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '1', ...options.env }, timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${(stderr || err.message).trim().split('\n').slice(-15).join('\n')}`))
      else resolve(stdout)
    })
  })
  for (let i = 0; i < 150; i++) {
    if (daemon.exitCode !== null) break
    try {
      await run(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 })
      return { host, run }
    } catch {
      await sleep(200)
    }
  }
  throw new Error(`dockerd did not start: ${readFileSync(logPath, 'utf8').trim().split('\n').slice(-10).join('\n')}`)
}
