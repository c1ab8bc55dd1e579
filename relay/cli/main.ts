/**
 * The `tributary` command: run the relay, manage streams and devices, put and tail records.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigError, TributaryError } from '../../shared/errors.js'
import { describeRelaySettings, isLoopbackHost, relaySchema, resolveRelayConfig } from '../../shared/config.js'
import { KinesisClient } from '../kinesis/client.js'
import { KinesisError } from '../kinesis/errors.js'
import { parseArgs, type Args } from '../../shared/args.js'
import { formatJson, formatPretty, tail } from './tail.js'
import { CONSUMERS_USAGE, runConsumers } from './consumers.js'
import { runVideo, VIDEO_USAGE } from './video.js'
import { DELIVERY_USAGE, runDelivery } from './delivery.js'
import { addCertificate, DEVICE_CERTS_USAGE, listCertificates, revokeCertificates } from './device-certs.js'
import type { LogLevel } from '../observe.js'
import { parseRules, type TopicRule } from '../rules.js'

const USAGE = `tributary — a self-hosted streaming platform in the shape of Amazon Kinesis

  tributary relay [--config FILE] [settings]    run the relay (settings below; also env vars and the config file)
  tributary streams create NAME [--shards N]    create a stream (default 1 shard)
  tributary streams list | describe NAME | delete NAME
  tributary streams split NAME SHARD [--at HASHKEY]   split a shard (default: at the middle of its range)
  tributary streams merge NAME SHARD ADJACENT   merge two adjacent open shards
  tributary streams scale NAME COUNT            UpdateShardCount (uniform scaling) to COUNT open shards
  tributary streams retention NAME HOURS        set the retention period (24–8760 hours)
  tributary streams tag NAME [KEY=VALUE ...] [--remove KEY,...]
                                                add or remove tags, then list them
  tributary put STREAM [--key KEY] [DATA ...]   put records (no DATA: one record per line of stdin)
  tributary tail STREAM [--from trim-horizon|latest|TIME] [--json] [--consumer NAME]
                                                follow a stream as a consumer sees it (parents before
                                                children); --consumer resumes from and keeps server-side checkpoints
${CONSUMERS_USAGE}${DELIVERY_USAGE}${VIDEO_USAGE}  tributary devices add ID | list | remove ID | rotate ID [--grace 1h]
                                                manage device credentials (add/rotate print the secret once);
                                                rotate --grace keeps the old secret valid for that long
                                                (s, m, h or d), else it stops at once and its sessions close
${DEVICE_CERTS_USAGE}  tributary rules list [--config FILE]      the topic rules of the relay's config file (docs/rules.md)
  tributary agent run --config FILE | status    the edge agent (see tributary agent help)

Client options: --endpoint URL (env TRIBUTARY_ENDPOINT, default http://127.0.0.1:4567); requests are
signed with SigV4 when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set. Device commands need the
admin token: --token T, env TRIBUTARY_ADMIN_TOKEN, or --data-dir DIR to read DIR/admin.token.

Relay settings (flag, environment variable, setting: meaning):
`

const BOOLEAN_FLAGS = new Set(['allow-anonymous', 'auto-create-streams', 'json', 'help', 'wait', 'cert', 'server-time'])

/** As the AWS CLI: AWS_CA_BUNDLE names extra certificates to trust for an https:// endpoint. */
function caBundle(): string | undefined {
  return process.env.AWS_CA_BUNDLE ? readFileSync(process.env.AWS_CA_BUNDLE, 'utf8') : undefined
}

function client(args: Args): KinesisClient {
  const endpoint = String(args.flags.endpoint ?? process.env.TRIBUTARY_ENDPOINT ?? 'http://127.0.0.1:4567')
  const id = process.env.AWS_ACCESS_KEY_ID
  const secret = process.env.AWS_SECRET_ACCESS_KEY
  return new KinesisClient({ endpoint, region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION, credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret } : undefined, ca: caBundle() })
}

