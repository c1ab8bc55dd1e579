import t from 'tap'
import { validateAgentConfig } from '../../agent/config.js'
import { ConfigError } from '../../shared/errors.js'

const base = (source: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  device: 'd', relay: { url: 'mqtt://127.0.0.1:1883' }, streams: { sensors: {} }, sources: [{ type: 'serial', stream: 'sensors', path: '/dev/serial/by-id/usb-x', ...source }], ...more,
})

t.test('a serial source with only a path and a stream gets the documented defaults', async (t) => {
  const c = validateAgentConfig(base({}))
  t.same(c.sources[0], {
    type: 'serial', name: 'usb-x', stream: 'sensors', path: '/dev/serial/by-id/usb-x', parser: { type: 'lines', maxLineBytes: 4096 },
    partitionKey: 'usb-x', partitionKeyField: null, baudRate: 9600, dataBits: 8, stopBits: 1, parity: 'none', rtscts: false,
    silenceMs: 0, checkIntervalMs: 1000, reopenInitialMs: 250, reopenMaxMs: 5000,
  })
})

t.test('serial readings are flushed to the outbox every second unless configured otherwise', async (t) => {
  t.same(validateAgentConfig(base({})).serial, { flushMs: 5000 })
  t.same(validateAgentConfig(base({}, { serial: { flushMs: 0 } })).serial, { flushMs: 0 })
  t.throws(() => validateAgentConfig(base({}, { serial: { flushMs: -1 } })), /serial\.flushMs: must be between 0 and 60000/)
})

t.test('parsers by name or as a mapping; byte options as text with escapes or hex', async (t) => {
  const p = (parser: unknown) => (validateAgentConfig(base({ parser })).sources[0] as { parser: unknown }).parser
  t.same(p('nmea'), { type: 'nmea', maxLineBytes: 4096, requireChecksum: true })
  t.same(p({ type: 'csv', columns: ['a', 'b'], separator: ';' }), { type: 'csv', maxLineBytes: 4096, columns: ['a', 'b'], separator: ';' })
  t.same(p({ type: 'delimiter', delimiter: '\\r\\n' }), { type: 'delimiter', delimiter: Buffer.from('\r\n'), maxFrameBytes: 4096, includeDelimiter: false })
  t.same(p({ type: 'fixed', frameBytes: 8, sync: '0xaa55' }), { type: 'fixed', frameBytes: 8, sync: Buffer.from([0xaa, 0x55]) })
  t.same(p({ type: 'length-prefixed', sync: '0x7e', lengthBytes: 2, lengthEndian: 'little' }), { type: 'length-prefixed', sync: Buffer.from([0x7e]), lengthBytes: 2, lengthOffset: 1, lengthEndian: 'little', lengthAdjust: 0, maxFrameBytes: 4096 })
})

t.test('mistakes are refused with the field named', async (t) => {
  const bad = (source: Record<string, unknown>, field: RegExp, more: Record<string, unknown> = {}) => {
    let caught: unknown = null
    try { validateAgentConfig(base(source, more)) } catch (err) { caught = err }
    t.ok(caught instanceof ConfigError, `${field.source}: a ConfigError`)
    t.match((caught as Error)?.message, field)
  }
  bad({ path: 'ttyUSB0' }, /^sources\[0\]\.path: must be an absolute device path/)
  bad({ baudRate: 'fast' }, /^sources\[0\]\.baudRate: must be an integer/)
  bad({ parity: 'sometimes' }, /^sources\[0\]\.parity: must be one of none, even, odd, mark, space/)
  bad({ stopBits: 3 }, /^sources\[0\]\.stopBits: must be between 1 and 2/)
  bad({ parser: 'xml' }, /^sources\[0\]\.parser\.type: must be one of lines, nmea/)
  bad({ parser: { type: 'nmea', maxLineBytes: 0 } }, /^sources\[0\]\.parser\.maxLineBytes: must be between 1 and/)
  bad({ parser: { type: 'fixed' } }, /^sources\[0\]\.parser\.frameBytes: must be between 1/)
  bad({ parser: { type: 'length-prefixed', lengthBytes: 3 } }, /^sources\[0\]\.parser\.lengthBytes: must be 1, 2 or 4/)
  bad({ parser: { type: 'delimiter', delimiter: '' } }, /^sources\[0\]\.parser\.delimiter: must be a non-empty string/)
  bad({ parser: { type: 'json', colour: 'red' } }, /^sources\[0\]\.parser\.colour: is not a setting/)
  bad({ partitionKeyField: 'id' }, /^sources\[0\]\.partitionKeyField: needs a parser with fields/)
  bad({ partitionKey: '' }, /^sources\[0\]\.partitionKey: /)
  bad({ stream: 'other' }, /^sources\[0\]\.stream: names "other", which is not under streams/)
  bad({ reopenInitialMs: 1000, reopenMaxMs: 10 }, /^sources\[0\]\.reopenMaxMs: must be between 1000/)
  bad({ parser: { type: 'lines', maxLineBytes: 60_000 } }, /maxLineBytes: must be between 1 and 31744/, { uplink: { batchBytes: 32 * 1024 } })
  t.throws(() => validateAgentConfig({ ...base({}), sources: [{ type: 'serial', stream: 'sensors', path: '/dev/a', name: 'x' }, { type: 'serial', stream: 'sensors', path: '/dev/a', name: 'y' }] }),
    /sources\[1\]: has the same path \/dev\/a as sources\[0\]/)
})
