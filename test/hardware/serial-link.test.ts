import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { SerialLink, systemBinding, type SerialLinkOptions } from '../../hardware/index.js'
import { tempDir } from '../helpers/tmp.js'
import { ptyPair } from '../helpers/pty.js'
import { ROOT } from '../helpers/relay.js'

const options = (path: string, more: Partial<SerialLinkOptions> = {}): SerialLinkOptions => ({
  path, baudRate: 115200, dataBits: 8, stopBits: 1, parity: 'none', rtscts: false,
  silenceMs: 0, checkIntervalMs: 250, reopenInitialMs: 50, reopenMaxMs: 500, ...more,
})

function link(t: Tap.Test, path: string, more: Partial<SerialLinkOptions> = {}): SerialLink {
  const l = new SerialLink(options(path, more), systemBinding())
  t.teardown(() => l.close())
  return l
}

/** Collects a link's bytes until `until` returns true. */
function collect(l: SerialLink, until: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
  let text = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { l.off('data', on); reject(new Error(`timed out with ${text.length} chars`)) }, timeoutMs)
    const on = (d: Buffer) => {
      text += d.toString('latin1')
      if (until(text)) { clearTimeout(timer); l.off('data', on); resolve(text) }
    }
    l.on('data', on)
  })
}

t.test('lines go through a pty both ways intact and in order', async (t) => {
  const pty = await ptyPair(t, tempDir(t))
  const a = link(t, pty.device)
  const b = link(t, pty.sensor)
  a.start(); b.start()
  await Promise.all([once(a, 'open'), once(b, 'open')])
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}\n`).join('')
  const got = collect(a, (s) => s.length >= lines.length)
  for (let i = 0; i < lines.length; i += 4096) await b.write(Buffer.from(lines.slice(i, i + 4096)))
  t.equal(await got, lines, 'sensor to device')
  const back = collect(b, (s) => s.endsWith('ack\n'))
  await a.write(Buffer.from('hello\nack\n'))
  t.equal(await back, 'hello\nack\n', 'device to sensor')
})

t.test('a second process cannot open a port the link holds, and gets SERIAL_BUSY', async (t) => {
  const pty = await ptyPair(t, tempDir(t))
  const a = link(t, pty.device)
  a.start()
  await once(a, 'open')
  const script = `import { SerialLink, systemBinding } from './hardware/index.ts'
    const l = new SerialLink({ path: ${JSON.stringify(pty.device)}, baudRate: 9600, dataBits: 8, stopBits: 1, parity: 'none', rtscts: false, silenceMs: 0, checkIntervalMs: 1000, reopenInitialMs: 10000, reopenMaxMs: 10000 }, systemBinding())
    l.on('open', () => { console.log('OPENED'); process.exit(0) })
    l.on('openFailed', (e) => { console.log(e.code, e.message); process.exit(0) })
    l.start()`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  await once(child, 'exit')
  t.match(out, /^SERIAL_BUSY .*another process holds this port/)
  // The same process is refused too: the lock is per open file, not per process.
  const second = link(t, pty.device)
  second.start()
  const [err] = await once(second, 'openFailed') as [{ code: string }]
  t.equal(err.code, 'SERIAL_BUSY')
  await a.close()
  await once(second, 'open')
  t.pass('the second link opens once the first lets go')
})

t.test('a missing port is reported as SERIAL_ABSENT and opened when it appears', async (t) => {
  const dir = tempDir(t)
  const a = link(t, join(dir, 'later-device'))
  a.start()
  const [err] = await once(a, 'openFailed') as [{ code: string; message: string }]
  t.equal(err.code, 'SERIAL_ABSENT')
  t.match(err.message, /later-device: no such device/)
  await ptyPair(t, dir, 'later')
  await once(a, 'open')
  t.equal(a.state, 'open')
})

t.test('unplug is noticed within seconds and the port reopens on replug, by SIGTERM and by SIGKILL', async (t) => {
  const pty = await ptyPair(t, tempDir(t))
  const a = link(t, pty.device)
  a.start()
  await once(a, 'open')
  for (const signal of ['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL'] as const) {
    const lost = once(a, 'lost')
    const at = performance.now()
    await pty.unplug(signal)
    const [reason] = await lost as [string]
    t.ok(performance.now() - at < 5000, `${signal}: lost (${reason}) within 5 s`)
    const opened = once(a, 'open')
    await pty.plug()
    await opened
    const b = link(t, pty.sensor)
    b.start()
    await once(b, 'open')
    const got = collect(a, (s) => s.includes('after\n'))
    await b.write(Buffer.from('after\n'))
    t.equal(await got, 'after\n', `${signal}: bytes flow after the replug`)
    await b.close()
  }
  t.equal(a.stats.losses, 4)
  t.equal(a.stats.opens, 5)
})

t.test('with silenceMs, a port that goes quiet is closed and reopened', async (t) => {
  const pty = await ptyPair(t, tempDir(t))
  const a = link(t, pty.device, { silenceMs: 400, checkIntervalMs: 100 })
  a.start()
  await once(a, 'open')
  const [reason, detail] = await once(a, 'lost') as [string, string]
  t.equal(reason, 'silent')
  t.match(detail, /no byte for 400 ms/)
  await once(a, 'open')
  t.pass('reopened')
})
