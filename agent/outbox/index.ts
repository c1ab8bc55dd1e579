/** The outbox: what the rest of the agent, the tests and the benchmarks use. */
export { Outbox } from './outbox.js'
export { frameBytes } from './types.js'
export type { OutboxInput, OutboxOptions, FormedBatch, BatchRow, DropReason, Alarm, Refusal, DeadLetter } from './types.js'
export type { OutboxStats, StreamStats } from './stats.js'
export type { BatchFormer } from './commit.js'
export { ACK_HOLD_MS } from './commit.js'
export { OutboxFullError } from '../../shared/errors.js'
