/**
 * Request validation for the Kinesis JSON protocol, with AWS's error types and wording: a value of
 * the wrong JSON type is a SerializationException; a value that breaks a constraint is a
 * ValidationException listing up to ten problems ("2 validation errors detected: Value ... at
 * 'streamName' failed to satisfy constraint: ..."), as kinesalite's validations/index.js records
 * AWS forming them: members in the order of the action's table, each member's constraints in the
 * order enum, pattern, minimum, maximum; a list's or map's own length before its members'.
 */
import { KinesisError } from './errors.js'

export type Shape =
  | { type: 'string'; required?: boolean; pattern?: string; min?: number; max?: number; enum?: readonly string[] }
  | { type: 'integer'; required?: boolean; min?: number; max?: number }
  | { type: 'blob'; required?: boolean; max?: number }
  | { type: 'timestamp'; required?: boolean }
  | { type: 'boolean'; required?: boolean }
  | { type: 'list'; required?: boolean; member: Shape; min?: number; max?: number }
  | { type: 'map'; required?: boolean; key?: { type: 'string'; min?: number; max?: number }; value: Shape; min?: number; max?: number }
  /** `javaName`: the class AWS names when it prints a list of these (PutRecordsRequestEntry@…). */
  | { type: 'structure'; required?: boolean; fields: Record<string, Shape>; javaName?: string }

/**
 * The order a structure's problems are listed in: `declared`, the order of the fields table (the
 * Kinesis tables are written in AWS's order); `byName`, member names ignoring case (Firehose's).
 */
export type MemberOrder = 'declared' | 'byName'

const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1)
const byName = (a: string, b: string) => { const x = a.toLowerCase(), y = b.toLowerCase(); return x < y ? -1 : x > y ? 1 : 0 }
const serialization = (message: string) => new KinesisError('SerializationException', message)
const JAVA_NUMBER = 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber'

function wrongType(value: unknown, expected: string, article = 'an'): KinesisError {
  if (Array.isArray(value)) return serialization('Start of list found where not expected')
  if (typeof value === 'object') return serialization('Start of structure or map found where not expected.')
  const cls = typeof value === 'boolean' ? 'class java.lang.Boolean' : typeof value === 'number' ? JAVA_NUMBER : 'class java.lang.String'
  return serialization(`${cls} can not be converted to ${article} ${expected}`)
}

/** Checks JSON types, turning base64 blobs into Buffers and timestamps into epoch milliseconds. */
function coerce(value: unknown, shape: Shape): unknown {
  if (value === null || value === undefined) return undefined
  switch (shape.type) {
    case 'string':
      if (typeof value !== 'string') throw wrongType(value, 'String')
      return value
    case 'integer':
      if (typeof value !== 'number') throw wrongType(value, 'Integer')
      return Math.min(Math.floor(value), 2147483647)
    case 'boolean':
      if (typeof value === 'string') throw serialization(`'${value.toUpperCase()}' can not be converted to an Boolean`)
      if (typeof value !== 'boolean') throw wrongType(value, 'Boolean')
      return value
    case 'timestamp':
      if (typeof value !== 'number') {
        if (typeof value === 'object') throw wrongType(value, '')
        throw serialization(`${typeof value === 'boolean' ? 'class java.lang.Boolean' : 'class java.lang.String'} can not be converted to milliseconds since epoch`)
      }
      // JSON 1.1 timestamps are epoch seconds with a fraction.
      return Math.round(value * 1000)
    case 'blob': {
      if (typeof value !== 'string') throw wrongType(value, 'Blob', 'a')
      if (value.length % 4) throw serialization(`'${value}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: ${value.length}`)
      const bad = /[^a-zA-Z0-9+/=]|=[^=]/.exec(value)
      if (bad) throw serialization(`'${value}' can not be converted to a Blob: Invalid Base64 character: '${bad[0][0]}'`)
      const buf = Buffer.from(value, 'base64')
      if (buf.toString('base64') !== value) throw serialization(`'${value}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected`)
      return buf
    }
    case 'list':
      if (!Array.isArray(value)) {
        if (typeof value === 'object') throw serialization('Start of structure or map found where not expected.')
        throw serialization('Expected list or null')
      }
      return value.map((v) => coerce(v, shape.member))
    case 'map': {
      if (Array.isArray(value)) throw serialization('Start of list found where not expected')
      if (typeof value !== 'object') throw serialization('Expected map or null')
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value as object)) out[k] = coerce(v, shape.value)
      return out
    }
    case 'structure': {
      if (Array.isArray(value)) throw serialization('Start of list found where not expected')
      if (typeof value !== 'object') throw serialization('Expected null')
      const out: Record<string, unknown> = {}
      for (const [k, s] of Object.entries(shape.fields)) {
        const v = coerce((value as Record<string, unknown>)[k], s)
        if (v !== undefined) out[k] = v
      }
      return out
    }
  }
}

