/**
 * Video over real MQTT (mqtt.js) into a real relay: fragments are stored and numbered, a resend keeps
 * its number and is never stored twice, each kind of bad input is answered with its code and stores
 * nothing, chunk state stays bounded and expires on the relay's clock, a relay killed mid-fragment
 * loses nothing acknowledged, the data directory's cap stops video (and records) with the device
 * told, and a device cannot publish to another's video topic.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { MAX_CHUNK_DATA, VideoAckError, VideoFrameProblem, encodeFragmentChunks } from '../../shared/video.js'
import type { Relay } from '../../relay/relay.js'
import { FragmentFiles } from '../../relay/video/index.js'
import { freePort, manualClock, spawnRelay, testRelay, type ChildRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { chunksOf, clip, videoDevice, type VideoDevice } from './video-fixtures.js'

/** A full garbage collection (the flag set at run time: tap's node arguments are the project's). */
v8.setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/**
 * Heap and ArrayBuffer bytes once collection has settled. Newer V8s free ArrayBuffers' memory on a
 * background thread after a full collection, so one `gc()` can still count tens of MiB of garbage
 * (seen on Node 24: 40 MiB): collect, yield, and repeat until the figure stops falling.
 */
async function settledMemory (): Promise<number> {
  let least = Infinity
  for (let round = 0; round < 20; round++) {
    gc()
    await new Promise((r) => setTimeout(r, 20))
    const m = process.memoryUsage()
    const used = m.heapUsed + m.arrayBuffers
    if (used > least - 256 * 1024) return Math.min(used, least)
    least = used
  }
  return least
}

/** Every file under the relay's video directory, relative to it. */
function filesOn(relay: Relay): string[] {
  const root = join(relay.config.dataDir, 'video')
  try {
    return readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1)).sort()
  } catch {
    return []
  }
}
const rows = (relay: Relay) => [...relay.video.store.catalog.files()].sort()

/** Sends a session's init segment and waits for its PERSISTED. */
async function start(d: VideoDevice, stream: string, session: bigint): Promise<string> {
  await d.send(stream, chunksOf(session, 0, clip().init))
  return (await d.until(0, 'PERSISTED', session)).fragmentNumber!
}

t.test('an init segment and its fragments are stored, in order, each byte as sent', async (t) => {
  const relay = await testRelay(t)
  const d = await videoDevice(t, relay.mqttPort, 'cam-1')
  const c = clip(4, 2, '640x480')
  t.ok(c.fragments.every((f) => f.length > MAX_CHUNK_DATA), 'each fragment travels in several chunks')
  const session = 0xfeedn
  await d.send('front', chunksOf(session, 0, c.init))
  const numbers = [(await d.until(0, 'PERSISTED', session)).fragmentNumber!]
  for (const [i, f] of c.fragments.entries()) {
    await d.send('front', chunksOf(session, i + 1, f))
    numbers.push((await d.until(i + 1, 'PERSISTED', session)).fragmentNumber!)
  }
  t.ok(numbers.every((n) => /^\d{47}$/.test(n)), 'fragment numbers are 47-digit decimals')
  t.same([...numbers].sort(), numbers, 'and increase in ingest order')
  const statuses = d.acks.map((a) => `${a.sequence}:${a.status}`)
  t.same(statuses, ['0:RECEIVED', '0:PERSISTED', '1:RECEIVED', '1:PERSISTED', '2:RECEIVED', '2:PERSISTED'], 'RECEIVED then PERSISTED, per fragment')
  const stream = relay.video.streams.get('front')!
  t.equal(stream.createdBy, 'cam-1', 'the stream was created on first use')
  const listed = relay.video.store.list({ streamId: stream.id, by: 'number', limit: 10 })
  t.equal(listed.length, 2, 'two media fragments indexed (the init segment is not listed)')
  for (const [i, row] of listed.entries()) {
    t.ok((await relay.video.store.read(row)).equals(c.fragments[i]!), `fragment ${i + 1}'s file holds its bytes`)
    t.match(row, { device: 'cam-1', session: session.toString(), sequence: i + 1, durationMs: 2000, bytes: c.fragments[i]!.length, codec: /^avc1\./, width: 640, height: 480, keyFrame: true, crc32c: codec.crc32c(c.fragments[i]!) })
  }
  t.same(filesOn(relay), rows(relay), 'the files on disk are exactly the indexed ones')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  const bytes = c.init.length + c.fragments[0]!.length + c.fragments[1]!.length
  t.match(metrics, /tributary_video_fragments_persisted_total\{stream="front",source="mqtt"\} 3\n/, 'fragments persisted on /metrics')
  t.match(metrics, new RegExp(`tributary_video_bytes_persisted_total\\{stream="front",source="mqtt"\\} ${bytes}\\n`), 'and their bytes')
  t.match(metrics, new RegExp(`tributary_video_storage_bytes ${bytes}\\n`), 'and the bytes stored')
  t.match(metrics, /tributary_video_pending_fragments 0\n/)
})

