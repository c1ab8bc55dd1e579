/** Delivery streams (Kinesis Data Firehose): what the rest of the relay may import. */
export { DELIVERY_NAME, normalizeDeliveryConfig, parseDeliveryFile, readDeliveryFile, type DeliveryFile } from './config.js'
export { BACKING_PREFIX, Deliveries, MAX_DELIVERY_STREAMS, openDeliveries, type DeliveriesOptions } from './service.js'
export { checkpointConsumer } from './runner.js'
export * from './types.js'
export { checkPrefix, FormatError, FormatErrorCode, prefixUses } from './format/index.js'
