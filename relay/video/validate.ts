/**
 * Request validation for the Kinesis Video API's REST-JSON bodies, in AWS's wording: a value of the
 * wrong JSON type is a SerializationException; values that break the model's constraints are one
 * InvalidArgumentException listing up to ten ("2 validation errors detected: Value 'x' at
 * 'streamName' failed to satisfy constraint: …"). Timestamps (epoch seconds) become milliseconds.
 */
import { invalidArgument, VideoApiError, VideoErrorType } from './errors.js'

export type Shape =
  | { type: 'string'; required?: boolean; pattern?: string; min?: number; max?: number; enum?: readonly string[] }
  | { type: 'integer'; required?: boolean; min?: number; max?: number }
  | { type: 'timestamp'; required?: boolean }
  | { type: 'list'; required?: boolean; member: Shape; min?: number; max?: number }
  | { type: 'map'; required?: boolean; key: Shape; value: Shape; min?: number; max?: number }
  | { type: 'structure'; required?: boolean; fields: Record<string, Shape> }

const serialization = (message: string) => new VideoApiError(VideoErrorType.SerializationException, message)
const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1)

function coerce(value: unknown, shape: Shape, path: string): unknown {
  if (value === null || value === undefined) return undefined
  const expected = (what: string) => serialization(`Expected ${what} at '${path}', got ${Array.isArray(value) ? 'a list' : typeof value}.`)
  switch (shape.type) {
    case 'string':
      if (typeof value !== 'string') throw expected('a string')
      return value
    case 'integer':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw expected('a number')
      return Math.floor(value)
    case 'timestamp':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw expected('a timestamp (epoch seconds)')
      return Math.round(value * 1000)
    case 'list':
      if (!Array.isArray(value)) throw expected('a list')
      return value.map((v, i) => coerce(v, shape.member, `${path}.${i + 1}.member`))
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) throw expected('a map')
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value as object)) out[k] = coerce(v, shape.value, `${path}.${k}`)
      return out
    }
    case 'structure': {
      if (typeof value !== 'object' || Array.isArray(value)) throw expected('a structure')
      const out: Record<string, unknown> = {}
      for (const [k, s] of Object.entries(shape.fields)) {
        const v = coerce((value as Record<string, unknown>)[k], s, path ? `${path}.${lowerFirst(k)}` : lowerFirst(k))
        if (v !== undefined) out[k] = v
      }
      return out
    }
  }
}

function check(value: unknown, shape: Shape, path: string, errors: string[]): void {
  const shown = value === undefined ? 'null' : `'${typeof value === 'object' ? JSON.stringify(value) : String(value)}'`
  const fail = (constraint: string) => { if (errors.length < 10) errors.push(`Value ${shown} at '${path}' failed to satisfy constraint: ${constraint}`) }
  if (value === undefined) {
    if (shape.required) fail('Member must not be null')
    return
  }
  const length = (n: number, s: { min?: number; max?: number }) => {
    if (s.min !== undefined && n < s.min) fail(`Member must have length greater than or equal to ${s.min}`)
    if (s.max !== undefined && n > s.max) fail(`Member must have length less than or equal to ${s.max}`)
  }
  switch (shape.type) {
    case 'string': {
      const s = value as string
      if (shape.enum && !shape.enum.includes(s)) fail(`Member must satisfy enum value set: [${shape.enum.join(', ')}]`)
      if (shape.pattern && !new RegExp(`^(?:${shape.pattern})$`, 'u').test(s)) fail(`Member must satisfy regular expression pattern: ${shape.pattern}`)
      length(s.length, shape)
      return
    }
    case 'integer': {
      const n = value as number
      if (shape.min !== undefined && n < shape.min) fail(`Member must have value greater than or equal to ${shape.min}`)
      if (shape.max !== undefined && n > shape.max) fail(`Member must have value less than or equal to ${shape.max}`)
      return
    }
    case 'timestamp':
      return
    case 'list': {
      const list = value as unknown[]
      length(list.length, shape)
      list.forEach((v, i) => check(v, { ...shape.member, required: true } as Shape, `${path}.${i + 1}.member`, errors))
      return
    }
    case 'map': {
      const entries = Object.entries(value as object)
      length(entries.length, shape)
      for (const [k, v] of entries) {
        check(k, shape.key, `${path}.key`, errors)
        check(v, { ...shape.value, required: true } as Shape, `${path}.${k}`, errors)
      }
      return
    }
    case 'structure':
      for (const [k, s] of Object.entries(shape.fields)) check((value as Record<string, unknown>)[k], s, path ? `${path}.${lowerFirst(k)}` : lowerFirst(k), errors)
      return
  }
}

/** Validates a request body against an action's input fields; returns the coerced request. */
export function validate<T>(body: unknown, fields: Record<string, Shape>): T {
  const shape: Shape = { type: 'structure', fields }
  const value = coerce(body ?? {}, shape, '')
  const errors: string[] = []
  check(value, shape, '', errors)
  if (errors.length) throw invalidArgument(`${errors.length} validation error${errors.length > 1 ? 's' : ''} detected: ${errors.join('; ')}`)
  return value as T
}
