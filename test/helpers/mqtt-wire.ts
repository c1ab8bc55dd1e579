/**
 * MQTT 3.1.1 on a bare TCP socket, for tests that must send what a well-behaved client never would
 * (a half-sent CONNECT, a PUBLISH after the relay revoked the session) and see exactly what comes
 * back: packets are built by hand [MQTT-2.2], and the inbound ones are split by their fixed headers.
 */
import net from 'node:net'

/** The variable-length "remaining length" [MQTT-2.2.3]. */
export function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

export function connectPacket(o: { clientId: string; username?: string; password?: string; clean?: boolean; keepalive?: number }): Buffer {
  let flags = o.clean === false ? 0 : 0x02
  if (o.username !== undefined) flags |= 0x80
  if (o.password !== undefined) flags |= 0x40
  const keepalive = Buffer.alloc(2)
  keepalive.writeUInt16BE(o.keepalive ?? 60)
  const body = Buffer.concat([
    str('MQTT'), Buffer.from([4, flags]), keepalive, str(o.clientId),
    ...(o.username !== undefined ? [str(o.username)] : []),
    ...(o.password !== undefined ? [str(o.password)] : []),
  ])
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])
}

export function publishPacket(topic: string, id: number, payload: Buffer): Buffer {
  const pid = Buffer.alloc(2)
  pid.writeUInt16BE(id)
  const body = Buffer.concat([str(topic), pid, payload])
  return Buffer.concat([Buffer.from([0x32]), remainingLength(body.length), body])
}

export function subscribePacket(id: number, filters: string[]): Buffer {
  const pid = Buffer.alloc(2)
  pid.writeUInt16BE(id)
  const body = Buffer.concat([pid, ...filters.map((f) => Buffer.concat([str(f), Buffer.from([1])]))])
  return Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body])
}

export interface WirePacket { type: number; body: Buffer }

export const PacketType = { CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBACK: 9 } as const

/** A raw connection: every packet the relay sends, in order, and when it closed. */
export interface WireClient {
  socket: net.Socket
  packets: WirePacket[]
  closed: Promise<void>
  isClosed(): boolean
  /** Resolves with the first packet of `type` (already received or still to come); rejects if the connection closes first. */
  next(type: number): Promise<WirePacket>
  write(bytes: Buffer): void
}

export async function wireConnect(port: number, localAddress?: string): Promise<WireClient> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const packets: WirePacket[] = []
  const waiters: { type: number; resolve: (p: WirePacket) => void; reject: (e: Error) => void }[] = []
  let buffered = Buffer.alloc(0)
  let done = false
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    for (;;) {
      let length = 0
      let multiplier = 1
      let i = 1
      for (; i < buffered.length && i < 5; i++) {
        length += (buffered[i]! & 0x7f) * multiplier
        multiplier *= 128
        if (!(buffered[i]! & 0x80)) break
      }
      if (i >= buffered.length || buffered.length < i + 1 + length) return
      const packet = { type: buffered[0]! >> 4, body: buffered.subarray(i + 1, i + 1 + length) }
      buffered = buffered.subarray(i + 1 + length)
      packets.push(packet)
      const w = waiters.findIndex((x) => x.type === packet.type)
      if (w >= 0) waiters.splice(w, 1)[0]!.resolve(packet)
    }
  })
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    done = true
    for (const w of waiters.splice(0)) w.reject(new Error(`the connection closed before a packet of type ${w.type} arrived`))
    resolve()
  }))
  return {
    socket, packets, closed,
    isClosed: () => done,
    next: (type) => {
      const found = packets.find((p) => p.type === type)
      if (found) return Promise.resolve(found)
      if (done) return Promise.reject(new Error(`the connection closed before a packet of type ${type} arrived`))
      return new Promise((resolve, reject) => waiters.push({ type, resolve, reject }))
    },
    write: (bytes) => { if (!socket.destroyed) socket.write(bytes) },
  }
}

/** Connects and sends CONNECT; resolves with the client and the CONNACK's return code. */
export async function wireLogin(port: number, connect: Parameters<typeof connectPacket>[0]): Promise<{ client: WireClient; returnCode: number }> {
  const client = await wireConnect(port)
  client.write(connectPacket(connect))
  const connack = await client.next(PacketType.CONNACK)
  return { client, returnCode: connack.body[1]! }
}

/** Rejects when `promise` has not settled within `ms`: a bound on a hang, named for the failure it reports. */
export function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) }),
  ])
}
