/**
 * The device CA: the certificate authority whose certificates MQTT over TLS accepts as device
 * identities (the device id is the subject's CN, as AWS IoT names a thing by its certificate), and,
 * when the relay holds its key, the signer of `tributary devices add --cert`.
 *
 * Either the operator's own (`deviceCaCert`, with `deviceCaKey` to sign; without the key the relay
 * only verifies, for a PKI that keeps its key offline), or the relay's own: made at the first start
 * with MQTT over TLS, an ECDSA P-256 key and a self-signed certificate in one file,
 * `<dataDir>/device-ca.pem`, created whole or not at all and private to its owner (relay/secrets.ts).
 * One file, so the key and its certificate can never be found apart after a crash.
 *
 * Certificates are built and parsed by @peculiar/x509 over node's webcrypto (no ASN.1 of our own);
 * node's X509Certificate gives the second look at what TLS verified.
 */
import 'reflect-metadata' // @peculiar/x509's tsyringe needs the Reflect metadata polyfill, loaded first
import * as x509 from '@peculiar/x509'
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN } from '../shared/topics.js'
import { checkSecretMode, createSecretFile } from './secrets.js'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

/** The relay's own device CA, in its data directory. */
export const OWN_CA_FILE = 'device-ca.pem'
/** How long the relay's own CA is valid. */
const OWN_CA_DAYS = 20 * 365
/** Certificates start this long before they are made, for devices whose clocks run a little behind. */
const BACKDATE_MS = 3_600_000
const DAY_MS = 86_400_000
/** The smallest RSA key a device certificate may carry. */
const MIN_RSA_BITS = 2048

type SigningAlgorithm = { name: 'ECDSA'; hash: string } | { name: 'RSASSA-PKCS1-v1_5' }
interface Signer { key: CryptoKey; algorithm: SigningAlgorithm; cert: x509.X509Certificate }

export interface IssuedCertificate {
  /** Upper-case hex, no leading zeros (see `normalizeSerial`). */
  serial: string
  certificatePem: string
  notAfterMs: number
}

export interface DeviceCaOptions {
  dataDir: string
  /** The operator's CA certificate and key files ('' for none). */
  certFile: string
  keyFile: string
  /** Validity of the certificates it signs. */
  certDays: number
  now: () => number
}

/**
 * A serial as the relay keeps and compares it: upper-case hex without separators or leading zeros,
 * so `01:A3`, `1a3` and `0x01A3` are one serial. Null when `raw` is not hex.
 */
export function normalizeSerial(raw: string): string | null {
  const hex = raw.trim().replace(/^0x/i, '').replace(/:/g, '').toUpperCase()
  if (!/^[0-9A-F]{1,64}$/.test(hex)) return null
  return hex.replace(/^0+(?=.)/, '')
}

