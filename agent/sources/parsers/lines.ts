/**
 * Line parsers: newline-terminated text (a trailing CR is dropped, empty lines are skipped), each line
 * then read as plain text, an NMEA 0183 sentence, JSON, CSV, or key=value pairs.
 */
import { Splitter } from './splitter.js'
import { FramingError, excerpt, type Parser, type ParserConfig, type ParserSink } from './types.js'

type LineConfig = Extract<ParserConfig, { maxLineBytes: number }>
type LineResult = { ok: true; data: Buffer; fields: Record<string, unknown> | null } | { ok: false; code: FramingError; detail: string }

const NEWLINE = Buffer.from('\n')
const utf8 = new TextDecoder('utf-8', { fatal: true })

function text(line: Buffer): string | null {
  try { return utf8.decode(line) } catch { return null }
}

/** A number when the whole value reads as one, else the string. */
function scalar(v: string): string | number {
  const t = v.trim()
  return t !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : t
}

/** NMEA 0183: `$` or `!`, an address, comma-separated fields, `*` and two hex digits (XOR of the bytes between). */
export function readNmea(line: Buffer, requireChecksum: boolean): LineResult {
  const s = line.toString('latin1')
  if (!/^[$!][\x20-\x7e]+$/.test(s)) return { ok: false, code: FramingError.MALFORMED, detail: `not an NMEA sentence: ${excerpt(line)}` }
  const star = s.lastIndexOf('*')
  const body = star < 0 ? s.slice(1) : s.slice(1, star)
  if (star < 0) {
    if (requireChecksum) return { ok: false, code: FramingError.BAD_CHECKSUM, detail: `sentence without a checksum: ${excerpt(line)}` }
  } else {
    const given = s.slice(star + 1)
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, code: FramingError.BAD_CHECKSUM, detail: `checksum is not two hex digits: ${excerpt(line)}` }
    let sum = 0
    for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i)
    if (sum !== parseInt(given, 16)) return { ok: false, code: FramingError.BAD_CHECKSUM, detail: `checksum ${given.toUpperCase()} does not match ${sum.toString(16).toUpperCase().padStart(2, '0')}: ${excerpt(line)}` }
  }
  const fields = body.split(',')
  const address = fields[0] ?? ''
  if (!/^[A-Z0-9]{2,}$/.test(address)) return { ok: false, code: FramingError.MALFORMED, detail: `bad NMEA address ${JSON.stringify(address.slice(0, 16))}` }
  // Proprietary sentences ($P...) have a one-letter talker.
  const talker = address.startsWith('P') ? 'P' : address.slice(0, 2)
  return { ok: true, data: line, fields: { address, talker, sentence: address.slice(talker.length), fields: fields.slice(1) } }
}

export function readJson(line: Buffer): LineResult {
  const t = text(line)
  if (t === null) return { ok: false, code: FramingError.BAD_ENCODING, detail: `not UTF-8: ${excerpt(line)}` }
  let value: unknown
  try { value = JSON.parse(t) } catch (err) { return { ok: false, code: FramingError.MALFORMED, detail: `not JSON (${(err as Error).message}): ${excerpt(line)}` } }
  return { ok: true, data: line, fields: value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null }
}

/** One CSV record on one line (RFC 4180 quoting, no embedded newlines). Null when a quote is unterminated. */
export function splitCsv(line: string, separator: string): string[] | null {
  const out: string[] = []
  let i = 0
  for (;;) {
    let field = ''
    if (line[i] === '"') {
      i++
      for (;;) {
        if (i >= line.length) return null
        if (line[i] === '"') {
          if (line[i + 1] === '"') { field += '"'; i += 2; continue }
          i++
          break
        }
        field += line[i++]
      }
      if (i < line.length && !line.startsWith(separator, i)) return null
    } else {
      const next = line.indexOf(separator, i)
      field = line.slice(i, next < 0 ? line.length : next)
      i = next < 0 ? line.length : next
    }
    out.push(field)
    if (i >= line.length) return out
    i += separator.length
  }
}

export function readKv(line: Buffer): LineResult {
  const t = text(line)
  if (t === null) return { ok: false, code: FramingError.BAD_ENCODING, detail: `not UTF-8: ${excerpt(line)}` }
  const fields: Record<string, unknown> = {}
  for (const pair of t.split(/[\s,;]+/).filter(Boolean)) {
    const eq = pair.indexOf('=')
    const key = eq > 0 ? pair.slice(0, eq) : ''
    if (!/^[A-Za-z_][\w.-]*$/.test(key)) return { ok: false, code: FramingError.MALFORMED, detail: `not key=value: ${excerpt(Buffer.from(pair))}` }
    fields[key] = scalar(pair.slice(eq + 1))
  }
  if (!Object.keys(fields).length) return { ok: false, code: FramingError.MALFORMED, detail: `no key=value pairs: ${excerpt(line)}` }
  return { ok: true, data: Buffer.from(JSON.stringify(fields)), fields }
}

export function lineParser(config: LineConfig, sink: ParserSink): Parser {
  // CSV with a header: the first whole line after each (re)open names the columns (an Arduino
  // prints its header again when opening the port resets it).
  let columns: string[] | null = config.type === 'csv' ? config.columns : null
  const fromHeader = config.type === 'csv' && !config.columns

  const readCsv = (line: Buffer, separator: string): LineResult | null => {
    const t = text(line)
    if (t === null) return { ok: false, code: FramingError.BAD_ENCODING, detail: `not UTF-8: ${excerpt(line)}` }
    const values = splitCsv(t, separator)
    if (!values) return { ok: false, code: FramingError.MALFORMED, detail: `unterminated quote: ${excerpt(line)}` }
    if (!columns) {
      columns = values.map((v) => v.trim())
      return null
    }
    if (values.length !== columns.length) return { ok: false, code: FramingError.MALFORMED, detail: `${values.length} values for ${columns.length} columns: ${excerpt(line)}` }
    const fields: Record<string, unknown> = {}
    columns.forEach((c, i) => { fields[c] = scalar(values[i]!) })
    return { ok: true, data: Buffer.from(JSON.stringify(fields)), fields }
  }

  const read = (line: Buffer): LineResult | null => {
    switch (config.type) {
      case 'lines': return text(line) === null ? { ok: false, code: FramingError.BAD_ENCODING, detail: `not UTF-8: ${excerpt(line)}` } : { ok: true, data: line, fields: null }
      case 'nmea': return readNmea(line, config.requireChecksum)
      case 'json': return readJson(line)
      case 'csv': return readCsv(line, config.separator)
      case 'kv': return readKv(line)
    }
  }

  const splitter = new Splitter(NEWLINE, config.maxLineBytes + 1, (raw) => {
    const line = raw.length && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw
    if (line.length === 0) return
    if (line.length > config.maxLineBytes) return sink.error(FramingError.TOO_LONG, `line over ${config.maxLineBytes} bytes cut: ${excerpt(line)}`)
    // The record keeps its own copy: the chunk it came from is not retained.
    const r = read(Buffer.from(line))
    if (!r) return
    if (r.ok) sink.reading({ data: r.data, fields: r.fields })
    else sink.error(r.code, r.detail)
  }, (head) => sink.error(FramingError.TOO_LONG, `line over ${config.maxLineBytes} bytes cut: ${excerpt(head)}`))

  return {
    push: (chunk) => splitter.push(chunk),
    reset: () => {
      const n = splitter.reset()
      if (n) sink.error(FramingError.PARTIAL, `${n} bytes of an unfinished line discarded`)
      if (fromHeader) columns = null
    },
  }
}