/** `tributary rules list [--config FILE]`: the topic rules the config file gives the relay, validated. */
function runRules(args: Args): void {
  if (args.positionals[1] !== 'list') throw new ConfigError('rules', 'usage: tributary rules list [--config FILE]')
  const { rules } = readConfigFile(args)
  if (!rules.length) return void console.log('no topic rules (add them under rules: in the relay\'s config file)')
  for (const r of rules) {
    const key = 'device' in r.partitionKey ? 'device id' : 'level' in r.partitionKey ? `topic level ${r.partitionKey.level}` : `JSON field ${r.partitionKey.field}`
    console.log(`${r.name}\t${r.topic}\t-> ${r.stream}\tkey: ${key}\tdevices: ${r.devices.length ? r.devices.join(',') : 'any'}`)
  }
}

/** The relay's config file (--config, else TRIBUTARY_CONFIG): its settings, and its topic rules apart. */
function readConfigFile(args: Args): { settings: Record<string, unknown>; rules: TopicRule[] } {
  const file = args.flags.config ? String(args.flags.config) : process.env.TRIBUTARY_CONFIG
  if (!file) return { settings: {}, rules: [] }
  const text = readFileSync(file, 'utf8')
  const parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  const { rules, ...settings } = (parsed?.relay ?? parsed ?? {}) as Record<string, unknown>
  return { settings, rules: parseRules(rules) }
}

async function runRelay(args: Args): Promise<void> {
  const { settings: fileConfig, rules } = readConfigFile(args)
  const known = new Set([...Object.values(relaySchema).map((f) => f.flag), 'config'])
  for (const name of Object.keys(args.flags)) if (!known.has(name)) throw new ConfigError(`--${name}`, 'is not a relay flag (see tributary help)')
  const config = resolveRelayConfig(args.flags, process.env, fileConfig)
  // Everything the relay creates (data directory, segments, meta.db and its -wal/-shm) is for its user alone.
  process.umask(0o077)
  // The relay is loaded only to run it: the client commands start in a fraction of the time.
  const [{ startRelay }, { jsonLogger }, { reshardCrashHook }] = await Promise.all([import('../relay.js'), import('../observe.js'), import('../streams.js')])
  const jsonLog = jsonLogger(config.logLevel as LogLevel)
  const relay = await startRelay(config, jsonLog, { onReshardStep: reshardCrashHook(process.env.TRIBUTARY_TEST_CRASH_AT), rules })
  if (rules.length) jsonLog('rules_loaded', { rules: rules.map((r) => r.name) })
  console.log(`tributary relay ready: mqtt://${config.mqttHost}:${relay.mqttPort}${relay.mqttTlsPort ? ` mqtts://${config.mqttHost}:${relay.mqttTlsPort}` : ''} ${relay.httpTls ? 'https' : 'http'}://${config.httpHost}:${relay.httpPort} data=${config.dataDir}${config.accessKeys.length || config.accessKeysFile ? ' sigv4=on' : isLoopbackHost(config.httpHost) ? ' sigv4=off (loopback only)' : ` sigv4=off (the API is open to anyone who reaches ${config.httpHost}: set access keys)`}${config.allowAnonymous ? ' anonymous=allowed' : ''}`)
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`tributary relay stopping (${signal})`)
    await relay.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
  // Access keys are read again from their file; connections stay open, and a bad file keeps the old keys.
  process.on('SIGHUP', () => {
    try {
      jsonLog('access_keys_reloaded', { file: config.accessKeysFile || null, keys: relay.reloadAccessKeys() })
    } catch (err) {
      jsonLog('access_keys_reload_failed', { file: config.accessKeysFile, error: (err as Error).message })
    }
  })
}

