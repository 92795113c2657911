import type { Hook } from '@oclif/core'

/** Unknown verbs get the same one-line error and exit code as every other failure. */
const hook: Hook<'command_not_found'> = async function (options) {
  process.stderr.write(`Error: unknown command "${options.id}"; see ${options.config.bin} --help\n`)
  process.exit(1)
}

export default hook