t.test('a resend, after PERSISTED or while the first copy is being stored, keeps its number and is stored once', async (t) => {
  const relay = await testRelay(t)
  const d = await videoDevice(t, relay.mqttPort, 'cam-2')
  const session = 77n
  const init = await start(d, 'resend', session)
  const fragment = clip().fragments[0]!
  await d.send('resend', chunksOf(session, 1, fragment))
  const first = (await d.until(1, 'PERSISTED', session)).fragmentNumber
  await d.send('resend', chunksOf(session, 1, fragment))
  t.equal((await d.until(1, 'PERSISTED', session)).fragmentNumber, first, 'a resend after PERSISTED gets the same number')
  await d.send('resend', chunksOf(session, 0, clip().init))
  t.equal((await d.until(0, 'PERSISTED', session)).fragmentNumber, init, 'so does the init segment')
  // Two copies back to back: the second arrives while the first is being written.
  const second = clip().fragments[1]!
  await Promise.all([d.send('resend', chunksOf(session, 2, second)), d.send('resend', chunksOf(session, 2, second))])
  const a = await d.until(2, 'PERSISTED', session)
  const b = await d.until(2, 'PERSISTED', session)
  t.equal(a.fragmentNumber, b.fragmentNumber, 'concurrent copies get one number')
  t.equal(rows(relay).length, 3, 'init and two fragments: nothing stored twice')
  t.same(filesOn(relay), rows(relay))
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_video_duplicates_total\{source="mqtt"\} 3/, 'three resends counted as duplicates')
})

