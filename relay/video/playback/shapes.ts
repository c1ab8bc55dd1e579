/** Request shapes the playback actions share (the models' constraints, as relay/video/api.ts's). */
import { invalidArgument } from '../errors.js'
import type { Shape } from '../validate.js'

export const StreamName: Shape = { type: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 256 }
export const StreamARN: Shape = { type: 'string', pattern: 'arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+', min: 1, max: 1024 }
export const FragmentNumber: Shape = { type: 'string', pattern: '[0-9]+', min: 1, max: 128 }
export const SelectorType: Shape = { type: 'string', enum: ['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP'] }

export interface Named { StreamName?: string; StreamARN?: string }
export interface Range { StartTimestamp?: number; EndTimestamp?: number }

/** A requested range is at most a day, as AWS's are. */
export const MAX_RANGE_MS = 24 * 3_600_000

/** Checks an end timestamp against its start: later, and within a day. */
export function checkRange(startMs: number, endMs: number): void {
  if (endMs <= startMs) throw invalidArgument('EndTimestamp must be later than StartTimestamp.')
  if (endMs - startMs > MAX_RANGE_MS) throw invalidArgument('EndTimestamp must be within 24 hours of StartTimestamp.')
}

export const origin = (type: string | undefined): 'producer' | 'server' => (type === 'PRODUCER_TIMESTAMP' ? 'producer' : 'server')
