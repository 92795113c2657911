#!/usr/bin/env node
require('./check-node')
// mproxy with kamal-proxy's command line (see src/kamal/main.ts): what Kamal runs in the proxy's container.
require('../dist/kamal/main').main(process.argv.slice(2))
