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

/** The sensor's side of a pty, opened for writing; writes after an unplug resolve false. */
export async function openSensor(path: string): Promise<{ write(data: Buffer | string): Promise<boolean>; close(): Promise<void> }> {
  const { open } = await import('node:fs/promises')
  const handle = await open(path, 'r+')
  let dead = false
  return {
    write: async (data) => {
      if (dead) return false
      try { await handle.write(typeof data === 'string' ? Buffer.from(data) : data); return true } catch { dead = true; return false }
    },
    close: () => handle.close().catch(() => {}),
  }
}

/** An NMEA sentence with its checksum. */
export function nmea(body: string): string {
  let sum = 0
  for (const c of body) sum ^= c.charCodeAt(0)
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`
}

/** A length-prefixed binary frame: 0x7e, a one-byte length, the payload, an XOR byte. */
export function binaryFrame(payload: Buffer): Buffer {
  let x = 0
  for (const b of payload) x ^= b
  return Buffer.concat([Buffer.from([0x7e, payload.length]), payload, Buffer.from([x])])
}
