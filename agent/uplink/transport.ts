/**
 * The uplink's transport: a function that opens one MQTT connection to the relay, as MQTT.js's own
 * connect/ files are one function per transport. The uplink calls it once per attempt and does its
 * own reconnecting; a test passes a stand-in.
 */
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions } from 'mqtt'
import type { AgentConfig } from '../config.js'

/** What the uplink needs of an MQTT client (mqtt.js's MqttClient is one). */
export interface UplinkClient {
  readonly connected: boolean
  on(event: 'connect' | 'close', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown
  removeAllListeners(event: 'connect'): unknown
  subscribe(topic: string, options: { qos: 1 }): unknown
  publish(topic: string, payload: Buffer | string, options: { qos: 0 | 1; retain?: boolean }, callback?: (err?: Error) => void): unknown
  end(force: boolean): unknown
  endAsync(force: boolean): Promise<void>
}

/** What the uplink sets on every connection: identity, session, keepalive and the will. */
export type ConnectOptions = Pick<IClientOptions, 'clientId' | 'protocolVersion' | 'clean' | 'keepalive' | 'reconnectPeriod' | 'connectTimeout' | 'queueQoSZero' | 'will'>

export type Transport = (options: ConnectOptions) => UplinkClient

/**
 * The relay the config names, over mqtt:// or mqtts://, with the device's client certificate when it
 * has one. The CA, certificate and key files are read at each attempt: one that vanished is an error
 * of that attempt (retried later), never a crash, and a renewed certificate is used at the next one.
 */
export function relayTransport(relay: AgentConfig['relay']): Transport {
  return (options) => mqtt.connect(relay.url, {
    ...options,
    username: relay.username || undefined,
    password: relay.password || undefined,
    ca: relay.ca ? readFileSync(relay.ca) : undefined,
    cert: relay.cert ? readFileSync(relay.cert) : undefined,
    key: relay.key ? readFileSync(relay.key) : undefined,
    // mqtt-packet otherwise builds a cache of 65,536 two-byte Buffers for packet ids at the first
    // packet: 6 MB of the agent's heap (a heap snapshot's largest item), for a few hundred packets a second.
    writeCache: false,
  })
}
