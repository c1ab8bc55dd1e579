/**
 * `tributary agent install`: writes the systemd unit (always: it is generated; local changes belong
 * in drop-ins made with `systemctl edit`) and a starter config (only when none exists), checks the
 * config, and says what it did and what to run next. The target directories are options, so the
 * same code can install into a scratch directory.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, TributaryError } from '../shared/errors.js'
import { DEVICE_ID_PATTERN } from '../shared/topics.js'
import { loadAgentConfig } from './config.js'
import { secretFileWarning } from './warnings.js'

export const UNIT_NAME = 'tributary-agent.service'
/** Where systemd puts a credential loaded with LoadCredential= for this unit. */
export const PASSWORD_CREDENTIAL = `/run/credentials/${UNIT_NAME}/relay-password`

export interface InstallOptions {
  unitDir: string
  configDir: string
  device: string
  relayUrl: string
  /** A file holding the relay password, handed to the agent as a systemd credential. */
  passwordFile: string | null
  node: string
  /** The agent's launcher (bin/tributary-agent.js). */
  agent: string
}

export interface InstallReport {
  unitPath: string
  configPath: string
  configWritten: boolean
  lines: string[]
}

/** The package root, from the sources (agent/) or from dist/agent/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'deploy', UNIT_NAME))) return dir
    dir = dirname(dir)
  }
  throw new TributaryError('NOT_FOUND', `deploy/${UNIT_NAME} not found above ${fileURLToPath(import.meta.url)}`)
}

export function defaultDevice(): string {
  const name = hostname().toLowerCase().replace(/[^a-z0-9_.-]/g, '-').slice(0, 64)
  return DEVICE_ID_PATTERN.test(name) ? name : 'device-1'
}

export function renderUnit(template: string, o: { node: string; agent: string; config: string; passwordFile: string | null }): string {
  return template
    .replaceAll('@NODE@', o.node)
    .replaceAll('@AGENT@', o.agent)
    .replaceAll('@CONFIG@', o.config)
    .replace('@CREDENTIAL@\n', o.passwordFile ? `# The relay password, readable by the agent only, at ${PASSWORD_CREDENTIAL}.\nLoadCredential=relay-password:${o.passwordFile}\n` : '')
}

export function install(o: InstallOptions): InstallReport {
  if (!DEVICE_ID_PATTERN.test(o.device)) throw new ConfigError('--device', `must match ${DEVICE_ID_PATTERN}, got ${JSON.stringify(o.device)}`)
  if (!/^mqtts?:\/\/[^/]+(:\d+)?\/?$/.test(o.relayUrl)) throw new ConfigError('--relay', `must be mqtt://host:port or mqtts://host:port, got ${JSON.stringify(o.relayUrl)}`)
  for (const [flag, path] of [['--node', o.node], ['--agent', o.agent]] as const) {
    if (!existsSync(path)) throw new ConfigError(flag, `${path} does not exist`)
  }
  if (o.passwordFile !== null && !existsSync(o.passwordFile)) throw new ConfigError('--password-file', `${o.passwordFile} does not exist`)
  const root = packageRoot()
  const lines: string[] = []
  // systemd hands the agent a private copy, but the file itself stays where other users may read it.
  const readable = o.passwordFile === null ? null : secretFileWarning(o.passwordFile, 'the password file')
  if (readable) lines.push(`warning: ${readable.code}: ${readable.message}`)
  const configPath = join(resolve(o.configDir), 'agent.yaml')
  const unitPath = join(resolve(o.unitDir), UNIT_NAME)

  mkdirSync(dirname(configPath), { recursive: true })
  let configWritten = false
  if (existsSync(configPath)) {
    lines.push(`kept ${configPath} (it exists; a starter config is written only where there is none)`)
  } else {
    const text = readFileSync(join(root, 'deploy', 'agent.yaml'), 'utf8')
      .replace('@DEVICE@', o.device)
      .replace('@RELAY@', o.relayUrl)
      .replace('@PASSWORD@\n', o.passwordFile ? `  passwordFile: ${PASSWORD_CREDENTIAL}\n` : '  # passwordFile: a file with the device password (install --password-file sets this up)\n')
    writeFileSync(configPath, text, { mode: 0o644 })
    chmodSync(configPath, 0o644) // no secrets in it: the password is a credential
    configWritten = true
    lines.push(`wrote ${configPath} (starter config: device ${o.device}, relay ${o.relayUrl}; add your sensors under sources:)`)
  }

  mkdirSync(dirname(unitPath), { recursive: true })
  const unit = renderUnit(readFileSync(join(root, 'deploy', UNIT_NAME), 'utf8'), { node: o.node, agent: o.agent, config: configPath, passwordFile: o.passwordFile })
  const existed = existsSync(unitPath)
  writeFileSync(unitPath, unit, { mode: 0o644 })
  lines.push(`${existed ? 'replaced' : 'wrote'} ${unitPath} (Type=notify, watchdog 30 s, dynamic user tributary-agent in groups dialout and video, outbox in /var/lib/tributary-agent)`)

  // The config must pass validation as it will be read, except that the outbox directory and the
  // password credential exist only once systemd starts the unit.
  try {
    loadAgentConfig(configPath, { skipFiles: true })
    lines.push('config check: ok')
  } catch (err) {
    lines.push(`config check FAILED: ${(err as Error).message}`)
  }
  lines.push('next:', '  systemctl daemon-reload && systemctl enable --now tributary-agent', '  journalctl -u tributary-agent -f        # the agent\'s log, one JSON line per event', '  tributary agent status                    # backlog, link, serial sensors')
  return { unitPath, configPath, configWritten, lines }
}

/** Runs `systemctl daemon-reload` and `systemctl enable --now` for --enable; returns what it ran. */
export function enable(): string[] {
  execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' })
  execFileSync('systemctl', ['enable', '--now', UNIT_NAME], { stdio: 'inherit' })
  return ['ran systemctl daemon-reload', `ran systemctl enable --now ${UNIT_NAME}`]
}
