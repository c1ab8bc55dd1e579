/**
 * What the web console costs ingest: durable MQTT ingest (the publishers of mqtt-ingest.ts, their own
 * process, 500 × 100 B batches at QoS 1, PUBACK after the fsync) into a relay with the console off
 * (`--console false`: no status following, no rates), on with nobody looking, and on with someone
 * looking (a pushed-event stream and a live tail of the stream being written, as an open streams
 * page with its tail holds). The three alternate for `rounds` rounds; each row is a round, and the
 * last rows give each variant's median and its ratio to the console off.
 * CSV on stdout, progress on stderr. Usage: npx tsx bench/console-cost.ts [rounds=3] [seconds=5] [publishers=4]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { codec } from '../hardware/index.js'
import { resolveRelayConfig } from '../shared/config.js'
import { startRelay } from '../relay/relay.js'
import { publish } from './processes.js'
import { consoleCookie } from '../test/helpers/console.js'

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 5)
const publishers = Number(process.argv[4] ?? 4)

type Variant = 'off' | 'nobody-looking' | 'looking'
const VARIANTS: Variant[] = ['off', 'nobody-looking', 'looking']

/** Opens what a browser on the streams page holds open: the pushed events and a tail of `stream`. */
async function look(endpoint: string, adminToken: string, stream: string): Promise<() => void> {
  const cookie = await consoleCookie(endpoint, adminToken)
  const abort = new AbortController()
  const drain = async (path: string) => {
    const r = await fetch(`${endpoint}${path}`, { headers: { cookie }, signal: abort.signal })
    if (r.status !== 200) throw new Error(`${path} answered ${r.status}`)
    const reader = r.body!.getReader()
    void (async () => { while (!(await reader.read()).done); })().catch(() => {})
  }
  await drain('/console/api/events')
  await drain(`/console/api/tail?stream=${encodeURIComponent(stream)}`)
  return () => abort.abort()
}

async function run(variant: Variant): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-'))
  const relay = await startRelay(resolveRelayConfig({}, process.env, {
    dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpHost: '127.0.0.1', httpPort: 0, allowAnonymous: true, autoCreateShardCount: 4, console: variant !== 'off',
  }), () => {})
  let stop = () => {}
  if (variant === 'looking') {
    // The stream the publishers write, made first so that the tail has it to follow.
    await relay.streams.create('bench', 4)
    stop = await look(`http://127.0.0.1:${relay.httpPort}`, relay.adminToken, 'bench')
  }
  const r = await publish(relay.mqttPort, publishers, seconds)
  stop()
  await relay.close()
  rmSync(dataDir, { recursive: true, force: true })
  return r.records / r.seconds
}

const rates: Record<Variant, number[]> = { off: [], 'nobody-looking': [], looking: [] }
console.log('benchmark,round,console,records_per_s,codec')
for (let round = 1; round <= rounds; round++) {
  for (const variant of VARIANTS) {
    process.stderr.write(`round ${round}/${rounds}: console ${variant}…\n`)
    const rate = await run(variant)
    rates[variant].push(rate)
    console.log(`console-cost,${round},${variant},${Math.round(rate)},${codec.implementation}`)
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log('benchmark,console,median_records_per_s,ratio_to_off')
for (const variant of VARIANTS) {
  console.log(`console-cost-median,${variant},${Math.round(median(rates[variant]))},${(median(rates[variant]) / median(rates.off)).toFixed(3)}`)
}
