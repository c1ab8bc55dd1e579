/**
 * Topic rules: the layouts existing devices already publish to (`sensors/+/temperature`,
 * `zigbee2mqtt/#`), each mapped into a stream, one record per publish, as an AWS IoT rule puts
 * messages into Kinesis. A small, documented subset of what IoT rules do: a topic filter, a stream,
 * the partition key from a topic level or a JSON field of the payload (else the device id), and the
 * devices the rule grants. Devices still log in as always; a publish no rule grants is refused.
 * Rules come from the relay's config file (`rules:`), validated at start (docs/rules.md).
 */
import { ConfigError, ErrorCode } from '../shared/errors.js'
import { DEVICE_ID_PATTERN, STREAM_NAME_PATTERN, TOPIC_ROOT } from '../shared/topics.js'

/** Where a rule's partition key comes from. */
export type KeySource = { level: number } | { field: string } | { device: true }

export interface TopicRule {
  name: string
  /** MQTT filter levels: a literal, `+` (any one level), `{device}` (the publishing device's id), `#` (the rest, last). */
  topic: string
  stream: string
  partitionKey: KeySource
  /** Device ids, or prefixes ending in `*`, that may publish through the rule; empty: every device. */
  devices: string[]
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/
const FIELD = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/

function fail(at: string, message: string): never {
  throw new ConfigError(at, message)
}

/** Validates the config file's `rules` (an array); every problem names the rule and its field. */
export function parseRules(raw: unknown): TopicRule[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) fail('rules', 'must be a list of rules')
  const names = new Set<string>()
  return raw.map((r: unknown, i) => {
    const at = `rules[${i}]`
    if (typeof r !== 'object' || r === null || Array.isArray(r)) fail(at, 'must be an object with name, topic and stream')
    const o = r as Record<string, unknown>
    for (const key of Object.keys(o)) if (!['name', 'topic', 'stream', 'partitionKey', 'devices'].includes(key)) fail(`${at}.${key}`, 'is not a rule field (name, topic, stream, partitionKey, devices)')
    const name = o.name
    if (typeof name !== 'string' || !NAME.test(name)) fail(`${at}.name`, 'must be 1-64 letters, digits, _ . or -')
    if (names.has(name)) fail(`${at}.name`, `${name} names two rules`)
    names.add(name)
    const topic = o.topic
    if (typeof topic !== 'string' || topic === '') fail(`${at}.topic`, 'must be an MQTT topic filter')
    const levels = topic.split('/')
    levels.forEach((level, j) => {
      if (level === '#' && j !== levels.length - 1) fail(`${at}.topic`, '# may only be the last level')
      if (level !== '+' && level !== '#' && /[+#]/.test(level)) fail(`${at}.topic`, '+ and # must be whole levels')
      if (level.includes('{') && level !== '{device}') fail(`${at}.topic`, `a level may be {device}, not ${level}`)
    })
    if (topic === TOPIC_ROOT || topic.startsWith(`${TOPIC_ROOT}/`) || topic.startsWith('$') || levels[0] === '#' || levels[0] === '+') {
      fail(`${at}.topic`, `must start with a literal level outside ${TOPIC_ROOT}/ and $SYS (Tributary's own topics keep their meaning)`)
    }
    const stream = o.stream
    if (typeof stream !== 'string' || !STREAM_NAME_PATTERN.test(stream)) fail(`${at}.stream`, 'must be a stream name (1-128 letters, digits, _ . -)')
    const partitionKey = keySource(o.partitionKey, levels, `${at}.partitionKey`)
    const devices = o.devices ?? []
    if (!Array.isArray(devices)) fail(`${at}.devices`, 'must be a list of device ids (a trailing * matches a prefix)')
    for (const d of devices) {
      if (typeof d !== 'string' || !DEVICE_ID_PATTERN.test(d.endsWith('*') ? `${d.slice(0, -1)}x` : d)) fail(`${at}.devices`, `${JSON.stringify(d)} is not a device id or a prefix ending in *`)
    }
    return { name, topic, stream, partitionKey, devices: devices as string[] }
  })
}

function keySource(raw: unknown, levels: string[], at: string): KeySource {
  if (raw === undefined || raw === 'device') return { device: true }
  if (typeof raw !== 'object' || raw === null) fail(at, 'must be "device", {level: N} or {field: "a.b"}')
  const o = raw as Record<string, unknown>
  if ('level' in o) {
    const n = o.level
    const fixed = levels[levels.length - 1] === '#' ? Infinity : levels.length
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= fixed) fail(at, `level must be a topic level index from 0 to ${Math.min(fixed, 64) - 1}`)
    return { level: n }
  }
  if ('field' in o) {
    if (typeof o.field !== 'string' || !FIELD.test(o.field)) fail(at, 'field must be a dotted path into the JSON payload, e.g. "sensor.id"')
    return { field: o.field }
  }
  return fail(at, 'must be "device", {level: N} or {field: "a.b"}')
}

/** What a publish through a rule becomes: its stream and key, or why the record is refused. */
export type RuledRecord = { rule: TopicRule; stream: string; partitionKey: string } | { rule: TopicRule; code: ErrorCode; message: string }

export class TopicRules {
  private readonly parsed: { rule: TopicRule; levels: string[] }[]

