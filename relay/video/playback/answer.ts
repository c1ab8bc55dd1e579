/**
 * Answers with a media body (GetClip, GetMedia, GetMediaForFragmentList): an action returns a
 * `Streamed`, every check already done, and the API writes the headers then lets it send its body
 * through a `Sink` — one chunk at a time, each write waiting while the client is slow (HTTP/1.1 and
 * HTTP/2 responses alike), so the relay never holds more than the chunk it is writing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'

export type Request = IncomingMessage | Http2ServerRequest
export type Response = ServerResponse | Http2ServerResponse

export interface Sink {
  /** Resolves once the chunk is handed to the socket or buffered within its high-water mark; rejects when the client has gone. */
  write(chunk: Buffer): Promise<void>
  /** Aborted when the client goes away (the sender should stop). */
  signal: AbortSignal
}

export class ClientGone extends Error {
  constructor() {
    super('the client closed the connection')
    this.name = 'ClientGone'
  }
}

export class Streamed {
  constructor(
    readonly contentType: string,
    readonly send: (sink: Sink) => Promise<void>,
    /** The body's length when known before it is made (GetClip): sent as content-length. */
    readonly length?: number,
  ) {}
}

/** A Sink writing to `res`, with back-pressure, and aborted when the client goes. */
export function sinkOf(res: Response): Sink {
  const abort = new AbortController()
  const gone = () => abort.abort(new ClientGone())
  res.once('close', gone)
  const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => {
    if (abort.signal.aborted || res.destroyed) return reject(new ClientGone())
    // Node's typings differ between the HTTP/1.1 and HTTP/2 responses; both take a Buffer here.
    const ok = (res as ServerResponse).write(chunk)
    if (ok) return resolve()
    const done = () => { res.off('drain', done); abort.signal.removeEventListener('abort', done); abort.signal.aborted ? reject(new ClientGone()) : resolve() }
    res.on('drain', done)
    abort.signal.addEventListener('abort', done, { once: true })
  })
  return { write, signal: abort.signal }
}

/** Requests of one kind served at once (each costs a process or a long-held connection). */
export class Slots {
  private used = 0
  constructor(readonly max: number) {}

  /** Takes a slot, or answers false when all are taken. */
  take(): boolean {
    if (this.used >= this.max) return false
    this.used++
    return true
  }

  release(): void {
    this.used = Math.max(0, this.used - 1)
  }
}
