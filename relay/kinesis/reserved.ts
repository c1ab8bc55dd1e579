/**
 * Members of AWS's model (the SDK's service model) that the relay accepts but does not act on. AWS
 * checks every member's JSON type before anything else (a wrong one is a SerializationException),
 * so these are checked the same way, in one place before the action runs, and then ignored;
 * docs/compatibility.md lists them.
 */
import { checkTypes, type Shape } from './validate.js'

/** "Not Implemented. Reserved for future use." (API reference), on every action that names a stream or resource. */
const StreamId: Shape = { type: 'string' }
/** "Checks if your request will succeed": a dry run is not served; the request runs. */
const DryRun: Shape = { type: 'boolean' }
/** Warm throughput, record size limits and record distribution: AWS billing and sizing features the relay does not have. */
const WarmThroughputMiBps: Shape = { type: 'integer' }

const WITHOUT_STREAM_ID = new Set(['CreateStream', 'ListStreams', 'DescribeLimits'])
const EXTRA: Record<string, Record<string, Shape>> = {
  CreateStream: { WarmThroughputMiBps, MaxRecordSizeInKiB: { type: 'integer' }, RecordDistributionStrategy: { type: 'string' } },
  UpdateStreamMode: { WarmThroughputMiBps },
  GetRecords: { DryRun },
  GetShardIterator: { DryRun },
  PutRecord: { DryRun },
  PutRecords: { DryRun },
  SubscribeToShard: { DryRun },
}

/** Each action's reserved members, made once per action (PutRecords runs this on every call). */
const FIELDS = new Map<string, Record<string, Shape>>()

/** Checks the JSON types of the members of `action` the relay does not act on (SerializationException in AWS's wording). */
export function checkReservedMembers(action: string, request: Record<string, unknown>): void {
  let fields = FIELDS.get(action)
  if (!fields) {
    fields = { ...(WITHOUT_STREAM_ID.has(action) ? {} : { StreamId }), ...EXTRA[action] }
    FIELDS.set(action, fields)
  }
  checkTypes(request, fields)
}
