import type { Hook } from '@oclif/core'

/** Unknown verbs get the same one-line error and exit code as every other failure. */
const hook: Hook<'command_not_found'> = async function (options) {
  // oclif joins the words it could not match with its topic separator: `stop web` is `stop:web`.
  const command = options.id.split(':')[0]
  process.stderr.write(`Error: unknown command "${command}"; see ${options.config.bin} --help\n`)
  process.exit(1)
}

export default hook
