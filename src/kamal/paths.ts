/**
 * Where kamal-proxy keeps its files, so that Kamal finds them in the same places: the control
 * socket (`$KAMAL_PROXY_SOCKET`, else `$XDG_RUNTIME_DIR/kamal-proxy.sock`, else the temp dir)
 * and the data directory `$HOME/.config/kamal-proxy` (state and certificates; Kamal mounts it
 * as the volume `kamal-proxy-config`). The data directory is mproxy's state dir.
 */
import fs from 'node:fs'
import path from 'node:path'

export const KAMAL_SOCKET_NAME = 'kamal-proxy.sock'
export const KAMAL_STATE_FILE = 'kamal-proxy.state'

export function kamalSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KAMAL_PROXY_SOCKET) return env.KAMAL_PROXY_SOCKET
  return path.join(env.XDG_RUNTIME_DIR || tempDir(env), KAMAL_SOCKET_NAME)
}

/** `$HOME/.config/kamal-proxy` (XDG_CONFIG_HOME is not consulted), without creating it. */
export function kamalDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOME ? path.join(env.HOME, '.config', 'kamal-proxy') : tempDir(env)
}

/**
 * The data directory for the server: created with mode 0700 when missing; the temp dir when
 * there is no home or it cannot be created, as kamal-proxy does.
 */
export function ensureKamalDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = kamalDataDir(env)
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    return dir
  } catch {
    return tempDir(env)
  }
}

/** Go's os.TempDir: $TMPDIR, else /tmp. */
function tempDir(env: NodeJS.ProcessEnv): string {
  return env.TMPDIR || '/tmp'
}
