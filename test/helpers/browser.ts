/**
 * Headless Chromium for the browser tests: Debian's `chromium`, driven by playwright-core, kept off
 * the network, with a fresh profile in the test's directory, closed at the test's end.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { chromium, type BrowserContext } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** Why a browser test skips here (false: it runs). */
export const chromiumMissing: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`

/** A fresh browser context (playwright passes the profile as --user-data-dir); `args` are added to the defaults. */
export async function launchChromium(t: Test, dir: string, o: { args?: string[]; viewport?: { width: number; height: number } } = {}): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    ...(o.viewport ? { viewport: o.viewport } : {}),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage', ...(o.args ?? [])],
  })
  t.teardown(() => context.close())
  return context
}

/** Polls `check` every 250 ms until it gives a value, or throws after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | null | false | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}
