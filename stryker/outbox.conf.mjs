// The agent outbox's commit and deletion: the group commit (records, acknowledged batches' deletions,
// room at the file cap), the ledger that only takes a transaction's draft once it committed, and
// Batches.remove, the deletion of an acknowledged batch with its records.
import { mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'outbox',
  mutate: ['agent/outbox/commit.ts', 'agent/outbox/ledger.ts', 'agent/outbox/batches.ts:101-113'],
  testFiles: ['test/agent/outbox.test.ts'],
})
