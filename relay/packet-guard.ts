/**
 * A byte-in/byte-out watcher of MQTT packet boundaries that refuses packets larger than the relay's
 * limit before they are buffered (aedes has no packet size limit of its own). It reads only each
 * fixed header: the type byte and the variable-length "remaining length" [MQTT-2.2.3]. The limit may
 * change between packets: the broker holds a new connection to a small one (a CONNECT needs little)
 * and raises it once the client has authenticated.
 */
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream'
import type { Socket } from 'node:net'

export class PacketSizeError extends Error {
  readonly size: number
  constructor(size: number, limit: number) {
    super(`MQTT packet of ${size} bytes is over the relay's limit of ${limit}`)
    this.size = size
    this.name = 'PacketSizeError'
  }
}

/** Walks fixed headers; `remaining` counts the bytes of the current packet body still to pass. */
export class PacketSizeChecker {
  /** Applies from the next fixed header on. */
  limit: number
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
          i++
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
  const checker = typeof limit === 'number' ? new PacketSizeChecker(limit) : limit
  const inbound = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        checker.feed(chunk)
        done(null, chunk)
      } catch (err) {
        onTooLarge(err as PacketSizeError)
        socket.destroy()
        done()
      }
    },
  })
  socket.pipe(inbound)
  const outbound = new PassThrough()
  outbound.pipe(socket)
  const duplex = Duplex.from({ readable: inbound, writable: outbound })
  socket.on('close', () => duplex.destroy())
  socket.on('error', (err) => duplex.destroy(err))
  duplex.on('close', () => socket.destroy())
  return duplex
}
