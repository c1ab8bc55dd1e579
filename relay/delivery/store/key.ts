/**
 * Object keys as every object store accepts them. A key is built from record data (dynamic
 * partitioning puts field values into the prefix), so it is checked before it reaches a file system
 * or a bucket: the files store must never write outside its directory, and the same key must mean
 * the same thing whatever the target, so S3 and memory refuse what files refuse.
 */
import { DeliveryError } from '../types.js'

/** Names of files being written; never a key segment, so list() can skip them. */
export const TEMP_MARKER = '.tributary-tmp-'

/** S3's limit, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024
/** Most Linux file systems' limit on one name (a key segment becomes a file or directory name). */
export const MAX_SEGMENT_BYTES = 255

/** Why `key` is not a valid object key, or null when it is. */
export function keyProblem(key: string): string | null {
  if (key.length === 0) return 'the key is empty'
  if (key.includes('\0')) return 'the key contains a NUL character'
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `the key is longer than ${MAX_KEY_BYTES} bytes`
  if (key.startsWith('/')) return 'the key is an absolute path'
  for (const segment of key.split('/')) {
    if (segment === '') return 'the key has an empty segment (// or a trailing /)'
    if (segment === '.' || segment === '..') return `the key has a "${segment}" segment`
    if (segment.startsWith(TEMP_MARKER)) return `a key segment starts with ${TEMP_MARKER}, the files store's temporary names`
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a key segment is longer than ${MAX_SEGMENT_BYTES} bytes`
  }
  return null
}

/** Throws `<codePrefix>.InvalidKey` (not retryable: the same key fails again) unless `key` is valid. */
export function checkKey(key: string, codePrefix: string): void {
  const problem = keyProblem(key)
  if (problem !== null) throw new DeliveryError(`${codePrefix}.InvalidKey`, `invalid object key ${JSON.stringify(key)}: ${problem}`, { retryable: false })
}

/** Throws `<codePrefix>.InvalidKey` for a list prefix that could walk out of the store (`..`, absolute, NUL). */
export function checkPrefix(prefix: string, codePrefix: string): void {
  if (prefix === '') return
  const cut = prefix.lastIndexOf('/')
  const problem = prefix.includes('\0')
    ? 'the prefix contains a NUL character'
    : cut >= 0 ? keyProblem(prefix.slice(0, cut)) : null
  if (problem !== null) throw new DeliveryError(`${codePrefix}.InvalidKey`, `invalid key prefix ${JSON.stringify(prefix)}: ${problem.replace('the key', 'its directory part')}`, { retryable: false })
}

/** S3's order: by UTF-8 bytes (not UTF-16 code units, which differ above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}
