// Counts the subtests of each test file in TAP output (tap's --reporter=tap): a line
// "    ok N - name" or "    not ok N - name" one level below a file; "# SKIP" marks skips. A file
// that fails with no failing subtest of its own (a crash, a non-zero exit) counts as one failure.
// In CI (CI set) a skip is a failure unless it is one of the two kinds that may skip there: a
// hardware-in-the-loop test with no device attached, or an addon-only test in the run that forces
// the TypeScript implementation. A tool that failed to install must not turn green by skipping.
import { readFileSync, existsSync } from 'node:fs'

const MAY_SKIP = [/no real serial device/, /no real camera/, /^TRIBUTARY_NATIVE=0\b/]
const strict = Boolean(process.env.CI)

let passed = 0
let failed = 0
let skipped = 0
for (const path of process.argv.slice(2)) {
  if (!existsSync(path)) { failed++; continue }
  let failedInFile = 0
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const sub = /^ {4}(not )?ok \d+ - .*?(# (SKIP|skip|TODO) ?(.*))?$/.exec(line)
    if (sub) {
      if (sub[2] && strict && !MAY_SKIP.some((re) => re.test(sub[4] ?? ''))) {
        console.error(`skipped in CI, counted as a failure: ${path}: ${line.trim()}`)
        failed++
        failedInFile++
      } else if (sub[2]) skipped++
      else if (sub[1]) { failed++; failedInFile++ }
      else passed++
      continue
    }
    const top = /^(not )?ok \d+ - /.exec(line)
    if (top) {
      if (top[1] && failedInFile === 0) failed++
      failedInFile = 0
    }
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
