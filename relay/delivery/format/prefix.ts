/**
 * Firehose's S3 prefix templates:
 *   !{timestamp:<DateTimeFormatter pattern>}   the batch's arrival time, UTC
 *   !{partitionKeyFromQuery:<key>}             a dynamic-partitioning key (jq)
 *   !{partitionKeyFromLambda:<key>}            a key the transform returned
 *   !{firehose:error-output-type}              why records failed (error prefixes)
 *   !{firehose:random-string}                  11 characters; here derived from the batch id, so a
 *                                              redelivered batch gets the same key
 * and the rule that a prefix with no timestamp expression, without dynamic partitioning, gets
 * `yyyy/MM/dd/HH/` appended. Keys end with `{stream}-{shard}-{first}-{last}{extension}` in place of
 * Firehose's random suffix, for the same reason.
 */
import { createHash } from 'node:crypto'
import type { BatchId } from '../types.js'
import { FormatError, FormatErrorCode } from './errors.js'

export interface PrefixValues {
  arrivalMs: number
  partitionKeys: Record<string, string>
  errorOutputType?: string
  batch: BatchId
}

/** A template's pieces: literal text, or an expression to evaluate. */
export type PrefixPart =
  | { type: 'text'; text: string }
  | { type: 'timestamp'; format: DatePart[] }
  | { type: 'partitionKey'; source: 'query' | 'lambda'; key: string }
  | { type: 'errorOutputType' }
  | { type: 'randomString' }

/** A DateTimeFormatter pattern's pieces: a field of `count` letters, or literal text. */
export type DatePart = { letter: string; count: number } | { text: string }

/** The letters understood, with the widths DateTimeFormatter accepts for each. */
const DATE_LETTERS: Record<string, readonly number[]> = {
  y: [1, 2, 3, 4], u: [1, 2, 3, 4], M: [1, 2, 3, 4], d: [1, 2], D: [1, 2, 3], H: [1, 2], m: [1, 2], s: [1, 2], S: [1, 2, 3],
}
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

function invalid(template: string, expression: string, why: string): FormatError {
  return new FormatError(FormatErrorCode.PREFIX_INVALID, `prefix "${template}": ${expression} ${why}`)
}

function parseDatePattern(template: string, expression: string, pattern: string): DatePart[] {
  const parts: DatePart[] = []
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]!
    if (c === "'") {
      // Quoted literal; '' is a quote, inside or outside quotes.
      if (pattern[i + 1] === "'") { parts.push({ text: "'" }); i += 2; continue }
      let text = ''
      i++
      for (;;) {
        if (i >= pattern.length) throw invalid(template, expression, 'has an unclosed quote')
        if (pattern[i] === "'") {
          if (pattern[i + 1] === "'") { text += "'"; i += 2; continue }
          i++
          break
        }
        text += pattern[i++]
      }
      parts.push({ text })
    } else if (/[A-Za-z]/.test(c)) {
      let count = 1
      while (pattern[i + count] === c) count++
      const widths = DATE_LETTERS[c]
      if (widths === undefined) throw invalid(template, expression, `uses the pattern letter '${c}', which is not supported (use y, M, d, D, H, m, s, S or quoted text)`)
      if (!widths.includes(count)) throw invalid(template, expression, `has '${c.repeat(count)}': '${c}' may appear ${widths.join(', ')} times`)
      parts.push({ letter: c, count })
      i += count
    } else if ('[]#{}'.includes(c)) {
      throw invalid(template, expression, `uses '${c}', which DateTimeFormatter reserves and is not supported here`)
    } else {
      parts.push({ text: c })
      i++
    }
  }
  if (parts.length === 0) throw invalid(template, expression, 'has an empty pattern')
  return parts
}

function parseExpression(template: string, body: string): PrefixPart {
  const expression = `!{${body}}`
  const colon = body.indexOf(':')
  if (colon < 0) throw invalid(template, expression, 'has no namespace (expected timestamp:, partitionKeyFromQuery:, partitionKeyFromLambda: or firehose:)')
  const namespace = body.slice(0, colon).trim()
  const arg = body.slice(colon + 1)
  switch (namespace) {
    case 'timestamp': return { type: 'timestamp', format: parseDatePattern(template, expression, arg) }
    case 'partitionKeyFromQuery':
    case 'partitionKeyFromLambda': {
      const key = arg.trim()
      if (key === '') throw invalid(template, expression, 'names no key')
      return { type: 'partitionKey', source: namespace === 'partitionKeyFromQuery' ? 'query' : 'lambda', key }
    }
    case 'firehose':
      if (arg.trim() === 'error-output-type') return { type: 'errorOutputType' }
      if (arg.trim() === 'random-string') return { type: 'randomString' }
      throw invalid(template, expression, 'is not firehose:error-output-type or firehose:random-string')
    default:
      throw invalid(template, expression, `has the unknown namespace "${namespace}"`)
  }
}

const parsed = new Map<string, PrefixPart[]>()
const PARSED_CACHE_MAX = 1024

