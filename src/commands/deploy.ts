import path from 'node:path'
import { Args, Flags } from '@oclif/core'
import { formatDuration, parseDuration } from '../lib/duration'
import { formatSize, parseSize } from '../lib/size'
import { normalizeTarget, splitList } from '../lib/validate'
import {
  DEFAULT_BUFFER_MEMORY_BYTES, DEFAULT_DEPLOY_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_HEALTH_CHECK_INTERVAL_MS, DEFAULT_HEALTH_CHECK_PATH,
  DEFAULT_HEALTH_CHECK_TIMEOUT_MS, DEFAULT_TARGET_TIMEOUT_MS, DEFAULT_WRITER_AFFINITY_TIMEOUT_MS,
} from '../options'
import { InvalidOptionError } from '../errors'
import { BaseCommand } from '../cli/base-command'

const absolute = (file: string | undefined) => (file === undefined ? undefined : path.resolve(file))

const duration = (description: string, defaultMs: number) =>
  Flags.string({ description, default: formatDuration(defaultMs), helpValue: 'DURATION' })

const size = (description: string, defaultBytes: number) =>
  Flags.string({ description, default: formatSize(defaultBytes), helpValue: 'SIZE' })

export default class Deploy extends BaseCommand {
  static override description = `Deploy targets for a service, with no failed request.

Health-checks the new targets, switches all workers to them once healthy, then waits until the requests still running on the replaced targets have finished (up to --drain-timeout). When this exits 0 the old instance receives no more traffic and may be stopped. With --redis-url, every live node of the fleet applies the deploy and this waits for all of them to drain. Without --name, the service is named after its first --host, or "default" when there is none. A paused or stopped service stays so (see mproxy resume). Durations: 500ms, 5s, 1m30s. Sizes: 1048576, 512KiB, 1.5MB (KB = 1000 bytes, KiB = 1024).`

  static override examples = [
    '<%= config.bin %> deploy web-1:3000',
    '<%= config.bin %> deploy web-2:3000 --host app.example.com',
    '<%= config.bin %> deploy web-2:3000 --host app.example.com --ssl',
    '<%= config.bin %> deploy web-1:3000 web-2:3000 --name app --host app.example.com --host www.example.com',
    '<%= config.bin %> deploy web-3:3000 --health-check-path /health --deploy-timeout 2m',
    '<%= config.bin %> deploy api-1:4000 --host app.example.com --path-prefix /api',
    '<%= config.bin %> deploy web-2:3000 --host app.example.com --error-pages ./public/proxy-pages',
    '<%= config.bin %> deploy web-4:3000 --host app.example.com --buffer-requests --max-request-body 50MB',
    '<%= config.bin %> deploy web-1:3000 --host example.com --host www.example.com --canonical-host example.com --ssl',
    '<%= config.bin %> deploy web-1:3000 --host app.example.com --forward-headers --log-request-header CF-Ray --log-response-header Cache-Control',
    '<%= config.bin %> deploy web-1:3000 --host app.example.com --read-target replica-1:3000 --read-target replica-2:3000',
  ]

  static override strict = false
  static override args = {
    target: Args.string({ description: 'Target HOST:PORT; several are load-balanced round-robin', required: true }),
  }

