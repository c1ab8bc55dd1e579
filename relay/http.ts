/**
 * One HTTP port for everything: HTTP/1.1 and HTTP/2 (the AWS JS SDK's default), in cleartext or
 * over TLS, told apart by the HTTP/2 connection preface (ALPN offers both over TLS; the preface
 * decides either way). Routes: the Kinesis API (`POST /` with X-Amz-Target), the admin API
 * (`/admin/...`, bearer token), `/metrics` and `/healthz`.
 *
 * The sockets are handed to node's servers with `emit('connection')`, so node's own header and
 * request timeouts never run: the guards here do their work. Every connection and every HTTP/2
 * stream has an idle timeout (reset by any byte, then destroyed); a body must keep arriving at a
 * minimum rate; body bytes held in memory are capped per connection, per client address and in
 * all, as are connections per address (HttpGuard).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { randomUUID } from 'node:crypto'

export type AnyRequest = IncomingMessage | Http2ServerRequest
export type AnyResponse = ServerResponse | Http2ServerResponse
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void

const PREFACE = Buffer.from('PRI * HTTP/2.0')

export interface HttpLimits {
  /** A connection or a stream with a request in progress that receives nothing this long is destroyed; so is a connection that sends no request. */
  idleMs: number
  /** A body must arrive at least this fast, judged over each idleMs window. */
  minBodyBytesPerSecond: number
  /** Body bytes held at once, in all / per client address / per connection; past them a request is answered 503. */
  maxBodyBytesInFlight: number
  maxBodyBytesPerAddress: number
  maxBodyBytesPerConnection: number
  /** Connections one client address may hold open; past it a new one is closed at once. */
  maxConnectionsPerAddress: number
}

export const DEFAULT_LIMITS: HttpLimits = {
  idleMs: 30_000,
  minBodyBytesPerSecond: 4096,
  maxBodyBytesInFlight: 256 * 1024 * 1024,
  maxBodyBytesPerAddress: 64 * 1024 * 1024,
  maxBodyBytesPerConnection: 32 * 1024 * 1024,
  maxConnectionsPerAddress: 256,
}

/** The state of one client connection, for the guard's accounting. */
interface Conn {
  address: string
  bodyBytes: number
  left: boolean
}

interface AddressUse {
  connections: number
  bodyBytes: number
}

/** Which limit refused a body. */
export type Saturation = 'relay' | 'address' | 'connection'

/** A body refused because a cap on held body bytes is reached (answered 503 with Retry-After). */
export class BodyBudgetError extends Error {
  constructor(readonly limit: Saturation) {
    super(`too many request body bytes in flight (${limit} limit)`)
    this.name = 'BodyBudgetError'
  }
}

/** A body that stopped or crawled: its stream or connection has been destroyed, nothing to answer. */
export class BodyTimeoutError extends Error {
  constructor(readonly reason: 'idle' | 'rate') {
    super(`request body ${reason === 'idle' ? 'stalled' : 'arrived too slowly'}`)
    this.name = 'BodyTimeoutError'
  }
}

/** What /healthz reports of the HTTP port. */
export interface HttpStatus {
  saturated: boolean
  bodyBytesInFlight: number
  maxBodyBytesInFlight: number
  connections: number
  /** Client addresses at one of their caps now. */
  addressesAtLimit: number
  /** Requests and connections refused by a cap since the relay started, by limit. */
  refused: Record<Saturation | 'connections', number>
}

/** The caps and timeouts of the HTTP port, shared by the server (connections) and the routes (bodies). */
export class HttpGuard {
  readonly limits: HttpLimits
  private total = 0
  private connections = 0
  private readonly byAddress = new Map<string, AddressUse>()
  private readonly refused: HttpStatus['refused'] = { relay: 0, address: 0, connection: 0, connections: 0 }
  private lastRelayRefusal = -Infinity
  private readonly bySocket = new WeakMap<object, Conn>()
  private readonly bySession = new WeakMap<Http2Session, Conn>()
  /** Set while a socket is handed to the HTTP/2 server, which makes its session synchronously. */
  private handingOver: Conn | null = null

