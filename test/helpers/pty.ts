/** Pseudo-terminal pairs from socat (`pty,raw,echo=0`): a stand-in serial cable that can be unplugged. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface PtyPair {
  /** The device end, as an agent would see /dev/serial/by-id/... */
  device: string
  /** The sensor end: write here what the sensor sends. */
  sensor: string
  /** Stops socat (SIGTERM removes both links; SIGKILL leaves them dangling), as unplugging would. */
  unplug(signal?: NodeJS.Signals): Promise<void>
  /** Starts socat again on the same link names. */
  plug(): Promise<void>
}

export async function ptyPair(t: Test, dir: string, name = 'tty'): Promise<PtyPair> {
  const device = join(dir, `${name}-device`)
  const sensor = join(dir, `${name}-sensor`)
  let child: ChildProcess | null = null
  const plug = async () => {
    child = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${sensor}`], { stdio: 'ignore' })
    const started = Date.now()
    // Both links must exist and lead to live ptys (a SIGKILLed socat leaves old links behind).
    while (!(existsSync(device) && existsSync(sensor) && liveLink(device) && liveLink(sensor))) {
      if (Date.now() - started > 5000) throw new Error('socat did not create its ptys within 5 s')
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  const unplug = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child
    child = null
    if (!c || c.exitCode !== null) return
    const gone = new Promise((r) => c.once('exit', r))
    c.kill(signal)
    await gone
  }
  t.teardown(() => unplug('SIGKILL'))
  await plug()
  return { device, sensor, unplug, plug }
}

function liveLink(path: string): boolean {
  try { realpathSync(path); return true } catch { return false }
}
