/**
 * Shard iterators: opaque, tamper-evident, expiring (DESIGN.md). The token is base64 of
 * `version u8 | created ms f64 | offset f64 | shard index u32 | stream id (utf-8)` followed by an
 * HMAC-SHA256 (first 16 bytes) under a key the relay keeps in its metadata, so iterators survive
 * restarts but cannot be forged or edited.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { Limits } from '../../shared/limits.js'
import { invalidShardIterator, iteratorExpired } from './errors.js'

const VERSION = 1
const MAC_SIZE = 16
const FIXED = 1 + 8 + 8 + 4

export interface IteratorPosition {
  streamId: string
  shardIndex: number
  offset: number
  createdMs: number
}

export class IteratorCodec {
  private readonly key: Buffer
  constructor(key: Buffer) {
    this.key = key
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_SIZE)
  }

  encode(p: IteratorPosition): string {
    const id = Buffer.from(p.streamId, 'utf8')
    const body = Buffer.alloc(FIXED + id.length)
    body[0] = VERSION
    body.writeDoubleLE(p.createdMs, 1)
    body.writeDoubleLE(p.offset, 9)
    body.writeUInt32LE(p.shardIndex, 17)
    id.copy(body, FIXED)
    return Buffer.concat([body, this.mac(body)]).toString('base64')
  }

  /** Decodes and checks a token; throws InvalidArgumentException or ExpiredIteratorException as AWS does. */
  decode(token: string, now = Date.now()): IteratorPosition {
    const raw = Buffer.from(token, 'base64')
    if (raw.length < FIXED + MAC_SIZE + 1 || raw[0] !== VERSION || raw.toString('base64') !== token) throw invalidShardIterator()
    const body = raw.subarray(0, raw.length - MAC_SIZE)
    const mac = raw.subarray(raw.length - MAC_SIZE)
    if (!timingSafeEqual(mac, this.mac(body))) throw invalidShardIterator()
    const createdMs = body.readDoubleLE(1)
    if (now - createdMs > Limits.iteratorTtlMs) throw iteratorExpired(createdMs, now, Limits.iteratorTtlMs)
    return { createdMs, offset: body.readDoubleLE(9), shardIndex: body.readUInt32LE(17), streamId: body.toString('utf8', FIXED) }
  }
}
