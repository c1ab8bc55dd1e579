/**
 * Encryption at rest, the sealer (StartStreamEncryption / StopStreamEncryption are in
 * kinesis/actions/encryption.ts). There is no KMS here: the
 * KeyId a client names is validated and reported back, and the records appended while encryption
 * is on are sealed with AES-256-GCM under one local key kept in the relay's data directory
 * (`encryption.key`, created on first use, readable only by its owner). Reads open them
 * transparently; records written before or after stay as they were written.
 *
 * Sealed data: `version u8 (1) | key salt (16) | nonce (12) | ciphertext | tag (16)`, a fresh random
 * nonce per record, the stream's id as additional data (a record copied into another stream does not
 * open). Records are not sealed under the local key itself but under a subkey derived from it with
 * HKDF-SHA256 and the salt, and the sealer takes a new salt at every start and every 2^28 records:
 * random 96-bit nonces stay safe for far fewer than the 2^32 messages NIST allows one GCM key, however
 * long the relay runs and however fast it ingests.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import type { RecordCipher } from './log/types.js'

const VERSION = 1
const SALT = 16
const NONCE = 12
const TAG = 16
export const SEAL_OVERHEAD = 1 + SALT + NONCE + TAG
/** Records sealed under one subkey before the sealer takes a new salt. */
const RECORDS_PER_SUBKEY = 2 ** 28
const SUBKEY_INFO = Buffer.from('tributary record seal')

export class LocalKeyCipher implements RecordCipher {
  private readonly keyPath: string
  private readonly isEncrypted: (streamId: string) => boolean
  private key: Buffer | null = null
  private readonly subkeys = new Map<string, Buffer>()
  private sealing: { salt: Buffer; key: Buffer; uses: number } | null = null

  constructor(keyPath: string, isEncrypted: (streamId: string) => boolean) {
    this.keyPath = keyPath
    this.isEncrypted = isEncrypted
  }

  /** The key, read from the data directory or created there (fsynced) the first time. */
  ensureKey(): Buffer {
    if (this.key) return this.key
    if (!existsSync(this.keyPath)) {
      // Written whole to a temporary file and linked into place, so a crash never leaves a partial key.
      const tmp = `${this.keyPath}.${process.pid}.tmp`
      const fd = openSync(tmp, 'w', 0o600)
      try {
        writeSync(fd, randomBytes(32).toString('hex') + '\n')
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      try {
        linkSync(tmp, this.keyPath)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err // else another start made it first: use that one
      } finally {
        rmSync(tmp, { force: true })
      }
      const dir = openSync(dirname(this.keyPath), 'r')
      try { fsyncSync(dir) } finally { closeSync(dir) }
    }
    const text = readFileSync(this.keyPath, 'utf8').trim()
    if (!/^[0-9a-f]{64}$/.test(text)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `${this.keyPath} does not hold a 256-bit key (64 hex digits)`)
    this.key = Buffer.from(text, 'hex')
    return this.key
  }

  seals(stream: string): boolean {
    return this.isEncrypted(stream)
  }

  /** The subkey for a salt (derived once, kept while it is in use). */
  private subkey(salt: Buffer): Buffer {
    const id = salt.toString('hex')
    let key = this.subkeys.get(id)
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.ensureKey(), salt, SUBKEY_INFO, 32))
      if (this.subkeys.size >= 64) this.subkeys.clear()
      this.subkeys.set(id, key)
    }
    return key
  }

  seal(stream: string, data: Uint8Array): Uint8Array | null {
    if (!this.isEncrypted(stream)) return null
    if (!this.sealing || this.sealing.uses >= RECORDS_PER_SUBKEY) {
      const salt = randomBytes(SALT)
      this.sealing = { salt, key: this.subkey(salt), uses: 0 }
    }
    this.sealing.uses++
    const nonce = randomBytes(NONCE)
    const cipher = createCipheriv('aes-256-gcm', this.sealing.key, nonce)
    cipher.setAAD(Buffer.from(stream, 'utf8'))
    const body = cipher.update(data)
    const final = cipher.final()
    return Buffer.concat([Buffer.of(VERSION), this.sealing.salt, nonce, body, final, cipher.getAuthTag()])
  }

  open(stream: string, sealed: Buffer): Buffer {
    const fail = (why: string, cause?: unknown) => new TributaryError(ErrorCode.DECRYPT_FAILED, `a sealed record of stream ${stream} cannot be opened: ${why}`, { cause })
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== VERSION) throw fail(`unknown sealed format (${sealed.length} bytes, version ${sealed[0]})`)
    let key: Buffer
    try {
      key = this.subkey(sealed.subarray(1, 1 + SALT))
    } catch (err) {
      throw fail(`no usable key at ${this.keyPath}`, err)
    }
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1 + SALT, 1 + SALT + NONCE))
    decipher.setAAD(Buffer.from(stream, 'utf8'))
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG))
    try {
      return Buffer.concat([decipher.update(sealed.subarray(1 + SALT + NONCE, sealed.length - TAG)), decipher.final()])
    } catch (err) {
      throw fail('authentication failed (a different key, or the bytes were changed)', err)
    }
  }
}
