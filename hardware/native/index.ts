/**
 * The loader: picks the C addon when it is built and loads, else the TypeScript fallback, and says
 * which runs and why. `TRIBUTARY_NATIVE=0` forces the fallback. The addon itself is a later issue;
 * until it exists the fallback runs and the reason says so.
 */
import * as js from './fallback.js'
import type { Codec } from './types.js'

export type { Codec, DecodedBatch, DecodedRecord, LogScan } from './types.js'
export { u128BEToBigint, readLogOffset, readLogArrival, readLogLength } from './fallback.js'

function fallback(reason: string): Codec {
  return {
    implementation: 'js',
    reason,
    crc32c: js.crc32c,
    md5Many: js.md5Many,
    encodeBatch: js.encodeBatch,
    decodeBatch: js.decodeBatch,
    logRecordSize: js.logRecordSize,
    encodeLogRecord: js.encodeLogRecord,
    scanLog: js.scanLog,
    decodeLogRecord: js.decodeLogRecord,
  }
}

export function loadCodec(env: NodeJS.ProcessEnv = process.env): Codec {
  if (env.TRIBUTARY_NATIVE === '0') return fallback('TRIBUTARY_NATIVE=0 forces the TypeScript fallback')
  return fallback('the native addon is not built in this version; using the TypeScript implementation')
}

/** The codec every module uses unless a test passes another. */
export const codec: Codec = loadCodec()