  constructor(readonly rules: readonly TopicRule[]) {
    this.parsed = rules.map((rule) => ({ rule, levels: rule.topic.split('/') }))
  }

  /**
   * The first rule whose filter matches `topic` and that grants `device`, with the record it makes
   * of `payload`; null when none does (the publish is refused).
   */
  route(device: string, topic: string, payload: Buffer): RuledRecord | null {
    const levels = topic.split('/')
    for (const { rule, levels: filter } of this.parsed) {
      if (!matches(filter, levels, device) || !grants(rule, device)) continue
      const key = rule.partitionKey
      if ('device' in key) return { rule, stream: rule.stream, partitionKey: device }
      if ('level' in key) {
        const level = levels[key.level]
        if (level === undefined || level === '') return { rule, code: ErrorCode.PARTITION_KEY_INVALID, message: `rule ${rule.name}: topic ${topic} has no level ${key.level} for the partition key` }
        return { rule, stream: rule.stream, partitionKey: level }
      }
      return fieldKey(rule, key.field, payload)
    }
    return null
  }
}

function matches(filter: string[], levels: string[], device: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i]!
    if (f === '#') return true
    const level = levels[i]
    if (level === undefined) return false
    if (f === '+') continue
    if (f === '{device}') { if (level !== device) return false; continue }
    if (f !== level) return false
  }
  return filter.length === levels.length
}

function grants(rule: TopicRule, device: string): boolean {
  if (rule.devices.length === 0) return true
  return rule.devices.some((d) => (d.endsWith('*') ? device.startsWith(d.slice(0, -1)) : device === d))
}

function fieldKey(rule: TopicRule, field: string, payload: Buffer): RuledRecord {
  let value: unknown
  try {
    value = JSON.parse(payload.toString('utf8'))
  } catch {
    return { rule, code: ErrorCode.PARTITION_KEY_INVALID, message: `rule ${rule.name}: the payload is not JSON, so it has no ${field} for the partition key` }
  }
  for (const part of field.split('.')) {
    value = typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined
  }
  if (typeof value === 'string' && value !== '') return { rule, stream: rule.stream, partitionKey: value }
  if (typeof value === 'number' && Number.isFinite(value)) return { rule, stream: rule.stream, partitionKey: String(value) }
  return { rule, code: ErrorCode.PARTITION_KEY_INVALID, message: `rule ${rule.name}: the payload's ${field} is ${value === undefined ? 'missing' : 'not a string or number'}` }
}
