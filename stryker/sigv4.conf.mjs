// SigV4 verification: verifySigV4, checkSigV4Headers, the Kinesis policy, and the canonical-request,
// date and crypto helpers they share with the signer. Left out: signSigV4 (from its doc comment to the
// end of the file), the signer of Tributary's own CLI. It only signs; a mistake there makes every CLI
// request fail against the relay's verifier (test/relay/cli*.test.ts), never silently accepts a bad one.
import { linesBetween, mutationConfig } from './base.mjs'

export default mutationConfig({
  group: 'sigv4',
  mutate: [linesBetween('relay/kinesis/sigv4.ts', /^/, /^ \* Signs a request/).replace(/-(\d+)$/, (_, n) => `-${Number(n) - 1}`)],
  testFiles: ['test/relay/sigv4.test.ts'],
})
