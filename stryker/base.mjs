/**
 * What every mutation run shares. Each stryker/<group>.conf.mjs names the source it mutates and the
 * tap files that exercise it, so one run takes minutes; scripts/mutation.mjs runs them in turn and
 * prints the scores. Not part of `npm test` or CI (too slow): run `npm run test:mutation` before
 * closing an issue that touches these modules.
 */

import { readFileSync } from 'node:fs'

/**
 * `file:first-last` for the lines from the first one matching `from` to the line before the next one
 * matching `to` (or to the end), so a mutated range follows the code when lines move.
 * @param {string} file @param {RegExp} from @param {RegExp | null} to
 */
export function linesBetween(file, from, to) {
  const lines = readFileSync(file, 'utf8').split('\n')
  const first = lines.findIndex((l) => from.test(l))
  if (first < 0) throw new Error(`${file}: no line matches ${from}`)
  const after = to ? lines.findIndex((l, i) => i > first && to.test(l)) : -1
  const last = after < 0 ? lines.length : after
  return `${file}:${first + 1}-${last}`
}

/**
 * @param {{ group: string, mutate: string[], testFiles: string[], timeoutMS?: number }} o
 * @returns {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export function mutationConfig({ group, mutate, testFiles, timeoutMS = 10_000 }) {
  return {
    testRunner: 'tap',
    plugins: ['@stryker-mutator/tap-runner'],
    // The tap runner runs each file with node directly (not through tap's CLI), so it needs tsx itself.
    tap: { testFiles, nodeArgs: ['--import=tsx'], forceBail: true },
    mutate,
    // Each test file is one "test": a mutant runs only against the files that reached it.
    coverageAnalysis: 'perTest',
    // The machine is shared: one test process at a time.
    concurrency: 1,
    timeoutMS,
    reporters: ['progress', 'clear-text', 'json'],
    jsonReporter: { fileName: `reports/mutation/${group}.json` },
    clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    ignorePatterns: ['dist', 'bench', 'deploy', '.tap', '.ci/out', 'reports', 'data', 'tmp', '.stryker-tmp*'],
    thresholds: { high: 90, low: 80, break: null },
  }
}
