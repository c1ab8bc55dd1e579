/**
 * A byte-in/byte-out watcher of MQTT packet boundaries that refuses packets larger than the relay's
 * limit before they are buffered (aedes has no packet size limit of its own). It reads only each
 * fixed header: the type byte and the variable-length "remaining length" [MQTT-2.2.3]. The limit may
 * change between packets: the broker holds a new connection to a small one (a CONNECT needs little)
 * and raises it once the client has authenticated.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'

export class PacketSizeError extends Error {
  readonly size: number
  constructor(size: number, limit: number) {
    super(`MQTT packet of ${size} bytes is over the relay's limit of ${limit}`)
    this.size = size
    this.name = 'PacketSizeError'
  }
}

/** The packet type of DISCONNECT [MQTT-3.14]. */
const DISCONNECT = 14

/** Walks fixed headers; `remaining` counts the bytes of the current packet body still to pass. */
export class PacketSizeChecker {
  /** Applies from the next fixed header on. */
  limit: number
  /** True once the client has sent a DISCONNECT: the connection's end that follows is a clean one. */
  disconnected = false
  private state: 'type' | 'length' | 'body' = 'type'
  private length = 0
  private multiplier = 1
  private remaining = 0
  private lengthBytes = 0

  constructor(limit: number) {
    this.limit = limit
  }

  /** Throws PacketSizeError as soon as a header announces a packet over the limit. */
  feed(chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.length) {
      switch (this.state) {
        case 'type':
          if (chunk[i++]! >> 4 === DISCONNECT) this.disconnected = true
          this.state = 'length'
          this.length = 0
          this.multiplier = 1
          this.lengthBytes = 0
          break
        case 'length': {
          const byte = chunk[i++]!
          this.length += (byte & 0x7f) * this.multiplier
          this.multiplier *= 128
          this.lengthBytes++
          if (byte & 0x80) {
            if (this.lengthBytes >= 4) throw new PacketSizeError(Infinity, this.limit) // malformed length
            break
          }
          const size = 1 + this.lengthBytes + this.length
          if (size > this.limit) throw new PacketSizeError(size, this.limit)
          this.remaining = this.length
          this.state = this.remaining > 0 ? 'body' : 'type'
          break
        }
        case 'body': {
          const take = Math.min(this.remaining, chunk.length - i)
          i += take
          this.remaining -= take
          if (this.remaining === 0) this.state = 'type'
          break
        }
      }
    }
  }
}

/**
 * Wraps a socket so that its inbound bytes pass through the size check; the socket is destroyed on a
 * breach. `limit` is a number, or a checker whose limit the caller changes later.
 */
export function guardPacketSize(socket: Socket, limit: number | PacketSizeChecker, onTooLarge: (err: PacketSizeError) => void): Duplex {
  return new GuardedSocket(socket, typeof limit === 'number' ? new PacketSizeChecker(limit) : limit, onTooLarge)
}

/**
 * The socket as the broker sees it. Its end is the socket's: a close after the peer's FIN ends it
 * without an error, a socket error destroys it with that error, and only a packet over the limit
 * is cut short (Node's `Duplex.from` pair made every close an AbortError, so that each device that
 * said DISCONNECT was logged as a client error).
 */
class GuardedSocket extends Duplex {
  constructor(private readonly socket: Socket, checker: PacketSizeChecker, onTooLarge: (err: PacketSizeError) => void) {
    super({ allowHalfOpen: false })
    socket.on('data', (chunk: Buffer) => {
      try {
        checker.feed(chunk)
      } catch (err) {
        onTooLarge(err as PacketSizeError)
        socket.destroy()
        return
      }
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  override _read(): void {
    this.socket.resume()
  }

  // What the broker writes after the socket has gone is dropped, as a closed socket's would be.
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return done()
    this.socket.write(chunk, done)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return done()
    this.socket.cork()
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i]!.chunk)
    this.socket.write(chunks[chunks.length - 1]!.chunk, done)
    this.socket.uncork()
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done)
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.socket.destroy()
    done(err)
  }
}