/** Java's String.hashCode, for the identity AWS prints after a structure's class name. */
function javaHash(text: string): string {
  let h = 0
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0
  return (h >>> 0).toString(16)
}

/**
 * A list member as the message shows it: a structure AWS names by its class as Java prints an
 * object (`com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310`, kinesalite's
 * validations/putRecords.js), so a rejected batch is not echoed back; blobs by their size only.
 */
function brief(v: unknown, shape: Shape): string {
  if (shape.type === 'structure' && shape.javaName && v !== null && typeof v === 'object') {
    return `${shape.javaName}@${javaHash(Object.entries(v).map(([k, x]) => `${k}=${Buffer.isBuffer(x) ? x.length : String(x)}`).join(','))}`
  }
  if (Buffer.isBuffer(v)) return `java.nio.HeapByteBuffer[pos=0 lim=${v.length} cap=${v.length}]`
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${brief(x, { type: 'string' })}`).join(',')}}`
  return String(v)
}

function describe(value: unknown, shape: Shape): string {
  if (value === undefined) return 'null'
  if (shape.type === 'blob') {
    const n = (value as Buffer).length
    return `'java.nio.HeapByteBuffer[pos=0 lim=${n} cap=${n}]'`
  }
  if (shape.type === 'list') return `'[${(value as unknown[]).map((v) => brief(v, shape.member)).join(', ')}]'`
  if (shape.type === 'map') return `'{${Object.entries(value as object).map(([k, v]) => `${k}=${v}`).join(', ')}}'`
  return `'${typeof value === 'object' ? JSON.stringify(value) : String(value)}'`
}

type Constraint = { broken: (v: unknown) => boolean; message: string }

/** What a scalar member must satisfy, each as AWS words it, in AWS's order: enum, pattern, minimum, maximum. */
function constraintsOf(shape: Shape): Constraint[] {
  const out: Constraint[] = []
  const size = (v: unknown) => (Buffer.isBuffer(v) ? v.length : (v as string).length)
  if (shape.type === 'string' && shape.enum) {
    const set = shape.enum
    out.push({ broken: (v) => !set.includes(v as string), message: `Member must satisfy enum value set: [${set.join(', ')}]` })
  }
  if (shape.type === 'string' && shape.pattern) {
    const re = new RegExp(`^(?:${shape.pattern})$`)
    out.push({ broken: (v) => !re.test(v as string), message: `Member must satisfy regular expression pattern: ${shape.pattern}` })
  }
  if (shape.type === 'string' || shape.type === 'blob' || shape.type === 'integer') {
    const [what, measure] = shape.type === 'integer' ? ['value', (v: unknown) => v as number] : ['length', size]
    const min = shape.type === 'blob' ? undefined : shape.min
    if (min !== undefined) out.push({ broken: (v) => measure(v) < min, message: `Member must have ${what} greater than or equal to ${min}` })
    const max = shape.max
    if (max !== undefined) out.push({ broken: (v) => measure(v) > max, message: `Member must have ${what} less than or equal to ${max}` })
  }
  return out
}

/**
 * A list's or map's scalar members are checked as one constraint of the list or map, and every
 * constraint of the member is named, the maximum before the minimum ("Member must satisfy
 * constraint: [Member must have length less than or equal to 128, Member must have length greater
 * than or equal to 1]", kinesalite's test/removeTagsFromStream.js and validations/index.js).
 */
function memberConstraint(shape: Shape): { broken: (v: unknown) => boolean; words: string } | null {
  const all = constraintsOf(shape)
  if (!all.length) return null
  const lengths = all.filter((c) => c.message.startsWith('Member must have')).reverse()
  const words = [...all.filter((c) => !c.message.startsWith('Member must have')), ...lengths].map((c) => c.message).join(', ')
  return { broken: (v) => all.some((c) => c.broken(v)), words: `[${words}]` }
}

