// Ingest and producer dedupe: validation, routing and appending of device batches and PutRecords, and
// the per-record idempotency table that completes a resent batch instead of duplicating it.
import { mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'ingest',
  mutate: ['relay/ingest.ts', 'relay/producers.ts'],
  testFiles: [
    'test/relay/ingest.test.ts',
    'test/relay/ingest-autocreate.test.ts',
    'test/relay/producers.test.ts',
    'test/relay/streams.test.ts',
    'test/relay/durability.test.ts',
    // The ingest path end to end through the broker, in this process: limits, rejects, a full store.
    'test/relay/mqtt-ingest.test.ts',
  ],
})
