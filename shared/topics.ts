/**
 * Every MQTT topic Tributary uses, in one place (DESIGN.md, "The wire between agent and relay").
 *
 * | topic                                     | direction              |
 * | ----------------------------------------- | ---------------------- |
 * | tributary/v1/{device}/records/{stream}    | device → relay, QoS 1  |
 * | tributary/v1/{device}/put/{stream}[/{key}] | device → relay, QoS 1 or 0: one plain record |
 * | tributary/v1/{device}/rejects             | relay → device         |
 * | tributary/v1/{device}/video/{stream}      | device → relay, QoS 1  |
 * | tributary/v1/{device}/video-acks          | relay → device         |
 * | tributary/v1/{device}/status              | device → relay, retained |
 */

export const TOPIC_ROOT = 'tributary/v1'

export const TopicKind = {
  records: 'records',
  put: 'put',
  rejects: 'rejects',
  video: 'video',
  videoAcks: 'video-acks',
  status: 'status',
} as const
export type TopicKind = (typeof TopicKind)[keyof typeof TopicKind]

/** Device ids and stream names: what may stand in a topic level. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
export const STREAM_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,128}$/

export const topics = {
  records: (device: string, stream: string) => `${TOPIC_ROOT}/${device}/records/${stream}`,
  /** One record per publish, its payload the data as sent; the partition key is the device id unless given. */
  put: (device: string, stream: string, partitionKey?: string) => `${TOPIC_ROOT}/${device}/put/${stream}${partitionKey === undefined ? '' : `/${partitionKey}`}`,
  rejects: (device: string) => `${TOPIC_ROOT}/${device}/rejects`,
  video: (device: string, stream: string) => `${TOPIC_ROOT}/${device}/video/${stream}`,
  videoAcks: (device: string) => `${TOPIC_ROOT}/${device}/video-acks`,
  status: (device: string) => `${TOPIC_ROOT}/${device}/status`,
} as const

export type ParsedTopic =
  | { kind: 'records'; device: string; stream: string }
  | { kind: 'put'; device: string; stream: string; partitionKey: string }
  | { kind: 'video'; device: string; stream: string }
  | { kind: 'rejects' | 'video-acks' | 'status'; device: string }

/** Parses a Tributary topic; anything malformed or hostile yields null. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/')
  if (parts[0] !== 'tributary' || parts[1] !== 'v1') return null
  const device = parts[2]
  const kind = parts[3]
  if (device === undefined || !DEVICE_ID_PATTERN.test(device)) return null
  if (parts.length === 5 && (kind === 'records' || kind === 'video')) {
    const stream = parts[4]!
    if (!STREAM_NAME_PATTERN.test(stream)) return null
    return { kind, device, stream }
  }
  if (kind === 'put' && (parts.length === 5 || parts.length === 6)) {
    const stream = parts[4]!
    if (!STREAM_NAME_PATTERN.test(stream)) return null
    // The key is checked by Kinesis's rules where the record is (a bad one is a reject the device is told of).
    return { kind, device, stream, partitionKey: parts.length === 6 ? parts[5]! : device }
  }
  if (parts.length === 4 && (kind === 'rejects' || kind === 'video-acks' || kind === 'status')) {
    return { kind, device }
  }
  return null
}
