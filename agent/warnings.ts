/**
 * What in the agent's own setup exposes its credentials: a secret file other users can read, or the
 * relay password sent in clear over the network. Said once in the log at start and on every
 * `tributary agent status`; the agent runs regardless (the operator decides).
 */
import { statSync } from 'node:fs'
import { isLoopbackHost } from '../shared/config.js'
import type { AgentConfig } from './config.js'

export interface SecurityWarning {
  /** Stable: SECRET_FILE_READABLE, PASSWORD_IN_CLEAR, OPEN_TO_NETWORK. */
  code: 'SECRET_FILE_READABLE' | 'PASSWORD_IN_CLEAR' | 'OPEN_TO_NETWORK'
  message: string
}

/** Where systemd puts LoadCredential= files, per unit (mode 0500 directories). */
const CREDENTIALS_ROOT = '/run/credentials/'

/** The warning for a secret file that its group or others may read, or null (also when it cannot be read: that fails elsewhere). */
export function secretFileWarning(path: string, what: string, hint = ''): SecurityWarning | null {
  // systemd credentials live in a directory only the unit may enter, whatever the file's own mode.
  if (path.startsWith(CREDENTIALS_ROOT)) return null
  let mode: number
  try { mode = statSync(path).mode & 0o777 } catch { return null }
  if ((mode & 0o077) === 0) return null
  return { code: 'SECRET_FILE_READABLE', message: `${what} ${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${path}${hint}` }
}

export function securityWarnings(config: AgentConfig): SecurityWarning[] {
  const out: SecurityWarning[] = []
  if (config.relay.passwordFile) {
    const w = secretFileWarning(config.relay.passwordFile, 'the relay password file', ', or let systemd hand it over (tributary agent install --password-file: LoadCredential=)')
    if (w) out.push(w)
  }
  if (config.relay.key) {
    const w = secretFileWarning(config.relay.key, 'the device certificate\'s private key (relay.key)')
    if (w) out.push(w)
  }
  for (const s of config.sources) {
    if (s.type !== 'put-api' || !s.tokenFile) continue
    const w = secretFileWarning(s.tokenFile, 'the put API token file')
    if (w) out.push(w)
  }
  // Bound beyond loopback, the endpoints serve whoever reaches the port (Host checks stop browsers, not hosts).
  if (!isLoopbackHost(config.status.host)) {
    out.push({ code: 'OPEN_TO_NETWORK', message: `the status server listens on ${config.status.host}: anyone who reaches port ${config.status.port} reads the agent's status, metrics and dead-lettered records; bind it to 127.0.0.1 unless a firewall keeps others out` })
  }
  for (const s of config.sources) {
    if (s.type === 'put-api' && !s.token && !isLoopbackHost(s.host)) {
      out.push({ code: 'OPEN_TO_NETWORK', message: `the put API listens on ${s.host} without a token: anyone who reaches port ${s.port} can write records as this device; set sources[].tokenFile, or bind it to 127.0.0.1` })
    }
  }
  const url = new URL(config.relay.url)
  if (url.protocol === 'mqtt:' && (config.relay.password || url.password) && !isLoopbackHost(url.hostname)) {
    out.push({ code: 'PASSWORD_IN_CLEAR', message: `the relay password goes to ${url.host} in clear over mqtt://: anyone on the path can read it and act as this device; use mqtts:// (relay.ca names the relay's CA)` })
  }
  return out
}
