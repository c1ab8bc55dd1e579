/**
 * The console's static files: the pages' scripts and style sheet built from client/ (build.ts), and
 * hls.js from its package (never a CDN). A built relay reads them from beside its compiled code; a
 * relay run from its sources bundles them once, at the first request for one.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleConsole, SCRIPTS, STYLE } from './build.js'

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' }

export interface Asset { type: string; body: Buffer }

export class ConsoleAssets {
  private files: Promise<Map<string, Buffer>> | null = null

  /** The file `name` (`devices.js`, `console.css`, `hls.min.js`), or undefined when the console has none of that name. */
  async get(name: string): Promise<Asset | undefined> {
    // A failed load (sources without their development dependencies) is tried again at the next request.
    this.files ??= this.load().catch((err: Error) => {
      this.files = null
      throw new Error(`the console's scripts are not built and cannot be bundled here (run npm run build): ${err.message}`, { cause: err })
    })
    const body = (await this.files).get(name)
    return body && { type: TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream', body }
  }

  private async load(): Promise<Map<string, Buffer>> {
    const dir = fileURLToPath(new URL('./client/', import.meta.url))
    const names = [...SCRIPTS.map((s) => `${s}.js`), STYLE]
    const built = existsSync(join(dir, 'login.js'))
      ? new Map(names.map((n) => [n, readFileSync(join(dir, n))]))
      : await bundleConsole(dir)
    built.set('hls.min.js', readFileSync(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js')))
    return built
  }
}
