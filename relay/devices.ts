/**
 * Device credentials: a device authenticates with its id as the MQTT username (and client id) and a
 * secret the relay stores only as a salted scrypt hash. `add` and `rotate` return the secret once; it
 * is never stored. A rotation may keep the previous secret valid for a grace window, so a fleet can
 * be moved to the new one without downtime. Whoever holds live sessions (the broker) is told of every
 * change and closes those the change revoked (`onChange`, `check`).
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN } from '../shared/topics.js'
import type { DeviceMeta, MetadataStore } from './meta/types.js'

const KEY_LENGTH = 32
/** The longest grace window a rotation may keep the old secret for. */
export const MAX_GRACE_MS = 30 * 86_400_000

function derive(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, KEY_LENGTH, { N: 16384, r: 8, p: 1 }, (err, key) => (err ? reject(err) : resolve(key))))
}

/**
 * What a connection proved at authentication: which stored secret (named by its salt, unique per
 * secret) and until when it stays valid (null: until the next change).
 */
export interface SecretProof {
  device: string
  salt: string
  untilMs: number | null
}

export class Devices {
  private readonly meta: MetadataStore
  private readonly now: () => number
  private readonly listeners: ((id: string) => Promise<void> | void)[] = []

  constructor(meta: MetadataStore, now: () => number = Date.now) {
    this.meta = meta
    this.now = now
  }

  /** `fn` runs after every add, rotate and remove, and the change's caller waits for it. */
  onChange(fn: (id: string) => Promise<void> | void): void {
    this.listeners.push(fn)
  }

  private async changed(id: string): Promise<void> {
    for (const fn of this.listeners) await fn(id)
  }

  private async issue(id: string, createdMs: number, previous?: DeviceMeta['previous']): Promise<string> {
    const secret = randomBytes(24).toString('base64url')
    const salt = randomBytes(16)
    const hash = await derive(secret, salt)
    await this.meta.putDevice({ id, salt: salt.toString('hex'), hash: hash.toString('hex'), createdMs, rotatedMs: this.now(), ...(previous ? { previous } : {}) })
    return secret
  }

  /** Registers a device and returns its secret (shown once). */
  async add(id: string): Promise<string> {
    if (!DEVICE_ID_PATTERN.test(id)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `device id ${JSON.stringify(id)} must match ${DEVICE_ID_PATTERN}`)
    if (await this.meta.getDevice(id)) throw new TributaryError(ErrorCode.CONFLICT, `device ${id} already exists`)
    const secret = await this.issue(id, this.now())
    await this.changed(id)
    return secret
  }

  /**
   * Replaces a device's secret. Without a grace window the old one stops working at once (and its
   * sessions are closed); with one it stays valid until the window ends. Only two secrets are ever
   * valid: a secret still in an earlier window stops at once.
   */
  async rotate(id: string, graceMs = 0): Promise<{ secret: string; previousUntilMs: number | null }> {
    if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) {
      throw new TributaryError(ErrorCode.CONFIG_INVALID, `grace must be a whole number of milliseconds from 0 to ${MAX_GRACE_MS}, got ${graceMs}`)
    }
    const device = await this.meta.getDevice(id)
    if (!device) throw new TributaryError(ErrorCode.NOT_FOUND, `device ${id} does not exist`)
    const untilMs = graceMs > 0 ? this.now() + graceMs : null
    const secret = await this.issue(id, device.createdMs, untilMs === null ? undefined : { salt: device.salt, hash: device.hash, untilMs })
    await this.changed(id)
    return { secret, previousUntilMs: untilMs }
  }

  async remove(id: string): Promise<void> {
    if (!(await this.meta.deleteDevice(id))) throw new TributaryError(ErrorCode.NOT_FOUND, `device ${id} does not exist`)
    await this.changed(id)
  }

  async list(): Promise<(Pick<DeviceMeta, 'id' | 'createdMs' | 'rotatedMs'> & { previousUntilMs?: number })[]> {
    const now = this.now()
    return (await this.meta.listDevices()).map(({ id, createdMs, rotatedMs, previous }) => ({
      id, createdMs, rotatedMs, ...(previous && previous.untilMs > now ? { previousUntilMs: previous.untilMs } : {}),
    }))
  }

  async isRegistered(id: string): Promise<boolean> {
    return (await this.meta.getDevice(id)) !== undefined
  }

  /** Which of the device's valid secrets `secret` is, or null when it is none of them. */
  async verify(id: string, secret: string): Promise<SecretProof | null> {
    const device = await this.meta.getDevice(id)
    if (!device) {
      // Spend the same time as a real check so ids cannot be probed by timing.
      await derive(secret, Buffer.alloc(16))
      return null
    }
    if (timingSafeEqual(await derive(secret, Buffer.from(device.salt, 'hex')), Buffer.from(device.hash, 'hex'))) return { device: id, salt: device.salt, untilMs: null }
    const previous = device.previous
    if (previous && previous.untilMs > this.now()) {
      const hash = await derive(secret, Buffer.from(previous.salt, 'hex'))
      // Read the clock again: the window may have ended during the derivation.
      if (timingSafeEqual(hash, Buffer.from(previous.hash, 'hex')) && previous.untilMs > this.now()) return { device: id, salt: previous.salt, untilMs: previous.untilMs }
    }
    return null
  }

  /** Whether a proof still holds now (the same secret, still valid), with its current end; null when revoked. */
  async check(proof: SecretProof): Promise<SecretProof | null> {
    const device = await this.meta.getDevice(proof.device)
    if (!device) return null
    if (device.salt === proof.salt) return { ...proof, untilMs: null }
    const previous = device.previous
    if (previous && previous.salt === proof.salt && previous.untilMs > this.now()) return { ...proof, untilMs: previous.untilMs }
    return null
  }
}
