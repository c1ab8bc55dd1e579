/** Simulated sensors: plausible temperature, humidity and vibration readings at a configured rate. */
import type { SimulatedSource } from '../config.js'
import { every, type Clock } from '../../hardware/index.js'
import type { OutboxInput } from '../outbox/index.js'

export interface Source {
  stop(): void
}

function reading(kind: SimulatedSource['sensors'][number]['kind'], t: number, seed: number): Record<string, number> {
  switch (kind) {
    case 'temperature': return { celsius: +(21 + 3 * Math.sin(t / 600_000 + seed) + (Math.random() - 0.5) * 0.2).toFixed(2) }
    case 'humidity': return { percent: +(45 + 8 * Math.sin(t / 900_000 + seed) + (Math.random() - 0.5)).toFixed(1) }
    case 'vibration': return { rms_g: +(0.02 + Math.abs(Math.sin(t / 5_000 + seed)) * 0.01 + Math.random() * 0.002).toFixed(4) }
  }
}

export function startSimulated(config: SimulatedSource, clock: Clock, store: (rows: OutboxInput[]) => Promise<unknown>, onError: (err: Error) => void): Source {
  let n = 0
  const stop = every(clock, Math.max(1, 1000 / config.rateHz), () => {
    const now = clock.wallMs()
    const rows = config.sensors.map((s, i) => ({
      stream: config.stream,
      partitionKey: s.id,
      data: Buffer.from(JSON.stringify({ sensor: s.id, kind: s.kind, n, at: new Date(now).toISOString(), ...reading(s.kind, now, i) })),
      capturedMs: now,
      clockSynced: clock.synced(),
    }))
    n++
    store(rows).catch(onError)
  })
  return { stop }
}
