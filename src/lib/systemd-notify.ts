/**
 * Tells systemd about the service (a `Type=notify` unit sets NOTIFY_SOCKET): that it is ready, or
 * which process is its main one after a takeover. Node cannot send the datagram itself (it has
 * no unix datagram sockets), so this runs `systemd-notify`. Outside systemd it does nothing, and
 * a failure is logged, never fatal: the proxy serves either way.
 */
import { spawn } from 'node:child_process'
import { log } from './logger'

/** systemd-notify waits for systemd to process the message; it must not hold up a takeover for long. */
const NOTIFY_TIMEOUT_MS = 5_000

/** Runs `systemd-notify ARGS...` (e.g. `--ready`, `MAINPID=123`) when under systemd; resolves when it is done. */
export function notifySystemd(...args: string[]): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve()
  return new Promise((resolve) => {
    const child = spawn('systemd-notify', args, { stdio: 'ignore' })
    const timer = setTimeout(() => child.kill('SIGKILL'), NOTIFY_TIMEOUT_MS)
    child.once('error', (err) => {
      clearTimeout(timer)
      log('warn', 'cannot notify systemd', { args, error: err.message })
      resolve()
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) log('warn', 'cannot notify systemd', { args, error: `systemd-notify exited (${signal ?? `code ${code}`})` })
      resolve()
    })
  })
}