/** A template's parts; throws a FormatError PREFIX_INVALID naming the bad expression. */
export function parsePrefix(template: string): PrefixPart[] {
  const cached = parsed.get(template)
  if (cached !== undefined) return cached
  const parts: PrefixPart[] = []
  let at = 0
  while (at < template.length) {
    const open = template.indexOf('!{', at)
    if (open < 0) { parts.push({ type: 'text', text: template.slice(at) }); break }
    if (open > at) parts.push({ type: 'text', text: template.slice(at, open) })
    const close = template.indexOf('}', open + 2)
    if (close < 0) throw invalid(template, template.slice(open), 'is not closed by }')
    parts.push(parseExpression(template, template.slice(open + 2, close)))
    at = close + 1
  }
  if (parsed.size >= PARSED_CACHE_MAX) parsed.clear()
  parsed.set(template, parts)
  return parts
}

/** Checks a template up front: throws a FormatError PREFIX_INVALID naming the bad expression. */
export function checkPrefix(template: string): void {
  parsePrefix(template)
}

/** What a template uses, for checking a config against it (e.g. the partition keys it needs). */
export function prefixUses(template: string): { timestamp: boolean; partitionKeys: { source: 'query' | 'lambda'; key: string }[]; errorOutputType: boolean; randomString: boolean } {
  const parts = parsePrefix(template)
  return {
    timestamp: parts.some((p) => p.type === 'timestamp'),
    partitionKeys: parts.flatMap((p) => (p.type === 'partitionKey' ? [{ source: p.source, key: p.key }] : [])),
    errorOutputType: parts.some((p) => p.type === 'errorOutputType'),
    randomString: parts.some((p) => p.type === 'randomString'),
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}

export function formatTimestamp(format: readonly DatePart[], ms: number): string {
  const d = new Date(ms)
  let out = ''
  for (const p of format) {
    if ('text' in p) { out += p.text; continue }
    const { letter, count } = p
    switch (letter) {
      case 'y':
      case 'u': out += count === 2 ? pad(d.getUTCFullYear() % 100, 2) : pad(d.getUTCFullYear(), count); break
      case 'M': {
        const month = d.getUTCMonth()
        out += count >= 4 ? MONTHS[month]! : count === 3 ? MONTHS[month]!.slice(0, 3) : pad(month + 1, count)
        break
      }
      case 'd': out += pad(d.getUTCDate(), count); break
      case 'D': out += pad(Math.floor((ms - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, count); break
      case 'H': out += pad(d.getUTCHours(), count); break
      case 'm': out += pad(d.getUTCMinutes(), count); break
      case 's': out += pad(d.getUTCSeconds(), count); break
      case 'S': out += pad(d.getUTCMilliseconds(), 3).slice(0, count); break
    }
  }
  return out
}

const RANDOM_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'
const RANDOM_LENGTH = 11

/** Firehose's random string, made deterministic: 11 of [0-9a-z] from a SHA-256 of the batch id. */
export function batchRandomString(batch: BatchId): string {
  const hash = createHash('sha256').update(`${batch.deliveryStream}\n${batch.shardId}\n${batch.firstSequence}\n${batch.lastSequence}`).digest()
  let out = ''
  for (let i = 0; i < RANDOM_LENGTH; i++) out += RANDOM_ALPHABET[hash[i]! % RANDOM_ALPHABET.length]
  return out
}

/** The prefix a template gives for these values; throws a FormatError when a value it names is missing. */
export function resolvePrefix(template: string, values: PrefixValues): string {
  let out = ''
  for (const part of parsePrefix(template)) {
    switch (part.type) {
      case 'text': out += part.text; break
      case 'timestamp': out += formatTimestamp(part.format, values.arrivalMs); break
      case 'partitionKey': {
        const value = Object.hasOwn(values.partitionKeys, part.key) ? values.partitionKeys[part.key] : undefined
        if (value === undefined) {
          const from = part.source === 'query' ? 'dynamic partitioning' : 'the transform'
          throw new FormatError(FormatErrorCode.PARTITION_KEY_MISSING, `prefix "${template}" needs the partition key "${part.key}", which ${from} did not give this record`)
        }
        out += value
        break
      }
      case 'errorOutputType':
        if (values.errorOutputType === undefined) throw invalid(template, '!{firehose:error-output-type}', 'is only for error prefixes (no error output type here)')
        out += values.errorOutputType
        break
      case 'randomString': out += batchRandomString(values.batch); break
    }
  }
  return out
}

const DEFAULT_TIME_FORMAT = parseDatePattern('yyyy/MM/dd/HH/', 'the default time prefix', 'yyyy/MM/dd/HH/')

/**
 * Firehose's rule: a prefix with no timestamp expression, used without dynamic partitioning, gets
 * `yyyy/MM/dd/HH/` (UTC, of arrivalMs) appended. Takes and returns a template (the appended time
 * is literal text), so it composes with resolvePrefix.
 */
export function defaultTimePrefix(template: string, arrivalMs: number, dynamic: boolean): string {
  if (dynamic || prefixUses(template).timestamp) return template
  return template + formatTimestamp(DEFAULT_TIME_FORMAT, arrivalMs)
}

/** An object's prefix: the template with Firehose's default time prefix where it applies, resolved. */
export function objectPrefix(template: string, values: PrefixValues, dynamic: boolean): string {
  return resolvePrefix(defaultTimePrefix(template, values.arrivalMs, dynamic), values)
}

/** An object's key: the prefix, then the batch's identity in place of Firehose's random suffix. */
export function objectKey(prefix: string, batch: BatchId, extension: string): string {
  return `${prefix}${batch.deliveryStream}-${batch.shardId}-${batch.firstSequence}-${batch.lastSequence}${extension}`
}
