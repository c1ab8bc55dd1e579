/**
 * One HTTP port for everything: HTTP/1.1 and cleartext HTTP/2 (the AWS JS SDK's default), told
 * apart by the HTTP/2 connection preface. Routes: the Kinesis API (`POST /` with X-Amz-Target),
 * the admin API (`/admin/...`, bearer token), `/metrics` and `/healthz`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import net from 'node:net'
import { randomUUID } from 'node:crypto'

export type AnyRequest = IncomingMessage | Http2ServerRequest
export type AnyResponse = ServerResponse | Http2ServerResponse
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void

const PREFACE = Buffer.from('PRI * HTTP/2.0')

export interface HttpServer {
  port: number
  close(): Promise<void>
}

export async function startHttp(host: string, port: number, handler: RequestHandler): Promise<HttpServer> {
  const h1 = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 120_000 }, handler)
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 100 } }, handler)
  // An HTTP/2 session that stays idle this long is closed.
  h2.on('session', (session) => session.setTimeout(120_000, () => session.close()))
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    // A connection that sends nothing is not kept.
    socket.setTimeout(30_000, () => socket.destroy())
    let head = Buffer.alloc(0)
    const sniff = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const n = Math.min(head.length, PREFACE.length)
      const couldBeH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n))
      // Too few bytes to tell the HTTP/2 preface from an HTTP/1.1 request: wait for more.
      if (couldBeH2 && head.length < PREFACE.length) return
      socket.off('data', sniff)
      socket.setTimeout(0)
      socket.pause()
      socket.unshift(head)
      const isH2 = couldBeH2
      // HTTP/2 reads the socket itself and must not see it resumed (FIELD-NOTES.md); HTTP/1.1
      // listens for 'data' and needs the explicit pause undone.
      if (isH2) {
        h2.emit('connection', socket)
      } else {
        h1.emit('connection', socket)
        socket.resume()
      }
    }
    socket.on('data', sniff)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
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

/** Request bodies held in memory at once, across all connections: past this, requests wait their turn no longer but are refused. */
export const BODY_BUDGET = 256 * 1024 * 1024
let bodyBytesInFlight = 0

export class BodyBudgetError extends Error {}

/**
 * Reads a request body up to `limit` bytes; null when it is larger. Throws BodyBudgetError when the
 * relay already holds BODY_BUDGET bytes of unfinished bodies (the caller answers 503).
 */
export function readBody(req: AnyRequest, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let held = 0
    let over = false
    const release = () => { bodyBytesInFlight -= held; held = 0 }
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (over) return
      if (size > limit) { over = true; chunks.length = 0; release(); return }
      if (bodyBytesInFlight + chunk.length > BODY_BUDGET) {
        release()
        req.destroy()
        reject(new BodyBudgetError('too many request bytes in flight'))
        return
      }
      bodyBytesInFlight += chunk.length
      held += chunk.length
      chunks.push(chunk)
    })
    req.on('end', () => { release(); resolve(over ? null : Buffer.concat(chunks, size)) })
    req.on('error', (err) => { release(); reject(err) })
    req.on('close', release)
  })
}

export function send(res: AnyResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  const payload = typeof body === 'string' ? Buffer.from(body) : body
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(payload.length), 'x-amzn-requestid': randomUUID(), ...headers })
  res.end(payload)
}

export function sendJson(res: AnyResponse, status: number, value: unknown, contentType = 'application/json'): void {
  send(res, status, contentType, JSON.stringify(value))
}
