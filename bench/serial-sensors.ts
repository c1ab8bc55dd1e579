/**
 * Three serial sensors for the agent's benches (footprint.ts, wear.ts): socat pseudo-terminal pairs,
 * the agent reading one end, this process writing 10 readings/s to the other — NMEA sentences (GPS),
 * JSON lines (environment) and length-prefixed binary frames (vibration).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

export const SENSOR_HZ = 10

export interface SerialSensors {
  /** The agent's `sources` entries for the three sensors, all into `stream`. */
  sources(stream: string): Record<string, unknown>[]
  /** Starts writing a reading to each sensor every 100 ms. */
  start(): Promise<void>
  /** Stops writing and closes the ports' sensor ends. */
  stop(): Promise<void>
  /** Readings written to each sensor so far. */
  readonly sent: number
}

function nmea(body: string): string {
  let sum = 0
  for (const c of body) sum ^= c.charCodeAt(0)
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`
}

/** The pseudo-terminals in `dir`; the socat processes are pushed to `children` for the caller to kill. */
export async function serialSensors(dir: string, children: ChildProcess[]): Promise<SerialSensors> {
  const ptys = ['gps', 'env', 'vib'].map((name) => ({ name, device: join(dir, `${name}-device`), sensor: join(dir, `${name}-sensor`) }))
  for (const p of ptys) children.push(spawn('socat', [`pty,raw,echo=0,link=${p.device}`, `pty,raw,echo=0,link=${p.sensor}`], { stdio: 'ignore' }))
  while (!ptys.every((p) => existsSync(p.device) && existsSync(p.sensor))) await new Promise((r) => setTimeout(r, 10))
  let handles: FileHandle[] = []
  let timer: NodeJS.Timeout | null = null
  let n = 0
  return {
    sources: (stream) => [
      { type: 'serial', name: 'gps', stream, path: ptys[0]!.device, baudRate: 9600, parser: 'nmea' },
      { type: 'serial', name: 'env', stream, path: ptys[1]!.device, baudRate: 115200, parser: 'json', partitionKeyField: 'id' },
      { type: 'serial', name: 'vib', stream, path: ptys[2]!.device, baudRate: 115200, parser: { type: 'length-prefixed', sync: '0x7e', lengthBytes: 1, lengthAdjust: 1 } },
    ],
    async start() {
      handles = await Promise.all(ptys.map((p) => open(p.sensor, 'r+')))
      timer = setInterval(() => {
        n++
        void handles[0]!.write(nmea(`GPGGA,${n},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`))
        void handles[1]!.write(JSON.stringify({ id: 'env-1', n, celsius: 21.5, humidity: 40 }) + '\n')
        const payload = Buffer.alloc(12)
        payload.writeUInt32BE(n)
        payload.writeFloatBE(0.02, 4)
        payload.writeFloatBE(0.5, 8)
        let x = 0
        for (const b of payload) x ^= b
        void handles[2]!.write(Buffer.concat([Buffer.from([0x7e, payload.length]), payload, Buffer.from([x])]))
      }, 1000 / SENSOR_HZ)
    },
    async stop() {
      if (timer) clearInterval(timer)
      for (const h of handles) await h.close()
      handles = []
    },
    get sent() { return n },
  }
}
