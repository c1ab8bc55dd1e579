// The shard log's commit and recovery: the group commit, the recovery walk, and the commit path of the
// file store (fileshard.ts: append, pend, flush, discardPending; segment.ts: the write and its datasync).
import { mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'log',
  mutate: [
    'relay/log/commit.ts',
    'relay/log/recovery.ts',
    'relay/log/fileshard.ts:104-192',
    'relay/log/segment.ts:79-86',
  ],
  testFiles: [
    'test/relay/log-commit.test.ts',
    'test/relay/log.test.ts',
    'test/relay/log-contract.test.ts',
    'test/relay/log-encrypted.test.ts',
    'test/relay/durability.test.ts',
  ],
})
