#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=64
// The agent as it runs on a device: the same code as `tributary agent`, with a heap sized for a
// small machine (a young generation of 2 MB and a 64 MB old space keep the resident set low while a
// backlog drains). `tributary-agent run --config FILE`, `tributary-agent status`.
process.argv.splice(2, 0, 'agent')
await import('../dist/agent/entry.js')
