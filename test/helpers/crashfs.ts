/**
 * Power cuts for tests: `crashfs.py` (beside this file) mounted over a backing directory keeps
 * unsynced writes in memory, so ending it is a power cut. Needs root (FUSE mounts) and Debian's
 * python3-fusepy; `crashFsMissing()` says why it cannot run, for a test's skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './relay.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(ROOT, 'test/helpers/crashfs.py')

/** Null when crashfs can run here, else why not. */
export function crashFsMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount FUSE'
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse'
  if (spawnSync(PYTHON, ['-c', 'import fusepy']).status !== 0) return 'needs python3-fusepy (apt-get install python3-fusepy)'
  return null
}

export interface CrashFs {
  /** Where the file system is mounted. */
  dir: string
  /**
   * Cuts the power: the file system ends and is unmounted. `lose`: every unsynced write is lost;
   * `tear`: a seeded choice of them lands first, in any order, the last torn. Resolves with what it
   * says of the cut ('' for `lose`).
   */
  cut(how: 'lose' | 'tear'): Promise<string>
}

/** Mounts crashfs over `backing` at `dir` (both existing directories); `seed` chooses a torn cut's writes. */
export async function mountCrashFs(backing: string, dir: string, seed: number): Promise<CrashFs> {
  const child: ChildProcess = spawn(PYTHON, [SCRIPT, backing, dir, String(seed)], { stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready\n')) resolve()
      if (out.includes('not mounted')) reject(new Error(`crashfs did not mount at ${dir}: ${err}`))
    })
    void exited.then(() => reject(new Error(`crashfs exited before it was ready: ${err}`)))
  })
  let done: Promise<string> | null = null
  return {
    dir,
    cut: (how) => done ??= (async () => {
      const before = out.length
      if (how === 'tear') child.stdin!.write('cut\n')
      else child.kill('SIGKILL')
      await exited
      spawnSync('umount', ['-l', dir])
      return out.slice(before).trim()
    })(),
  }
}
