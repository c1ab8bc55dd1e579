/** The Firehose API's X-Amz-Target prefix (JSON 1.1, as every Firehose client sends it). */
export const FIREHOSE_TARGET_PREFIX = 'Firehose_20150804.'
