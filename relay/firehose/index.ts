/** The Firehose API (relay/firehose/): what the routes, the relay and the CLI use. */
export { FirehoseApi, FIREHOSE_TARGET_PREFIX, firehosePolicy, isFirehoseTarget, type FirehoseAnswer, type FirehoseApiOptions } from './api.js'
export { FirehoseClient, type FirehoseClientOptions } from './client.js'
export { FirehoseError, FirehoseErrorType } from './errors.js'
export type { DeliveryStreamStatsJson } from './actions/stats.js'