  constructor(limits: Partial<HttpLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits }
  }

  /** A new connection from `socket`'s address, or null when that address holds its cap of connections. */
  admit(socket: net.Socket): Conn | null {
    const address = normalizeAddress(socket.remoteAddress)
    const use = this.byAddress.get(address) ?? { connections: 0, bodyBytes: 0 }
    if (use.connections >= this.limits.maxConnectionsPerAddress) {
      this.refused.connections++
      return null
    }
    use.connections++
    this.connections++
    this.byAddress.set(address, use)
    const conn = { address, bodyBytes: 0, left: false }
    this.bySocket.set(socket, conn)
    socket.once('close', () => this.leave(conn))
    return conn
  }

  /** Records that `socket` (the one node's servers see: TLS or plain) belongs to `conn`; its close ends the connection too. */
  bind(socket: net.Socket, conn: Conn): void {
    this.bySocket.set(socket, conn)
    socket.once('close', () => this.leave(conn))
  }

  /** A connection has gone (once, whichever of its sockets says so first). */
  private leave(conn: Conn): void {
    if (conn.left) return
    conn.left = true
    const use = this.byAddress.get(conn.address)
    this.connections--
    if (!use) return
    use.connections--
    if (use.connections === 0 && use.bodyBytes === 0) this.byAddress.delete(conn.address)
  }

  handOver(conn: Conn, fn: () => void): void {
    this.handingOver = conn
    try { fn() } finally { this.handingOver = null }
  }

  onSession(session: Http2Session): void {
    if (this.handingOver) this.bySession.set(session, this.handingOver)
  }

  connOf(req: AnyRequest): Conn | undefined {
    if ('stream' in req) return this.bySession.get(req.stream.session as Http2Session)
    return this.bySocket.get(req.socket)
  }

  /** Takes `n` body bytes for `conn`, or throws BodyBudgetError naming the cap it would pass. */
  reserve(conn: Conn | undefined, n: number, now = performance.now()): void {
    const limit = this.wouldExceed(conn, n)
    if (limit) {
      this.refused[limit]++
      if (limit === 'relay') this.lastRelayRefusal = now
      throw new BodyBudgetError(limit)
    }
    this.total += n
    if (conn) {
      conn.bodyBytes += n
      this.byAddress.get(conn.address)!.bodyBytes += n
    }
  }

  release(conn: Conn | undefined, n: number): void {
    if (n === 0) return
    this.total -= n
    if (!conn) return
    conn.bodyBytes -= n
    const use = this.byAddress.get(conn.address)
    if (!use) return
    use.bodyBytes -= n
    if (use.connections === 0 && use.bodyBytes === 0) this.byAddress.delete(conn.address)
  }

  /** The cap `n` more bytes would pass (a declared Content-Length is checked before any byte is read). */
  wouldExceed(conn: Conn | undefined, n: number): Saturation | null {
    if (this.total + n > this.limits.maxBodyBytesInFlight) return 'relay'
    if (!conn) return null
    if (this.byAddress.get(conn.address)!.bodyBytes + n > this.limits.maxBodyBytesPerAddress) return 'address'
    if (conn.bodyBytes + n > this.limits.maxBodyBytesPerConnection) return 'connection'
    return null
  }

  /** Saturated: the relay-wide budget is nearly full, or refused a body within the last idle period. */
  status(now = performance.now()): HttpStatus {
    let atLimit = 0
    const { maxBodyBytesPerAddress, maxConnectionsPerAddress } = this.limits
    for (const use of this.byAddress.values()) {
      if (use.bodyBytes >= maxBodyBytesPerAddress * 0.9 || use.connections >= maxConnectionsPerAddress) atLimit++
    }
    return {
      saturated: this.total >= this.limits.maxBodyBytesInFlight * 0.9 || now - this.lastRelayRefusal < this.limits.idleMs,
      bodyBytesInFlight: this.total,
      maxBodyBytesInFlight: this.limits.maxBodyBytesInFlight,
      connections: this.connections,
      addressesAtLimit: atLimit,
      refused: { ...this.refused },
    }
  }
}

/** '::ffff:1.2.3.4' and '1.2.3.4' are one client. */
function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown'
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

export interface HttpServer {
  port: number
  tls: boolean
  close(): Promise<void>
}

export interface HttpOptions {
  guard: HttpGuard
  /** PEM certificate and key: the port then speaks TLS only. */
  tls?: { cert: Buffer | string; key: Buffer | string }
  /** Told of connections and streams the guards close: the first of each kind per idle period, with the count since the last report. */
  onGuard?: (event: 'idle' | 'connections', fields: Record<string, unknown>) => void
}

