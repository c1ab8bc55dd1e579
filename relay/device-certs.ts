/**
 * Device certificates: the ones the relay issued through its device CA (relay/device-ca.ts), the
 * serials revoked, and whether a TLS client's certificate makes it a device. A certificate is a
 * device's identity when TLS verified it against the device CA, the CA signed it, its subject's CN
 * is a registered device's id and its serial is not revoked. Revocations (and a device's removal,
 * which revokes every certificate the relay issued it) are told to whoever holds live sessions,
 * which closes those the change revoked before the caller hears back.
 */
import type { X509Certificate } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN } from '../shared/topics.js'
import { normalizeSerial, type DeviceCa } from './device-ca.js'
import type { Devices } from './devices.js'
import type { DeviceCertificateMeta, MetadataStore } from './meta/types.js'

/** What TLS learned of a client that presented a certificate. */
export interface TlsPeer {
  /** Whether TLS verified the certificate against the device CA (and its dates). */
  authorized: boolean
  /** Why not, in OpenSSL's words. */
  error: string | null
  certificate: X509Certificate
  /** The subject's CN as node parsed it: a string, or a list when there are several. */
  commonName: unknown
}

export type PeerOutcome = { ok: true; device: string; serial: string; untilMs: number } | { ok: false; reason: string }

export interface IssuedDeviceCertificate {
  device: string
  /** Whether the device was registered by this call (it had no credentials before). */
  created: boolean
  serial: string
  certificatePem: string
  caCertificatePem: string
  notAfterMs: number
}

export interface DeviceCertificatesOptions {
  meta: MetadataStore
  devices: Devices
  /** Null when MQTT over TLS is off: nothing can present a certificate, so none is issued. */
  ca: DeviceCa | null
  now: () => number
}

export class DeviceCertificates {
  private readonly o: DeviceCertificatesOptions
  private readonly listeners: ((device: string) => Promise<void> | void)[] = []

  constructor(options: DeviceCertificatesOptions) {
    this.o = options
    options.devices.onChange(async (id) => {
      if (!(await options.devices.isRegistered(id))) await this.revokeIssued(id)
    })
  }

  /** The CA certificate TLS trusts for client certificates; null when there is none. */
  get caCertificatePem(): string | null {
    return this.o.ca?.certificatePem ?? null
  }

  /** `fn` runs after every revocation, and the revocation's caller waits for it. */
  onChange(fn: (device: string) => Promise<void> | void): void {
    this.listeners.push(fn)
  }

  /**
   * Signs a certificate for `device` over the key of a PKCS#10 request. A device not yet registered
   * is registered, as a certificate device: its secret is made and never shown, so only the
   * certificate authenticates it (until a rotate gives it one).
   */
  async issue(device: string, csrPem: string): Promise<IssuedDeviceCertificate> {
    const ca = this.o.ca
    if (!ca) throw new TributaryError(ErrorCode.CONFIG_INVALID, 'device certificates are presented over MQTT over TLS, which is off: start the relay with --tls-cert and --tls-key')
    if (!DEVICE_ID_PATTERN.test(device)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `device id ${JSON.stringify(device)} must match ${DEVICE_ID_PATTERN}`)
    const issued = await ca.issue(device, csrPem)
    const created = !(await this.o.devices.isRegistered(device))
    if (created) await this.o.devices.add(device)
    await this.o.meta.putDeviceCertificate({ serial: issued.serial, device, issuedMs: this.o.now(), notAfterMs: issued.notAfterMs, revokedMs: null })
    return { device, created, serial: issued.serial, certificatePem: issued.certificatePem, caCertificatePem: ca.certificatePem, notAfterMs: issued.notAfterMs }
  }

  /**
   * Revokes one serial of `device` (also one the relay did not issue: a certificate signed elsewhere
   * by the same CA), or without one every certificate the relay issued it. The device's sessions on
   * a revoked certificate are closed before this returns. Returns the serials newly revoked.
   */
  async revoke(device: string, rawSerial?: string): Promise<string[]> {
    if (!DEVICE_ID_PATTERN.test(device)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `device id ${JSON.stringify(device)} must match ${DEVICE_ID_PATTERN}`)
    let revoked: string[]
    if (rawSerial === undefined) {
      const known = await this.o.meta.listDeviceCertificates(device)
      if (!known.length && !(await this.o.devices.isRegistered(device))) throw new TributaryError(ErrorCode.NOT_FOUND, `device ${device} does not exist and has no certificates`)
      revoked = await this.revokeIssued(device)
    } else {
      const serial = normalizeSerial(rawSerial)
      if (serial === null) throw new TributaryError(ErrorCode.CONFIG_INVALID, `serial must be hexadecimal (colons allowed), got ${JSON.stringify(rawSerial)}`)
      const known = await this.o.meta.getDeviceCertificate(serial)
      if (known && known.device !== device) throw new TributaryError(ErrorCode.CONFLICT, `serial ${serial} is a certificate of device ${known.device}, not ${device}`)
      if (known?.revokedMs != null) {
        revoked = []
      } else {
        await this.o.meta.putDeviceCertificate({ serial, device, issuedMs: known?.issuedMs ?? null, notAfterMs: known?.notAfterMs ?? null, revokedMs: this.o.now() })
        revoked = [serial]
      }
    }
    for (const fn of this.listeners) await fn(device)
    return revoked
  }

  private async revokeIssued(device: string): Promise<string[]> {
    const revoked: string[] = []
    for (const c of await this.o.meta.listDeviceCertificates(device)) {
      if (c.revokedMs !== null) continue
      await this.o.meta.putDeviceCertificate({ ...c, revokedMs: this.o.now() })
      revoked.push(c.serial)
    }
    return revoked
  }

  async list(device: string): Promise<DeviceCertificateMeta[]> {
    return this.o.meta.listDeviceCertificates(device)
  }

  /** Which device a TLS client's certificate makes it, or why none. */
  async identify(peer: TlsPeer): Promise<PeerOutcome> {
    const ca = this.o.ca
    if (!ca) return { ok: false, reason: 'device certificates are not accepted: there is no device CA' }
    if (!peer.authorized) return { ok: false, reason: `the certificate is not verified by the device CA: ${peer.error ?? 'unknown reason'}` }
    if (!ca.signed(peer.certificate)) return { ok: false, reason: 'the certificate is not signed by the device CA' }
    const device = peer.commonName
    if (typeof device !== 'string' || !DEVICE_ID_PATTERN.test(device)) return { ok: false, reason: `the certificate's subject must have one CN that is a device id, got ${JSON.stringify(device)}` }
    const serial = normalizeSerial(peer.certificate.serialNumber)
    if (serial === null) return { ok: false, reason: `the certificate's serial ${peer.certificate.serialNumber} is not hexadecimal` }
    if (!(await this.holds(device, serial))) return { ok: false, reason: `the certificate ${serial} of ${device} is revoked, or ${device} is not a registered device` }
    // TLS checked the dates at the handshake; the session is closed when the certificate ends.
    return { ok: true, device, serial, untilMs: new Date(peer.certificate.validTo).getTime() }
  }

  /** Whether a certificate still makes its client `device`: the device is registered and the serial not revoked (nor another device's). */
  async holds(device: string, serial: string): Promise<boolean> {
    const known = await this.o.meta.getDeviceCertificate(serial)
    if (known && (known.revokedMs !== null || known.device !== device)) return false
    return this.o.devices.isRegistered(device)
  }
}
