/**
 * Secret files: the ones the relay writes in its data directory (`admin.token`, `encryption.key`) and
 * the access-keys file an operator gives it. A secret file is created whole or not at all (written to a
 * temporary file, synced, linked into place, the directory synced), so a power cut never leaves an
 * empty or partial secret under the real name; and at start each one is refused when its mode lets
 * the group or others read it, or when it holds too short a value (an empty admin token would
 * otherwise match a request with no token at all).
 */
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { AccessKey } from '../shared/config.js'
import { ConfigError } from '../shared/errors.js'

/** Characters an admin token needs at least (the relay makes 32 base64url characters: 192 bits). */
export const MIN_ADMIN_TOKEN_CHARS = 32
/** Where a secret is written before it is linked into place: `<name>.<pid>.<random>.tmp`. */
const TEMP_SUFFIX = '.tmp'

/** What a test can substitute: a step run after the temporary file is written and synced, before it is linked into place. */
export interface SecretWriteHooks {
  afterWrite?: (tempPath: string) => void
}

/**
 * Creates `path` holding `content` unless it exists; false when it already existed (another start
 * made it first, or it was there before). Leftover temporary files of an earlier interrupted creation
 * are removed first.
 */
export function createSecretFile(path: string, content: string, hooks: SecretWriteHooks = {}): boolean {
  const dir = dirname(path)
  const prefix = `${basename(path)}.`
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX)) rmSync(join(dir, name), { force: true })
  }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  let created = true
  try {
    hooks.afterWrite?.(tmp)
    // link, not rename: it fails rather than replaces when another start made the file first.
    linkSync(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    created = false
  } finally {
    rmSync(tmp, { force: true })
  }
  syncDir(dir)
  return created
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}

/**
 * Refuses a secret file the group or others may read (or write): whoever can read it holds the
 * secret, so it is refused rather than quietly tightened — the value may already have leaked and
 * wants replacing.
 */
export function checkSecretMode(path: string, what: string): void {
  const mode = statSync(path).mode & 0o777
  if (mode & 0o077) {
    throw new ConfigError(what, `${path} has mode ${mode.toString(8).padStart(4, '0')}: group and others must have no access to a secret. ` +
      `Run: chmod 600 ${path} (and replace the secret if others may have read it)`)
  }
}

/**
 * A warning for a private key file (TLS) the group or others may read, else null. Warned, not refused:
 * a group-readable key is an ordinary setup (Debian's `ssl-cert` group, a certificate manager's), and
 * the operator owns those files.
 */
export function looseKeyWarning(path: string): string | null {
  const mode = statSync(path).mode & 0o777
  if (!(mode & 0o077)) return null
  return `${path} has mode ${mode.toString(8).padStart(4, '0')}: ${mode & 0o007 ? 'every user' : 'its group'} can read this private key; chmod 600 ${path} unless a group must read it`
}

/** The relay's admin token, from `<dataDir>/admin.token`, created at first start. */
export function adminToken(dataDir: string, hooks: SecretWriteHooks = {}): string {
  const path = join(dataDir, 'admin.token')
  try {
    createIfMissing(path, () => randomBytes(24).toString('base64url') + '\n', hooks)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError('admin.token', `cannot create ${path}: ${(err as Error).message}`)
  }
  checkSecretMode(path, 'admin.token')
  const token = readFileSync(path, 'utf8').trim()
  if (token.length < MIN_ADMIN_TOKEN_CHARS) {
    throw new ConfigError('admin.token', `${path} holds a ${token.length}-character token; at least ${MIN_ADMIN_TOKEN_CHARS} are needed ` +
      `(an empty file is what a power cut during an old relay's first start could leave). ` +
      `Remove it (rm ${path}) and start again to create a new token, then give the new token to the admin clients; ` +
      `or write your own of ${MIN_ADMIN_TOKEN_CHARS} or more characters into it with mode 600`)
  }
  return token
}

function createIfMissing(path: string, make: () => string, hooks: SecretWriteHooks): void {
  try {
    statSync(path)
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  createSecretFile(path, make(), hooks)
}

/** The encryption key file's contents, created (32 random bytes as hex) the first time. */
export function encryptionKeyText(path: string, hooks: SecretWriteHooks = {}): string {
  createIfMissing(path, () => randomBytes(32).toString('hex') + '\n', hooks)
  checkSecretMode(path, 'encryption.key')
  return readFileSync(path, 'utf8').trim()
}

/**
 * The access keys in an access-keys file: one `ID:SECRET` a line; blank lines and lines starting with
 * `#` are skipped. The file must exist, be private to its owner and hold at least one key (an empty
 * list would turn SigV4 off).
 */
export function readAccessKeysFile(path: string): AccessKey[] {
  const what = 'accessKeysFile'
  let text: string
  try {
    checkSecretMode(path, what)
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(what, `cannot read ${path}: ${(err as Error).message}`)
  }
  const keys: AccessKey[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const accessKeyId = line.slice(0, colon)
    const secretAccessKey = line.slice(colon + 1)
    if (colon < 0 || !/^[A-Za-z0-9]{1,128}$/.test(accessKeyId) || secretAccessKey.length < 1) {
      throw new ConfigError(what, `${path} line ${i + 1} is not ID:SECRET (ID 1-128 letters and digits, SECRET not empty)`)
    }
    keys.push({ accessKeyId, secretAccessKey })
  })
  if (keys.length === 0) throw new ConfigError(what, `${path} holds no access key (one ID:SECRET a line); with none, SigV4 would be off`)
  return keys
}