export async function startHttp(host: string, port: number, handler: RequestHandler, o: HttpOptions): Promise<HttpServer> {
  const { guard } = o
  const { idleMs } = guard.limits
  // At most one report per kind each idle period, with how many it stands for: a flood of
  // connections must not become a flood of log lines.
  const last = { idle: -Infinity, connections: -Infinity }
  const counts = { idle: 0, connections: 0 }
  const onGuard = (event: 'idle' | 'connections', fields: Record<string, unknown>) => {
    counts[event]++
    const now = performance.now()
    if (now - last[event] < idleMs) return
    last[event] = now
    o.onGuard?.(event, { ...fields, count: counts[event] })
    counts[event] = 0
  }
  // Node's own timeouts need a listening server; ours are set on each socket and stream below.
  const h1 = http.createServer({ keepAliveTimeout: idleMs, headersTimeout: 0, requestTimeout: 0 }, handler)
  // Node puts a socket's timeout back to the server's own at each request after the first: the
  // server's must be ours, or a keep-alive connection's second request would have none.
  h1.setTimeout(idleMs)
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 100 } }, handler)
  h2.on('session', (session: Http2Session) => {
    guard.onSession(session)
    // A session that carries nothing for idleMs is closed (GOAWAY, so a client does not start a
    // request on it), and destroyed soon after, open streams and all: close() alone waits for them.
    session.setTimeout(idleMs, () => {
      onGuard('idle', { protocol: 'h2', what: 'session' })
      session.close()
      setTimeout(() => session.destroy(), Math.min(idleMs, 1000)).unref()
    })
  })
  // A stream's request must keep arriving until its body ends; the response side is the session's.
  h2.on('stream', (stream) => {
    stream.setTimeout(idleMs, () => {
      onGuard('idle', { protocol: 'h2', what: 'stream' })
      stream.close(http2.constants.NGHTTP2_CANCEL)
    })
    const done = () => stream.setTimeout(0)
    if (stream.endAfterHeaders) done()
    else stream.once('end', done)
  })
  const sockets = new Set<net.Socket>()

  /** A (plain or TLS) socket's first bytes say which server gets it. */
  const dispatch = (socket: net.Socket, conn: Conn) => {
    guard.bind(socket, conn)
    let head = Buffer.alloc(0)
    const sniff = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const n = Math.min(head.length, PREFACE.length)
      const couldBeH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n))
      // Too few bytes to tell the HTTP/2 preface from an HTTP/1.1 request: wait for more.
      if (couldBeH2 && head.length < PREFACE.length) return
      socket.off('data', sniff)
      socket.pause()
      socket.unshift(head)
      // HTTP/2 reads the socket itself and must not see it resumed (FIELD-NOTES.md); HTTP/1.1
      // listens for 'data' and needs the explicit pause undone.
      if (couldBeH2) {
        // The session's own idle timer (above) takes over.
        socket.setTimeout(0)
        guard.handOver(conn, () => h2.emit('connection', socket))
      } else {
        // An HTTP/1.1 connection is idle when no byte moves: between requests, in headers, in a body.
        // Closing after an answer to a body not (all) read is a lingering close: our side ends, what
        // the client still sends is read and dropped, and the idle timeout ends the rest. Node's
        // destroySoon would reset the connection with the client's bytes unread, and a reset can
        // take the answer (a 401, a 503) with it before the client reads it.
        socket.destroySoon = () => { socket.end() }
        h1.emit('connection', socket)
        socket.resume()
      }
    }
    socket.on('data', sniff)
  }

  const accept = (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const conn = guard.admit(socket)
    if (!conn) {
      onGuard('connections', { address: socket.remoteAddress })
      socket.destroy()
      return
    }
    // A connection that sends nothing (no TLS handshake, no request) is not kept.
    socket.setTimeout(idleMs, () => {
      onGuard('idle', { protocol: 'tcp', what: 'connection' })
      socket.destroy()
    })
    if (!o.tls) return dispatch(socket, conn)
    // Until its handshake is done, a TLS connection is known by its remote address and port.
    const key = `${socket.remoteAddress}:${socket.remotePort}`
    pendingTls.set(key, conn)
    socket.once('close', () => { if (pendingTls.get(key) === conn) pendingTls.delete(key) })
    tlsServer!.emit('connection', socket)
  }
  const pendingTls = new Map<string, Conn>()
  // TLS: node's TLS server does the handshake (over the sockets accepted above) and hands over
  // the secured socket; ALPN has then chosen HTTP/2 or HTTP/1.1.
  const tlsServer = o.tls ? tls.createServer({ cert: o.tls.cert, key: o.tls.key, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: idleMs }) : undefined
  tlsServer?.on('tlsClientError', (_err, secure) => secure.destroy())
  tlsServer?.on('secureConnection', (secure: tls.TLSSocket) => {
    const key = `${secure.remoteAddress}:${secure.remotePort}`
    const conn = pendingTls.get(key)
    pendingTls.delete(key)
    if (!conn) return secure.destroy()
    sockets.add(secure)
    secure.on('close', () => sockets.delete(secure))
    secure.on('error', () => secure.destroy())
    secure.setTimeout(idleMs, () => {
      onGuard('idle', { protocol: 'tls', what: 'connection' })
      secure.destroy()
    })
    if (secure.alpnProtocol !== 'h2') return dispatch(secure, conn)
    // ALPN chose HTTP/2: the session reads the preface itself.
    guard.bind(secure, conn)
    secure.setTimeout(0)
    guard.handOver(conn, () => h2.emit('connection', secure))
  })
  const server = net.createServer(accept)

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    tls: Boolean(o.tls),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      h1.close()
      h2.close()
    },
  }
}