function check(value: unknown, shape: Shape, path: string, errors: string[], order: MemberOrder): void {
  const fail = (constraint: string) => {
    if (errors.length < 10) errors.push(`Value ${describe(value, shape)} at '${path}' failed to satisfy constraint: ${constraint}`)
  }
  if (value === undefined) {
    if (shape.required) fail('Member must not be null')
    return
  }
  switch (shape.type) {
    case 'string':
    case 'integer':
    case 'blob':
      for (const c of constraintsOf(shape)) if (c.broken(value)) fail(c.message)
      return
    case 'list': {
      const list = value as unknown[]
      if (shape.min !== undefined && list.length < shape.min) fail(`Member must have length greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && list.length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      const scalar = memberConstraint(shape.member)
      if (scalar && list.some((v) => v !== undefined && scalar.broken(v))) fail(`Member must satisfy constraint: ${scalar.words}`)
      // A null member of a list (Records: [null]) is refused here, in one place, as AWS refuses it:
      // a handler never sees a hole in a list it walks.
      const member = { ...shape.member, required: true } as Shape
      list.forEach((v, i) => {
        if (v === undefined || member.type === 'structure' || member.type === 'list' || member.type === 'map') check(v, member, `${path}.${i + 1}.member`, errors, order)
      })
      return
    }
    case 'map': {
      const entries = Object.entries(value as object)
      if (shape.min !== undefined && entries.length < shape.min) fail(`Member must have length greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && entries.length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      const key = shape.key && memberConstraint(shape.key)
      if (key && entries.some(([k]) => key.broken(k))) fail(`Map keys must satisfy constraint: ${key.words}`)
      const scalar = memberConstraint(shape.value)
      if (scalar && entries.some(([, v]) => v !== undefined && scalar.broken(v))) fail(`Map value must satisfy constraint: ${scalar.words}`)
      const mapValue = { ...shape.value, required: true } as Shape
      for (const [k, v] of entries) {
        if (v === undefined || mapValue.type === 'structure' || mapValue.type === 'list' || mapValue.type === 'map') check(v, mapValue, `${path}.${k}`, errors, order)
      }
      return
    }
    case 'structure': {
      const fields = Object.entries(shape.fields)
      if (order === 'byName') fields.sort(([a], [b]) => byName(a, b))
      for (const [k, s] of fields) {
        check((value as Record<string, unknown>)[k], s, path ? `${path}.${lowerFirst(k)}` : lowerFirst(k), errors, order)
      }
      return
    }
    default:
  }
}

/** Checks only the JSON types of `fields` in a request body (a SerializationException for the first wrong one). */
export function checkTypes(body: Record<string, unknown>, fields: Record<string, Shape>): void {
  coerce(body, { type: 'structure', fields })
}

/**
 * Validates a request body against an action's input shape; returns the coerced request. Problems
 * are listed in `order` (the Kinesis actions' tables are written in AWS's order: 'declared').
 */
export function validate<T>(body: unknown, fields: Record<string, Shape>, order: MemberOrder = 'byName'): T {
  const shape: Shape = { type: 'structure', fields }
  const value = coerce(body ?? {}, shape) as Record<string, unknown>
  const errors: string[] = []
  check(value, shape, '', errors, order)
  if (errors.length) {
    throw new KinesisError('ValidationException', `${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}`)
  }
  return value as T
}

// ---- shapes shared by the actions: constraints from AWS's service model (botocore's kinesis/2013-12-02/service-2.json) ----

export const StreamName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const StreamARN: Shape = { type: 'string', pattern: 'arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+', min: 1, max: 2048 }
export const ShardId: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const SequenceNumber: Shape = { type: 'string', pattern: '0|([1-9]\\d{0,128})' }
export const PartitionKey: Shape = { type: 'string', required: true, min: 1, max: 256 }
export const ExplicitHashKey: Shape = { type: 'string', pattern: '0|([1-9]\\d{0,38})' }
export const Data: Shape = { type: 'blob', required: true, max: 1048576 }
export const ShardIterator: Shape = { type: 'string', required: true, min: 1, max: 512 }
/** "Not Implemented. Reserved for future use." (API reference): checked as AWS checks it, then ignored. */
export const StreamId: Shape = { type: 'string', pattern: '[a-z0-9]{20}-[a-z0-9]{3}', min: 1, max: 24 }
/** ShardIteratorType's values in the order AWS lists them in its message (kinesalite's validations/getShardIterator.js). */
export const SHARD_ITERATOR_TYPES = ['AFTER_SEQUENCE_NUMBER', 'LATEST', 'AT_TIMESTAMP', 'AT_SEQUENCE_NUMBER', 'TRIM_HORIZON'] as const
export const StreamModeDetails: Shape = { type: 'structure', fields: { StreamMode: { type: 'string', required: true, enum: ['PROVISIONED', 'ON_DEMAND'] } } }
export const TagKey: Shape = { type: 'string', min: 1, max: 128 }
export const TagMap: Shape = { type: 'map', min: 1, max: 200, key: { type: 'string', min: 1, max: 128 }, value: { type: 'string', min: 0, max: 256 } }
export const TagKeyList: Shape = { type: 'list', min: 1, max: 50, member: TagKey }
export const ResourceARN: Shape = { type: 'string', required: true, pattern: 'arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+', min: 1, max: 2048 }
/** A member the action requires. */
export const required = (shape: Shape): Shape => ({ ...shape, required: true }) as Shape
