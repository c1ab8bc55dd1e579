/**
 * The console's session cookie: `v1.<expires ms>.<nonce>.<tag>`, the tag an HMAC-SHA256 (first 24
 * bytes, base64url) under a key derived from the admin token, so a new admin token ends every session.
 * Expiry is checked on the relay's clock, not the browser's (Max-Age only tidies the browser's jar).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const COOKIE_NAME = 'tributary_console'
/** How long a console login lasts. */
export const COOKIE_TTL_MS = 12 * 3600_000

export class ConsoleCookies {
  private readonly key: Buffer

  constructor(adminToken: string, private readonly now: () => number, readonly ttlMs = COOKIE_TTL_MS) {
    this.key = createHmac('sha256', adminToken).update('tributary-console-cookie').digest()
  }

  private tag(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, 24)
  }

  /** A new session's cookie value. */
  issue(): string {
    const body = `v1.${this.now() + this.ttlMs}.${randomBytes(12).toString('base64url')}`
    return `${body}.${this.tag(body).toString('base64url')}`
  }

  /** Whether `value` is a cookie this relay issued (under the current admin token) that has not expired. */
  valid(value: string | undefined): boolean {
    if (!value) return false
    const m = /^(v1\.(\d{1,16})\.[A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{32})$/.exec(value)
    if (!m) return false
    const given = Buffer.from(m[3]!, 'base64url')
    if (given.length !== 24 || !timingSafeEqual(given, this.tag(m[1]!))) return false
    return this.now() < Number(m[2])
  }

  /** The Set-Cookie header for a session (Secure when the page came over TLS). */
  header(value: string, secure: boolean): string {
    return `${COOKIE_NAME}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(this.ttlMs / 1000)}${secure ? '; Secure' : ''}`
  }

  /** The Set-Cookie header that ends a session. */
  clear(secure: boolean): string {
    return `${COOKIE_NAME}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`
  }
}

/** The console cookie's value in a Cookie header, if there is one. */
export function cookieOf(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE_NAME) return part.slice(eq + 1).trim()
  }
  return undefined
}
