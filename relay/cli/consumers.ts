/**
 * `tributary consumers register|list|describe|deregister`: enhanced fan-out consumers of a stream,
 * through the Kinesis API. Streams are named by name here; the API wants their ARN, looked up first.
 */
import { ConfigError } from '../../shared/errors.js'
import type { Args } from '../../shared/args.js'
import type { KinesisClient } from '../kinesis/client.js'

export const CONSUMERS_USAGE = `  tributary consumers register STREAM NAME [--wait]   register an enhanced fan-out consumer (--wait: until ACTIVE)
  tributary consumers list STREAM | describe STREAM NAME | deregister STREAM NAME
`

interface ConsumerJson { ConsumerName: string; ConsumerARN: string; ConsumerStatus: string; ConsumerCreationTimestamp: number }

const line = (c: ConsumerJson) => `${c.ConsumerName}\t${c.ConsumerStatus}\t${new Date(c.ConsumerCreationTimestamp * 1000).toISOString()}\t${c.ConsumerARN}`

async function streamArn(kinesis: KinesisClient, stream: string): Promise<string> {
  const { StreamDescriptionSummary } = await kinesis.call<{ StreamDescriptionSummary: { StreamARN: string } }>('DescribeStreamSummary', { StreamName: stream })
  return StreamDescriptionSummary.StreamARN
}

export async function runConsumers(args: Args, kinesis: KinesisClient): Promise<void> {
  const [, verb, stream, name] = args.positionals
  const verbs = ['register', 'list', 'describe', 'deregister']
  if (!verb || !verbs.includes(verb)) throw new ConfigError('consumers', `unknown subcommand ${JSON.stringify(verb ?? '')}; use ${verbs.join(', ')}`)
  if (!stream) throw new ConfigError('consumers', `name the stream: tributary consumers ${verb} STREAM${verb === 'list' ? '' : ' NAME'}`)
  if (!name && verb !== 'list') throw new ConfigError('consumers', `name the consumer: tributary consumers ${verb} STREAM NAME`)
  try {
    const StreamARN = await streamArn(kinesis, stream)
    switch (verb) {
      case 'register': {
        const { Consumer } = await kinesis.call<{ Consumer: ConsumerJson }>('RegisterStreamConsumer', { StreamARN, ConsumerName: name })
        let consumer = Consumer
        if (args.flags.wait) {
          while (consumer.ConsumerStatus !== 'ACTIVE') {
            await new Promise((r) => setTimeout(r, 200))
            consumer = (await kinesis.call<{ ConsumerDescription: ConsumerJson }>('DescribeStreamConsumer', { ConsumerARN: Consumer.ConsumerARN })).ConsumerDescription
          }
        }
        console.log(line(consumer))
        return
      }
      case 'list': {
        let NextToken: string | undefined
        do {
          const page = await kinesis.call<{ Consumers: ConsumerJson[]; NextToken?: string }>('ListStreamConsumers', { StreamARN, ...(NextToken ? { NextToken } : {}) })
          for (const c of page.Consumers) console.log(line(c))
          NextToken = page.NextToken
        } while (NextToken)
        return
      }
      case 'describe': {
        const d = await kinesis.call('DescribeStreamConsumer', { StreamARN, ConsumerName: name })
        console.log(JSON.stringify(d, null, 2))
        return
      }
      default:
        await kinesis.call('DeregisterStreamConsumer', { StreamARN, ConsumerName: name })
        console.log(`deregistered consumer ${name} of stream ${stream}`)
    }
  } finally {
    kinesis.close()
  }
}
