/**
 * The record sinks (PostgreSQL, HTTP endpoint, Splunk HEC): one entry point that opens the sink a
 * target names. Object sinks (files, S3) live elsewhere: they write objects, not records.
 */
import type { HttpTarget, PostgresTarget, RecordSink, SplunkTarget } from '../types.js'
import { HttpEndpointSink } from './http.js'
import { PostgresSink } from './postgres.js'
import { SplunkSink } from './splunk.js'

export { HttpEndpointSink, splitRecords, DEFAULT_MAX_REQUEST_BYTES, type HttpSinkOptions } from './http.js'
export { PostgresSink, quoteTableName, type PostgresSinkOptions } from './postgres.js'
export { SplunkSink, type SplunkSinkOptions } from './splunk.js'
export { batchRequestId, nameUuid } from './request-id.js'

export interface RecordSinkContext {
  deliveryStream: string
  region: string
  accountId: string
}

/** The sink of a record target. Throws a TypeError for a target that cannot work (bad URL, table name). */
export function openRecordSink(target: PostgresTarget | HttpTarget | SplunkTarget, context: RecordSinkContext): RecordSink {
  switch (target.type) {
    case 'postgres': return new PostgresSink(target)
    case 'http': return new HttpEndpointSink(target)
    case 'splunk': return new SplunkSink(target, { deliveryStream: context.deliveryStream })
  }
}