t.test('each bad input is answered with its code and stores nothing', async (t) => {
  const relay = await testRelay(t, { videoMaxPendingFragments: 2, videoMaxPendingBytes: 1024 * 1024 })
  const d = await videoDevice(t, relay.mqttPort, 'cam-bad')
  const session = 5n
  await start(d, 'bad', session)
  const before = rows(relay)
  const big = clip(4, 2, '640x480').fragments[0]!
  const chunks = chunksOf(session, 1, big)
  t.ok(chunks.length >= 2)
  const error = async (sequence: number, code: string, why: string, s = session) => {
    const ack = await d.until(sequence, 'ERROR', s)
    t.equal(ack.code, code, why)
    t.ok(ack.message && ack.message.length > 10, `${why}: a message says what happened (${ack.message})`)
  }

  await d.publish('bad', randomBytes(100))
  await error(-1, VideoFrameProblem.BAD_MAGIC, 'a payload that is not a chunk frame (it names no fragment: session 0, sequence -1)', 0n)
  const damaged = Buffer.from(chunks[0]!)
  damaged.writeUInt32LE(99, 28)
  await d.publish('bad', damaged)
  await error(1, VideoFrameProblem.BAD_FIELD, 'a chunk whose count disagrees with its size names its fragment')

  await d.publish('bad', chunks[1]!)
  await error(1, VideoAckError.CHUNK_OUT_OF_ORDER, 'chunk 1 without chunk 0')
  if (chunks.length > 2) {
    await d.send('bad', [chunks[0]!, chunks[2]!])
    await error(1, VideoAckError.CHUNK_OUT_OF_ORDER, 'a missing chunk')
  }
  const moved = chunksOf(session, 1, big, { producerTimeMs: 1 })
  await d.send('bad', [chunks[0]!, moved[1]!])
  await error(1, VideoAckError.CHUNK_MISMATCH, 'a chunk whose header disagrees with chunk 0')

  await d.send('bad', chunksOf(session, 2, clip().fragments[1]!, { crc32c: 12345 }))
  await error(2, VideoAckError.CHECKSUM_MISMATCH, 'a fragment whose CRC-32C is not its header\'s')

  const huge = randomBytes(1024 * 1024 + 1)
  await d.publish('bad', chunksOf(session, 3, huge)[0]!)
  await error(3, VideoAckError.FRAGMENT_TOO_LARGE, 'a fragment over what a device may hold')

  await d.send('bad', chunksOf(999n, 1, clip().fragments[0]!))
  await error(1, VideoAckError.UNKNOWN_SESSION, 'a fragment of a session whose init segment never came', 999n)

  await d.send('bad', chunksOf(6n, 0, randomBytes(2000)))
  await error(0, VideoAckError.INVALID_MEDIA, 'an init segment that is not MP4', 6n)
  await d.send('bad', chunksOf(session, 4, randomBytes(3000)))
  await error(4, VideoAckError.INVALID_MEDIA, 'a fragment that is not MP4')
  // A fragment's samples cut short: its boxes still say what it held.
  const cut = clip().fragments[2]!.subarray(0, 2000)
  await d.send('bad', chunksOf(session, 5, Buffer.from(cut)))
  await error(5, VideoAckError.INVALID_MEDIA, 'a truncated fragment')

  await d.publish('bad', chunksOf(session, 6, big)[0]!)
  await d.publish('bad', chunksOf(session, 7, big)[0]!)
  await d.publish('bad', chunksOf(session, 8, big)[0]!)
  await error(8, VideoAckError.TOO_MANY_PENDING, 'a third incomplete fragment past the limit of two')
  t.equal(relay.video.ingest.held().fragments, 2, 'two held')

  t.same(rows(relay), before, 'nothing was stored')
  t.same(filesOn(relay), before, 'and no file was left')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  for (const code of [VideoAckError.CHUNK_OUT_OF_ORDER, VideoAckError.CHECKSUM_MISMATCH, VideoAckError.UNKNOWN_SESSION, VideoAckError.INVALID_MEDIA, VideoFrameProblem.BAD_MAGIC]) {
    t.match(metrics, new RegExp(`tributary_video_errors_total\\{code="${code}"\\} \\d+`), `${code} counted`)
  }
  t.match(metrics, /tributary_video_pending_fragments 2/, 'pending fragments on /metrics')
})

t.test('a repeated chunk is ignored, and chunk 0 again starts the fragment over', async (t) => {
  const relay = await testRelay(t)
  const d = await videoDevice(t, relay.mqttPort, 'cam-dup')
  const session = 9n
  await start(d, 'dup', session)
  const chunks = chunksOf(session, 1, clip(4, 2, '640x480').fragments[0]!)
  await d.send('dup', [chunks[0]!, chunks[0]!, chunks[1]!, chunks[1]!, ...chunks.slice(2)])
  const stored = await d.until(1, 'PERSISTED', session)
  t.notOk(d.acks.some((a) => a.sequence === 1 && a.status === 'ERROR'), 'repeats of the chunk just taken are not errors')
  const again = chunksOf(session, 2, clip(4, 2, '640x480').fragments[1]!)
  await d.send('dup', [again[0]!, again[1]!, ...again])
  const restarted = await d.until(2, 'PERSISTED', session)
  t.notOk(d.acks.some((a) => a.sequence === 2 && a.status === 'ERROR'), 'a fragment sent anew from chunk 0 is taken from the start')
  t.ok(BigInt(restarted.fragmentNumber!) > BigInt(stored.fragmentNumber!))
  t.equal((await relay.video.store.read(relay.video.store.list({ streamId: relay.video.streams.get('dup')!.id, by: 'number', limit: 5 })[1]!)).length, clip(4, 2, '640x480').fragments[1]!.length)
})

