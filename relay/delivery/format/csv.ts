/**
 * JSON records to CSV: one line per record with the configured columns, quoted as RFC 4180 says
 * (a field holding a comma, a double quote, CR or LF is enclosed in double quotes, and its double
 * quotes doubled). Lines end with LF, as the files Unix tools and Athena's OpenCSVSerDe read.
 */
import type { Column, OutputRecord } from '../types.js'
import { columnPath, parseObject, valueAt } from './fields.js'
import { RecordErrorCode } from './errors.js'
import type { FailedRecord } from './types.js'

const NEEDS_QUOTES = /[",\r\n]/

/** One field's text: strings as they are, null and missing as nothing, anything else as JSON. */
export function csvField(value: unknown): string {
  if (value === undefined || value === null) return ''
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

export function encodeCsv(records: readonly OutputRecord[], columns: readonly Column[], header: boolean): { body: Buffer; failed: FailedRecord[] } {
  const paths = columns.map(columnPath)
  const lines: string[] = []
  const failed: FailedRecord[] = []
  if (header) lines.push(columns.map((c) => csvField(c.name)).join(',') + '\n')
  for (const record of records) {
    const parsed = parseObject(record.data)
    if ('error' in parsed) {
      failed.push({ record, code: RecordErrorCode.malformedData, message: parsed.error })
      continue
    }
    let line = ''
    for (let i = 0; i < paths.length; i++) {
      if (i > 0) line += ','
      line += csvField(valueAt(parsed.value, paths[i]!))
    }
    lines.push(line + '\n')
  }
  return { body: Buffer.from(lines.join(''), 'utf8'), failed }
}
