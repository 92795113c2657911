import os from 'node:os'
import path from 'node:path'

/** `--state-dir`, else $MPROXY_STATE_DIR, else $XDG_STATE_HOME/mproxy, else ~/.local/state/mproxy. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return path.resolve(flag)
  if (env.MPROXY_STATE_DIR) return path.resolve(env.MPROXY_STATE_DIR)
  if (env.XDG_STATE_HOME) return path.join(env.XDG_STATE_HOME, 'mproxy')
  return path.join(os.homedir(), '.local', 'state', 'mproxy')
}
