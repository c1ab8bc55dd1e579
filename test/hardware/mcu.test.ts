/**
 * The C producer library for microcontrollers (hardware/mcu/, issue 20): compiled here with gcc as
 * strict C99, its frames are byte-identical to the TypeScript encoder's for the same random batches
 * and decode in the relay's scanner; its refusals are the right ones; and a device that publishes
 * its frames with mosquitto_pub through a relay kill -9 and resends them has each record stored once.
 */
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { BatchView, codec } from '../../hardware/index.js'
import type { BatchRecord } from '../../shared/frame.js'
import { topics } from '../../shared/topics.js'
import { ROOT, spawnUntilReady } from '../helpers/relay.js'
import { readStream } from '../helpers/kinesis.js'
import { tempDir } from '../helpers/tmp.js'
import { seeded } from '../helpers/random.js'

const MCU = join(ROOT, 'hardware/mcu')
const gcc = spawnSync('gcc', ['--version']).status === 0

/** Compiles the test driver (test/frames.c and the library) with every warning an error. */
function build(dir: string): string {
  const out = join(dir, 'tb-frames')
  execFileSync('gcc', ['-std=c99', '-Wall', '-Wextra', '-Werror', '-pedantic', '-Wconversion', '-O2', '-o', out, join(MCU, 'test/frames.c'), join(MCU, 'tributary_batch.c')])
  return out
}

interface Spec { epoch: bigint; sequence: bigint | number; capacity?: number; records: BatchRecord[] }
interface Made { frame: Buffer | null; error: number }

const hex = (b: Uint8Array) => (b.length ? Buffer.from(b).toString('hex') : '-')
const u128 = (v: bigint) => Buffer.from(v.toString(16).padStart(32, '0'), 'hex')

/** Runs the C driver over many specs at once. */
function makeInC(driver: string, specs: Spec[]): Made[] {
  const lines: string[] = []
  for (const s of specs) {
    lines.push(`B ${s.epoch} ${s.sequence} ${s.capacity ?? 4 * 1024 * 1024}`)
    for (const r of s.records) lines.push(`R ${r.clockSynced ? 1 : 0} ${r.producerTimeMs} ${hex(Buffer.from(r.partitionKey, 'utf8'))} ${hex(r.data)} ${r.explicitHashKey === undefined ? '-' : hex(u128(r.explicitHashKey))}`)
    lines.push('E')
  }
  const out = execFileSync(driver, { input: lines.join('\n') + '\n', maxBuffer: 1 << 30 })
  const made: Made[] = []
  let at = 0
  while (at < out.length) {
    const len = out.readUInt32LE(at)
    const error = out.readUInt32LE(at + 4)
    made.push({ frame: len ? out.subarray(at + 8, at + 8 + len) : null, error })
    at += 8 + len
  }
  return made
}

function randomBatch(rnd: () => number): Spec {
  const keys = ['k', 'sensor-1', 'température', '温度計', 'x'.repeat(256), '🌡️ room']
  const count = 1 + Math.floor(rnd() * 20)
  const times = [0, 1, -1, 1_767_225_600_000, 2 ** 53 - 1, -(2 ** 53), 123_456_789]
  return {
    epoch: BigInt(Math.floor(rnd() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(rnd() * 2 ** 32)),
    sequence: Math.floor(rnd() * 2 ** 53),
    records: Array.from({ length: count }, () => ({
      partitionKey: keys[Math.floor(rnd() * keys.length)]!.slice(0, 1 + Math.floor(rnd() * 300)),
      data: randomBytes(Math.floor(rnd() * (rnd() < 0.1 ? 70_000 : 200))),
      producerTimeMs: times[Math.floor(rnd() * times.length)]! + Math.floor(rnd() * 1000),
      clockSynced: rnd() < 0.5,
      ...(rnd() < 0.3 ? { explicitHashKey: BigInt('0x' + randomBytes(16).toString('hex')) } : {}),
    })),
  }
}

t.test('frames from the C library are byte-identical to the TypeScript encoder\'s and decode in the relay', { skip: gcc ? false : 'needs gcc' }, async (t) => {
  const driver = build(tempDir(t))
  const seed = Number(process.env.TRIBUTARY_MCU_SEED ?? Date.now() % 1_000_000)
  const rnd = seeded(seed)
  const specs = Array.from({ length: 1000 }, () => randomBatch(rnd))
  const made = makeInC(driver, specs)
  t.equal(made.length, specs.length)
  let same = 0
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!
    const expected = codec.encodeBatch({ epoch: spec.epoch, sequence: Number(spec.sequence), records: spec.records })
    if (made[i]!.frame?.equals(expected)) same++
    else if (t.fail(`batch ${i} (seed ${seed}) differs: error ${made[i]!.error}, ${made[i]!.frame?.length} bytes against ${expected.length}`)) break
    const frame = made[i]!.frame!
    const view = new BatchView(frame, codec.scanBatch(frame))
    if (view.count !== spec.records.length) t.fail(`batch ${i}: the relay's scanner found ${view.count} records`)
  }
  t.equal(same, specs.length, `${same} of ${specs.length} random batches identical (seed ${seed}; TRIBUTARY_MCU_SEED repeats it)`)
})