async function runStreams(args: Args): Promise<void> {
  const [, verb, name] = args.positionals
  if (!name && verb !== 'list' && verb !== undefined) throw new ConfigError('streams', `name the stream: tributary streams ${verb} NAME`)
  const rest = args.positionals.slice(3)
  const kinesis = client(args)
  try {
    switch (verb) {
      case 'create': {
        const raw = args.flags.shards ?? '1'
        const shards = Number(raw)
        if (raw === true || !Number.isInteger(shards) || shards < 1) throw new ConfigError('--shards', `must be a whole number of at least 1, got ${JSON.stringify(raw)}`)
        await kinesis.call('CreateStream', { StreamName: name, ShardCount: shards })
        console.log(`created stream ${name} with ${shards} shard${shards === 1 ? '' : 's'}`)
        return
      }
      case 'list': {
        const { StreamSummaries } = await kinesis.call<{ StreamSummaries: { StreamName: string; StreamStatus: string }[] }>('ListStreams', {})
        for (const s of StreamSummaries) console.log(`${s.StreamName}\t${s.StreamStatus}`)
        return
      }
      case 'describe': {
        const d = await kinesis.call('DescribeStream', { StreamName: name })
        console.log(JSON.stringify(d, null, 2))
        return
      }
      case 'delete':
        await kinesis.call('DeleteStream', { StreamName: name })
        console.log(`deleted stream ${name}`)
        return
      case 'split': {
        const shard = shardArg(rest[0], 'split NAME SHARD')
        let at = args.flags.at
        if (at === undefined) {
          const { Shards } = await kinesis.call<{ Shards: { ShardId: string; HashKeyRange: { StartingHashKey: string; EndingHashKey: string } }[] }>('ListShards', { StreamName: name })
          const s = Shards.find((x) => x.ShardId === shard)
          if (!s) throw new ConfigError('streams split', `stream ${name} has no shard ${shard}`)
          at = ((BigInt(s.HashKeyRange.StartingHashKey) + BigInt(s.HashKeyRange.EndingHashKey) + 1n) / 2n).toString()
        }
        if (at === true || !/^\d+$/.test(at)) throw new ConfigError('--at', `must be a hash key (a decimal number), got ${JSON.stringify(at)}`)
        await kinesis.call('SplitShard', { StreamName: name, ShardToSplit: shard, NewStartingHashKey: at })
        await printShards(kinesis, name!)
        return
      }
      case 'merge': {
        await kinesis.call('MergeShards', { StreamName: name, ShardToMerge: shardArg(rest[0], 'merge NAME SHARD ADJACENT'), AdjacentShardToMerge: shardArg(rest[1], 'merge NAME SHARD ADJACENT') })
        await printShards(kinesis, name!)
        return
      }
      case 'scale': {
        const count = Number(rest[0])
        if (!Number.isInteger(count) || count < 1) throw new ConfigError('streams scale', `COUNT must be a whole number of at least 1, got ${JSON.stringify(rest[0] ?? '')}`)
        const out = await kinesis.call<{ CurrentShardCount: number; TargetShardCount: number }>('UpdateShardCount', { StreamName: name, TargetShardCount: count, ScalingType: 'UNIFORM_SCALING' })
        console.log(`scaled stream ${name} from ${out.CurrentShardCount} to ${out.TargetShardCount} open shards`)
        await printShards(kinesis, name!)
        return
      }
      case 'retention': {
        const hours = Number(rest[0])
        if (!Number.isInteger(hours)) throw new ConfigError('streams retention', `HOURS must be a whole number, got ${JSON.stringify(rest[0] ?? '')}`)
        const { StreamDescriptionSummary: d } = await kinesis.call<{ StreamDescriptionSummary: { RetentionPeriodHours: number } }>('DescribeStreamSummary', { StreamName: name })
        if (hours !== d.RetentionPeriodHours) {
          await kinesis.call(hours > d.RetentionPeriodHours ? 'IncreaseStreamRetentionPeriod' : 'DecreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: hours })
        }
        console.log(`stream ${name} keeps records for ${hours} hours (was ${d.RetentionPeriodHours})`)
        return
      }
      case 'tag': {
        const add: Record<string, string> = {}
        for (const kv of rest) {
          const eq = kv.indexOf('=')
          if (eq < 1) throw new ConfigError('streams tag', `tags are KEY=VALUE, got ${JSON.stringify(kv)}`)
          add[kv.slice(0, eq)] = kv.slice(eq + 1)
        }
        const remove = args.flags.remove
        if (remove === true) throw new ConfigError('--remove', 'name the tag keys to remove: --remove KEY[,KEY...]')
        if (Object.keys(add).length) await kinesis.call('AddTagsToStream', { StreamName: name, Tags: add })
        if (remove) await kinesis.call('RemoveTagsFromStream', { StreamName: name, TagKeys: remove.split(',') })
        const { Tags } = await kinesis.call<{ Tags: { Key: string; Value: string }[] }>('ListTagsForStream', { StreamName: name })
        for (const t of Tags) console.log(`${t.Key}=${t.Value}`)
        return
      }
      default:
        throw new ConfigError('streams', `unknown subcommand ${JSON.stringify(verb ?? '')}; use create, list, describe, delete, split, merge, scale, retention or tag`)
    }
  } finally {
    kinesis.close()
  }
}

function shardArg(value: string | undefined, usage: string): string {
  if (!value) throw new ConfigError('streams', `name the shard: tributary streams ${usage}`)
  // "3" is short for shardId-000000000003.
  return /^\d+$/.test(value) ? `shardId-${value.padStart(12, '0')}` : value
}

/** One line per shard: id, open/closed, parents, hash range. */
async function printShards(kinesis: KinesisClient, stream: string): Promise<void> {
  const { Shards } = await kinesis.call<{ Shards: { ShardId: string; ParentShardId?: string; AdjacentParentShardId?: string; HashKeyRange: { StartingHashKey: string; EndingHashKey: string }; SequenceNumberRange: { EndingSequenceNumber?: string } }[] }>('ListShards', { StreamName: stream })
  for (const s of Shards) {
    const parents = [s.ParentShardId, s.AdjacentParentShardId].filter(Boolean).join('+')
    console.log(`${s.ShardId}\t${s.SequenceNumberRange.EndingSequenceNumber ? 'closed' : 'open'}\t${parents ? `from ${parents}` : '-'}\t${s.HashKeyRange.StartingHashKey}..${s.HashKeyRange.EndingHashKey}`)
  }
}

async function runPut(args: Args): Promise<void> {
  const [, stream, ...data] = args.positionals
  if (!stream) throw new ConfigError('put', 'name the stream: tributary put STREAM [DATA ...]')
  const kinesis = client(args)
  const key = args.flags.key ? String(args.flags.key) : undefined
  let lines = data
  if (!lines.length) lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.length)
  try {
    for (let i = 0; i < lines.length; i += 500) {
      const chunk = lines.slice(i, i + 500)
      const out = await kinesis.call<{ Records: { ShardId: string; SequenceNumber: string }[] }>('PutRecords', {
        StreamName: stream,
        Records: chunk.map((line, j) => ({ Data: Buffer.from(line).toString('base64'), PartitionKey: key ?? `key-${i + j}` })),
      })
      for (const r of out.Records) console.log(`${r.ShardId}\t${r.SequenceNumber}`)
    }
  } finally {
    kinesis.close()
  }
}

