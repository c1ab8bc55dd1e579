/**
 * The agent under systemd (Type=notify): READY=1 once the config is valid and the outbox open,
 * WATCHDOG=1 only while the capture pipeline makes progress, STOPPING=1 on the way out.
 *
 * The watchdog proves more than a live event loop: it is withheld while a store has waited longer
 * than the watchdog interval for its commit, or storage has failed for that long, so a wedged
 * outbox gets the agent restarted too. A relay outage is not a stall (the outbox holds the data),
 * and an idle pipeline with nothing to store is healthy.
 *
 * Datagrams go out through the native addon's sdNotify (one sendto from the main process). Without
 * the addon, `systemd-notify` is spawned instead (the unit sets NotifyAccess=all for it); on systemd
 * before 254 such a short-lived sender can race its own exit, which is why the addon comes first.
 */
import { spawn } from 'node:child_process'
import { loadAddon } from '../hardware/index.js'
import type { PipelineProgress } from './agent.js'
import { every, type Clock } from '../hardware/index.js'
import type { LogFn } from './log.js'

export interface Notifier {
  implementation: 'native' | 'systemd-notify'
  send(message: string): void
}

/** The notifier for $NOTIFY_SOCKET, or null when not started by systemd with Type=notify. */
export function systemdNotifier(log: LogFn, env: NodeJS.ProcessEnv): Notifier | null {
  const socket = env.NOTIFY_SOCKET
  if (!socket) return null
  let sdNotify: ((path: string, message: string) => void) | null = null
  let why = 'TRIBUTARY_NATIVE=0'
  if (env.TRIBUTARY_NATIVE !== '0') {
    try {
      const addon = loadAddon() as unknown as { sdNotify?: (path: string, message: string) => void }
      if (typeof addon.sdNotify === 'function') sdNotify = addon.sdNotify
      else why = 'the built addon predates sdNotify'
    } catch (err) {
      why = `the native addon did not load (${(err as Error).message})`
    }
  }
  let failedOnce = false
  const failed = (err: unknown) => {
    if (failedOnce) return
    failedOnce = true
    log('systemd_notify_failed', { socket, error: (err as Error).message })
  }
  if (sdNotify) {
    const send = sdNotify
    // Each message ends with a newline (systemd ignores the empty last line).
    return { implementation: 'native', send: (message) => { try { send(socket, message.endsWith('\n') ? message : message + '\n') } catch (err) { failed(err) } } }
  }
  log('systemd_notify_fallback', { reason: why, using: 'systemd-notify' })
  return {
    implementation: 'systemd-notify',
    send: (message) => {
      const child = spawn('systemd-notify', message.split('\n').filter(Boolean), { stdio: 'ignore', env: { ...env, NOTIFY_SOCKET: socket } })
      child.on('error', failed)
      child.on('exit', (code) => { if (code) failed(new Error(`systemd-notify exited with ${code}`)) })
    },
  }
}

/** The watchdog interval systemd asked for, in ms, or null (WatchdogSec unset, or meant for another process). */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC)
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null
  return usec / 1000
}

/** Why the pipeline is not making progress, or null when it is. */
export function stallReason(p: PipelineProgress, limitMs: number): string | null {
  if (p.oldestPendingMs > limitMs) return `a store has waited ${Math.round(p.oldestPendingMs)} ms for its commit`
  if (p.failingMs > limitMs) return `storage has failed for ${Math.round(p.failingMs)} ms`
  return null
}

/**
 * Feeds the watchdog at half its interval while the pipeline makes progress. A hung event loop
 * stops the timer itself, so systemd restarts the agent either way.
 */
export function startWatchdog(notifier: Notifier, intervalMs: number, progress: () => PipelineProgress, log: LogFn, status: () => string, clock: Clock): () => void {
  let withheld: string | null = null
  return every(clock, Math.max(50, intervalMs / 2), () => {
    const why = stallReason(progress(), intervalMs / 2)
    if (why) {
      if (!withheld) log('watchdog_withheld', { reason: why, intervalMs })
      withheld = why
      return
    }
    if (withheld) log('watchdog_resumed', { after: withheld })
    withheld = null
    notifier.send(`WATCHDOG=1\nSTATUS=${status()}`)
  })
}
