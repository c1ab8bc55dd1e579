/** One parser per configured type, dispatched in one place. */
import { lineParser } from './lines.js'
import { delimiterParser, frameParser } from './binary.js'
import type { Parser, ParserConfig, ParserSink } from './types.js'

export { FramingError, type Parser, type ParserConfig, type ParserSink, type Reading } from './types.js'

export function createParser(config: ParserConfig, sink: ParserSink): Parser {
  switch (config.type) {
    case 'lines':
    case 'nmea':
    case 'json':
    case 'csv':
    case 'kv':
      return lineParser(config, sink)
    case 'delimiter':
      return delimiterParser(config, sink)
    case 'fixed':
    case 'length-prefixed':
      return frameParser(config, sink)
  }
}