async function runTail(args: Args): Promise<void> {
  const [, stream] = args.positionals
  if (!stream) throw new ConfigError('tail', 'name the stream: tributary tail STREAM')
  const fromFlag = String(args.flags.from ?? 'trim-horizon').toLowerCase()
  let from: 'TRIM_HORIZON' | 'LATEST' | Date
  if (fromFlag === 'trim-horizon' || fromFlag === 'trim_horizon') from = 'TRIM_HORIZON'
  else if (fromFlag === 'latest') from = 'LATEST'
  else {
    const at = new Date(String(args.flags.from))
    if (Number.isNaN(at.getTime())) throw new ConfigError('--from', `must be trim-horizon, latest or a time, got ${JSON.stringify(args.flags.from)}`)
    from = at
  }
  const format = args.flags.json ? formatJson : formatPretty
  const controller = new AbortController()
  process.on('SIGINT', () => controller.abort())
  process.on('SIGTERM', () => controller.abort())
  const kinesis = client(args)
  try {
    const consumer = args.flags.consumer
    if (consumer === true) throw new ConfigError('--consumer', 'name the consumer: --consumer NAME')
    await tail(kinesis, { stream, from, consumer, signal: controller.signal, onRecord: (r) => console.log(format(r)) })
  } finally {
    kinesis.close()
  }
}

