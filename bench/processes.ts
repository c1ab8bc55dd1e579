/** What the benches share for the processes they start: a free port, and a child's "ready" line. */
import type { ChildProcess } from 'node:child_process'
import net from 'node:net'

/** A free TCP port on loopback (for a server that must come back on the same port, or one told its port in advance). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
}

/** The first line of the child's stdout that starts with `prefix`; rejects if the child exits first. */
export function readyLine(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith(prefix))
      if (line) resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.join(' ')} exited with ${code}`)))
  })
}
