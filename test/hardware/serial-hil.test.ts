/**
 * Hardware in the loop: the same link against a real USB serial device, when one is named.
 *
 *   TRIBUTARY_HIL_SERIAL=/dev/serial/by-id/usb-...   the device (required to run)
 *   TRIBUTARY_HIL_BAUD=9600                          its baud rate (default 9600)
 *   TRIBUTARY_HIL_LOOPBACK=1                         TX is wired to RX: lines written come back
 */
import t from 'tap'
import { once } from 'node:events'
import { SerialLink, systemBinding, type SerialLinkOptions } from '../../hardware/index.js'

const device = process.env.TRIBUTARY_HIL_SERIAL
const skip = device ? false : 'no real serial device: set TRIBUTARY_HIL_SERIAL=/dev/serial/by-id/... to run against one'

const options = (path: string): SerialLinkOptions => ({
  path, baudRate: Number(process.env.TRIBUTARY_HIL_BAUD ?? 9600), dataBits: 8, stopBits: 1, parity: 'none', rtscts: false,
  silenceMs: 0, checkIntervalMs: 500, reopenInitialMs: 100, reopenMaxMs: 1000,
})

t.test('a real serial device opens exclusively and stays healthy', { skip }, async (t) => {
  const link = new SerialLink(options(device!), systemBinding())
  t.teardown(() => link.close())
  link.start()
  const [realPath] = await once(link, 'open') as [string]
  t.ok(realPath.startsWith('/dev/'), `opened ${realPath}`)
  const second = new SerialLink(options(device!), systemBinding())
  t.teardown(() => second.close())
  second.start()
  const [err] = await once(second, 'openFailed') as [{ code: string }]
  t.equal(err.code, 'SERIAL_BUSY', 'a second open is refused')
  await second.close()
  let bytes = 0
  link.on('data', (d: Buffer) => { bytes += d.length })
  await new Promise((r) => setTimeout(r, 3000))
  t.equal(link.stats.losses, 0, `no loss while plugged in (${bytes} bytes received in 3 s)`)
})

t.test('with TX wired to RX, lines written come back intact', { skip: skip || (process.env.TRIBUTARY_HIL_LOOPBACK === '1' ? false : 'set TRIBUTARY_HIL_LOOPBACK=1 when TX is wired to RX') }, async (t) => {
  const link = new SerialLink(options(device!), systemBinding())
  t.teardown(() => link.close())
  link.start()
  await once(link, 'open')
  const lines = Array.from({ length: 100 }, (_, i) => `loopback ${i}\n`).join('')
  let got = ''
  const done = new Promise<void>((resolve) => link.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.length >= lines.length) resolve() }))
  await link.write(Buffer.from(lines))
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))])
  t.equal(got, lines)
})
