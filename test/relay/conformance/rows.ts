/**
 * The conformance table's row: one request and what AWS answers to it. Rows are data, grouped by
 * class in this folder (one file per class, each saying where its expectations come from); the
 * runner (test/relay/conformance.test.ts) sends every row to a real relay over HTTP/1.1 and HTTP/2,
 * and a row of an action over both of the API's protocols (JSON 1.1 and CBOR 1.1).
 */

/** What the runner sets up before the rows run, for rows whose request or answer depends on it. */
export interface Fixture {
  /** A provisioned stream of three shards, one record in shard 0. */
  stream: string
  streamArn: string
  account: string
  /** The sequence number of the record in shard 0. */
  seq0: string
  /** Shard 0's hash key range. */
  shard0: { start: string; end: string }
  /** An ACTIVE consumer of the stream. */
  consumerArn: string
}

export type Value<T> = T | ((f: Fixture) => T)

export const valueOf = <T>(v: Value<T>, f: Fixture): T => (typeof v === 'function' ? (v as (f: Fixture) => T)(f) : v)

/**
 * The request. With `action`, the body is a JSON-shaped object sent as JSON 1.1 and again as CBOR
 * 1.1 (Content-Type and X-Amz-Target set by the runner, beside `headers`, to `path` or `/`). Without it, the request is sent exactly as
 * given (method, path, headers, raw body), once per HTTP version.
 */
export type Request =
  | { action: string; body: Value<unknown>; headers?: Record<string, string>; path?: string }
  | { method: string; path?: string; headers?: Record<string, string>; raw?: string | Buffer }

/** A header's expectation: its exact value, a pattern, or null when it must be absent. */
export type HeaderExpectation = string | RegExp | null

export interface Expectation {
  status: number
  /**
   * The answer's body. For an action's row, the decoded body (JSON or CBOR) equals `body` exactly,
   * or `match` is a tap pattern it must satisfy, or `pick` of it equals `equals`. For a raw row,
   * `raw` is the body byte for byte.
   */
  body?: Value<unknown>
  match?: Value<unknown>
  pick?: { of: (body: any) => unknown; equals: Value<unknown> } // eslint-disable-line @typescript-eslint/no-explicit-any
  raw?: string | Buffer
  headers?: Record<string, HeaderExpectation>
}

export interface Row {
  /** The class of difference from the issue the row belongs to. */
  class: string
  /** What the row shows, as a sentence. */
  name: string
  request: Request
  expect: Expectation
  /** Where the expectation comes from: an AWS documentation URL, a recorded answer, the SDK model. */
  source: string
  /**
   * Sent without credentials even to the relay with access keys (every other row is signed there),
   * for what AWS answers before it looks at credentials; `keyed` is the answer there when it differs.
   */
  unsigned?: { keyed?: Expectation }
  /**
   * Signed by the AWS SDK's signer in a way other than the usual, on both relays (the one without
   * access keys takes any signature): another key or secret, another region, a clock `skewMs` off,
   * or presigned (query-string auth) with `presignExpiresS`.
   */
  signing?: Signing
  /** The answer of the relay with access keys, where it differs from `expect` (a row with `signing`). */
  keyed?: Expectation
  /** Only over this HTTP version, and why (a request the other cannot carry). */
  only?: { version: 'HTTP/1.1' | 'HTTP/2'; why: string }
}

export interface Signing {
  accessKeyId?: string
  secretAccessKey?: string
  region?: string
  /** The signing time's distance from now, in ms (negative: in the past). */
  skewMs?: number
  /** Presigned, valid for this many seconds from the signing time. */
  presignExpiresS?: number
}

/** AWS's headers on every answer: a request id (a UUID) and an x-amz-id-2 (base64 of 64–80 bytes). */
export const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
export const ID_2 = /^[A-Za-z0-9+/]{86,108}={0,2}$/
