/**
 * Paging tokens (ListStreams, ListShards, ListStreamConsumers): base64 of a 16-byte HMAC-SHA256 tag
 * and the JSON position, so a token cannot be edited; expiring after 5 minutes like AWS's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { invalidNextToken, nextTokenExpired } from './errors.js'

const MAC = 16
const LIFETIME_MS = 300_000

export class PageTokens {
  constructor(private readonly key: Buffer, private readonly now: () => number) {}

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC)
  }

  encode(position: object): string {
    const body = Buffer.from(JSON.stringify({ ...position, t: this.now() }))
    return Buffer.concat([this.mac(body), body]).toString('base64')
  }

  /** The position a token holds; InvalidArgumentException when it was not made here, ExpiredNextTokenException when it is old. */
  decode<T>(token: string, action: string): T {
    const raw = Buffer.from(token, 'base64')
    if (raw.length <= MAC) throw invalidNextToken()
    const body = raw.subarray(MAC)
    if (!timingSafeEqual(raw.subarray(0, MAC), this.mac(body))) throw invalidNextToken()
    const value = JSON.parse(body.toString()) as T & { t: number }
    if (this.now() - value.t > LIFETIME_MS) throw nextTokenExpired(action)
    return value
  }
}