t.test('1,000 incomplete fragments from many devices hold bounded state, and it expires on the relay\'s clock', async (t) => {
  const clock = manualClock()
  const total = 16 * 1024 * 1024
  const relay = await testRelay(t, { videoMaxPendingFragments: 8, videoMaxPendingFragmentsTotal: 100, videoMaxPendingBytesTotal: total, videoPendingTimeoutMs: 30_000 }, { clock })
  const devices = await Promise.all(Array.from({ length: 20 }, (_, i) => videoDevice(t, relay.mqttPort, `flood-${i}`)))
  const fragment = randomBytes(MAX_CHUNK_DATA + 1000)
  const header = { init: false, keyFrame: true, clockSynced: true, fragmentBytes: fragment.length, crc32c: codec.crc32c(fragment), producerTimeMs: 0, durationMs: 1000 }
  const memBefore = await settledMemory()
  // 50 fragments from each of 20 devices, each only its chunk 0 (of 2).
  await Promise.all(devices.map(async (d, i) => {
    for (let s = 1; s <= 50; s++) await d.publish('flood', encodeFragmentChunks({ ...header, session: BigInt(i), sequence: s }, fragment)[0]!)
  }))
  const held = relay.video.ingest.held()
  t.ok(held.fragments <= 100 && held.bytes <= total, `state within the relay's caps (${held.fragments} fragments, ${held.bytes} bytes)`)
  t.ok(held.fragments >= 90, 'and the caps were reached')
  const refused = () => devices.reduce((n, d) => n + d.acks.filter((a) => a.code === VideoAckError.TOO_MANY_PENDING).length, 0)
  // The ERROR acks are published before each PUBACK, but may reach the client after it.
  for (let waited = 0; refused() + held.fragments < 1000 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20))
  t.equal(refused() + held.fragments, 1000, `every fragment is held or refused with TOO_MANY_PENDING (${refused()} refused)`)
  const grew = await settledMemory() - memBefore
  // The devices share this process (their clients' buffers and the acks they heard count too), so the
  // margin is wide; keeping every chunk would grow it by 1,000 chunks' worth (~95 MiB), past the margin.
  const unbounded = 1000 * MAX_CHUNK_DATA
  t.ok(grew < held.bytes + unbounded / 3, `memory grew ${(grew / 1048576).toFixed(1)} MiB for 1,000 fragments' first chunks of ${(MAX_CHUNK_DATA / 1024).toFixed(0)} KiB (cap ${total / 1048576} MiB; all of them would be ${(unbounded / 1048576).toFixed(0)} MiB)`)
  clock.advance(29_000)
  t.equal(relay.video.ingest.held().fragments, held.fragments, 'nothing expires before the timeout')
  clock.advance(2_000)
  t.same(relay.video.ingest.held(), { fragments: 0, bytes: 0, devices: 0 }, 'all of it expires after the timeout')
  await devices[0]!.publish('flood', encodeFragmentChunks({ ...header, session: 0n, sequence: 1 }, fragment)[1]!)
  t.equal((await devices[0]!.until(1, 'ERROR', 0n)).code, VideoAckError.CHUNK_OUT_OF_ORDER, 'the next chunk of an expired fragment is told to start over')
  t.match(await (await fetch(`${relay.endpoint}/metrics`)).text(), /tributary_video_pending_expired_total \d{2,}/)
  t.same(rows(relay), [], 'nothing was stored')
})

t.test('a stream that does not exist is refused when the relay does not create streams on first use', async (t) => {
  const relay = await testRelay(t, { autoCreateStreams: false })
  const d = await videoDevice(t, relay.mqttPort, 'cam-nf')
  await d.send('nowhere', chunksOf(1n, 0, clip().init))
  t.equal((await d.until(0, 'ERROR', 1n)).code, VideoAckError.STREAM_NOT_FOUND)
  t.same(relay.video.streams.list(), [])
})

t.test('a device creates video streams by publishing to them only up to its limit', async (t) => {
  const relay = await testRelay(t, { autoCreateMaxPerDevice: 1 })
  const d = await videoDevice(t, relay.mqttPort, 'cam-greedy')
  await start(d, 'first', 1n)
  await d.send('second', chunksOf(2n, 0, clip().init))
  const refused = await d.until(0, 'ERROR', 2n)
  t.equal(refused.code, VideoAckError.STREAM_NOT_FOUND)
  t.match(refused.message, /cam-greedy has created 1 streams, its limit/)
  t.same(relay.video.streams.list().map((s) => s.name), ['first'])
})

