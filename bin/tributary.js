#!/usr/bin/env node
// The agent and the relay never import each other: dispatch on the first word.
if (process.argv[2] === 'agent') await import('../dist/agent/entry.js')
else await import('../dist/relay/cli/entry.js')
