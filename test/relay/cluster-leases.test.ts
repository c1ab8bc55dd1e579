/**
 * Write leases (relay/cluster/leases.ts) against a real NATS server, on an injected clock: a relay
 * that cannot renew its lease stops writing once two thirds of it have passed since it was last
 * confirmed — before the lease can age out on the server, so a relay cut off from the cluster never
 * writes while another may have taken its streams; a renewal that gets through confirms it again;
 * and a lease that aged out while the server was away is given up, then taken again.
 */
import t, { type Test } from 'tap'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { StreamLeases } from '../../relay/cluster/leases.js'
import { natsMissing, startNats } from '../helpers/nats.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Waits (real time) until `what` holds, up to 15 s. */
const until = async (what: () => boolean): Promise<boolean> => {
  for (const deadline = Date.now() + 15_000; !what() && Date.now() < deadline;) await sleep(20)
  return what()
}

async function setup(t: Test, bucket: string, leaseMs: number) {
  const nats = await startNats(t, 1)
  const nc = await connect({ servers: nats.urls, reconnectTimeWait: 50, maxReconnectAttempts: -1 })
  t.teardown(() => nc.close())
  const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: leaseMs, allow_direct: false })
  const lost: string[] = []
  // The leases' clock moves only when the test moves it: renewals fall due when it says so.
  const clock = { ms: 0 }
  const leases = new StreamLeases({ kv, relayId: 'relay-a', leaseMs, onLost: (id) => lost.push(id), now: () => clock.ms })
  t.teardown(() => leases.close())
  return { nats, leases, lost, clock }
}

t.test('a relay that cannot renew stops writing at two thirds of its lease; a lease that aged out meanwhile is given up and taken anew', { skip: natsMissing() ?? false }, async (t) => {
  const leaseMs = 1500
  const { nats, leases, lost, clock } = await setup(t, 'leases-aged', leaseMs)
  t.ok(await leases.acquire('s1.00'), 'the lease is taken')
  clock.ms = leaseMs / 3
  // Renewed once confirmed at leaseMs / 3: then it still holds just before leaseMs (looked at
  // synchronously, so no renewal runs while the clock is moved there and back).
  const heldAt = (ms: number) => { const at = clock.ms; clock.ms = ms; const held = leases.holds('s1.00'); clock.ms = at; return held }
  t.ok(await until(() => heldAt(leaseMs - 1)), 'a renewal falls due at a third of the lease and confirms it')

  nats.kill(0)
  t.ok(heldAt(leaseMs - 1), 'held just before two thirds of the lease since its last confirmation')
  clock.ms = leaseMs
  t.notOk(leases.holds('s1.00'), 'not held from two thirds on, with no renewal through: the relay stops writing')
  t.notOk(await leases.acquire('s1.00'), 'taking it again is refused while unconfirmed')
  await sleep(300)
  t.same(lost, [], 'an unreachable server is not taken for a lost lease')

  // The server stays away longer than the lease (real time): its entry ages out.
  await sleep(leaseMs + 200)
  await nats.start(0)
  await nats.ready()
  t.ok(await until(() => lost.length > 0), 'once the server is back, the aged-out lease is found gone')
  t.same(lost, ['s1.00'], 'and reported lost, not held on to')
  t.ok(await leases.acquire('s1.00'), 'the next write takes it again')
  t.ok(leases.holds('s1.00'), 'and holds it')
})

t.test('a renewal that gets through after an outage confirms the lease again', { skip: natsMissing() ?? false }, async (t) => {
  // A long lease (real time on the server): the entry is still there when NATS is back.
  const leaseMs = 20_000
  const { nats, leases, lost, clock } = await setup(t, 'leases-back', leaseMs)
  t.ok(await leases.acquire('s2.00'))
  nats.kill(0)
  clock.ms = (leaseMs * 2) / 3
  t.notOk(leases.holds('s2.00'), 'no writes while it cannot be confirmed')
  await nats.start(0)
  await nats.ready()
  t.ok(await until(() => leases.holds('s2.00')), 'held again once a renewal got through')
  t.same(lost, [], 'and never reported lost')
})