t.test('a device may not publish to another device\'s video topic, nor read its acks', async (t) => {
  const relay = await testRelay(t)
  const victim = await videoDevice(t, relay.mqttPort, 'cam-victim')
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'cam-thief', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  await t.rejects(client.subscribeAsync(topics.videoAcks('cam-victim'), { qos: 1 }), /Unspecified error/, 'subscribing to its video-acks is refused (granted QoS 128)')
  const closed = new Promise((resolve) => client.once('close', resolve))
  client.publish(topics.video('cam-victim', 'stolen'), chunksOf(1n, 0, clip().init)[0]!, { qos: 1 })
  await closed
  t.pass('publishing to its video topic closes the connection')
  t.same(relay.video.streams.list(), [], 'nothing was created or stored')
  t.same(victim.acks, [], 'the victim heard nothing')
})

t.test('at the data directory\'s cap a device is told, not acknowledged, and disconnected; records see the same cap', async (t) => {
  const c = clip()
  // Room for the init segment and a fragment or two, not for all six.
  const relay = await testRelay(t, { maxDataBytes: c.init.length + 2 * c.fragments[0]!.length + 1000 })
  const d = await videoDevice(t, relay.mqttPort, 'cam-full')
  const session = 3n
  await start(d, 'full', session)
  const closed = new Promise((resolve) => d.client.once('close', resolve))
  let refusedAt = 0
  for (const [i, f] of c.fragments.entries()) {
    for (const chunk of chunksOf(session, i + 1, f)) d.client.publish(topics.video('cam-full', 'full'), chunk, { qos: 1 })
    const ack = await Promise.race([d.until(i + 1, 'PERSISTED', session, 3000), d.until(i + 1, 'ERROR', session, 3000)])
    if (ack.status === 'ERROR') {
      t.equal(ack.code, VideoAckError.STORAGE_UNAVAILABLE, `fragment ${i + 1} is refused: ${ack.message}`)
      refusedAt = i + 1
      break
    }
  }
  t.ok(refusedAt > 0, 'the cap was reached')
  await closed
  t.pass('and the connection was closed')
  t.notOk(d.acks.some((a) => a.sequence === refusedAt && a.status === 'PERSISTED'), 'no PERSISTED for it')
  t.equal(rows(relay).length, refusedAt, 'nothing past the cap was stored')
  t.same(filesOn(relay), rows(relay))
  // A device's record batch meets the same cap, video counted.
  const rec = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'sensor-full', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => rec.endAsync(true))
  await rec.subscribeAsync(topics.rejects('sensor-full'), { qos: 1 })
  const batch = (sequence: number, bytes: number) => codec.encodeBatch({ epoch: 1n, sequence, records: [{ partitionKey: 'k', data: randomBytes(bytes), producerTimeMs: 0, clockSynced: true }] })
  // The room video left: one batch fills it (the shard log alone would hold a fraction of the cap).
  const room = relay.config.maxDataBytes - relay.video.store.totalBytes()
  await rec.publishAsync(topics.records('sensor-full', 'temps'), batch(0, room + 10), { qos: 1 })
  const told = new Promise<string>((resolve) => rec.once('message', (_t, p) => resolve(JSON.parse(p.toString()).code)))
  rec.publish(topics.records('sensor-full', 'temps'), batch(1, 10), { qos: 1 })
  t.equal(await told, 'STORAGE_FULL', 'the next record batch is refused: the shard logs and video share the cap')
})

t.test('a store that fails after the PUBACK (stored in the background) tells the device and closes its connection; the device keeps its fragment', async (t) => {
  const relay = await testRelay(t)
  const d = await videoDevice(t, relay.mqttPort, 'cam-broken')
  await start(d, 'broken', 1n)
  // The next session's directory cannot be made: a file stands where it goes (a failing disk, as far
  // as the store can tell).
  const stream = relay.video.streams.get('broken')!
  const dir = join(relay.config.dataDir, 'video', new FragmentFiles('').pathOf(stream.id, 'cam-broken', 2n, 0), '..')
  writeFileSync(dir, 'in the way')
  const closed = new Promise((resolve) => d.client.once('close', resolve))
  // A one-chunk init segment is complete when it arrives: its PUBACK comes before its store.
  const [chunk] = chunksOf(2n, 0, clip().init)
  await d.client.publishAsync(topics.video('cam-broken', 'broken'), chunk!, { qos: 1 })
  t.pass('the chunk was acknowledged')
  const ack = await d.until(0, 'ERROR', 2n)
  t.equal(ack.code, VideoAckError.STORAGE_UNAVAILABLE, ack.message)
  await closed
  t.pass('and the connection was closed: the device keeps the fragment and retries')
  t.notOk(d.acks.some((a) => a.session === '2' && a.status === 'PERSISTED'), 'no PERSISTED')
  t.equal(rows(relay).length, 1, 'only the first session\'s init segment is stored')
})

