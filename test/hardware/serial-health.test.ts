/**
 * Unit tests of the link's health checks with serialport's mock binding: losses the kernel never
 * reports (no read error, no close) must still be noticed.
 */
import t from 'tap'
import { once } from 'node:events'
import { rmSync, writeFileSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { MockBinding } from '@serialport/binding-mock'
import { SerialLink, type SerialBinding, type SerialLinkOptions } from '../../hardware/index.js'
import { tempDir } from '../helpers/tmp.js'

const options = (path: string, more: Partial<SerialLinkOptions> = {}): SerialLinkOptions => ({
  path, baudRate: 9600, dataBits: 8, stopBits: 1, parity: 'none', rtscts: false,
  silenceMs: 0, checkIntervalMs: 50, reopenInitialMs: 20, reopenMaxMs: 100, ...more,
})

/** The mock binding, opened under the path given (a real file stands for the device node). */
function mock(device: string, probe?: () => Promise<never>): SerialBinding {
  MockBinding.reset()
  MockBinding.createPort(device, { echo: false, record: false })
  return {
    open: async (o) => {
      const port = await MockBinding.open({ ...o, path: device })
      if (probe) port.get = probe
      return port as never
    },
  }
}

t.test('a device node that disappears is noticed with no read error and no close', async (t) => {
  const dir = tempDir(t)
  const node = join(dir, 'ttyUSB0')
  writeFileSync(node, '')
  const l = new SerialLink(options(node), mock('/dev/mock0'))
  t.teardown(() => l.close())
  l.start()
  await once(l, 'open')
  rmSync(node)
  const [reason] = await once(l, 'lost') as [string]
  t.equal(reason, 'path-gone')
  const [err] = await once(l, 'openFailed') as [{ code: string }]
  t.equal(err.code, 'SERIAL_ABSENT', 'reopening fails while it is gone')
  writeFileSync(node, '')
  await once(l, 'open')
  t.equal(l.stats.opens, 2)
})

t.test('a by-id link that now leads to another device is a new device: the port is reopened', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'ttyUSB0'), '')
  writeFileSync(join(dir, 'ttyUSB1'), '')
  const byId = join(dir, 'usb-FTDI_FT232R-if00-port0')
  symlinkSync(join(dir, 'ttyUSB0'), byId)
  const l = new SerialLink(options(byId), mock('/dev/mock1'))
  t.teardown(() => l.close())
  l.start()
  await once(l, 'open')
  unlinkSync(byId)
  symlinkSync(join(dir, 'ttyUSB1'), byId)
  const [reason, detail] = await once(l, 'lost') as [string, string]
  t.equal(reason, 'path-changed')
  t.match(detail, /ttyUSB1/)
  const [real] = await once(l, 'open') as [string]
  t.match(real, /ttyUSB1$/)
})

t.test('a modem-status probe failing with EIO means the device is gone; ENOTTY (a pty) does not', async (t) => {
  const dir = tempDir(t)
  const node = join(dir, 'ttyACM0')
  writeFileSync(node, '')
  const eio = Object.assign(new Error('Input/output error, cannot get'), {})
  const enotty = new Error('Inappropriate ioctl for device, cannot get')
  let fail: Error = enotty
  const l = new SerialLink(options(node), mock('/dev/mock2', () => Promise.reject(fail)))
  t.teardown(() => l.close())
  l.start()
  await once(l, 'open')
  await new Promise((r) => setTimeout(r, 300))
  t.equal(l.stats.losses, 0, 'ENOTTY is a live pty')
  fail = eio
  const [reason] = await once(l, 'lost') as [string]
  t.equal(reason, 'probe-failed')
})
