/**
 * The two wire protocols of the Kinesis API, chosen by the request's Content-Type:
 *
 * - AWS JSON 1.1 (`application/x-amz-json-1.1`): blobs as base64 strings, timestamps as epoch
 *   seconds with a fraction. The handlers work in this shape.
 * - CBOR 1.1 (`application/x-amz-cbor-1.1`, the Java SDK's default): blobs as byte strings,
 *   timestamps as tag 1 holding integer epoch **milliseconds** (FIELD-NOTES.md), in both directions.
 *
 * A CBOR request is turned into the JSON shape before validation, and a result back into CBOR on
 * the way out, so each action is written once.
 */
import { CborError, Tagged, decodeCbor, encodeCbor } from './cbor.js'
import { KinesisError, unreadableBody } from './errors.js'

export const AMZ_JSON = 'application/x-amz-json-1.1'
export const AMZ_CBOR = 'application/x-amz-cbor-1.1'

/** Output members that are timestamps or blobs in Kinesis's shapes (the JSON shape cannot tell them apart from numbers and strings). */
const TIMESTAMPS = new Set(['ApproximateArrivalTimestamp', 'StreamCreationTimestamp', 'ConsumerCreationTimestamp'])
const BLOBS = new Set(['Data'])

export interface Protocol {
  readonly contentType: string
  /** The request body as a JSON-shaped object; SerializationException when it cannot be read. */
  decode(body: Buffer): Record<string, unknown>
  /** A JSON-shaped result body in this protocol. */
  encode(value: unknown): Buffer
  /** An error body ({__type, message}) in this protocol, as AWS writes it. */
  encodeError(error: KinesisError): Buffer
}

const notAStructure = () => new KinesisError('SerializationException', 'Start of list found where not expected')

export const json: Protocol = {
  contentType: AMZ_JSON,
  decode(body) {
    // AWS answers a body that is empty, not JSON, or a JSON scalar with a bare {"__type":"SerializationException"}.
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch {
      throw unreadableBody()
    }
    if (parsed === null || typeof parsed !== 'object') throw unreadableBody()
    if (Array.isArray(parsed)) throw notAStructure()
    return parsed as Record<string, unknown>
  },
  encode(value) {
    return Buffer.from(JSON.stringify(value))
  },
  encodeError(error) {
    return Buffer.from(JSON.stringify(error.toJSON()))
  },
}

const CBOR_MAP_INDEFINITE = 0xbf
const CBOR_BREAK = 0xff

/** CBOR request values in the JSON shape: byte strings to base64, tag-1 milliseconds to seconds. */
function fromCbor(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64')
  if (value instanceof Tagged) {
    if (value.tag === 1 && typeof value.value === 'number') return value.value / 1000
    throw new KinesisError('SerializationException', `CBOR tag ${value.tag} is not expected in a Kinesis request`)
  }
  if (typeof value === 'bigint') return Number(value)
  if (Array.isArray(value)) return value.map(fromCbor)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = fromCbor(v)
    return out
  }
  return value
}

/** A JSON-shaped result in CBOR's terms: Data as bytes, timestamps as tag 1 with integer milliseconds. */
function toCbor(value: unknown, key?: string): unknown {
  if (key !== undefined && typeof value === 'number' && TIMESTAMPS.has(key)) return new Tagged(1, Math.round(value * 1000))
  if (key !== undefined && typeof value === 'string' && BLOBS.has(key)) return Buffer.from(value, 'base64')
  if (Buffer.isBuffer(value)) return value
  if (Array.isArray(value)) return value.map((v) => toCbor(v))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toCbor(v, k)
    return out
  }
  return value
}

export const cbor: Protocol = {
  contentType: AMZ_CBOR,
  decode(body) {
    if (!body.length) throw unreadableBody()
    let decoded: unknown
    try {
      decoded = decodeCbor(body)
    } catch (err) {
      if (err instanceof CborError) throw new KinesisError('SerializationException', `Request body is not valid CBOR: ${err.message}`)
      throw err
    }
    if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded) || decoded instanceof Tagged || Buffer.isBuffer(decoded)) throw notAStructure()
    return fromCbor(decoded) as Record<string, unknown>
  },
  encode(value) {
    return encodeCbor(toCbor(value))
  },
  /** As AWS writes it (recorded by kinesalite): an indefinite-length map, `bf 66 "__type" … ff`. */
  encodeError(error) {
    const members = Object.entries(error.toJSON()).flatMap(([k, v]) => [encodeCbor(k), encodeCbor(v)])
    return Buffer.concat([Buffer.from([CBOR_MAP_INDEFINITE]), ...members, Buffer.from([CBOR_BREAK])])
  },
}

/** A Content-Type's media type, lower-cased, without parameters or surrounding spaces. */
export function mediaTypeOf(contentType: string | string[] | undefined): string {
  return String(Array.isArray(contentType) ? contentType[0] : contentType ?? '').split(';')[0]!.trim().toLowerCase()
}

/** The protocol a request speaks, by its Content-Type (parameters such as charset ignored); JSON otherwise. */
export function protocolOf(contentType: string | string[] | undefined): Protocol {
  return mediaTypeOf(contentType) === AMZ_CBOR ? cbor : json
}