function pemBlock(text: string, label: string): string | null {
  return new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----`).exec(text)?.[0] ?? null
}

/** The webcrypto algorithms for a private key of node's: ECDSA on P-256/P-384, or RSA; anything else is refused. */
function algorithmsOf(key: KeyObject, field: string): { importAs: EcKeyImportParams | RsaHashedImportParams; sign: SigningAlgorithm } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'P-256', secp384r1: 'P-384' }[key.asymmetricKeyDetails?.namedCurve ?? '']
    if (!curve) throw new ConfigError(field, `an EC key must be on P-256 or P-384, got ${key.asymmetricKeyDetails?.namedCurve}`)
    return { importAs: { name: 'ECDSA', namedCurve: curve }, sign: { name: 'ECDSA', hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' } }
  }
  if (key.asymmetricKeyType === 'rsa') return { importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } }
  throw new ConfigError(field, `the key must be ECDSA (P-256, P-384) or RSA, got ${key.asymmetricKeyType}`)
}

export class DeviceCa {
  /** The CA certificate, PEM: what TLS trusts for client certificates, and what an operator may publish. */
  readonly certificatePem: string
  private readonly cert: X509Certificate
  private readonly signer: Signer | null
  private readonly o: DeviceCaOptions

  private constructor(o: DeviceCaOptions, certificatePem: string, signer: Signer | null) {
    this.o = o
    this.certificatePem = certificatePem
    this.cert = new X509Certificate(certificatePem)
    this.signer = signer
  }

  /** The operator's CA when configured, else the relay's own (made now if it is not there yet). */
  static async open(o: DeviceCaOptions): Promise<DeviceCa> {
    if (o.certFile) return DeviceCa.configured(o)
    const path = join(o.dataDir, OWN_CA_FILE)
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(OWN_CA_FILE, `cannot read ${path}: ${(err as Error).message}`)
      createSecretFile(path, await DeviceCa.create(o.now()))
      text = readFileSync(path, 'utf8')
    }
    checkSecretMode(path, OWN_CA_FILE)
    const certPem = pemBlock(text, 'CERTIFICATE')
    const keyPem = pemBlock(text, 'PRIVATE KEY')
    if (!certPem || !keyPem) throw new ConfigError(OWN_CA_FILE, `${path} must hold the CA's certificate and its private key (PEM); move it away to have the relay make a new CA, then issue the devices new certificates`)
    return new DeviceCa(o, certPem, await DeviceCa.signerOf(certPem, keyPem, OWN_CA_FILE))
  }

  private static async configured(o: DeviceCaOptions): Promise<DeviceCa> {
    const read = (path: string, field: string) => {
      try { return readFileSync(path, 'utf8') } catch (err) { throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message}`) }
    }
    const certPem = pemBlock(read(o.certFile, 'deviceCaCert'), 'CERTIFICATE')
    if (!certPem) throw new ConfigError('deviceCaCert', `${o.certFile} holds no PEM certificate`)
    let cert: X509Certificate
    try { cert = new X509Certificate(certPem) } catch (err) { throw new ConfigError('deviceCaCert', `${o.certFile} is not a certificate: ${(err as Error).message}`) }
    if (!cert.ca) throw new ConfigError('deviceCaCert', `${o.certFile} is not a CA certificate (basicConstraints CA:TRUE)`)
    if (!o.keyFile) return new DeviceCa(o, certPem, null)
    checkSecretMode(o.keyFile, 'deviceCaKey')
    return new DeviceCa(o, certPem, await DeviceCa.signerOf(certPem, read(o.keyFile, 'deviceCaKey'), 'deviceCaKey'))
  }

  private static async signerOf(certPem: string, keyPem: string, field: string): Promise<Signer> {
    let key: KeyObject
    try { key = createPrivateKey(keyPem) } catch (err) { throw new ConfigError(field, `not a private key: ${(err as Error).message}`) }
    if (!new X509Certificate(certPem).checkPrivateKey(key)) throw new ConfigError(field, 'the private key is not the key of the device CA certificate')
    const { importAs, sign } = algorithmsOf(key, field)
    const der = key.export({ type: 'pkcs8', format: 'der' })
    return { key: await webcrypto.subtle.importKey('pkcs8', der, importAs, false, ['sign']) as CryptoKey, algorithm: sign, cert: new x509.X509Certificate(certPem) }
  }

  /** A new CA: its certificate and key as one PEM text. */
  private static async create(nowMs: number): Promise<string> {
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']) as CryptoKeyPair
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      // A name of its own, so two relays' CAs are never mistaken for one another by name.
      name: `CN=Tributary device CA ${randomBytes(6).toString('hex')}`,
      notBefore: new Date(nowMs - BACKDATE_MS),
      notAfter: new Date(nowMs + OWN_CA_DAYS * DAY_MS),
      keys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    })
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
    const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string
    return `${cert.toString('pem')}\n${keyPem}`
  }

  /** Whether the relay can sign (it holds the CA's key). */
  get canIssue(): boolean {
    return this.signer !== null
  }

  /**
   * Signs a certificate for `device` over the public key of `csrPem` (a PKCS#10 request, whose own
   * signature proves the requester holds the private key). The subject is CN=<device>, whatever the
   * request asked for; the certificate is for TLS client authentication only.
   */
  async issue(device: string, csrPem: string): Promise<IssuedCertificate> {
    if (!this.signer) throw new TributaryError(ErrorCode.CONFIG_INVALID, 'this relay verifies device certificates but cannot sign them: start it with --device-ca-key, or sign with the CA elsewhere')
    if (!DEVICE_ID_PATTERN.test(device)) throw new TributaryError(ErrorCode.REQUEST_INVALID, `device id ${JSON.stringify(device)} must match ${DEVICE_ID_PATTERN}`)
    let csr: x509.Pkcs10CertificateRequest
    try { csr = new x509.Pkcs10CertificateRequest(csrPem) } catch (err) { throw new TributaryError(ErrorCode.REQUEST_INVALID, `csr is not a PEM certificate request: ${(err as Error).message}`) }
    if (!(await csr.verify().catch(() => false))) throw new TributaryError(ErrorCode.REQUEST_INVALID, 'the certificate request is not signed by its own key')
    checkDeviceKey(createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' }))
    const nowMs = this.o.now()
    const notAfterMs = Math.min(nowMs + this.o.certDays * DAY_MS, new Date(this.cert.validTo).getTime())
    const serial = newSerial()
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${device}`,
      issuer: this.signer.cert.subject,
      notBefore: new Date(nowMs - BACKDATE_MS),
      notAfter: new Date(notAfterMs),
      publicKey: csr.publicKey,
      signingKey: this.signer.key,
      signingAlgorithm: this.signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(this.signer.cert),
      ],
    })
    return { serial: normalizeSerial(serial)!, certificatePem: cert.toString('pem') + '\n', notAfterMs }
  }

  /** Whether this CA signed `cert` (TLS verified the chain already; this is a second look, by key and signature). */
  signed(cert: X509Certificate): boolean {
    return cert.checkIssued(this.cert) && cert.verify(this.cert.publicKey)
  }
}

/** A device key must be ECDSA on P-256/P-384 or RSA of 2048 bits or more. */
function checkDeviceKey(key: KeyObject): void {
  if (key.asymmetricKeyType === 'ec' && ['prime256v1', 'secp384r1'].includes(key.asymmetricKeyDetails?.namedCurve ?? '')) return
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS) return
  throw new TributaryError(ErrorCode.REQUEST_INVALID, `a device key must be ECDSA on P-256 or P-384, or RSA of ${MIN_RSA_BITS} bits or more; got ${key.asymmetricKeyType} ${JSON.stringify(key.asymmetricKeyDetails ?? {})}`)
}

/** 128 random bits, positive and without a leading zero byte, as hex (RFC 5280: at most 20 octets). */
function newSerial(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x40
  return bytes.toString('hex').toUpperCase()
}

/**
 * A new ECDSA P-256 key for `device` and a PKCS#10 request over it, both PEM: what
 * `tributary devices add --cert` sends the relay to sign, so the private key never leaves the
 * machine that made it.
 */
export async function createKeyAndRequest(device: string): Promise<{ keyPem: string; csrPem: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']) as CryptoKeyPair
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${device}`, keys, signingAlgorithm: algorithm })
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
  return { keyPem: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: csr.toString('pem') + '\n' }
}