/** The request's stream (HTTP/2) or socket (HTTP/1.1) is destroyed: a refused or stalled body costs nothing more. */
export function abandon(req: AnyRequest): void {
  if ('stream' in req) req.stream.close(http2.constants.NGHTTP2_CANCEL)
  else req.socket.destroy()
}

/**
 * Ends an exchange whose body was not (all) read: HTTP/1.1 closes the connection after the answer
 * (`connection: close` must be among the answer's headers); HTTP/2 resets the stream with NO_ERROR
 * once the answer is out, which tells the client to stop sending (RFC 9113 §8.1).
 */
export function stopBody(req: AnyRequest, res: AnyResponse): void {
  if ('stream' in req) {
    const stream = req.stream
    res.once('finish', () => { if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR) })
  }
}

/**
 * Reads a request body up to `limit` bytes; null when it is larger (at its end, or as soon as it
 * passes the limit with `stopWhenOver`). Throws BodyBudgetError when a
 * cap on held body bytes would be passed (the caller answers 503), BodyTimeoutError when the body
 * crawls (its stream or connection is then destroyed).
 */
export function readBody(req: AnyRequest, limit: number, guard: HttpGuard, opts: { stopWhenOver?: boolean } = {}): Promise<Buffer | null> {
  const conn = guard.connOf(req)
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > 0 && declared <= limit) {
    // A body that could never fit is refused before a byte of it is held.
    const over = guard.wouldExceed(conn, declared)
    if (over) {
      try { guard.reserve(conn, declared) } catch (err) { return Promise.reject(err) }
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let held = 0
    let over = false
    let settled = false
    const { idleMs, minBodyBytesPerSecond } = guard.limits
    let windowBytes = 0
    const finish = () => { clearInterval(rate); guard.release(conn, held); held = 0 }
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      finish()
      reject(err)
    }
    // Each idle period, the body must have moved at least the minimum rate's worth.
    const rate = setInterval(() => {
      if (windowBytes < minBodyBytesPerSecond * idleMs / 1000) {
        abandon(req)
        fail(new BodyTimeoutError(windowBytes === 0 ? 'idle' : 'rate'))
      }
      windowBytes = 0
    }, idleMs)
    rate.unref()
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      windowBytes += chunk.length
      if (over || settled) return
      if (size > limit) {
        over = true
        chunks.length = 0
        guard.release(conn, held)
        held = 0
        // The caller answers now and ends the exchange (stopBody), the rest unread.
        if (opts.stopWhenOver) { settled = true; finish(); resolve(null) }
        return
      }
      try {
        guard.reserve(conn, chunk.length)
      } catch (err) {
        fail(err as Error)
        return
      }
      held += chunk.length
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (settled) return
      settled = true
      finish()
      resolve(over ? null : Buffer.concat(chunks, size))
    })
    req.on('error', (err) => fail(err))
    // Every request closes; only one that closes before its body ended was cut off (no error is made for the others).
    req.on('close', () => { if (!settled) fail(new BodyTimeoutError('idle')) })
  })
}

/** Answers with a body; a null content type sends none (as AWS's XML refusals and CORS preflights have none). */
export function send(res: AnyResponse, status: number, contentType: string | null, body: string | Buffer, headers: Record<string, string> = {}): void {
  const payload = typeof body === 'string' ? Buffer.from(body) : body
  const type: Record<string, string> = contentType === null ? {} : { 'content-type': contentType }
  // AWS's spelling, as its API reference shows the header (HTTP/1.1 keeps a header name's case).
  res.writeHead(status, { ...type, 'content-length': String(payload.length), 'x-amzn-RequestId': randomUUID(), ...headers })
  res.end(payload)
}

export function sendJson(res: AnyResponse, status: number, value: unknown, contentType = 'application/json', headers: Record<string, string> = {}): void {
  send(res, status, contentType, JSON.stringify(value), headers)
}
