/**
 * Request validation for the Kinesis JSON protocol, with AWS's error types and wording: a value of
 * the wrong JSON type is a SerializationException; a value that breaks a constraint is a
 * ValidationException listing up to ten problems ("2 validation errors detected: Value ... at
 * 'streamName' failed to satisfy constraint: ...").
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
  | { type: 'structure'; required?: boolean; fields: Record<string, Shape> }

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

/** A list member as the message shows it: blobs by their size only, so a rejected batch is not echoed back byte by byte. */
function brief(v: unknown): string {
  if (Buffer.isBuffer(v)) return `java.nio.HeapByteBuffer[pos=0 lim=${v.length} cap=${v.length}]`
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${brief(x)}`).join(',')}}`
  return String(v)
}

function describe(value: unknown, shape: Shape): string {
  if (value === undefined) return 'null'
  if (shape.type === 'blob') {
    const n = (value as Buffer).length
    return `'java.nio.HeapByteBuffer[pos=0 lim=${n} cap=${n}]'`
  }
  if (shape.type === 'list') return `'[${(value as unknown[]).map(brief).join(', ')}]'`
  if (shape.type === 'map') return `'{${Object.entries(value as object).map(([k, v]) => `${k}=${v}`).join(', ')}}'`
  return `'${typeof value === 'object' ? JSON.stringify(value) : String(value)}'`
}

function check(value: unknown, shape: Shape, path: string, errors: string[]): void {
  const fail = (constraint: string) => {
    if (errors.length < 10) errors.push(`Value ${describe(value, shape)} at '${path}' failed to satisfy constraint: ${constraint}`)
  }
  if (value === undefined) {
    if (shape.required) fail('Member must not be null')
    return
  }
  switch (shape.type) {
    case 'string': {
      const s = value as string
      if (shape.enum && !shape.enum.includes(s)) fail(`Member must satisfy enum value set: [${shape.enum.join(', ')}]`)
      if (shape.pattern && !new RegExp(`^(?:${shape.pattern})$`).test(s)) fail(`Member must satisfy regular expression pattern: ${shape.pattern}`)
      if (shape.min !== undefined && s.length < shape.min) fail(`Member must have length greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && s.length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      return
    }
    case 'integer': {
      const n = value as number
      if (shape.min !== undefined && n < shape.min) fail(`Member must have value greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && n > shape.max) fail(`Member must have value less than or equal to ${shape.max}`)
      return
    }
    case 'blob':
      if (shape.max !== undefined && (value as Buffer).length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      return
    case 'list': {
      const list = value as unknown[]
      if (shape.min !== undefined && list.length < shape.min) fail(`Member must have length greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && list.length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      // A null member of a list (Records: [null]) is refused here, in one place, as AWS refuses it:
      // a handler never sees a hole in a list it walks.
      const member = { ...shape.member, required: true } as Shape
      list.forEach((v, i) => check(v, member, `${path}.${i + 1}.member`, errors))
      return
    }
    case 'map': {
      const entries = Object.entries(value as object)
      if (shape.min !== undefined && entries.length < shape.min) fail(`Member must have length greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && entries.length > shape.max) fail(`Member must have length less than or equal to ${shape.max}`)
      const key = shape.key
      if (key && entries.some(([k]) => (key.min !== undefined && k.length < key.min) || (key.max !== undefined && k.length > key.max))) {
        fail(`Map keys must satisfy constraint: [Member must have length less than or equal to ${key.max}, Member must have length greater than or equal to ${key.min}]`)
      }
      const mapValue = { ...shape.value, required: true } as Shape
      for (const [k, v] of entries) check(v, mapValue, `${path}.${k}`, errors)
      return
    }
    case 'structure':
      // AWS lists the problems of a structure's members in member-name order, ignoring case
      // (shardCount before streamName, shardId before shardIteratorType), whatever order they were declared in.
      for (const [k, s] of Object.entries(shape.fields).sort(([a], [b]) => byName(a, b))) {
        check((value as Record<string, unknown>)[k], s, path ? `${path}.${lowerFirst(k)}` : lowerFirst(k), errors)
      }
      return
    default:
  }
}

/** Checks only the JSON types of `fields` in a request body (a SerializationException for the first wrong one). */
export function checkTypes(body: Record<string, unknown>, fields: Record<string, Shape>): void {
  coerce(body, { type: 'structure', fields })
}

/** Validates a request body against an action's input shape; returns the coerced request. */
export function validate<T>(body: unknown, fields: Record<string, Shape>): T {
  const shape: Shape = { type: 'structure', fields }
  const value = coerce(body ?? {}, shape) as Record<string, unknown>
  const errors: string[] = []
  check(value, shape, '', errors)
  if (errors.length) {
    throw new KinesisError('ValidationException', `${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}`)
  }
  return value as T
}

// ---- shapes shared by the actions ----

export const StreamName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const StreamARN: Shape = { type: 'string', pattern: 'arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+', min: 1, max: 2048 }
export const ShardId: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
export const SequenceNumber: Shape = { type: 'string', pattern: '0|([1-9]\\d{0,128})' }
export const PartitionKey: Shape = { type: 'string', required: true, min: 1, max: 256 }
export const ExplicitHashKey: Shape = { type: 'string', pattern: '0|([1-9]\\d{0,38})' }
export const Data: Shape = { type: 'blob', required: true, max: 1048576 }
export const ShardIterator: Shape = { type: 'string', required: true, min: 1, max: 512 }
