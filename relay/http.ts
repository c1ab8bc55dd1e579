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
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, handler)
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, handler)
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.unshift(chunk)
      const isH2 = chunk.length >= PREFACE.length ? chunk.subarray(0, PREFACE.length).equals(PREFACE) : PREFACE.subarray(0, chunk.length).equals(chunk)
      // HTTP/2 reads the socket itself and must not see it resumed (FIELD-NOTES.md); HTTP/1.1
      // listens for 'data' and needs the explicit pause undone.
      if (isH2) {
        h2.emit('connection', socket)
      } else {
        h1.emit('connection', socket)
        socket.resume()
      }
    })
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

/** Reads a request body up to `limit` bytes; null when it is larger. */
export function readBody(req: AnyRequest, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let over = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) { over = true; chunks.length = 0; return }
      if (!over) chunks.push(chunk)
    })
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks, size)))
    req.on('error', reject)
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
