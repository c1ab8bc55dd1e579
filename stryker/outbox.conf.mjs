// The agent outbox's commit and deletion: the group commit (records, acknowledged batches' deletions,
// room at the file cap), the ledger that only takes a transaction's draft once it committed, and
// Batches.remove, the deletion of an acknowledged batch with its records.
import { linesBetween, mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'outbox',
  mutate: ['agent/outbox/commit.ts', 'agent/outbox/ledger.ts', linesBetween('agent/outbox/batches.ts', /an acknowledged batch leaves, with its records/, /^}$/)],
  testFiles: ['test/agent/outbox.test.ts', 'test/agent/outbox-commit.test.ts'],
})
