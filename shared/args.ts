/** A small argument parser: positionals, `--name value`, `--name=value`, and boolean `--flag`. */
export interface Args {
  positionals: string[]
  flags: Record<string, string | true>
}

export function parseArgs(argv: readonly string[], booleans: ReadonlySet<string> = new Set()): Args {
  const positionals: string[] = []
  const flags: Record<string, string | true> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break }
    if (!arg.startsWith('--')) { positionals.push(arg); continue }
    const eq = arg.indexOf('=')
    if (eq > 0) { flags[arg.slice(2, eq)] = arg.slice(eq + 1); continue }
    const name = arg.slice(2)
    const next = argv[i + 1]
    if (booleans.has(name) || next === undefined || next.startsWith('--')) flags[name] = true
    else { flags[name] = next; i++ }
  }
  return { positionals, flags }
}
