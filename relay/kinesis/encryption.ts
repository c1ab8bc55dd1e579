/**
 * Encryption at rest (StartStreamEncryption / StopStreamEncryption). There is no KMS here: the
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
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import type { RecordCipher } from '../log/types.js'
import type { StreamState } from '../streams.js'
import { resolveStream } from './actions.js'
import { KinesisError } from './errors.js'
import type { ExtendedContext } from './extensions.js'
import { StreamARN, StreamName, validate } from './validate.js'

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

// ---- actions ----

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'
const ALIAS = 'alias/[a-zA-Z0-9/_-]+'
const MRK = 'mrk-[0-9a-f]{32}'
/** The four ways KMS lets a key be named: key id, key ARN, alias name, alias ARN (multi-Region keys included). */
const KEY_ID = new RegExp(`^(?:${UUID}|${MRK}|${ALIAS}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:(?:key/(?:${UUID}|${MRK})|${ALIAS}))$`)

function checkKeyId(keyId: string): void {
  if (!KEY_ID.test(keyId)) {
    throw new KinesisError('InvalidArgumentException',
      `Invalid KeyId ${keyId}. Specify a KMS key by its key ID, key ARN, alias name (alias/...) or alias ARN, for example alias/aws/kinesis.`)
  }
}

interface EncryptionRequest { StreamName?: string; StreamARN?: string; EncryptionType: 'NONE' | 'KMS'; KeyId: string }

/** The request of Start/StopStreamEncryption, validated, with the stream it names. */
function request(body: unknown, action: string, ctx: ExtendedContext): { req: EncryptionRequest; state: StreamState } {
  const req = validate<EncryptionRequest>(body, {
    StreamName, StreamARN,
    EncryptionType: { type: 'string', required: true, enum: ['NONE', 'KMS'] },
    KeyId: { type: 'string', required: true, min: 1, max: 2048 },
  })
  const state = resolveStream(req, ctx)
  if (req.EncryptionType !== 'KMS') {
    throw new KinesisError('InvalidArgumentException', `Encryption type ${req.EncryptionType} is not valid for ${action}. The only supported encryption type is KMS.`)
  }
  checkKeyId(req.KeyId)
  return { req, state }
}

async function startStreamEncryption(body: unknown, ctx: ExtendedContext) {
  const { req, state } = request(body, 'StartStreamEncryption', ctx)
  // The key exists before the first sealed record does.
  ctx.cipher.ensureKey()
  await ctx.settings.update(state.meta.id, { encryptionType: 'KMS', keyId: req.KeyId })
  return {}
}

async function stopStreamEncryption(body: unknown, ctx: ExtendedContext) {
  const { req, state } = request(body, 'StopStreamEncryption', ctx)
  const current = ctx.settings.get(state.meta.id)
  if (current.encryptionType === 'KMS' && current.keyId !== req.KeyId) {
    throw new KinesisError('InvalidArgumentException', `KeyId ${req.KeyId} does not match the key ${current.keyId} that stream ${state.meta.name} under account ${ctx.accountId} is encrypted with.`)
  }
  await ctx.settings.update(state.meta.id, { encryptionType: 'NONE', keyId: null })
  return {}
}

export const encryptionActions = {
  StartStreamEncryption: startStreamEncryption,
  StopStreamEncryption: stopStreamEncryption,
}
