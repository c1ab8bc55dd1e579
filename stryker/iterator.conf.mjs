// Iterator authentication: a shard iterator is refused unless its MAC, version, encoding and age hold.
import { mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'iterator',
  mutate: ['relay/kinesis/iterator.ts'],
  testFiles: ['test/relay/kinesis-units.test.ts'],
})
