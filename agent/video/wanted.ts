/**
 * Whether the agent has a video side at all, decided without loading it: its modules (the cameras,
 * the MP4 splitter, the buffer and its sender) are only imported when a camera is configured or an
 * earlier config left a buffer to send (bench/footprint.ts measures the agent without them).
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { AgentConfig } from '../config.js'

export function videoDir(config: AgentConfig): string {
  return join(dirname(config.outbox.path), 'video')
}

/** A camera in the config, or a buffer left by an earlier one. */
export function videoWanted(config: AgentConfig): boolean {
  return config.sources.some((s) => s.type === 'camera') || existsSync(join(videoDir(config), 'index.db'))
}
