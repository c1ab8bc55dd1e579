/**
 * `tributary delivery list | describe NAME`: each delivery stream's state as an operator checks it —
 * status, source and sink, records delivered, backlog, freshness and failures — through the relay's
 * Firehose API (its DescribeDeliveryStreamStats; describe adds DescribeDeliveryStream's
 * configuration). `--json` prints the same as JSON.
 */
import { readFileSync } from 'node:fs'
import type { Args } from '../../shared/args.js'
import { ConfigError } from '../../shared/errors.js'
// The client alone: the Firehose API layer's index brings in the whole delivery runtime.
import { FirehoseClient } from '../firehose/client.js'
import { FirehoseError } from '../firehose/errors.js'
import type { DeliveryStreamStatsJson } from '../firehose/actions/stats.js'

export const DELIVERY_USAGE = `  tributary delivery list [--json]              delivery streams: status, records delivered, backlog, freshness, failures
  tributary delivery describe NAME [--json]     one delivery stream: its source, sink and the same figures
`

/** The endpoint and credentials as the other client commands take them (--endpoint, TRIBUTARY_ENDPOINT, AWS_*). */
function client(args: Args): FirehoseClient {
  const endpoint = String(args.flags.endpoint ?? process.env.TRIBUTARY_ENDPOINT ?? 'http://127.0.0.1:4567')
  const id = process.env.AWS_ACCESS_KEY_ID
  const secret = process.env.AWS_SECRET_ACCESS_KEY
  return new FirehoseClient({
    endpoint, region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION,
    credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret } : undefined,
    ca: process.env.AWS_CA_BUNDLE ? readFileSync(process.env.AWS_CA_BUNDLE, 'utf8') : undefined,
  })
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0)
const byKey = (counts: Record<string, number>) => Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}=${n}`).join(' ')

/** A list line: name, status, delivered, backlog, freshness, failed (failed records by reason, when any). */
function line(s: DeliveryStreamStatsJson): string {
  const failed = total(s.RecordsFailed)
  return [
    s.DeliveryStreamName, s.DeliveryStreamStatus,
    `delivered ${s.RecordsDelivered}`, `backlog ${s.BacklogRecords}`, `freshness ${s.FreshnessSeconds}s`,
    `failed ${failed}${failed ? ` (${byKey(s.RecordsFailed)})` : ''}`,
  ].join('\t')
}

const when = (seconds: number | null) => (seconds === null ? 'never' : new Date(seconds * 1000).toISOString())

function details(s: DeliveryStreamStatsJson): string {
  return [
    `name:              ${s.DeliveryStreamName}`,
    `status:            ${s.DeliveryStreamStatus}${s.Declared ? ' (declared in the relay config)' : ''}`,
    `type:              ${s.DeliveryStreamType}`,
    `source:            ${s.Source}`,
    `sink:              ${s.Sink}`,
    `records delivered: ${s.RecordsDelivered}`,
    `bytes delivered:   ${s.BytesDelivered}`,
    `batches delivered: ${s.BatchesDelivered}`,
    `backlog:           ${s.BacklogRecords} records`,
    `freshness:         ${s.FreshnessSeconds}s (age of the oldest record not yet delivered)`,
    `last delivery:     ${when(s.LastDeliveryTimestamp)}`,
    `records failed:    ${total(s.RecordsFailed)}${total(s.RecordsFailed) ? ` (${byKey(s.RecordsFailed)})` : ''}`,
    `failed attempts:   ${total(s.FailuresByCode)}${total(s.FailuresByCode) ? ` (${byKey(s.FailuresByCode)})` : ''}`,
    `last error:        ${s.LastError ? `${s.LastError.Code}: ${s.LastError.Message} at ${when(s.LastError.Timestamp)}` : 'none'}`,
  ].join('\n')
}

export async function runDelivery(args: Args): Promise<void> {
  const [, verb, name] = args.positionals
  if (verb !== 'list' && verb !== 'describe') throw new ConfigError('delivery', `unknown subcommand ${JSON.stringify(verb ?? '')}; use list or describe`)
  if (verb === 'describe' && !name) throw new ConfigError('delivery', 'name the delivery stream: tributary delivery describe NAME')
  const firehose = client(args)
  try {
    const { DeliveryStreams } = await firehose.call<{ DeliveryStreams: DeliveryStreamStatsJson[] }>('DescribeDeliveryStreamStats', name === undefined || verb === 'list' ? {} : { DeliveryStreamName: name })
    if (verb === 'list') {
      if (args.flags.json) console.log(JSON.stringify(DeliveryStreams, null, 2))
      else if (!DeliveryStreams.length) console.log('no delivery streams')
      else for (const s of DeliveryStreams) console.log(line(s))
      return
    }
    const stats = DeliveryStreams[0]!
    if (args.flags.json) {
      const { DeliveryStreamDescription } = await firehose.call<{ DeliveryStreamDescription: unknown }>('DescribeDeliveryStream', { DeliveryStreamName: name })
      console.log(JSON.stringify({ Stats: stats, DeliveryStreamDescription }, null, 2))
    } else {
      console.log(details(stats))
    }
  } catch (err) {
    // Printed by main's reportAndExit as "error: TYPE: message", as the Kinesis commands' errors are.
    if (err instanceof FirehoseError) throw new Error(`${err.type}: ${err.message}`, { cause: err })
    throw err
  } finally {
    firehose.close()
  }
}
