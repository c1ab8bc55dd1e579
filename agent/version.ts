/** The agent's version, from the package it was installed from (`unknown` where that cannot be read). */
import { existsSync, readFileSync } from 'node:fs'

function read(): string {
  // agent/version.ts from the sources, dist/agent/version.js when built.
  for (const up of ['../package.json', '../../package.json']) {
    const url = new URL(up, import.meta.url)
    if (!existsSync(url)) continue
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'tributary' && typeof pkg.version === 'string') return pkg.version
    } catch { /* not this one */ }
  }
  return 'unknown'
}

export const AGENT_VERSION = read()