async function runDevices(args: Args): Promise<void> {
  const [, verb, id] = args.positionals
  const endpoint = String(args.flags.endpoint ?? process.env.TRIBUTARY_ENDPOINT ?? 'http://127.0.0.1:4567')
  let token = args.flags.token ? String(args.flags.token) : process.env.TRIBUTARY_ADMIN_TOKEN
  if (!token) {
    const dir = String(args.flags['data-dir'] ?? process.env.TRIBUTARY_DATA_DIR ?? './data')
    try {
      token = readFileSync(join(dir, 'admin.token'), 'utf8').trim()
    } catch {
      throw new ConfigError('--token', `no admin token: pass --token, set TRIBUTARY_ADMIN_TOKEN, or point --data-dir at the relay's data directory (${dir}/admin.token not readable)`)
    }
  }
  const admin = new KinesisClient({ endpoint, ca: caBundle() })
  const request = async (method: string, path: string, body?: object) => {
    const { status, json } = await admin.request(method, path, body, { authorization: `Bearer ${token}` })
    if (status < 200 || status > 299) throw new TributaryError((json.code as never) ?? 'NOT_FOUND', String(json.message ?? `HTTP ${status}`))
    return json
  }
  const need = () => { if (!id) throw new ConfigError('devices', `name the device: tributary devices ${verb} ID`) ; return encodeURIComponent(id) }
  switch (verb) {
    case 'add': {
      if (args.flags.cert) return addCertificate(request, need() && id!, args.flags.out)
      const out = await request('POST', '/admin/devices', { id: need() && id })
      console.log(`device ${out.id} added; its secret (shown only now): ${out.secret}`)
      return
    }
    case 'rotate': {
      const grace = args.flags.grace
      const graceSeconds = grace === undefined ? 0 : durationSeconds(grace, '--grace')
      const out = await request('POST', `/admin/devices/${need()}/rotate`, { graceSeconds })
      const old = out.previousValidUntil ? `the old one keeps working until ${String(out.previousValidUntil)}` : 'the old one no longer works'
      console.log(`device ${out.id} has a new secret (shown only now; ${old}): ${out.secret}`)
      return
    }
    case 'revoke':
      return revokeCertificates(request, need() && id!, args.flags.serial)
    case 'certificates':
      return listCertificates(request, need() && id!)
    case 'remove':
      await request('DELETE', `/admin/devices/${need()}`)
      console.log(`device ${id} removed`)
      return
    case 'list': {
      const out = (await request('GET', '/admin/devices')) as { devices: { id: string; createdMs: number; rotatedMs: number; previousUntilMs?: number }[] }
      for (const d of out.devices) {
        const grace = d.previousUntilMs ? `\told secret until ${new Date(d.previousUntilMs).toISOString()}` : ''
        console.log(`${d.id}\tcreated ${new Date(d.createdMs).toISOString()}\tsecret set ${new Date(d.rotatedMs).toISOString()}${grace}`)
      }
      return
    }
    default:
      throw new ConfigError('devices', `unknown subcommand ${JSON.stringify(verb ?? '')}; use add, list, remove, rotate, revoke or certificates`)
  }
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** `90s`, `30m`, `1h`, `2d` (or plain seconds) as whole seconds. */
function durationSeconds(raw: string | true, flag: string): number {
  const m = raw === true ? null : /^(\d+)([smhd]?)$/.exec(raw)
  if (!m) throw new ConfigError(flag, `must be a duration such as 90s, 30m, 1h or 2d, got ${JSON.stringify(raw === true ? '' : raw)}`)
  return Number(m[1]) * DURATION_UNITS[m[2] || 's']!
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, BOOLEAN_FLAGS)
  const command = args.positionals[0]
  if (command === 'relay') args.positionals.shift()
  switch (command) {
    case 'relay': return runRelay(args)
    case 'rules': return runRules(args)
    case 'streams': return runStreams(args)
    case 'put': return runPut(args)
    case 'tail': return runTail(args)
    case 'devices': return runDevices(args)
    case 'consumers': return runConsumers(args, client(args))
    case 'video': return runVideo(args, client(args))
    case 'delivery': return runDelivery(args)
    case undefined:
    case 'help':
      console.log(USAGE + describeRelaySettings())
      return
    default:
      throw new ConfigError('command', `unknown command ${JSON.stringify(command)}; see tributary help`)
  }
}

export function reportAndExit(err: unknown): never {
  if (err instanceof KinesisError) console.error(`error: ${err.type}: ${err.message}`)
  else if (err instanceof TributaryError) console.error(`error: ${err.code}: ${err.message}`)
  else console.error(`error: ${(err as Error)?.message ?? err}`)
  process.exit(1)
}
