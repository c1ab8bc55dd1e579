#!/usr/bin/env node
// The agent and the relay never import each other: dispatch on the first word.
if (process.argv[2] === 'agent') await import('../dist/agent/entry.js')
// The container's HEALTHCHECK: loads nothing of the relay.
else if (process.argv[2] === 'healthcheck') await import('../dist/relay/cli/healthcheck.js')
else await import('../dist/relay/cli/entry.js')
