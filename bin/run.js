#!/usr/bin/env node
const oclif = require('@oclif/core')
oclif.execute({ dir: __dirname }).catch(oclif.handle)
