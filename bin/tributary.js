#!/usr/bin/env node
import { main, reportAndExit } from '../dist/relay/cli/main.js'

main(process.argv.slice(2)).catch(reportAndExit)
