/**
 * `tributary devices add ID --cert [--out DIR]`, `devices revoke ID [--serial S]` and
 * `devices certificates ID`: device certificates through the admin API. The key is made here, by the
 * CLI, and only a certificate request goes to the relay, which signs it: the private key never
 * crosses the network (the admin API may be plain HTTP) and is never stored by the relay. It is
 * shown, or written, once.
 */
import { closeSync, existsSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../../shared/errors.js'

/** The admin API as the devices commands call it. */
export type AdminRequest = (method: string, path: string, body?: object) => Promise<Record<string, unknown>>

export const DEVICE_CERTS_USAGE = `  tributary devices add ID --cert [--out DIR]   a certificate device: a new private key (made here) and a certificate
                                                signed by the relay's device CA for MQTT over TLS (CN=ID); printed, or
                                                written to DIR/ID.key (mode 600) and DIR/ID.crt. Shown once
  tributary devices revoke ID [--serial S]      revoke one certificate, or every one issued to ID; its sessions close
  tributary devices certificates ID             list ID's certificates: serial, validity, revocation
`

/** `devices add ID --cert`: prints or writes the key and the certificate. */
export async function addCertificate(request: AdminRequest, id: string, out: string | true | undefined): Promise<void> {
  if (out === true) throw new ConfigError('--out', 'name the directory: --out DIR')
  const keyPath = out === undefined ? null : join(out, `${id}.key`)
  const certPath = out === undefined ? null : join(out, `${id}.crt`)
  // Checked before the relay signs anything: an existing key is never overwritten.
  for (const path of [keyPath, certPath]) if (path && existsSync(path)) throw new ConfigError('--out', `${path} exists; choose another directory or move it away`)
  // X.509 is loaded only to make a key and request (it costs the other commands ~0.2 s at start).
  const { createKeyAndRequest } = await import('../device-ca.js')
  const { keyPem, csrPem } = await createKeyAndRequest(id)
  const issued = await request('POST', `/admin/devices/${encodeURIComponent(id)}/certificates`, { csr: csrPem })
  const what = `device ${id} ${issued.created ? 'added with' : 'has'} a new certificate, serial ${String(issued.serial)}, valid until ${String(issued.notAfter)}`
  if (keyPath && certPath) {
    const fd = openSync(keyPath, 'wx', 0o600)
    try { writeSync(fd, keyPem) } finally { closeSync(fd) }
    writeFileSync(certPath, String(issued.certificate), { flag: 'wx', mode: 0o644 })
    console.log(`${what}\nprivate key: ${keyPath} (the only copy)\ncertificate: ${certPath}`)
    return
  }
  console.error(`${what}; its private key (shown only now) and certificate follow`)
  console.log(keyPem.trimEnd())
  console.log(String(issued.certificate).trimEnd())
}

/** `devices revoke ID [--serial S]`. */
export async function revokeCertificates(request: AdminRequest, id: string, serial: string | true | undefined): Promise<void> {
  if (serial === true) throw new ConfigError('--serial', 'name the serial: --serial HEX')
  const out = await request('POST', `/admin/devices/${encodeURIComponent(id)}/revoke`, serial === undefined ? {} : { serial })
  const revoked = out.revoked as string[]
  console.log(revoked.length ? `revoked ${revoked.length} certificate(s) of ${id}: ${revoked.join(', ')}` : `no certificate of ${id} newly revoked (already revoked, or none issued)`)
}

/** `devices certificates ID`. */
export async function listCertificates(request: AdminRequest, id: string): Promise<void> {
  const out = await request('GET', `/admin/devices/${encodeURIComponent(id)}/certificates`)
  const iso = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString() : '-')
  for (const c of out.certificates as { serial: string; issuedMs: number | null; notAfterMs: number | null; revokedMs: number | null }[]) {
    console.log(`${c.serial}\tissued ${iso(c.issuedMs)}\tuntil ${iso(c.notAfterMs)}${c.revokedMs === null ? '' : `\trevoked ${iso(c.revokedMs)}`}`)
  }
}
