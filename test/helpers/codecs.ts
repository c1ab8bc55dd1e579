/**
 * The two implementations of the hot path, for suites that run against both: the TypeScript
 * fallback always, the C addon unless it is not built or TRIBUTARY_NATIVE=0 forces the fallback.
 */
import { loadAddon, loadCodec, type Addon, type Codec } from '../../hardware/index.js'

let loaded: Addon | null = null
let why = ''
try { loaded = loadAddon() } catch (err) { why = (err as Error).message }

/** The raw addon, when it loads. */
export const addon = loaded
/** Why tests of the addon are skipped, or false when they run. */
export const nativeSkip: string | false = process.env.TRIBUTARY_NATIVE === '0' ? 'TRIBUTARY_NATIVE=0' : addon ? false : `the addon is not built: ${why}`

/** [name, a fresh codec, skip reason] for each implementation. */
export const implementations: [string, () => Codec, string | false][] = [
  ['the TypeScript fallback', () => loadCodec({ TRIBUTARY_NATIVE: '0' }), false],
  ['the C addon', () => loadCodec({}, () => {}), nativeSkip],
]
