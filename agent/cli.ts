/**
 * `tributary agent …`: run the agent, or ask a running one how it is doing.
 */
import { existsSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import { parseArgs, type Args } from '../shared/args.js'
import { ConfigError, TributaryError } from '../shared/errors.js'
import { loadCodec } from '../hardware/index.js'
import { loadAgentConfig } from './config.js'
import { securityWarnings } from './warnings.js'
import { startAgent, type AgentStatus } from './agent.js'
import { systemClock } from '../hardware/index.js'
import { createLogger, loggerOptionsFromEnv, withoutCredentials } from './log.js'
import { startWatchdog, systemdNotifier, watchdogIntervalMs } from './systemd.js'
import { defaultDevice, enable, install, packageRoot } from './install.js'

const USAGE = `tributary agent — the edge agent: sources → durable outbox → MQTT uplink to the relay

  tributary agent run --config FILE        run the agent (env TRIBUTARY_AGENT_CONFIG); logs are JSON
                                           lines on stdout; under systemd it sends READY=1 and feeds
                                           the watchdog (Type=notify)
  tributary agent check --config FILE      validate a config file and say what it would run
  tributary agent install [--unit-dir DIR] [--config-dir DIR] [--device ID] [--relay URL]
                          [--password-file FILE] [--enable]
                                           write the systemd unit (default /etc/systemd/system) and a
                                           starter config (default /etc/tributary/agent.yaml, kept if
                                           it exists); --enable runs systemctl daemon-reload and
                                           enable --now
  tributary agent status [--url URL] [--watch] [--json]
                                           backlog per stream, oldest record age, drops, dead letters,
                                           link state, last PUBACK; --watch shows drain progress
                                           (URL default http://127.0.0.1:4568, the status endpoint)
`

async function run(args: Args, env: NodeJS.ProcessEnv): Promise<void> {
  const path = String(args.flags.config ?? env.TRIBUTARY_AGENT_CONFIG ?? '')
  if (!path) throw new ConfigError('--config', 'name the agent config file: tributary agent run --config agent.yaml')
  const config = loadAgentConfig(path)
  const log = createLogger(loggerOptionsFromEnv(env))
  // TRIBUTARY_NATIVE=0 forces the TypeScript codec; otherwise the addon, when it loads.
  const codec = loadCodec(env, (line) => log('codec_fallback', { reason: line }))
  const agent = await startAgent(config, { log, codec })
  console.log(`tributary agent ready: device=${config.device} relay=${withoutCredentials(config.relay.url)} outbox=${config.outbox.path} status=http://${config.status.host}:${agent.statusPort}${agent.putApiPort ? ` put-api=http://127.0.0.1:${agent.putApiPort}` : ''}`)

  // systemd: ready only now that the config is valid and the outbox open.
  const notifier = systemdNotifier(log, env)
  const summary = () => {
    const s = agent.status()
    return `${s.link.state}, backlog ${s.outbox.backlog}, ${Object.values(s.serial).filter((p) => p.link.state === 'open').length}/${Object.keys(s.serial).length} serial open`
  }
  notifier?.send(`READY=1\nSTATUS=${summary()}\nMAINPID=${process.pid}`)
  const interval = watchdogIntervalMs(env, process.pid)
  const stopWatchdog = notifier && interval ? startWatchdog(notifier, interval, agent.progress, log, summary, systemClock) : () => {}
  if (notifier) log('systemd_ready', { notify: notifier.implementation, watchdogMs: interval })

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    stopWatchdog()
    notifier?.send('STOPPING=1')
    console.log(`tributary agent stopping (${signal})`)
    log('agent_stopping', { signal })
    // Everything captured is committed by stop(); it never waits long on the relay. Should anything
    // hang regardless, leave well inside TimeoutStopSec: the outbox is durable either way.
    setTimeout(() => { log('agent_stop_timeout', { ms: STOP_LIMIT_MS }); process.exit(1) }, STOP_LIMIT_MS).unref()
    await agent.stop()
    log('agent_stopped', { signal })
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
}

/** The longest a stop may take before the process exits anyway (the unit's TimeoutStopSec is 20 s). */
const STOP_LIMIT_MS = 10_000

async function check(args: Args, env: NodeJS.ProcessEnv): Promise<void> {
  const path = String(args.flags.config ?? env.TRIBUTARY_AGENT_CONFIG ?? '')
  if (!path) throw new ConfigError('--config', 'name the agent config file: tributary agent check --config agent.yaml')
  const c = loadAgentConfig(path, { skipFiles: Boolean(args.flags['skip-files']) })
  console.log(`${path}: ok — device ${c.device}, relay ${withoutCredentials(c.relay.url)}, outbox ${c.outbox.path}, streams ${Object.keys(c.streams).join(', ') || 'none'}`)
  for (const s of c.sources) {
    if (s.type === 'serial') console.log(`  serial ${s.name}: ${s.path} at ${s.baudRate} baud ${s.dataBits}${s.parity[0]!.toUpperCase()}${s.stopBits}, parser ${s.parser.type} → stream ${s.stream}, key ${s.partitionKeyField ? `field ${s.partitionKeyField}, else ` : ''}${s.partitionKey}`)
    else if (s.type === 'simulated') console.log(`  simulated: ${s.sensors.length} sensors at ${s.rateHz} Hz → stream ${s.stream}`)
    else if (s.type === 'camera') console.log(`  camera ${s.name}: ${s.kind}${s.device ? ` ${withoutCredentials(s.device)}` : ''} ${s.width}x${s.height}@${s.fps} (${s.codec}), ${s.fragmentMs} ms fragments → video stream ${s.stream}, buffer ${s.maxBytes} bytes ${s.onFull}`)
    else console.log(`  put API on ${s.host}:${s.port}${s.token ? ', bearer token required' : ''}`)
  }
  for (const w of securityWarnings(c)) console.log(`warning: ${w.code}: ${w.message}`)
}

async function installCommand(args: Args, env: NodeJS.ProcessEnv): Promise<void> {
  const flag = (name: string, variable: string, fallback: string) => String(args.flags[name] ?? env[variable] ?? fallback)
  const write = (f: () => ReturnType<typeof install>) => {
    try { return f() } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EACCES' || e.code === 'EPERM') throw new TributaryError('NOT_AUTHORIZED', `cannot write ${e.path ?? 'the target'}: permission denied (run it with sudo, or pass --unit-dir and --config-dir)`)
      throw err
    }
  }
  const report = write(() => install({
    unitDir: flag('unit-dir', 'TRIBUTARY_UNIT_DIR', '/etc/systemd/system'),
    configDir: flag('config-dir', 'TRIBUTARY_CONFIG_DIR', '/etc/tributary'),
    device: flag('device', 'TRIBUTARY_DEVICE', defaultDevice()),
    relayUrl: flag('relay', 'TRIBUTARY_RELAY_URL', 'mqtt://localhost:1883'),
    passwordFile: args.flags['password-file'] === undefined ? null : resolvePath(String(args.flags['password-file'])),
    node: process.execPath,
    agent: resolvePath(packageRoot(), 'bin', 'tributary-agent.js'),
  }))
  for (const line of report.lines) console.log(line)
  if (!existsSync(resolvePath(packageRoot(), 'dist', 'agent', 'entry.js'))) console.log('warning: dist/ is missing: run npm run build before starting the service')
  if (args.flags.enable) for (const line of enable()) console.log(line)
  if (report.lines.some((l) => l.startsWith('config check FAILED'))) process.exitCode = 1
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
  for (const [name, p] of Object.entries(s.serial ?? {})) {
    const errors = Object.entries(p.framingErrors).map(([code, n]) => `${code} ${n}`).join(', ') || 'none'
    const problem = p.link.state === 'open' ? '' : p.link.lastOpenError ? ` (${p.link.lastOpenError.code}: ${p.link.lastOpenError.message})` : p.link.lastLoss ? ` (lost: ${p.link.lastLoss.reason})` : ''
    lines.push(`serial ${name}: ${p.link.state}${problem}   ${p.readings} readings → ${p.stream}   losses ${p.link.losses}   framing errors: ${errors}`)
  }
  for (const [name, c] of Object.entries(s.video?.cameras ?? {})) {
    const restarts = Object.entries(c.restarts).filter(([, n]) => n > 0).map(([why, n]) => `${why} ${n}`).join(', ') || 'none'
    const drops = Object.entries(c.dropped).map(([why, n]) => `${why} ${n}`).join(', ') || 'none'
    lines.push(`camera ${name}: ${c.state} → video stream ${c.stream}   sessions ${c.sessions}   restarts: ${restarts}${c.lastError && c.state !== 'running' ? ` (${c.lastError})` : ''}`)
    lines.push(`  fragments captured ${c.fragments.captured}, sent ${c.fragments.sent}, persisted ${c.fragments.persisted}   backlog ${c.backlog.fragments} (${c.backlog.seconds.toFixed(1)} s, ${(c.backlog.bytes / 1048576).toFixed(1)} MiB), oldest ${c.oldestAgeSeconds.toFixed(1)} s   drops: ${drops}`)
  }
  const st = s.storage
  if (st) {
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1)
    const projected = st.projectedMBPerDay === null ? 'projected per day after the first minute' : `projected ${st.projectedMBPerDay.toFixed(1)} MB/day`
    lines.push(`storage writes: today ${mb(st.writtenTodayBytes)} MB (since ${st.todaySince}), ${projected}${st.budgetMBPerDay > 0 ? ` (budget ${st.budgetMBPerDay} MB/day)` : ''}`)
  }
  for (const a of [...s.outbox.alarms, ...(s.video?.alarms ?? [])]) lines.push(`ALARM ${a.code}: ${a.message}`)
  for (const w of s.warnings ?? []) lines.push(`WARNING ${w.code}: ${w.message}`)
  if (st?.overBudget) lines.push(`WARNING WRITE_BUDGET_EXCEEDED: the agent writes ${st.projectedMBPerDay!.toFixed(1)} MB a day to storage, over its budget of ${st.budgetMBPerDay} MB (outbox.writeBudgetMBPerDay); flash wears with every write`)
  if (s.drain) {
    // The backlog may grow while it drains: progress is delivered out of delivered plus remaining.
    const { delivered, remaining } = s.drain
    const eta = s.drain.recordsPerSecond > 0 ? `${Math.ceil(remaining / s.drain.recordsPerSecond)} s left` : ''
    lines.push(`draining ${bar(delivered, delivered + remaining)} ${delivered}/${delivered + remaining} at ${Math.round(s.drain.recordsPerSecond)} records/s ${eta}`)
  }
  return lines.join('\n')
}

