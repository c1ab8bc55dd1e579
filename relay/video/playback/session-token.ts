/**
 * HLS streaming sessions travel in their URLs as a SessionToken, as AWS's do: the session's
 * parameters sealed with AES-256-GCM under a key derived from the relay's video token key (so a token
 * is both secret and tamper-evident), base64url, valid until its expiry on the relay's clock. The
 * relay keeps nothing per session that a token cannot rebuild: a relay restarted mid-session goes on
 * serving it.
 *
 * Layout (before base64url): version byte (1) | 12-byte IV | 16-byte GCM tag | ciphertext of the
 * session as compact JSON. The version byte is authenticated too (additional data).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { VideoApiError, VideoErrorType } from '../errors.js'

export type PlaybackMode = 'LIVE' | 'LIVE_REPLAY' | 'ON_DEMAND'
export type ContainerFormat = 'FRAGMENTED_MP4' | 'MPEG_TS'
export type DiscontinuityMode = 'ALWAYS' | 'NEVER' | 'ON_DISCONTINUITY'
/** Which timestamp selects and orders fragments. */
export type TimeOrigin = 'producer' | 'server'

export interface HlsSession {
  /** Random: names the session's cached timeline. */
  id: string
  streamId: string
  mode: PlaybackMode
  by: TimeOrigin
  /** Inclusive bounds (ms) on the `by` timestamp. */
  startMs?: number
  endMs?: number
  container: ContainerFormat
  discontinuity: DiscontinuityMode
  /** EXT-X-PROGRAM-DATE-TIME on every segment. */
  displayTimestamps: boolean
  maxFragments: number
  /** The relay's clock (ms) when the session was made: LIVE_REPLAY paces from it. */
  createdMs: number
  expiresMs: number
  /** LIVE: the id of the first fragment the session can list (the oldest of its first window). */
  firstId: number
}

const VERSION = 1
const IV = 12
const TAG = 16
const AAD = Buffer.from([VERSION])

const MODES: PlaybackMode[] = ['LIVE', 'LIVE_REPLAY', 'ON_DEMAND']
const CONTAINERS: ContainerFormat[] = ['FRAGMENTED_MP4', 'MPEG_TS']
const DISCONTINUITIES: DiscontinuityMode[] = ['ALWAYS', 'NEVER', 'ON_DISCONTINUITY']

/** The compact form sealed in a token (short keys keep URLs short). */
interface Sealed { i: string; s: string; m: number; b: 0 | 1; a?: number; e?: number; c: number; d: number; t: 0 | 1; n: number; k: number; x: number; f: number }

export class SessionTokens {
  constructor(private readonly key: Buffer, private readonly now: () => number) {
    if (key.length !== 32) throw new RangeError('an HLS session key is 32 bytes')
  }

  static newId(): string {
    return randomBytes(8).toString('hex')
  }

  seal(s: HlsSession): string {
    const body: Sealed = {
      i: s.id, s: s.streamId, m: MODES.indexOf(s.mode), b: s.by === 'producer' ? 1 : 0, a: s.startMs, e: s.endMs,
      c: CONTAINERS.indexOf(s.container), d: DISCONTINUITIES.indexOf(s.discontinuity), t: s.displayTimestamps ? 1 : 0,
      n: s.maxFragments, k: s.createdMs, x: s.expiresMs, f: s.firstId,
    }
    const iv = randomBytes(IV)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    cipher.setAAD(AAD)
    const sealed = Buffer.concat([cipher.update(JSON.stringify(body)), cipher.final()])
    return Buffer.concat([AAD, iv, cipher.getAuthTag(), sealed]).toString('base64url')
  }

  /** The session a token holds; a forged, damaged or expired token is refused with 403 (NotAuthorizedException). */
  open(token: string | null): HlsSession {
    if (!token) throw notAuthorized('The request has no SessionToken.')
    const raw = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.alloc(0)
    if (raw.length <= 1 + IV + TAG || raw[0] !== VERSION) throw notAuthorized('The SessionToken is not valid.')
    let body: Sealed
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(1, 1 + IV))
      decipher.setAAD(AAD)
      decipher.setAuthTag(raw.subarray(1 + IV, 1 + IV + TAG))
      body = JSON.parse(Buffer.concat([decipher.update(raw.subarray(1 + IV + TAG)), decipher.final()]).toString('utf8')) as Sealed
    } catch {
      throw notAuthorized('The SessionToken is not valid.')
    }
    if (this.now() >= body.x) throw notAuthorized('The SessionToken has expired.')
    return {
      id: body.i, streamId: body.s, mode: MODES[body.m]!, by: body.b ? 'producer' : 'server', startMs: body.a, endMs: body.e,
      container: CONTAINERS[body.c]!, discontinuity: DISCONTINUITIES[body.d]!, displayTimestamps: body.t === 1,
      maxFragments: body.n, createdMs: body.k, expiresMs: body.x, firstId: body.f,
    }
  }
}

/** AWS answers an expired or unauthorised session with 403 (its model says 401 for the type in general). */
export const notAuthorized = (message: string) => new VideoApiError(VideoErrorType.NotAuthorizedException, message, { status: 403 })