  static override flags = {
    'read-target': Flags.string({ description: 'Read-only target HOST:PORT (a replica): GET and HEAD requests go to the healthy read targets, round-robin, and to the targets when none is healthy; health-checked and drained like targets; repeatable or comma-separated [default: none]', multiple: true, helpValue: 'HOST:PORT' }),
    'writer-affinity-timeout': duration('With read targets: after a write (POST, PUT, ...), send that client\'s reads to the targets for this long, by a kamal-writer cookie, so that it reads what it wrote; 0 turns it off; an app answering X-Writer-Affinity: false sets no cookie', DEFAULT_WRITER_AFFINITY_TIMEOUT_MS),
    'read-target-websockets': Flags.boolean({ description: 'With read targets: WebSocket upgrades count as reads and may go to them [default: false]' }),
    host: Flags.string({ description: 'Host name to route to this service (exact or *.example.com); repeatable or comma-separated [default: none: any host]', multiple: true, helpValue: 'HOST' }),
    name: Flags.string({ description: 'Service name [default: the first host (and path prefix), or "default"]' }),
    'path-prefix': Flags.string({ description: 'Serve only paths under this prefix on the hosts (longest prefix wins; other services may serve the rest); repeatable or comma-separated [default: /]', multiple: true, helpValue: 'PATH' }),
    'strip-path-prefix': Flags.string({ description: 'Remove the matched prefix from the path sent to the target; --strip-path-prefix=false keeps it', options: ['true', 'false'], default: 'true' }),
    'scope-cookie-paths': Flags.boolean({ description: 'With a stripped prefix, scope the cookies the app sets under the prefix (Path=/ becomes Path=/api) [default: false]' }),
    ssl: Flags.boolean({ description: 'Serve the hosts over HTTPS, with certificates ordered automatically (ACME) unless given [default: false]', aliases: ['tls'] }),
    'tls-certificate-path': Flags.string({ description: 'PEM certificate (with its chain) to serve for the hosts; implies --ssl [default: none]', helpValue: 'FILE' }),
    'tls-private-key-path': Flags.string({ description: 'PEM private key of --tls-certificate-path [default: none]', helpValue: 'FILE' }),
    'tls-redirect': Flags.string({ description: 'With TLS, redirect plain HTTP to HTTPS; --tls-redirect=false keeps HTTP working', options: ['true', 'false'], default: 'true' }),
    'error-pages': Flags.string({ description: 'Directory of <status>.html pages (503.html, 502.html, ...) to answer with instead of the built-in ones when mproxy itself answers for this service; {{ .Message }} in a page is the text of mproxy stop --message (HTML-escaped), no other template syntax is supported; each page at most 64 KiB; read now and at each start [default: the built-in pages]', helpValue: 'DIR' }),
    'canonical-host': Flags.string({ description: 'Redirect (301) requests for the other hosts to this one, path and query kept; must be one of --host (any name when there is none) [default: none]', helpValue: 'HOST' }),
    'forward-headers': Flags.boolean({ description: "Trust the clients' X-Forwarded-For/-Proto/-Host (and other forwarding headers): keep them, appending the peer to X-Forwarded-For, for an app behind a CDN or load balancer. Off, they are replaced unless the peer is a --trusted-proxy [default: false]" }),
    'log-request-header': Flags.string({ description: 'Request header to add to the access log lines, as req_<name> (lower case, - as _); repeatable or comma-separated [default: none]', multiple: true, helpValue: 'HEADER' }),
    'log-response-header': Flags.string({ description: 'Response header to add to the access log lines, as resp_<name>; repeatable or comma-separated [default: none]', multiple: true, helpValue: 'HEADER' }),
    'health-check-path': Flags.string({ description: 'Path probed with GET; any 2xx is healthy', default: DEFAULT_HEALTH_CHECK_PATH, helpValue: 'PATH' }),
    'health-check-interval': duration('Time between health checks', DEFAULT_HEALTH_CHECK_INTERVAL_MS),
    'health-check-timeout': duration('Time one health check may take', DEFAULT_HEALTH_CHECK_TIMEOUT_MS),
    'deploy-timeout': duration('Longest wait for the new targets to become healthy', DEFAULT_DEPLOY_TIMEOUT_MS),
    'drain-timeout': duration('Longest wait for in-flight requests on replaced targets; the rest are cut', DEFAULT_DRAIN_TIMEOUT_MS),
    'target-timeout': duration('Longest wait for a target to start answering a request (then 504)', DEFAULT_TARGET_TIMEOUT_MS),
    'drain-websockets': Flags.boolean({ description: "Wait for the replaced targets' WebSockets during the drain, instead of closing them right after the switch so that clients reconnect to the new target [default: false]" }),
    'exclude-metrics-path': Flags.string({ description: 'Do not count requests for this path in the metrics (still logged); compared with the path the app sees (prefix stripped), without the query; repeatable or comma-separated [default: none]', multiple: true, helpValue: 'PATH' }),
    'buffer-requests': Flags.boolean({ description: 'Read each request body whole before the target sees the request, and send it with a Content-Length: slow uploads never occupy the app [default: false]' }),
    'buffer-responses': Flags.boolean({ description: 'Read each response body whole before sending it to the client (server-sent events stream through) [default: false]' }),
    'buffer-memory': size('Bytes of each buffered body kept in memory; the rest goes to a temporary file', DEFAULT_BUFFER_MEMORY_BYTES),
    'max-request-body': size('Largest request body, 0 for no limit; a larger one is answered 413 without reaching the app whole', 0),
    'max-response-body': size('Largest response body, 0 for no limit; a larger one is answered 502, or cut if already streaming', 0),
    force: Flags.boolean({ description: 'Switch without waiting for health checks [default: false]' }),
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
  }

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Deploy)
    const unknownFlag = (argv as string[]).find((arg) => arg.startsWith('-'))
    if (unknownFlag) throw new InvalidOptionError(`unknown flag ${unknownFlag}`)
    // Validate here too, so a typo fails before anything is sent to the proxy.
    const targets = (argv as string[]).map(normalizeTarget)
    const request = {
      targets,
      readTargets: splitList(flags['read-target']).map(normalizeTarget),
      writerAffinityTimeoutMs: parseDuration(flags['writer-affinity-timeout'], 'writer affinity timeout'),
      readTargetWebSockets: flags['read-target-websockets'],
      hosts: splitList(flags.host),
      name: flags.name,
      pathPrefixes: splitList(flags['path-prefix']),
      stripPathPrefix: flags['strip-path-prefix'] !== 'false',
      scopeCookiePaths: flags['scope-cookie-paths'],
      tls: flags.ssl,
      tlsRedirect: flags['tls-redirect'] !== 'false',
      // The primary reads the files: relative paths mean the caller's directory, not the proxy's.
      tlsCertificatePath: absolute(flags['tls-certificate-path']),
      tlsPrivateKeyPath: absolute(flags['tls-private-key-path']),
      errorPagesPath: absolute(flags['error-pages']),
      canonicalHost: flags['canonical-host'],
      forwardHeaders: flags['forward-headers'],
      logRequestHeaders: splitList(flags['log-request-header']),
      logResponseHeaders: splitList(flags['log-response-header']),
      healthCheck: {
        path: flags['health-check-path'],
        intervalMs: parseDuration(flags['health-check-interval'], 'health check interval'),
        timeoutMs: parseDuration(flags['health-check-timeout'], 'health check timeout'),
      },
      deployTimeoutMs: parseDuration(flags['deploy-timeout'], 'deploy timeout'),
      drainTimeoutMs: parseDuration(flags['drain-timeout'], 'drain timeout'),
      targetTimeoutMs: parseDuration(flags['target-timeout'], 'target timeout'),
      drainWebSockets: flags['drain-websockets'],
      excludeMetricsPaths: splitList(flags['exclude-metrics-path']),
      force: flags.force,
      buffering: {
        requests: flags['buffer-requests'],
        responses: flags['buffer-responses'],
        memoryBytes: parseSize(flags['buffer-memory'], 'buffer memory'),
        maxRequestBodyBytes: parseSize(flags['max-request-body'], 'max request body'),
        maxResponseBodyBytes: parseSize(flags['max-response-body'], 'max response body'),
      },
    }
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    const result = await this.control(flags['state-dir']).deploy(request, print)
    print(result)
  }
}
