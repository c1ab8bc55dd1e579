import t from 'tap'
import { PacketSizeChecker } from '../../relay/packet-guard.js'
import { remainingLength } from '../helpers/mqtt-wire.js'

/** An MQTT PUBLISH of `bodyLength` bytes: type byte, variable-length remaining length, body. */
function packet(bodyLength: number): Buffer {
  return Buffer.concat([Buffer.from([0x32]), remainingLength(bodyLength), Buffer.alloc(bodyLength, 7)])
}

t.test('packets within the limit pass, fed whole or one byte at a time', async (t) => {
  const stream = Buffer.concat([packet(0), packet(10), packet(127), packet(128), packet(16384), packet(1000)])
  t.doesNotThrow(() => new PacketSizeChecker(20000).feed(stream))
  const bytewise = new PacketSizeChecker(20000)
  t.doesNotThrow(() => { for (const b of stream) bytewise.feed(Buffer.from([b])) })
})

t.test('a packet over the limit is refused from its header alone', async (t) => {
  const checker = new PacketSizeChecker(1000)
  checker.feed(packet(500))
  const big = packet(5000)
  t.throws(() => checker.feed(big.subarray(0, 3)), { name: 'PacketSizeError', size: 5003 }, 'the first three bytes are enough')
})

t.test('a malformed remaining length is refused', async (t) => {
  t.throws(() => new PacketSizeChecker(1 << 30).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), { name: 'PacketSizeError' })
})

t.test('a raised limit applies from the next fixed header (the broker raises it once a client has authenticated)', async (t) => {
  const checker = new PacketSizeChecker(1000)
  t.throws(() => new PacketSizeChecker(1000).feed(packet(5000).subarray(0, 3)), { name: 'PacketSizeError' }, 'over the small limit: refused')
  checker.feed(packet(900))
  checker.limit = 10_000
  t.doesNotThrow(() => checker.feed(packet(5000)), 'the same packet after the raise passes')
  t.throws(() => checker.feed(packet(20_000).subarray(0, 4)), { name: 'PacketSizeError', size: 20_004 }, 'and the raised limit still holds')
})
