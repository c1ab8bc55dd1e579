/**
 * Power cuts for tests: `crashfs.py` (beside this file) mounted over a backing directory keeps
 * unsynced writes in memory, so ending it is a power cut. Needs root (FUSE mounts) and Debian's
 * python3-fusepy; `crashFsMissing()` says why it cannot run, for a test's skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
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

/** What a cut did with the writes not yet synced (all zero for `lose`, which says nothing). */
export interface CutReport {
  pending: number
  landed: number
  torn: number
}

export interface CrashFs {
  /** Where the file system is mounted. */
  dir: string
  /**
   * Cuts the power: the file system ends and is unmounted. `lose`: every unsynced write is lost;
   * `tear`: a seeded choice of them lands first, in any order, the last torn. Called again, it
   * resolves with the first cut's report.
   */
  cut(how: 'lose' | 'tear'): Promise<CutReport>
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
  let done: Promise<CutReport> | null = null
  return {
    dir,
    cut: (how) => done ??= (async () => {
      const before = out.length
      if (how === 'tear') child.stdin!.write('cut\n')
      else child.kill('SIGKILL')
      await exited
      spawnSync('umount', ['-l', dir])
      const m = /cut: (\d+) writes pending, (\d+) landed \((\d+) torn\)/.exec(out.slice(before))
      return m ? { pending: Number(m[1]), landed: Number(m[2]), torn: Number(m[3]) } : { pending: 0, landed: 0, torn: 0 }
    })(),
  }
}

/**
 * A disk for a power-cut test: a backing directory and a mount point in a fresh temporary
 * directory. `mount` puts crashfs over it (one at a time); the test's end cuts whatever is still
 * mounted and removes it all. `cuts` sums the reports of the cuts made through `cut`.
 */
export function crashDisk(t: Test, prefix: string): { mnt: string; mount(seed: number): Promise<CrashFs>; cut(how: 'lose' | 'tear'): Promise<void>; cuts: CutReport } {
  const base = mkdtempSync(join(tmpdir(), prefix))
  const backing = join(base, 'disk')
  const mnt = join(base, 'mnt')
  mkdirSync(backing)
  mkdirSync(mnt)
  let current: CrashFs | null = null
  const cuts: CutReport = { pending: 0, landed: 0, torn: 0 }
  t.teardown(async () => {
    await current?.cut('lose')
    rmSync(base, { recursive: true, force: true })
  })
  return {
    mnt,
    cuts,
    mount: async (seed) => (current = await mountCrashFs(backing, mnt, seed)),
    cut: async (how) => {
      if (!current) return
      const report = await current.cut(how)
      current = null
      cuts.pending += report.pending
      cuts.landed += report.landed
      cuts.torn += report.torn
    },
  }
}