async function status(args: Args, env: NodeJS.ProcessEnv): Promise<void> {
  const url = String(args.flags.url ?? env.TRIBUTARY_AGENT_STATUS_URL ?? 'http://127.0.0.1:4568')
  const fetchStatus = async (): Promise<AgentStatus> => {
    let res: Response
    try {
      res = await fetch(new URL('/status', url))
    } catch (err) {
      throw new TributaryError('NOT_FOUND', `no agent answers at ${url} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`)
    }
    if (!res.ok) {
      const body = await res.text()
      let message = body
      try { message = (JSON.parse(body) as { message?: string }).message ?? body } catch { /* not JSON: shown as it came */ }
      throw new TributaryError('NOT_AUTHORIZED', `the agent at ${url} refused: ${res.status} ${message.slice(0, 500)}`)
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

/** `env` is the process's environment: read here, at the edge, and passed down as values. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const args = parseArgs(argv, new Set(['watch', 'json', 'help', 'enable', 'skip-files']))
  // argv[0] is "agent"
  const verb = args.positionals[1]
  switch (verb) {
    case 'run': return run(args, env)
    case 'status': return status(args, env)
    case 'check': return check(args, env)
    case 'install': return installCommand(args, env)
    case undefined:
    case 'help':
      console.log(USAGE)
      return
    default:
      throw new ConfigError('agent', `unknown subcommand ${JSON.stringify(verb)}; use run, status, check or install`)
  }
}
