/**
 * Serial sensors end to end on real pseudo-terminals: an agent process with three ports (NMEA, JSON
 * lines, length-prefixed binary) fed at 100 lines/s each with valid readings and garbage between
 * them; every valid reading reaches the relay's stream in order, every invalid one is counted, and
 * nothing crashes. The quick variant feeds for 3 s; the soak tier (TRIBUTARY_SOAK=1) for 3 minutes.
 */
import t from 'tap'
import { join } from 'node:path'
import { testRelay } from '../helpers/relay.js'
import { spawnAgent, writeAgentConfig, type ChildAgent } from '../helpers/agent.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'
import { binaryFrame, nmea, openSensor, ptyPair } from '../helpers/pty.js'

const SOAK = process.env.TRIBUTARY_SOAK === '1'
const SECONDS = SOAK ? 180 : 3
const RATE = 100
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface SerialStatus { readings: number; framingErrors: Record<string, number>; link: { state: string; losses: number; opens: number; lastOpenError: { code: string } | null } }
async function serialStatus(agent: ChildAgent): Promise<Record<string, SerialStatus>> {
  return ((await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as { serial: Record<string, SerialStatus> }).serial
}
async function status(agent: ChildAgent): Promise<{ outbox: { backlog: number }; link: { recordsAcked: number } }> {
  return (await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as never
}

t.test(`NMEA, JSON lines and binary frames at ${RATE}/s for ${SECONDS} s: valid readings arrive in order, invalid ones are counted`, async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t)
  const [gps, json, bin] = await Promise.all([ptyPair(t, dir, 'gps'), ptyPair(t, dir, 'json'), ptyPair(t, dir, 'bin')])
  const config = writeAgentConfig(dir, {
    device: 'edge-serial',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, 'outbox.db') },
    status: { port: 0 },
    streams: { sensors: {} },
    sources: [
      { type: 'serial', name: 'gps', stream: 'sensors', path: gps!.device, baudRate: 9600, parser: 'nmea', partitionKey: 'gps-1' },
      { type: 'serial', name: 'env', stream: 'sensors', path: json!.device, baudRate: 115200, parser: { type: 'json', maxLineBytes: 1024 }, partitionKeyField: 'id', partitionKey: 'env-unknown' },
      { type: 'serial', name: 'vib', stream: 'sensors', path: bin!.device, baudRate: 115200, partitionKey: 'vib-1', parser: { type: 'length-prefixed', sync: '0x7e', lengthBytes: 1, lengthAdjust: 1, maxFrameBytes: 64 } },
    ],
  })
  const agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })
  // The ports open asynchronously: wait until all three are open before feeding.
  for (let i = 0; i < 100 && !Object.values(await serialStatus(agent)).every((s) => s.link.state === 'open'); i++) await sleep(50)

  const [g, j, b] = await Promise.all([openSensor(gps!.sensor), openSensor(json!.sensor), openSensor(bin!.sensor)])
  const expected = { gps: 0, env: 0, vib: 0, badChecksum: 0, badJson: 0, garbage: 0 }
  const started = performance.now()
  let n = 0
  while (performance.now() - started < SECONDS * 1000) {
    // One tick: one line per port, with a bad one every 10th (a baud mismatch looks like this).
    const bad = n % 10 === 9
    if (bad) {
      await g.write(nmea(`GPGGA,${n},4807.038,N`).replace(/\*..$/, '*00') + '\r\n'); expected.badChecksum++
      await j.write('{"id":"s1","broken\n'); expected.badJson++
      await b.write(Buffer.from([0x01, 0x02, 0x03])); expected.garbage++
    } else {
      await g.write(nmea(`GPGGA,${n},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`) + '\r\n'); expected.gps++
      await j.write(JSON.stringify({ id: n % 2 ? 's1' : 's2', n, temp: 20 + (n % 7) }) + '\n'); expected.env++
      // ASCII digits keep the frame readable through the stream helper's text decoding.
      await b.write(binaryFrame(Buffer.from(String(n).padStart(8, '0')))); expected.vib++
    }
    n++
    const due = started + (n * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
  }
  // A garbage run is reported once the next frame's sync shows where it ends.
  await b.write(binaryFrame(Buffer.from(String(n).padStart(8, '0')))); expected.vib++
  // A flood with no newline is cut and counted, and the port keeps working.
  await j.write(Buffer.alloc(256 * 1024, 0x41))
  await j.write('\n' + JSON.stringify({ id: 's1', n: 'after-flood' }) + '\n')
  expected.env++

  const total = expected.gps + expected.env + expected.vib
  for (let i = 0; i < 400; i++) {
    const s = await status(agent)
    if (s.link.recordsAcked >= total && s.outbox.backlog === 0) break
    await sleep(50)
  }
  const serial = await serialStatus(agent)
  t.equal(serial.gps!.readings, expected.gps, 'every valid NMEA sentence was read')
  t.equal(serial.env!.readings, expected.env, 'every valid JSON line was read')
  t.equal(serial.vib!.readings, expected.vib, 'every valid frame was read')
  t.same(serial.gps!.framingErrors, { BAD_CHECKSUM: expected.badChecksum }, 'bad checksums counted')
  t.same(serial.env!.framingErrors, { MALFORMED: expected.badJson, TOO_LONG: 1 }, 'broken JSON and the flood counted')
  t.same(serial.vib!.framingErrors, { SYNC_LOST: expected.garbage }, 'each run of garbage counted once')

  const records = await readStream(relay.endpoint, 'sensors')
  t.equal(records.length, total, 'every valid reading is in the stream, once')
  const byKey = new Map<string, string[]>()
  for (const r of records) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.data])
  t.same([...byKey.keys()].sort(), ['gps-1', 's1', 's2', 'vib-1'])
  const gpsN = byKey.get('gps-1')!.map((d) => Number(d.split(',')[1]))
  t.ok(gpsN.every((v, i) => i === 0 || v > gpsN[i - 1]!), 'NMEA sentences in order')
  t.ok(byKey.get('gps-1')!.every((d) => /^\$GPGGA,.*\*[0-9A-F]{2}$/.test(d)), 'sentences stored as sent, without CRLF')
  for (const key of ['s1', 's2']) {
    const ns = byKey.get(key)!.map((d) => (JSON.parse(d) as { n: number | string }).n).filter((v) => typeof v === 'number') as number[]
    t.ok(ns.every((v, i) => i === 0 || v > ns[i - 1]!), `${key} in order`)
  }
  t.equal(JSON.parse(byKey.get('s1')!.at(-1)!).n, 'after-flood', 'the line after the flood arrived, last')
  const vibN = byKey.get('vib-1')!.map((d) => Number(d.slice(2, 10)))
  t.ok(vibN.every((v, i) => i === 0 || v > vibN[i - 1]!), 'binary frames in order')
  t.equal(agent.process.exitCode, null, 'the agent is still running')
  await Promise.all([g.close(), j.close(), b.close()])
})
