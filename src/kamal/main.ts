/**
 * `kamal-proxy`: mproxy with kamal-proxy's command line, so that Kamal can drive it unchanged.
 * `run` starts the same primary as `mproxy run`, with the data directory as its state dir and
 * the control socket where Kamal looks; every other command reads its command line as
 * kamal-proxy does, translates it into one mproxy control request, and answers as kamal-proxy
 * does: nothing on success but `list`'s table, `Error: <message>` on stderr and exit 1 on failure.
 */
import net from 'node:net'
import path from 'node:path'
import { resolveRunOptions } from '../cli/run-options'
import { ControlClient } from '../control/client'
import { SOCKET_NAME } from '../control/protocol'
import { oneLine } from '../errors'
import { setDebug } from '../lib/logger'
import { startPrimary } from '../primary/main'
import { formatServiceTable, kamalErrorMessage } from './answers'
import { parseCommandLine } from './command-line'
import type { KamalCommand, KamalEnvironment } from './commands'
import { CommandLineError } from './flags'
import { ensureKamalDataDir, kamalDataDir, kamalSocketPath } from './paths'
import {
  deployNeeds, translateDeploy, translatePause, translateRemove, translateResume, translateRolloutDeploy, translateRolloutSet, translateRolloutStop,
  translateRun, translateStop,
} from './translate'

const silent = () => {}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const environment: KamalEnvironment = { env, dataDir: kamalDataDir(env) }
  let command: KamalCommand | undefined
  try {
    command = parseCommandLine(argv, environment)
    if (command.name === 'run') return await run(command.flags, env)
    const output = await execute(command, environment)
    process.stdout.write(output)
  } catch (err) {
    const deployTimeout = command?.name === 'deploy' || command?.name === 'rollout deploy' ? command.flags['deploy-timeout'] : undefined
    process.stderr.write(`Error: ${kamalErrorMessage(err, deployTimeout)}\n`)
    if (err instanceof CommandLineError && err.hint) process.stderr.write(`${err.hint}\n`)
    // Workers may already have been forked by `run`: make sure nothing lingers.
    if (command?.name === 'run') process.exit(1)
    process.exitCode = 1
  }
}

async function run(flags: Extract<KamalCommand, { name: 'run' }>['flags'], env: NodeJS.ProcessEnv): Promise<void> {
  const { httpPort, httpsPort, metricsPort, debug } = translateRun(flags)
  const dataDir = ensureKamalDataDir(env)
  const { version } = require('../../package.json') as { version: string }
  const options = resolveRunOptions({
    'state-dir': dataDir, 'http-port': httpPort, 'https-port': httpsPort, 'metrics-port': String(metricsPort), ...(debug && { debug }),
  }, version, env)
  setDebug(options.debug)
  await startPrimary({ ...options, socketPath: kamalSocketPath(env) })
}

/** Runs a client command; resolves with what it prints. */
async function execute(command: Exclude<KamalCommand, { name: 'run' }>, environment: KamalEnvironment): Promise<string> {
  switch (command.name) {
    case 'help':
      return command.text
  }
  const client = await connect(environment)
  switch (command.name) {
    case 'deploy': {
      const needs = deployNeeds(command)
      const request = translateDeploy(command, {
        environment,
        services: needs.services ? (await client.list()).services : [],
        acmeDirectory: needs.acmeDirectory ? (await client.status()).acmeDirectory : undefined,
      })
      await client.deploy(request, silent)
      return ''
    }
    case 'remove':
      await client.remove(translateRemove(command), silent)
      return ''
    case 'pause':
      await client.pause(translatePause(command), silent)
      return ''
    case 'stop':
      await client.stop(translateStop(command), silent)
      return ''
    case 'resume':
      await client.resume(translateResume(command), silent)
      return ''
    case 'list':
      return formatServiceTable((await client.list()).services)
    case 'rollout deploy':
      await client.rolloutDeploy(translateRolloutDeploy(command), silent)
      return ''
    case 'rollout set':
      await client.rolloutSet(translateRolloutSet(command), silent)
      return ''
    case 'rollout stop':
      await client.rolloutStop(translateRolloutStop(command), silent)
      return ''
  }
}

/**
 * The proxy at kamal-proxy's socket path; else the one of the data directory (started with
 * `mproxy run --state-dir` on it); else kamal-proxy's dial error for its socket path.
 */
async function connect({ env, dataDir }: KamalEnvironment): Promise<ControlClient> {
  const socketPath = kamalSocketPath(env)
  const problem = await dial(socketPath)
  if (problem === undefined) return new ControlClient({ socket: socketPath })
  const fallback = path.join(dataDir, SOCKET_NAME)
  if ((await dial(fallback)) === undefined) return new ControlClient({ socket: fallback })
  throw new CommandLineError(`dial unix ${socketPath}: connect: ${problem}`)
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ECONNREFUSED: 'connection refused',
  EACCES: 'permission denied',
  ENOTSOCK: 'socket operation on non-socket',
  ENOTDIR: 'not a directory',
}

/** Undefined when something answers on `socketPath`; otherwise why not, as Go words it. */
function dial(socketPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath)
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(ERRNO_TEXT[err.code ?? ''] ?? oneLine(err)))
  })
}
