#!/usr/bin/env node
/**
 * Mutation testing of the modules where a silent bug costs the most (issue 10). Runs StrykerJS once
 * per stryker/<group>.conf.mjs, one after another, then prints per module: mutants killed, survived,
 * not covered, timed out, and the score (killed + timed out over all valid mutants), then every
 * survivor. Exits 1 when a run fails or a module scores under the goal.
 *
 *   npm run test:mutation              every group
 *   npm run test:mutation -- log sigv4  only these groups
 *   npm run test:mutation -- --table    only the table, from the reports of the last runs
 *
 * Stryker's own output goes to reports/mutation/<group>.log, its JSON report beside it.
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'

const GROUPS = ['log', 'outbox', 'sigv4', 'ingest', 'iterator']
/** Percent of valid mutants that must be detected in each module. */
const GOAL = 80
const REPORTS = 'reports/mutation'

const require = createRequire(import.meta.url)
const strykerBin = join(dirname(require.resolve('@stryker-mutator/core/package.json')), 'bin', 'stryker.js')

const tableOnly = process.argv.includes('--table')
const asked = process.argv.slice(2).filter((a) => a !== '--table')
const unknown = asked.filter((g) => !GROUPS.includes(g))
if (unknown.length) {
  console.error(`unknown group(s): ${unknown.join(', ')}; the groups are ${GROUPS.join(', ')}`)
  process.exit(2)
}
const groups = asked.length ? GROUPS.filter((g) => asked.includes(g)) : GROUPS

/** Runs one group's Stryker config; its output goes to a log file, its progress lines to stderr. */
function runGroup(group) {
  return new Promise((resolve) => {
    const logPath = join(REPORTS, `${group}.log`)
    const log = createWriteStream(logPath)
    const child = spawn(process.execPath, [strykerBin, 'run', `stryker/${group}.conf.mjs`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    })
    child.stderr.pipe(log, { end: false })
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      log.write(`${line}\n`)
      if (/^Mutation testing \d+%/.test(line)) process.stderr.write(`  ${group}: ${line}\n`)
    })
    child.on('close', (code) => {
      log.end()
      resolve({ code, logPath })
    })
  })
}

const DETECTED = new Set(['Killed', 'Timeout'])
const VALID = new Set(['Killed', 'Timeout', 'Survived', 'NoCoverage'])

function tally(mutants) {
  const count = (status) => mutants.filter((m) => m.status === status).length
  const valid = mutants.filter((m) => VALID.has(m.status)).length
  const detected = mutants.filter((m) => DETECTED.has(m.status)).length
  return {
    killed: count('Killed'),
    survived: count('Survived'),
    noCoverage: count('NoCoverage'),
    timeout: count('Timeout'),
    errors: count('CompileError') + count('RuntimeError'),
    valid,
    detected,
    score: valid ? (100 * detected) / valid : 100,
  }
}

const rows = []
const survivors = []
let failed = false
const startedAll = Date.now()
await mkdir(REPORTS, { recursive: true })

for (const group of groups) {
  const started = Date.now()
  if (!tableOnly) {
    process.stderr.write(`${group}: running (log in ${join(REPORTS, `${group}.log`)})\n`)
    const { code, logPath } = await runGroup(group)
    const seconds = Math.round((Date.now() - started) / 1000)
    if (code !== 0) {
      process.stderr.write(`${group}: Stryker exited with ${code} after ${seconds} s; see ${logPath}\n`)
      failed = true
      continue
    }
    process.stderr.write(`${group}: done in ${seconds} s\n`)
  }
  const report = JSON.parse(await readFile(join(REPORTS, `${group}.json`), 'utf8'))
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    const t = tally(mutants)
    rows.push({ group, file, ...t })
    if (t.score < GOAL) failed = true
    const lines = source.split('\n')
    for (const m of mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')) {
      const { start, end } = m.location
      const original = start.line === end.line
        ? (lines[start.line - 1] ?? '').slice(start.column - 1, end.column - 1)
        : `${(lines[start.line - 1] ?? '').slice(start.column - 1)}…`
      survivors.push({ file, line: start.line, status: m.status, mutator: m.mutatorName, original, replacement: m.replacement ?? '' })
    }
  }
}

const pct = (n) => `${n.toFixed(1)} %`
const table = [
  ['group', 'module', 'killed', 'survived', 'no coverage', 'timeout', 'detected/valid', 'score'],
  ...rows.map((r) => [r.group, r.file, r.killed, r.survived, r.noCoverage, r.timeout, `${r.detected}/${r.valid}`, pct(r.score)]),
].map((cells) => cells.map(String))
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
const printRow = (row) => console.log(`| ${row.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`)
console.log()
printRow(table[0])
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
for (const row of table.slice(1)) printRow(row)

if (survivors.length) {
  console.log('\nSurvivors (and mutants no test reached):')
  const oneLine = (s) => s.replace(/\s+/g, ' ').slice(0, 100)
  for (const s of survivors) {
    console.log(`  ${s.file}:${s.line} ${s.mutator}${s.status === 'NoCoverage' ? ' (no coverage)' : ''}: ${oneLine(s.original)}  ->  ${oneLine(s.replacement)}`)
  }
}
const below = rows.filter((r) => r.score < GOAL)
console.log(`\n${groups.length} group(s) in ${Math.round((Date.now() - startedAll) / 1000)} s; goal ${GOAL} % per module: ${below.length ? `missed by ${below.map((r) => r.file).join(', ')}` : 'met'}`)
process.exit(failed ? 1 : 0)
