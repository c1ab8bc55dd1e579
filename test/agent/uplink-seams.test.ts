/**
 * The uplink through its seams, without a network: a stand-in transport (one client per connection
 * attempt), the manual clock, and the status provider and codec given at construction.
 */
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { validateAgentConfig } from '../../agent/config.js'
import { manualClock } from '../../hardware/index.js'
import { Outbox } from '../../agent/outbox/index.js'
import { Uplink, type ConnectOptions, type UplinkClient } from '../../agent/uplink/index.js'
import { loadCodec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { tempDir } from '../helpers/tmp.js'

class StandInClient extends EventEmitter implements UplinkClient {
  connected = false
  readonly published: { topic: string; payload: Buffer | string; retain: boolean; ack?: (err?: Error) => void }[] = []
  readonly options: ConnectOptions
  constructor(options: ConnectOptions) {
    super()
    this.options = options
  }
  subscribe(): void {}
  publish(topic: string, payload: Buffer | string, options: { qos: 0 | 1; retain?: boolean }, ack?: (err?: Error) => void): void {
    this.published.push({ topic, payload, retain: options.retain ?? false, ack })
  }
  end(): void { this.connected = false }
  async endAsync(): Promise<void> { this.connected = false }
  /** The relay accepts the connection (CONNACK). */
  accept(): void { this.connected = true; this.emit('connect') }
  /** The connection goes. */
  drop(): void { this.connected = false; this.emit('close') }
  batches() { return this.published.filter((p) => p.topic.includes('/records/')) }
}

async function setup(t: Test) {
  const dir = tempDir(t)
  const config = validateAgentConfig({
    device: 'edge-seams', relay: { url: 'mqtt://127.0.0.1:1' }, outbox: { path: join(dir, 'outbox.db'), commitIntervalMs: 1 },
    uplink: { backoffInitialMs: 100, backoffMaxMs: 1000, batchRecords: 5 }, status: { port: 0 }, streams: { s: {} }, sources: [],
  })
  const clock = manualClock()
  const outbox = new Outbox({ ...config.outbox, policies: config.streams, clock })
  t.teardown(() => outbox.close())
  const clients: StandInClient[] = []
  const codec = loadCodec(process.env)
  let encoded = 0
  const uplink = new Uplink({
    config, outbox, clock, log: () => {},
    transport: (options) => { const c = new StandInClient(options); clients.push(c); return c },
    status: () => ({ device: 'edge-seams', online: true, at: new Date(clock.wallMs()).toISOString(), note: 'from the provider' }),
    codec: { encodeBatch: (batch) => { encoded++; return codec.encodeBatch(batch) } },
    random: () => 0,
  })
  t.teardown(() => uplink.stop())
  return { outbox, uplink, clock, clients, encoded: () => encoded }
}

t.test('a CONNACK alone never resets the backoff; a PUBACK does; the resend is the same batch', async (t) => {
  const { outbox, uplink, clock, clients, encoded } = await setup(t)
  await outbox.enqueue(Array.from({ length: 5 }, (_, i) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`r${i}`) })))
  uplink.start()
  t.equal(clients.length, 1, 'one connection attempt at start')
  t.same(clients[0]!.published, [], 'nothing is published before the relay accepts')
  const waits: (number | null)[] = []
  for (let i = 0; i < 4; i++) {
    const client = clients[i]!
    client.accept()
    t.equal(client.batches().length, 1, `attempt ${i + 1} sends the batch`)
    client.drop()
    waits.push(clock.nextDueMs())
    clock.advance(clock.nextDueMs()!)
  }
  t.same(waits, [50, 100, 200, 400], 'accepted and dropped each time: the waits keep doubling')
  const frames = clients.slice(0, 4).map((c) => c.batches()[0]!.payload.toString('hex'))
  t.equal(new Set(frames).size, 1, 'every resend is the same frame')
  t.equal(encoded(), 4, 'frames come from the codec given at construction')
  const last = clients[4]!
  last.accept()
  last.batches()[0]!.ack!()
  t.equal(uplink.stats.recordsAcked, 5, 'the PUBACK counts')
  last.drop()
  t.equal(clock.nextDueMs(), 50, 'progress reset the backoff')
})

t.test('the status document comes from the provider given at construction, and stop marks the device offline', async (t) => {
  const { uplink, clients } = await setup(t)
  uplink.start()
  clients[0]!.accept()
  const status = clients[0]!.published.filter((p) => p.topic === topics.status('edge-seams'))
  t.match(JSON.parse(String(status[0]!.payload)), { online: true, note: 'from the provider' }, 'published on connect')
  t.equal(status[0]!.retain, true, 'retained')
  t.match(JSON.parse(String(clients[0]!.options.will!.payload)), { device: 'edge-seams', online: false }, 'the will says offline')
  await uplink.stop()
  const goodbye = clients[0]!.published.filter((p) => p.topic === topics.status('edge-seams')).at(-1)!
  t.match(JSON.parse(String(goodbye.payload)), { online: false, note: 'from the provider' })
})
