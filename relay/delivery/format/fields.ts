import type { Column } from '../types.js'

/** A record's data as a JSON object, or why it is not one. */
export function parseObject(data: Buffer): { value: Record<string, unknown> } | { error: string } {
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch (err) {
    return { error: `the record is not JSON: ${(err as Error).message}` }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { error: `the record is JSON but not an object (${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})` }
  }
  return { value: value as Record<string, unknown> }
}

/** The column's path split once: a dotted path, the column's name by default. */
export function columnPath(column: Column): string[] {
  return (column.path ?? column.name).split('.')
}

/**
 * The value at a split path, undefined when any step is missing or not an object. Only the record's
 * own properties count: a step named `constructor`, `toString` or `__proto__` must not read
 * Object.prototype's (JSON.parse makes even `"__proto__"` an own property when the record has it).
 */
export function valueAt(record: Record<string, unknown>, path: readonly string[]): unknown {
  let at: unknown = record
  for (const step of path) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, step)) return undefined
    at = (at as Record<string, unknown>)[step]
  }
  return at
}