t.test('the C library refuses what the relay would: an empty or long key, a full buffer, a sequence past 2^53 - 1, an empty batch', { skip: gcc ? false : 'needs gcc' }, async (t) => {
  const driver = build(tempDir(t))
  const ok = { partitionKey: 'k', data: Buffer.from('x'), producerTimeMs: 1, clockSynced: true }
  const made = makeInC(driver, [
    { epoch: 1n, sequence: 0, records: [{ ...ok, partitionKey: '' }] },
    { epoch: 1n, sequence: 0, records: [{ ...ok, partitionKey: 'k'.repeat(1025) }] },
    { epoch: 1n, sequence: 0, capacity: 40, records: [ok] },
    { epoch: 1n, sequence: 2n ** 53n, records: [ok] },
    { epoch: 1n, sequence: 0, records: [] },
    { epoch: 1n, sequence: 2n ** 53n - 1n, records: [ok] },
    { epoch: 1n, sequence: 0, records: [{ ...ok, data: Buffer.alloc(1024 * 1024) }] },
  ])
  t.same(made.map((m) => m.error), [3, 3, 2, 5, 1, 0, 4], 'TB_ERR_KEY, TB_ERR_KEY, TB_ERR_SPACE, TB_ERR_SEQUENCE, TB_ERR_ARGUMENT, ok, TB_ERR_RECORD')
  t.equal(codec.scanBatch(made[5]!.frame!).sequence, 2 ** 53 - 1, 'the largest sequence is taken')
})

t.test('frames the C library made, published with mosquitto_pub through a relay kill -9 and resent, are stored exactly once', { skip: gcc && spawnSync('which', ['mosquitto_pub']).status === 0 ? false : 'needs gcc and mosquitto_pub' }, async (t) => {
  const dir = tempDir(t)
  const driver = build(dir)
  // 40 batches of 25 records from one device (epoch 7), made once: a resend is the same bytes.
  const specs: Spec[] = Array.from({ length: 40 }, (_, b) => ({ epoch: 7n, sequence: b, records: Array.from({ length: 25 }, (_, i) => ({ partitionKey: `s${i % 4}`, data: Buffer.from(`b${b}-r${i}`), producerTimeMs: 1_767_225_600_000 + b * 1000 + i, clockSynced: true })) }))
  const files = makeInC(driver, specs).map((m, b) => {
    const path = join(dir, `batch-${b}.bin`)
    writeFileSync(path, m.frame!)
    return path
  })
  const data = join(dir, 'relay')
  mkdirSync(data)
  const start = async () => {
    const { child, exited, ready } = await spawnUntilReady([join(ROOT, 'relay/cli/entry.ts'), 'relay', '--data-dir', data, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous'], 'tributary relay ready')
    t.teardown(() => { child.kill('SIGKILL') })
    return { child, exited, mqttPort: Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1]), endpoint: `http://${/ http:\/\/([^ ]+)/.exec(ready)![1]}` }
  }
  const pub = (port: number, file: string) => new Promise<number | null>((resolve) => {
    const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-i', 'mcu-7', '-q', '1', '-t', topics.records('mcu-7', 'mcu'), '-f', file], { stdio: 'ignore' })
    child.on('exit', (code) => resolve(code))
  })
  let relay = await start()
  // The first 25 acknowledged, then the relay is killed while the next ones go out.
  for (let b = 0; b < 25; b++) t.equal(await pub(relay.mqttPort, files[b]!), 0, `batch ${b} acknowledged`)
  const inFlight = Promise.all(files.slice(25, 32).map((f) => pub(relay.mqttPort, f)))
  relay.child.kill('SIGKILL')
  await relay.exited
  await inFlight
  relay = await start()
  // The device resends everything not known to be acknowledged (here: all of it, to be sure).
  for (let b = 0; b < files.length; b++) t.equal(await pub(relay.mqttPort, files[b]!), 0, `batch ${b} acknowledged after the restart`)
  const read = (await readStream(relay.endpoint, 'mcu')).map((r) => r.data)
  t.equal(read.length, 40 * 25, `${read.length} records stored`)
  t.equal(new Set(read).size, read.length, 'each exactly once')
})
