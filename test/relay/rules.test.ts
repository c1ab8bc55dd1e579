/**
 * Topic rules (issue 20): layouts existing devices already publish to, mapped into streams from the
 * relay's config file, one record per publish, the key from a topic level or a JSON field; devices
 * still log in, and one the rule does not grant is refused.
 */
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { ConfigError } from '../../shared/errors.js'
import { topics } from '../../shared/topics.js'
import type { RejectMessage } from '../../shared/messages.js'
import { parseRules, TopicRules } from '../../relay/rules.js'
import { readStream } from '../helpers/kinesis.js'
import { ROOT, spawnUntilReady, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'
import { within } from '../helpers/mqtt-wire.js'

const RULES = [
  { name: 'temperatures', topic: 'sensors/+/temperature', stream: 'temperatures', partitionKey: { field: 'sensor.id' }, devices: ['sensor-*'] },
  { name: 'zigbee', topic: 'zigbee2mqtt/#', stream: 'zigbee', partitionKey: { level: 1 }, devices: ['zb-gw'] },
  { name: 'own', topic: 'plant/{device}/state', stream: 'states' },
]

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const v = await get().catch(() => undefined)
    if (v !== undefined && ok(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within 15 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('rules are validated at start, each problem named by its rule and field', async (t) => {
  t.same(parseRules(RULES).map((r) => [r.name, r.partitionKey]), [['temperatures', { field: 'sensor.id' }], ['zigbee', { level: 1 }], ['own', { device: true }]])
  t.same(parseRules(undefined), [])
  const bad: [unknown, RegExp][] = [
    [{ rules: 1 }, /rules/],
    [[{ name: 'a', topic: 'x/#/y', stream: 's' }], /rules\[0\]\.topic.*# may only be the last/],
    [[{ name: 'a', topic: 'tributary/v1/x', stream: 's' }], /rules\[0\]\.topic.*outside tributary\/v1/],
    [[{ name: 'a', topic: '#', stream: 's' }], /rules\[0\]\.topic/],
    [[{ name: 'a', topic: 'a/b+/c', stream: 's' }], /whole levels/],
    [[{ name: 'a', topic: 'a/b', stream: 's' }, { name: 'a', topic: 'c/d', stream: 's' }], /rules\[1\]\.name.*two rules/],
    [[{ name: 'a', topic: 'a/b', stream: 's', partitionKey: { level: 2 } }], /rules\[0\]\.partitionKey.*level/],
    [[{ name: 'a', topic: 'a/b', stream: 'no spaces' }], /rules\[0\]\.stream/],
    [[{ name: 'a', topic: 'a/b', stream: 's', where: 'x' }], /rules\[0\]\.where.*not a rule field/],
    [[{ name: 'a', topic: 'a/b', stream: 's', devices: ['ok', 'bad id'] }], /rules\[0\]\.devices/],
    [[{ name: 'a', topic: 'a/b', stream: 's', partitionKey: { field: '' } }], /rules\[0\]\.partitionKey.*dotted path/],
  ]
  for (const [rules, message] of bad) t.throws(() => parseRules(Array.isArray(rules) ? rules : (rules as { rules: unknown }).rules), message instanceof RegExp ? { message } : {}, JSON.stringify(rules).slice(0, 60))
  t.throws(() => parseRules([{ name: 'a', topic: 'x/#/y', stream: 's' }]), ConfigError)
})

t.test('matching: +, # and {device}; the first rule that matches and grants wins; keys from levels and JSON fields', async (t) => {
  const rules = new TopicRules(parseRules(RULES))
  const json = (o: unknown) => Buffer.from(JSON.stringify(o))
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', json({ sensor: { id: 'k-1' }, t: 21 })), { stream: 'temperatures', partitionKey: 'k-1' })
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', json({ sensor: { id: 42 } })), { partitionKey: '42' }, 'a number key becomes its text')
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', json({ t: 21 })), { code: 'PARTITION_KEY_INVALID', message: /sensor\.id is missing/ })
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', Buffer.from('21.5')), { code: 'PARTITION_KEY_INVALID' }, 'not an object')
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', Buffer.from('{oops')), { code: 'PARTITION_KEY_INVALID', message: /not JSON/ })
  t.match(rules.route('sensor-1', 'sensors/kitchen/temperature', json({ sensor: { __proto__: { id: 'x' } } })), { code: 'PARTITION_KEY_INVALID' }, 'only the payload\'s own fields')
  t.equal(rules.route('other-1', 'sensors/kitchen/temperature', json({ sensor: { id: 'k' } })), null, 'a device the rule does not grant')
  t.equal(rules.route('sensor-1', 'sensors/kitchen/humidity', json({})), null, 'a topic no rule matches')
  t.equal(rules.route('sensor-1', 'sensors/kitchen/temperature/extra', json({})), null, '+ is one level')
  t.match(rules.route('zb-gw', 'zigbee2mqtt/living_room/occupancy', json({ occupancy: true })), { stream: 'zigbee', partitionKey: 'living_room' })
  t.match(rules.route('zb-gw', 'zigbee2mqtt', json({})), { code: 'PARTITION_KEY_INVALID', message: /no level 1/ }, 'a/# matches a itself (MQTT), which has no level 1 for the key')
  t.match(rules.route('pump-3', 'plant/pump-3/state', Buffer.from('on')), { stream: 'states', partitionKey: 'pump-3' }, '{device} is the publishing device, the key defaults to it')
  t.equal(rules.route('pump-3', 'plant/pump-4/state', Buffer.from('on')), null, 'not another device\'s level')
})

t.test('through the relay: a granted device\'s publishes are records, a bad payload is acknowledged and said, a device outside the grant is refused', async (t) => {
  const relay = await testRelay(t, {}, { rules: parseRules(RULES) })
  const endpoint = relay.endpoint
  const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'sensor-1', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => sensor.end(true))
  const rejects: RejectMessage[] = []
  sensor.on('message', (_topic, payload) => rejects.push(JSON.parse(payload.toString()) as RejectMessage))
  await sensor.subscribeAsync(topics.rejects('sensor-1'), { qos: 1 })
  for (let i = 0; i < 10; i++) await sensor.publishAsync(`sensors/room-${i % 3}/temperature`, JSON.stringify({ sensor: { id: `s-${i % 3}` }, t: 20 + i }), { qos: 1 })
  await sensor.publishAsync('sensors/attic/temperature', '{"t": 5}', { qos: 1 })
  const read = await until('ten records', () => readStream(endpoint, 'temperatures'), (rs) => rs.length === 10)
  t.same(read.map((r) => r.key).sort(), ['s-0', 's-0', 's-0', 's-0', 's-1', 's-1', 's-1', 's-2', 's-2', 's-2'], 'keys from the JSON field')
  t.same(read.map((r) => (JSON.parse(r.data) as { t: number }).t).sort((a, b) => a - b), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29], 'payloads as sent')
  await until('the reject', async () => rejects.length, (n) => n === 1)
  t.match(rejects[0], { code: 'PARTITION_KEY_INVALID', topic: 'sensors/attic/temperature', stream: 'temperatures' })

  const stranger = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'other-1', protocolVersion: 4, reconnectPeriod: 0 })
  stranger.on('error', () => {})
  const closed = new Promise<void>((resolve) => stranger.once('close', () => resolve()))
  stranger.publish('sensors/kitchen/temperature', JSON.stringify({ sensor: { id: 'evil' } }), { qos: 1 })
  await within(10_000, closed, 'the stranger\'s connection is closed')
  t.equal((await readStream(endpoint, 'temperatures')).length, 10, 'nothing stored for it')
})

t.test('tributary rules list and a relay started with the rules in its config file', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'relay.yaml')
  writeFileSync(file, stringify({ relay: { allowAnonymous: true, rules: RULES } }))
  const cli = join(ROOT, 'relay/cli/entry.ts')
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'rules', 'list', '--config', file], { cwd: ROOT })
  t.match(stdout, /temperatures\tsensors\/\+\/temperature\t-> temperatures\tkey: JSON field sensor\.id\tdevices: sensor-\*/)
  t.match(stdout, /zigbee\tzigbee2mqtt\/#\t-> zigbee\tkey: topic level 1/)
  const badFile = join(dir, 'bad.yaml')
  writeFileSync(badFile, stringify({ rules: [{ name: 'x', topic: '#', stream: 's' }] }))
  const bad = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'rules', 'list', '--config', badFile], { cwd: ROOT }).then(() => null, (err: { stderr: string; code: number }) => err)
  t.match(bad, { code: 1, stderr: /CONFIG_INVALID: rules\[0\]\.topic/ }, 'a bad rule is refused by name')

  const { child, ready } = await spawnUntilReady([cli, 'relay', '--config', file, '--data-dir', join(dir, 'data'), '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0'], 'tributary relay ready')
  t.teardown(() => { child.kill('SIGKILL') })
  const port = Number(/mqtt:\/\/[^:]+:(\d+)/.exec(ready)![1])
  const endpoint = `http://${/ http:\/\/([^ ]+)/.exec(ready)![1]}`
  const pub = await new Promise<number | null>((resolve) => spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-i', 'zb-gw', '-q', '1', '-t', 'zigbee2mqtt/hall_motion', '-m', '{"occupancy":true}'], { stdio: 'ignore' }).on('exit', resolve))
  t.equal(pub, 0, 'mosquitto_pub through the zigbee rule')
  const read = await until('the record', () => readStream(endpoint, 'zigbee'), (rs) => rs.length === 1)
  t.same(read.map((r) => [r.key, r.data]), [['hall_motion', '{"occupancy":true}']])
})
