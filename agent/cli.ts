/**
 * `tributary agent …`: run the agent, or ask a running one how it is doing.
 */
import { parseArgs, type Args } from '../shared/args.js'
import { ConfigError, TributaryError } from '../shared/errors.js'
import { loadAgentConfig } from './config.js'
import { startAgent, type AgentStatus } from './agent.js'

const USAGE = `tributary agent — the edge agent: sources → durable outbox → MQTT uplink to the relay

  tributary agent run --config FILE        run the agent (env TRIBUTARY_AGENT_CONFIG)
  tributary agent status [--url URL] [--watch] [--json]
                                           backlog per stream, oldest record age, drops, dead letters,
                                           link state, last PUBACK; --watch shows drain progress
                                           (URL default http://127.0.0.1:4568, the status endpoint)
`

async function run(args: Args): Promise<void> {
  const path = String(args.flags.config ?? process.env.TRIBUTARY_AGENT_CONFIG ?? '')
  if (!path) throw new ConfigError('--config', 'name the agent config file: tributary agent run --config agent.yaml')
  const config = loadAgentConfig(path)
  const agent = await startAgent(config)
  console.log(`tributary agent ready: device=${config.device} relay=${config.relay.url} outbox=${config.outbox.path} status=http://${config.status.host}:${agent.statusPort}${agent.putApiPort ? ` put-api=http://127.0.0.1:${agent.putApiPort}` : ''}`)
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`tributary agent stopping (${signal})`)
    await agent.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
}

function bar(done: number, total: number, width = 30): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1
  const filled = Math.round(f * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(f * 100).toFixed(1)}%`
}

export function formatStatus(s: AgentStatus): string {
  const lines = [
    `device ${s.device}: ${s.link.state}${s.link.lastError ? ` (last error: ${s.link.lastError})` : ''}`,
    `last PUBACK: ${s.link.lastPubackWallMs ? new Date(s.link.lastPubackWallMs).toISOString() : 'never'}   in flight: ${s.link.inFlight} batches   acknowledged since start: ${s.link.recordsAcked} records`,
    `outbox: ${s.outbox.backlog} records, file ${(s.outbox.fileBytes / 1048576).toFixed(1)} MiB, epoch ${s.outbox.epoch}`,
  ]
  for (const [name, st] of Object.entries(s.outbox.streams)) {
    lines.push(`  ${name.padEnd(20)} backlog ${String(st.backlog).padStart(9)}   oldest ${st.oldestAgeSeconds.toFixed(1)} s   priority ${st.priority}`)
  }
  lines.push(`drops: ${s.outbox.drops.length ? s.outbox.drops.map((d) => `${d.stream}/${d.reason} ${d.count}`).join(', ') : 'none'}`)
  lines.push(`dead letters: ${s.outbox.deadLetters.length ? s.outbox.deadLetters.map((d) => `${d.stream || '?'}/${d.code} ${d.count}`).join(', ') : 'none'}`)
  for (const a of s.outbox.alarms) lines.push(`ALARM ${a.code}: ${a.message}`)
  if (s.drain) {
    // The backlog may grow while it drains: progress is delivered out of delivered plus remaining.
    const { delivered, remaining } = s.drain
    const eta = s.drain.recordsPerSecond > 0 ? `${Math.ceil(remaining / s.drain.recordsPerSecond)} s left` : ''
    lines.push(`draining ${bar(delivered, delivered + remaining)} ${delivered}/${delivered + remaining} at ${Math.round(s.drain.recordsPerSecond)} records/s ${eta}`)
  }
  return lines.join('\n')
}

async function status(args: Args): Promise<void> {
  const url = String(args.flags.url ?? process.env.TRIBUTARY_AGENT_STATUS_URL ?? 'http://127.0.0.1:4568')
  const fetchStatus = async (): Promise<AgentStatus> => {
    let res: Response
    try {
      res = await fetch(new URL('/status', url))
    } catch (err) {
      throw new TributaryError('NOT_FOUND', `no agent answers at ${url} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`)
    }
    return (await res.json()) as AgentStatus
  }
  if (!args.flags.watch) {
    const s = await fetchStatus()
    console.log(args.flags.json ? JSON.stringify(s, null, 2) : formatStatus(s))
    return
  }
  for (;;) {
    const s = await fetchStatus()
    process.stdout.write('\x1b[2J\x1b[H' + formatStatus(s) + '\n')
    await new Promise((r) => setTimeout(r, 1000))
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, new Set(['watch', 'json', 'help']))
  // argv[0] is "agent"
  const verb = args.positionals[1]
  switch (verb) {
    case 'run': return run(args)
    case 'status': return status(args)
    case undefined:
    case 'help':
      console.log(USAGE)
      return
    default:
      throw new ConfigError('agent', `unknown subcommand ${JSON.stringify(verb)}; use run or status`)
  }
}
