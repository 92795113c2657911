#!/usr/bin/env node
require('./check-node')
const args = process.argv.slice(2)
// `mproxy run` starts the long-lived primary without loading oclif (see src/cli/run-direct.ts).
if (args[0] === 'run' && !args.some((arg) => arg === '--help' || arg === '-h')) {
  require('../dist/cli/run-direct').runDirect(args.slice(1))
} else {
  const oclif = require('@oclif/core')
  oclif.execute({ dir: __dirname }).catch(oclif.handle)
}
