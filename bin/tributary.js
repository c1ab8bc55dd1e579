#!/usr/bin/env node
import '../dist/relay/cli/entry.js'
