// The shard log's commit and recovery: the group commit, the recovery walk, and the commit path of the
// file store (fileshard.ts: append, pend, flush, discardPending; segment.ts: the write and its datasync).
import { linesBetween, mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'log',
  mutate: [
    'relay/log/commit.ts',
    'relay/log/recovery.ts',
    linesBetween('relay/log/fileshard.ts', /---- append and commit ----/, /---- read ----/),
    linesBetween('relay/log/segment.ts', /async write\(data/, /No more records go here/),
  ],
  testFiles: [
    'test/relay/log-commit.test.ts',
    'test/relay/log.test.ts',
    'test/relay/log-recovery.test.ts',
    'test/relay/log-contract.test.ts',
    'test/relay/log-encrypted.test.ts',
    'test/relay/durability.test.ts',
  ],
})
