/**
 * Device credentials: a device authenticates with its id as the MQTT username and a secret the relay
 * stores only as a salted scrypt hash. `add` and `rotate` return the secret once; it is never stored.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { ErrorCode, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN } from '../shared/topics.js'
import type { DeviceMeta, MetadataStore } from './meta/types.js'

const KEY_LENGTH = 32

function derive(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, KEY_LENGTH, { N: 16384, r: 8, p: 1 }, (err, key) => (err ? reject(err) : resolve(key))))
}

export class Devices {
  private readonly meta: MetadataStore
  private readonly now: () => number
  constructor(meta: MetadataStore, now: () => number = Date.now) {
    this.meta = meta
    this.now = now
  }

  private async issue(id: string, createdMs: number): Promise<string> {
    const secret = randomBytes(24).toString('base64url')
    const salt = randomBytes(16)
    const hash = await derive(secret, salt)
    await this.meta.putDevice({ id, salt: salt.toString('hex'), hash: hash.toString('hex'), createdMs, rotatedMs: this.now() })
    return secret
  }

  /** Registers a device and returns its secret (shown once). */
  async add(id: string): Promise<string> {
    if (!DEVICE_ID_PATTERN.test(id)) throw new TributaryError(ErrorCode.CONFIG_INVALID, `device id ${JSON.stringify(id)} must match ${DEVICE_ID_PATTERN}`)
    if (await this.meta.getDevice(id)) throw new TributaryError(ErrorCode.CONFLICT, `device ${id} already exists`)
    return this.issue(id, this.now())
  }

  /** Replaces a device's secret; the old one stops working at once. */
  async rotate(id: string): Promise<string> {
    const device = await this.meta.getDevice(id)
    if (!device) throw new TributaryError(ErrorCode.NOT_FOUND, `device ${id} does not exist`)
    return this.issue(id, device.createdMs)
  }

  async remove(id: string): Promise<void> {
    if (!(await this.meta.deleteDevice(id))) throw new TributaryError(ErrorCode.NOT_FOUND, `device ${id} does not exist`)
  }

  async list(): Promise<Pick<DeviceMeta, 'id' | 'createdMs' | 'rotatedMs'>[]> {
    return (await this.meta.listDevices()).map(({ id, createdMs, rotatedMs }) => ({ id, createdMs, rotatedMs }))
  }

  /** True when `secret` is the device's current secret. */
  async verify(id: string, secret: string): Promise<boolean> {
    const device = await this.meta.getDevice(id)
    if (!device) {
      // Spend the same time as a real check so ids cannot be probed by timing.
      await derive(secret, Buffer.alloc(16))
      return false
    }
    const hash = await derive(secret, Buffer.from(device.salt, 'hex'))
    return timingSafeEqual(hash, Buffer.from(device.hash, 'hex'))
  }
}
