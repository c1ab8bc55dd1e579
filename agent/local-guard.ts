/**
 * Who may call the agent's local HTTP endpoints (the put API, the status server). They listen on
 * loopback for processes on the device, which is also where a web browser runs: a page can POST to
 * 127.0.0.1 (no preflight for text/plain and form bodies), and by DNS rebinding it can read the
 * answers under a name of its own. So, before any body is read:
 *
 * - a request with an `Origin` header is refused (browsers send it on cross-origin POSTs and on
 *   every CORS request; curl, SDKs and scripts do not);
 * - the `Host` must be a loopback name or address, the bind address, or a name in `allowedHosts`,
 *   with the listening port (a rebound name is none of these);
 * - the put API takes only JSON content types, which a page cannot send without a preflight
 *   (that preflight carries an Origin, and is refused);
 * - with a token configured, `Authorization: Bearer <token>`, compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'

/** Content types the put API reads as JSON (the Kinesis SDKs send x-amz-json-1.1). */
export const JSON_CONTENT_TYPES = ['application/json', 'application/x-amz-json-1.0', 'application/x-amz-json-1.1'] as const

export const Refused = {
  /** 403: the request came from a web page (it has an Origin). */
  ORIGIN: 'ORIGIN_REFUSED',
  /** 403: the Host is not this agent's (DNS rebinding, or a name not in allowedHosts). */
  HOST: 'HOST_REFUSED',
  /** 400: no Host header, or one that does not parse. */
  HOST_MISSING: 'HOST_MISSING',
  /** 401: a token is configured and the request's is missing or wrong. */
  TOKEN: 'TOKEN_REFUSED',
  /** 415: the put API reads JSON only. */
  CONTENT_TYPE: 'CONTENT_TYPE_REFUSED',
} as const
export type Refused = (typeof Refused)[keyof typeof Refused]

/** Why a request is refused: the HTTP status, a Kinesis-style `__type`, a stable `code`, and words. */
export interface Refusal {
  status: 400 | 401 | 403 | 415
  type: string
  code: Refused
  message: string
}

export interface GuardOptions {
  /** The address the server is bound to, as configured (127.0.0.1, ::, a name). */
  bindHost: string
  /** Further Host names accepted (for a status server scraped by name over the network). */
  allowedHosts: readonly string[]
  /** A bearer token every request must carry, or null. */
  token: string | null
  /** Refuse bodies that are not JSON (the put API). */
  json: boolean
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost'])
const WILDCARDS = new Set(['0.0.0.0', '::', ''])

function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host)) return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1' || host === '::ffff:127.0.0.1' || /^::ffff:127\./.test(host)
}

/** `Host: name:port` split; IPv6 literals are bracketed. Null when it does not parse. */
export function parseHost(value: string): { name: string; port: number | null } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(value)
  if (!m) return null
  const name = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  if (m[1]!.startsWith('[') && isIP(name) !== 6) return null
  return { name: name.toLowerCase(), port: m[2] === undefined ? null : Number(m[2]) }
}

/** The machine's own addresses: a server bound to a wildcard is reached by any of them. */
function ownAddresses(): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase().replace(/%.*$/, ''))
  return out
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/**
 * A check for one server listening on `port`: null to serve the request, else why it is refused.
 * Reads headers only, so a refusal costs no body.
 */
export function localGuard(options: GuardOptions, port: () => number): (req: IncomingMessage) => Refusal | null {
  const bind = options.bindHost.toLowerCase().replace(/^\[|\]$/g, '')
  const allowed = new Set(options.allowedHosts.map((h) => h.toLowerCase()))
  if (!WILDCARDS.has(bind)) allowed.add(bind)
  const own = WILDCARDS.has(bind) ? ownAddresses() : new Set<string>()
  const expected = options.token === null ? null : digest(options.token)

  return (req) => {
    if (req.headers.origin !== undefined) {
      return { status: 403, type: 'AccessDeniedException', code: Refused.ORIGIN, message: `requests from web pages are refused (Origin: ${JSON.stringify(String(req.headers.origin).slice(0, 200))}); the agent's local endpoints are for processes on the device` }
    }
    const raw = req.headers.host
    const host = raw === undefined ? null : parseHost(raw)
    if (!host) return { status: 400, type: 'ValidationException', code: Refused.HOST_MISSING, message: raw === undefined ? 'a Host header is required' : `the Host header ${JSON.stringify(raw.slice(0, 200))} does not parse` }
    const known = isLoopback(host.name) || allowed.has(host.name) || own.has(host.name)
    if (!known || (host.port ?? 80) !== port()) {
      return { status: 403, type: 'AccessDeniedException', code: Refused.HOST, message: `Host ${JSON.stringify(raw!.slice(0, 200))} is not this agent's (use 127.0.0.1:${port()} or localhost:${port()}${allowed.size ? `, or one of ${[...allowed].join(', ')}` : ''}); a name that resolves here by DNS rebinding is refused` }
    }
    if (expected) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
      if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
        return { status: 401, type: 'UnrecognizedClientException', code: Refused.TOKEN, message: `${m ? 'the bearer token is wrong' : 'a bearer token is required (Authorization: Bearer <token>)'}` }
      }
    }
    if (options.json) {
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
      if (!(JSON_CONTENT_TYPES as readonly string[]).includes(type)) {
        return { status: 415, type: 'UnsupportedMediaTypeException', code: Refused.CONTENT_TYPE, message: `Content-Type ${type ? JSON.stringify(type) : '(none)'} is refused: send ${JSON_CONTENT_TYPES.join(', ')}` }
      }
    }
    return null
  }
}
