/** The web console from a test: its POSTs' headers, and a session cookie from the admin token. */

/** What every console POST carries: JSON, and the CSRF header. */
export const CONSOLE_HEADERS = { 'x-tributary-console': '1', 'content-type': 'application/json' }

/** Signs in with the admin token: the session cookie's `name=value`, to send as the `cookie` header. Throws when refused. */
export async function consoleCookie(endpoint: string, adminToken: string): Promise<string> {
  const r = await fetch(`${endpoint}/console/login`, { method: 'POST', headers: CONSOLE_HEADERS, body: JSON.stringify({ token: adminToken }) })
  if (r.status !== 204) throw new Error(`the console's sign-in answered ${r.status}`)
  return r.headers.get('set-cookie')!.split(';')[0]!
}
