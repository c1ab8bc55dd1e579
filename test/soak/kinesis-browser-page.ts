/**
 * The browser side of kinesis-browser.test.ts: bundled with esbuild for the browser (the SDK's
 * browser runtime: fetch, WebCrypto) and loaded by a page on another origin than the relay. It
 * exposes `window.kinesis(client, command, input)`, which runs one command of the AWS SDK's
 * KinesisClient and answers with plain values the test can read (bytes as number arrays, dates as
 * ISO strings, an SDK error as its name, message, status and request id).
 */
import {
  CreateStreamCommand, DescribeStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand,
  GetShardIteratorCommand, KinesisClient, ListStreamsCommand, PutRecordCommand,
} from '@aws-sdk/client-kinesis'

export interface ClientSettings { endpoint: string; accessKeyId: string; secretAccessKey: string }
export type Outcome =
  | { ok: true; output: unknown; requestId: string | undefined }
  | { ok: false; error: { name: string; message: string; status: number | undefined; requestId: string | undefined } }

const COMMANDS = {
  CreateStream: CreateStreamCommand,
  DescribeStream: DescribeStreamCommand,
  DescribeStreamSummary: DescribeStreamSummaryCommand,
  GetRecords: GetRecordsCommand,
  GetShardIterator: GetShardIteratorCommand,
  ListStreams: ListStreamsCommand,
  PutRecord: PutRecordCommand,
} as const
export type CommandName = keyof typeof COMMANDS

/** Bytes cross into the page as number arrays under `Data`; everything else as it is. */
function decoded(input: Record<string, unknown>): Record<string, unknown> {
  return Array.isArray(input.Data) ? { ...input, Data: Uint8Array.from(input.Data as number[]) } : input
}

/** What page.evaluate can carry back: bytes as number arrays, dates as ISO strings, no SDK internals. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value)
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

async function kinesis(settings: ClientSettings, command: CommandName, input: Record<string, unknown>): Promise<Outcome> {
  const client = new KinesisClient({
    endpoint: settings.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    maxAttempts: 1,
  })
  try {
    const Command = COMMANDS[command] as unknown as new (input: Record<string, unknown>) => Parameters<KinesisClient['send']>[0]
    const output = await client.send(new Command(decoded(input))) as { $metadata: { requestId?: string } }
    const { $metadata, ...rest } = output
    return { ok: true, output: plain(rest), requestId: $metadata.requestId }
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } }
    return { ok: false, error: { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode, requestId: e.$metadata?.requestId } }
  } finally {
    client.destroy()
  }
}

;(globalThis as unknown as { kinesis: typeof kinesis }).kinesis = kinesis
