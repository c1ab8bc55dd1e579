/**
 * What the benches share for the processes they start: a free port, a child's "ready" line, and the
 * MQTT publishers (bench/mqtt-publishers.ts) run against a broker.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

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

/**
 * Runs bench/mqtt-publishers.ts in its own process: `publishers` connections to the broker on `port`
 * for `seconds`, publishing device batches of 500 records of 100 bytes (`json`: JSON records;
 * `plain`: one record per publish). Resolves with the records acknowledged and the seconds taken.
 */
export function publish(port: number, publishers: number, seconds: number, mode: '' | 'json' | 'plain' = ''): Promise<{ records: number; seconds: number }> {
  const script = fileURLToPath(new URL('./mqtt-publishers.ts', import.meta.url))
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', script, String(port), String(publishers), String(seconds), mode], (err, stdout) => {
      if (err) reject(err)
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as { records: number; seconds: number })
    })
  })
}
