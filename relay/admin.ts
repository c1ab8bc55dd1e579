/**
 * The admin REST API (`tributary devices …`): device credentials under `/admin/devices`, behind a
 * bearer token the relay creates at first start in its data directory.
 */
import { timingSafeEqual } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import type { DeviceCertificates } from './device-certs.js'
import { MAX_GRACE_MS, type Devices } from './devices.js'
import { sendJson, type AnyRequest, type AnyResponse } from './http.js'
import { adminToken } from './secrets.js'

/** The admin token lives in the data directory, created at first start (atomically), readable only by its owner; relay/secrets.ts refuses a short one or a loose mode. */
export function adminTokenOf(dataDir: string): string {
  return adminToken(dataDir)
}

export interface AdminOptions {
  token: string
  devices: Devices
  /** Device certificates (`devices add --cert`, `devices revoke`). */
  certificates: DeviceCertificates
  /** Told of each refused request, by code (for /metrics). */
  onRejected: (code: string) => void
}

export function adminRoutes(o: AdminOptions): (req: AnyRequest, res: AnyResponse, path: string, body: Buffer) => Promise<void> {
  const tokenBuf = Buffer.from(o.token)
  const { devices } = o
  return async (req, res, path, body) => {
    const auth = String(req.headers.authorization ?? '')
    const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '')
    if (given.length !== tokenBuf.length || !timingSafeEqual(given, tokenBuf)) {
      o.onRejected(ErrorCode.AUTH_FAILED)
      return sendJson(res, 401, { code: ErrorCode.AUTH_FAILED, message: 'admin token missing or wrong' })
    }
    try {
      const c = /^\/admin\/devices\/([^/]+)\/(certificates|revoke)$/.exec(path)
      if (c) return await certificateRoute(o.certificates, req, res, decodeURIComponent(c[1]!), c[2]!, body)
      const m = /^\/admin\/devices(?:\/([^/]+))?(\/rotate)?$/.exec(path)
      if (!m) return sendJson(res, 404, { code: ErrorCode.NOT_FOUND, message: `no admin route ${path}` })
      const id = m[1] ? decodeURIComponent(m[1]) : undefined
      if (req.method === 'GET' && !id) return sendJson(res, 200, { devices: await devices.list() })
      if (req.method === 'POST' && !id) {
        const { id: newId } = jsonObject(body)
        if (typeof newId !== 'string') return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: 'body must be {"id": "<device id>"}' })
        return sendJson(res, 201, { id: newId, secret: await devices.add(newId) })
      }
      if (req.method === 'POST' && id && m[2]) {
        const { graceSeconds = 0 } = jsonObject(body)
        if (typeof graceSeconds !== 'number' || !Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds * 1000 > MAX_GRACE_MS) {
          return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: `graceSeconds must be a whole number from 0 to ${MAX_GRACE_MS / 1000}, got ${JSON.stringify(graceSeconds)}` })
        }
        const { secret, previousUntilMs } = await devices.rotate(id, graceSeconds * 1000)
        return sendJson(res, 200, { id, secret, previousValidUntil: previousUntilMs === null ? null : new Date(previousUntilMs).toISOString() })
      }
      if (req.method === 'DELETE' && id && !m[2]) {
        await devices.remove(id)
        return sendJson(res, 200, { id, removed: true })
      }
      return sendJson(res, 405, { code: ErrorCode.NOT_FOUND, message: `${req.method} ${path} is not an admin operation` })
    } catch (err) {
      if (err instanceof TributaryError) {
        const status = err.code === ErrorCode.CONFLICT ? 409 : err.code === ErrorCode.NOT_FOUND ? 404 : 400
        return sendJson(res, status, { code: err.code, message: err.message })
      }
      if (err instanceof SyntaxError) return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: `body is not JSON: ${err.message}` })
      if (err instanceof URIError) return sendJson(res, 400, { code: ErrorCode.REQUEST_INVALID, message: `path ${path} is not valid percent-encoding` })
      throw err
    }
  }
}

/**
 * POST …/certificates {"csr": PEM}: signs a certificate for the device (registering it if new); the
 * private key stays with whoever made the request. GET …/certificates lists them. POST …/revoke
 * {"serial"?: hex}: revokes one serial, or every certificate the relay issued the device.
 */
async function certificateRoute(certificates: DeviceCertificates, req: AnyRequest, res: AnyResponse, id: string, action: string, body: Buffer): Promise<void> {
  if (action === 'certificates' && req.method === 'GET') {
    return sendJson(res, 200, { id, certificates: await certificates.list(id) })
  }
  if (action === 'certificates' && req.method === 'POST') {
    const { csr } = jsonObject(body)
    if (typeof csr !== 'string') return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: 'body must be {"csr": "<PEM certificate request>"}' })
    const issued = await certificates.issue(id, csr)
    return sendJson(res, 201, {
      id, created: issued.created, serial: issued.serial, certificate: issued.certificatePem,
      caCertificate: issued.caCertificatePem, notAfter: new Date(issued.notAfterMs).toISOString(),
    })
  }
  if (action === 'revoke' && req.method === 'POST') {
    const { serial } = jsonObject(body)
    if (serial !== undefined && typeof serial !== 'string') return sendJson(res, 400, { code: ErrorCode.CONFIG_INVALID, message: `serial must be a string of hex digits, got ${JSON.stringify(serial)}` })
    return sendJson(res, 200, { id, revoked: await certificates.revoke(id, serial) })
  }
  return sendJson(res, 405, { code: ErrorCode.NOT_FOUND, message: `${req.method} ${action} is not an admin operation` })
}

/** The request body as a JSON object (empty: {}); anything else (null, a list, a number) is a 400. */
function jsonObject(body: Buffer): Record<string, unknown> {
  const value: unknown = JSON.parse(body.toString() || '{}')
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `body must be a JSON object, got ${JSON.stringify(value)}`)
  return value as Record<string, unknown>
}
