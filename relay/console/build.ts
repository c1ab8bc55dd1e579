/**
 * Builds the console's browser code: each page's script from client/ (TypeScript, bundled with what
 * it imports by esbuild and minified) and its style sheet. `npm run build` runs this after tsc and
 * writes the files beside the compiled relay (dist/relay/console/client/), from where the relay
 * serves them; a relay run from its sources (tsx) bundles them in memory instead (assets.ts), so a
 * change to a page needs no build step while developing.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The pages' scripts (client/<name>.ts → <name>.js) and the style sheet. */
export const SCRIPTS = ['login', 'devices', 'streams', 'cameras', 'delivery', 'video'] as const
export const STYLE = 'console.css'

/** The built files by name (`devices.js`, …, `console.css`), from the sources in `sourceDir`. */
export async function bundleConsole(sourceDir: string): Promise<Map<string, Buffer>> {
  // A development dependency: a built relay reads the files this wrote and never loads it.
  const esbuild = await import('esbuild')
  const result = await esbuild.build({
    entryPoints: [...SCRIPTS.map((s) => join(sourceDir, `${s}.ts`)), join(sourceDir, STYLE)],
    bundle: true, minify: true, write: false, format: 'iife', outdir: 'out', legalComments: 'none', logLevel: 'silent',
    // What the console supports: browsers of the last four years.
    target: ['chrome100', 'firefox100', 'safari15'],
  })
  return new Map(result.outputFiles.map((f) => [basename(f.path), Buffer.from(f.contents)]))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Run as dist/relay/console/build.js: the sources are the repository's relay/console/client/.
  const sources = fileURLToPath(new URL('../../../relay/console/client/', import.meta.url))
  const out = fileURLToPath(new URL('./client/', import.meta.url))
  mkdirSync(out, { recursive: true })
  const files = await bundleConsole(sources)
  for (const [name, bytes] of files) writeFileSync(join(out, name), bytes)
  console.log(`console: ${files.size} files in ${out}`)
}
