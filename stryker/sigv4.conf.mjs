// SigV4 verification. Lines 1-376 are verifySigV4 and the canonical-request, date and crypto helpers it
// shares with the signer. Left out: signSigV4 (377-409), the signer of Tributary's own CLI. It only
// signs; a mistake there makes every CLI request fail against the relay's verifier (test/relay/cli*.test.ts),
// never silently accepts a bad one.
import { mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'sigv4',
  mutate: ['relay/kinesis/sigv4.ts:1-376'],
  testFiles: ['test/relay/sigv4.test.ts'],
})