t.test('a relay restarted (in process) answers a resend with the number it gave before, and sweeps unfinished files', async (t) => {
  const dataDir = tempDir(t)
  const first = await testRelay(t, { dataDir })
  let d = await videoDevice(t, first.mqttPort, 'cam-restart')
  const session = 42n
  const init = await start(d, 'again', session)
  await d.send('again', chunksOf(session, 1, clip().fragments[0]!))
  const number = (await d.until(1, 'PERSISTED', session)).fragmentNumber
  const streamId = first.video.streams.get('again')!.id
  await d.client.endAsync(true)
  await first.close()
  // A file a crash left behind before its row committed.
  const { writeFileSync } = await import('node:fs')
  const stray = join(dataDir, 'video', streamId, 'cam-restart', session.toString(16).padStart(16, '0'), '0000000000000002.m4s')
  writeFileSync(stray, randomBytes(100))
  const second = await testRelay(t, { dataDir })
  t.notOk(filesOn(second).some((f) => f.endsWith('0000000000000002.m4s')), 'the unfinished file was swept at start')
  d = await videoDevice(t, second.mqttPort, 'cam-restart')
  await d.send('again', chunksOf(session, 0, clip().init))
  t.equal((await d.until(0, 'PERSISTED', session)).fragmentNumber, init)
  await d.send('again', chunksOf(session, 1, clip().fragments[0]!))
  t.equal((await d.until(1, 'PERSISTED', session)).fragmentNumber, number, 'the same number after a restart')
  await d.send('again', chunksOf(session, 2, clip().fragments[1]!))
  t.ok(BigInt((await d.until(2, 'PERSISTED', session)).fragmentNumber!) > BigInt(number!), 'new fragments number on from there')
  t.equal(rows(second).length, 3)
  t.same(filesOn(second), rows(second))
})

t.test('a relay killed -9 mid-fragment loses nothing acknowledged; the fragment sent again is stored once', async (t) => {
  const dataDir = tempDir(t)
  const [mqttPort, httpPort] = [await freePort(), await freePort()]
  const args = ['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--allow-anonymous']
  let relay: ChildRelay = await spawnRelay(args)
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const c = clip(4, 2, '640x480')
  const session = 0xabcn
  let d = await videoDevice(t, mqttPort, 'cam-kill')
  const init = await start(d, 'killed', session)
  await d.send('killed', chunksOf(session, 1, c.fragments[0]!))
  const one = (await d.until(1, 'PERSISTED', session)).fragmentNumber
  const chunks = chunksOf(session, 2, c.fragments[1]!)
  await d.send('killed', chunks.slice(0, chunks.length - 1))
  relay.process.kill('SIGKILL')
  await relay.exited
  await d.client.endAsync(true)
  relay = await spawnRelay(args)
  d = await videoDevice(t, mqttPort, 'cam-kill')
  // The device sends again everything it has no PERSISTED for, and (not knowing) the init segment too.
  await d.send('killed', chunksOf(session, 0, c.init))
  t.equal((await d.until(0, 'PERSISTED', session)).fragmentNumber, init, 'the init segment kept its number')
  await d.send('killed', chunks)
  const two = (await d.until(2, 'PERSISTED', session)).fragmentNumber
  t.ok(BigInt(two!) > BigInt(one!), 'the interrupted fragment is stored after the restart')
  await d.send('killed', chunksOf(session, 1, c.fragments[0]!))
  t.equal((await d.until(1, 'PERSISTED', session)).fragmentNumber, one, 'fragment 1 kept its number')
  const listed = await (await fetch(`${relay.endpoint}/listFragments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ StreamName: 'killed' }) })).json() as { Fragments: { FragmentNumber: string; FragmentSizeInBytes: number }[] }
  t.same(listed.Fragments.map((f) => f.FragmentNumber), [one, two], 'each fragment listed once')
  t.same(listed.Fragments.map((f) => f.FragmentSizeInBytes), [c.fragments[0]!.length, c.fragments[1]!.length])
})
