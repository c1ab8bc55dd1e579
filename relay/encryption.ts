/**
 * Encryption at rest, the sealer (StartStreamEncryption / StopStreamEncryption are in
 * kinesis/actions/encryption.ts). There is no KMS here: the
 * KeyId a client names is validated and reported back, and the records appended while encryption
 * is on are sealed with AES-256-GCM under one local key kept in the relay's data directory
 * (`encryption.key`, created on first use, readable only by its owner). Reads open them
 * transparently; records written before or after stay as they were written.
 *
 * Sealed data: `version u8 | key salt (16) | nonce (12) | ciphertext | tag (16)`, a fresh random
 * nonce per record, the stream's id as additional data (a record copied into another stream does not
 * open). Version 1 (written before partition keys were sealed) holds the data alone; version 2 holds
 * `keyLength u16 LE | partition key (UTF-8) | data`, and the record is stored with an empty partition
 * key, so neither the data nor the key is in the segment in clear. (The key can be sealed because it
 * is needed only to route a record, which is done before storage; the device id and producer batch
 * numbers stay in clear, as recovery rebuilds deduplication from them.) Records are not sealed under the local key itself but under a subkey derived from it with
 * HKDF-SHA256 and the salt, and the sealer takes a new salt at every start and every 2^28 records:
 * random 96-bit nonces stay safe for far fewer than the 2^32 messages NIST allows one GCM key, however
 * long the relay runs and however fast it ingests.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import type { RecordCipher } from './log/types.js'
import { encryptionKeyText } from './secrets.js'

const VERSION_DATA = 1
const VERSION_KEY_AND_DATA = 2
const KEY_LENGTH = 2
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

  /** The key, read from the data directory or created there (atomically, relay/secrets.ts) the first time; refused when others may read it. */
  ensureKey(): Buffer {
    if (this.key) return this.key
    const text = encryptionKeyText(this.keyPath)
    if (!/^[0-9a-f]{64}$/.test(text)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `${this.keyPath} does not hold a 256-bit key (64 hex digits)${text === '' ? ': it is empty' : ''}`)
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

  /**
   * The bytes to store for a record of `stream`; null when the stream is not sealed. Given a partition
   * key, that is sealed with the data (version 2), and the record is to be stored with an empty key.
   */
  seal(stream: string, data: Uint8Array, partitionKey?: string): Uint8Array | null {
    if (!this.isEncrypted(stream)) return null
    if (!this.sealing || this.sealing.uses >= RECORDS_PER_SUBKEY) {
      const salt = randomBytes(SALT)
      this.sealing = { salt, key: this.subkey(salt), uses: 0 }
    }
    this.sealing.uses++
    const nonce = randomBytes(NONCE)
    const cipher = createCipheriv('aes-256-gcm', this.sealing.key, nonce)
    cipher.setAAD(Buffer.from(stream, 'utf8'))
    let body: Buffer
    if (partitionKey === undefined) {
      body = cipher.update(data)
    } else {
      const key = Buffer.from(partitionKey, 'utf8')
      const length = Buffer.alloc(KEY_LENGTH)
      length.writeUInt16LE(key.length)
      body = Buffer.concat([cipher.update(length), cipher.update(key), cipher.update(data)])
    }
    const final = cipher.final()
    return Buffer.concat([Buffer.of(partitionKey === undefined ? VERSION_DATA : VERSION_KEY_AND_DATA), this.sealing.salt, nonce, body, final, cipher.getAuthTag()])
  }

  /** The original data of a sealed record. */
  open(stream: string, sealed: Buffer): Buffer {
    return this.openRecord(stream, sealed).data
  }

  /** The original data of a sealed record, and its partition key when that was sealed too (else null). */
  openRecord(stream: string, sealed: Buffer): { partitionKey: string | null; data: Buffer } {
    const fail = (why: string, cause?: unknown) => new TributaryError(ErrorCode.DECRYPT_FAILED, `a sealed record of stream ${stream} cannot be opened: ${why}`, { cause })
    const version = sealed[0]
    if (sealed.length < SEAL_OVERHEAD || (version !== VERSION_DATA && version !== VERSION_KEY_AND_DATA)) throw fail(`unknown sealed format (${sealed.length} bytes, version ${version})`)
    let key: Buffer
    try {
      key = this.subkey(sealed.subarray(1, 1 + SALT))
    } catch (err) {
      throw fail(`no usable key at ${this.keyPath}`, err)
    }
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1 + SALT, 1 + SALT + NONCE))
    decipher.setAAD(Buffer.from(stream, 'utf8'))
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG))
    let plain: Buffer
    try {
      plain = Buffer.concat([decipher.update(sealed.subarray(1 + SALT + NONCE, sealed.length - TAG)), decipher.final()])
    } catch (err) {
      throw fail('authentication failed (a different key, or the bytes were changed)', err)
    }
    if (version === VERSION_DATA) return { partitionKey: null, data: plain }
    const keyEnd = plain.length >= KEY_LENGTH ? KEY_LENGTH + plain.readUInt16LE(0) : Infinity
    if (plain.length < keyEnd) throw fail(`its partition key runs past the ${plain.length} bytes opened`)
    return { partitionKey: plain.subarray(KEY_LENGTH, keyEnd).toString('utf8'), data: plain.subarray(keyEnd) }
  }
}
