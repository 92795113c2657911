/**
 * Packaging checks with the real tools (no Docker engine needed):
 * docker-compose.yml via `docker-compose config` (apt docker-compose), the Dockerfiles via
 * dockerfile-utils (npm devDependency), the systemd unit via `systemd-analyze verify`, the
 * example upstream app by starting it, and the test/CI entry points.
 * scripts/test.sh installs the apt tools when they are missing.
 */
import { execFile, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.resolve(__dirname, '..')

interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

const installHint: Record<string, string> = {
  'docker-compose': 'apt-get install -y docker-compose',
  'systemd-analyze': 'apt-get install -y systemd',
  'dockerfile-utils': 'npm ci (dockerfile-utils is a devDependency)',
}

/** Runs a command to completion; never rejects on a non-zero exit, only when it cannot start. */
function run(file: string, args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  const name = path.basename(file)
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: root, timeout: timeoutMs, env, maxBuffer: 10 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number; killed?: boolean }) | null
      if (e && e.code === 'ENOENT') {
        reject(
          new Error(
            `${name} is not installed: run scripts/test.sh (it installs the test tools), ` +
              `or ${installHint[name] ?? `install ${name}`}`,
          ),
        )
        return
      }
      if (e && e.killed) {
        reject(new Error(`${name} ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}${stderr}`))
        return
      }
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

function read(rel: string): string {
  return fs.readFileSync(path.join(root, rel), 'utf8')
}

/** Environment without COMPOSE_* overrides, so only the repository's files and .env count. */
function composeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMPOSE_')) env[k] = v
  return env
}

describe('docker-compose.yml', () => {
  const compose = (...args: string[]) =>
    run('docker-compose', ['--project-directory', root, '-f', path.join(root, 'docker-compose.yml'), 'config', ...args], 30_000, composeEnv())

  it('validates and defines the proxy and web services', async () => {
    const quiet = await compose('-q')
    expect(quiet.stderr).toBe('')
    expect(quiet.code).toBe(0)

    const services = await compose('--services')
    expect(services.code).toBe(0)
    expect(services.stdout.split('\n').filter(Boolean).sort()).toEqual(['proxy', 'web'])
  })

  it('runs 1 proxy publishing 80/443 with a state volume, and 4 unpublished web replicas', async () => {
    const { code, stdout } = await compose()
    expect(code).toBe(0)
    // Normalised output of docker-compose 1.x: services are 2-space indented, keys below them 4.
    const section = (name: string): string => {
      const m = stdout.match(new RegExp(`^  ${name}:\\n((?:    .*\\n|  - .*\\n|\\s*\\n)*)`, 'm'))
      if (!m) throw new Error(`service ${name} not found in docker-compose config output:\n${stdout}`)
      return m[1]
    }
    const proxy = section('proxy')
    const web = section('web')

    expect(proxy).toMatch(/published: 80\n\s+target: 80\n/)
    expect(proxy).toMatch(/published: 443\n\s+target: 443\n/)
    expect(proxy).toMatch(/restart: unless-stopped/)
    expect(proxy).toMatch(/- mproxy-state:\/home\/mproxy\/\.local\/state\/mproxy/)
    expect(proxy).not.toMatch(/replicas:|scale:/) // one proxy
    expect(proxy).toMatch(/net\.ipv4\.tcp_migrate_req: '?1'?\n/) // README, Accept path

    expect(web).toMatch(/replicas: 4\n|scale: 4\n/)
    expect(web).not.toMatch(/ports:/)
    expect(web).toMatch(/context: .*example\/web\n/)

    // Containers must be named <project>-web-N: no container_name, project name "mproxy".
    expect(stdout).not.toMatch(/container_name:/)
    expect(read('.env')).toMatch(/^COMPOSE_PROJECT_NAME=mproxy$/m)
  })
})

describe('docker-compose.fleet.yml', () => {
  const compose = (...args: string[]) => run('docker-compose', [
    '--project-directory', root, '-f', path.join(root, 'docker-compose.yml'), '-f', path.join(root, 'docker-compose.fleet.yml'), 'config', ...args,
  ], 30_000, composeEnv())

  it('adds Redis and a second proxy, both proxies sharing it under their own node names', async () => {
    const services = await compose('--services')
    expect(services.code).toBe(0)
    expect(services.stdout.split('\n').filter(Boolean).sort()).toEqual(['proxy', 'proxy-2', 'redis', 'web'])

    const { stdout } = await compose()
    for (const node of ['proxy-1', 'proxy-2']) {
      expect(stdout).toMatch(new RegExp(`MPROXY_NODE_NAME: ${node}\\n\\s+MPROXY_REDIS_URL: redis://redis:6379/0\\n`))
    }
    expect(stdout).toMatch(/- published: 8080\n\s+target: 80\n/)
  })
})

describe('Dockerfiles', () => {
  const lintBin = path.join(root, 'node_modules', '.bin', 'dockerfile-utils')

  it.each(['Dockerfile', 'example/web/Dockerfile'])('%s passes dockerfile-utils lint', async (file) => {
    if (!fs.existsSync(lintBin)) {
      throw new Error(`${lintBin} is missing: dockerfile-utils must be a devDependency (npm install -D dockerfile-utils@0.16.3)`)
    }
    const r = await run(lintBin, ['lint', path.join(root, file)])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('the proxy image runs `mproxy run` as PID 1, unprivileged, with a state volume and a health check', () => {
    const df = read('Dockerfile')
    expect(df).toMatch(/^FROM node:24-slim AS build$/m)
    expect(df).toMatch(/^ENTRYPOINT \["mproxy", "run"\]$/m) // exec form: SIGTERM reaches node
    expect(df).toMatch(/^STOPSIGNAL SIGTERM$/m)
    expect(df).toMatch(/^USER mproxy$/m)
    expect(df).toMatch(/MPROXY_STATE_DIR=\/home\/mproxy\/\.local\/state\/mproxy/)
    expect(df).toMatch(/^VOLUME \["\/home\/mproxy\/\.local\/state\/mproxy"\]$/m)
    expect(df).toMatch(/^EXPOSE 80 443$/m)
    expect(df).toMatch(/^HEALTHCHECK .*CMD \["mproxy", "status"\]$/m)
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim())
    for (const p of ['node_modules', 'dist', '.git', 'test', 'bench/results']) expect(ignored).toContain(p)
  })

  it('the kamal target runs `kamal-proxy run` as kamal-proxy (uid 1001) with its data where Kamal mounts it, and the default image stays mproxy', () => {
    const df = read('Dockerfile')
    const stage = (from: RegExp): string => {
      const start = df.search(from)
      expect(start).toBeGreaterThanOrEqual(0)
      const next = df.slice(start + 1).search(/^FROM /m)
      return next === -1 ? df.slice(start) : df.slice(start, start + 1 + next)
    }
    const app = stage(/^FROM node:24-slim AS app$/m)
    const kamal = stage(/^FROM app AS kamal$/m)
    // Kamal gives the command after the image: an entrypoint would be prepended to it.
    expect(app + kamal).not.toMatch(/^ENTRYPOINT/m)
    expect(kamal).toMatch(/^CMD \["kamal-proxy", "run"\]$/m)
    expect(kamal).toMatch(/^USER kamal-proxy$/m)
    expect(kamal).toMatch(/groupadd --gid 1001 kamal-proxy/)
    expect(kamal).toMatch(/useradd --uid 1001 --gid kamal-proxy --create-home --home-dir \/home\/kamal-proxy/)
    expect(kamal).toMatch(/MPROXY_STATE_DIR=\/home\/kamal-proxy\/\.config\/kamal-proxy/)
    expect(kamal).toMatch(/ln -s \/app\/bin\/kamal-proxy\.js \/usr\/local\/bin\/kamal-proxy/)
    // `kamal proxy remove` prunes containers and images by this label.
    expect(kamal).toMatch(/^LABEL org\.opencontainers\.image\.title=kamal-proxy$/m)
    expect(kamal).toMatch(/^EXPOSE 80 443$/m)
    // The last stage is what `docker build .` makes.
    expect(df.slice(df.lastIndexOf('\nFROM '))).toMatch(/^\nFROM app\n[\s\S]*^ENTRYPOINT \["mproxy", "run"\]$/m)
    // The command the image runs exists, and package.json installs it.
    expect(fs.statSync(path.join(root, 'bin', 'kamal-proxy.js')).mode & 0o111).toBeTruthy()
    expect(JSON.parse(read('package.json')).bin).toMatchObject({ mproxy: 'bin/run.js', 'kamal-proxy': 'bin/kamal-proxy.js' })
  })
})

describe('contrib/systemd/mproxy.service', () => {
  it('passes systemd-analyze verify with no output', async () => {
    const r = await run('systemd-analyze', ['verify', path.join(root, 'contrib/systemd/mproxy.service')])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('drains on stop and binds low ports without root', () => {
    const unit = read('contrib/systemd/mproxy.service')
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/mproxy\/bin\/run\.js run$/m)
    expect(unit).toMatch(/^KillMode=mixed$/m)
    const stop = Number(unit.match(/^TimeoutStopSec=(\d+)$/m)?.[1])
    expect(stop).toBeGreaterThan(30) // longer than the default 30 s drain
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m)
    expect(unit).toMatch(/^Environment=MPROXY_STATE_DIR=\/var\/lib\/mproxy$/m)
    expect(unit).toMatch(/^StateDirectory=mproxy$/m)
    // As root, outside the sandbox, and allowed to fail on kernels without the setting.
    expect(unit).toMatch(/^ExecStartPre=-\+\/sbin\/sysctl -w net\.ipv4\.tcp_migrate_req=1$/m)
  })

  it('reload upgrades the whole process, and systemd follows the new main process', () => {
    const unit = read('contrib/systemd/mproxy.service')
    // The primary sends READY=1, and after a takeover the new one sends MAINPID= through systemd-notify.
    expect(unit).toMatch(/^Type=notify$/m)
    expect(unit).toMatch(/^NotifyAccess=all$/m)
    expect(unit).not.toMatch(/^Type=simple$/m)
    // SIGUSR2: `mproxy upgrade`. Replacing only the workers stays available and documented.
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -USR2 \$MAINPID$/m)
    expect(unit).toMatch(/^#.*`mproxy reload`/m)
  })
})

describe('example/web/server.js', () => {
  function get(port: number, urlPath: string): Promise<{ status: number; body: string; type: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }))
      })
      req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)))
      req.on('error', reject)
    })
  }

  it('answers /up and /, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(root, 'example/web/server.js')], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buf = ''
        const timer = setTimeout(() => reject(new Error(`server did not log its port in 10 s: ${buf}`)), 10_000)
        child.stdout.setEncoding('utf8')
        child.stdout.on('data', (chunk: string) => {
          buf += chunk
          const nl = buf.indexOf('\n')
          if (nl < 0) return
          clearTimeout(timer)
          const line = JSON.parse(buf.slice(0, nl)) as { msg: string; port: number }
          expect(line.msg).toBe('listening')
          resolve(line.port)
        })
        child.on('exit', (code) => reject(new Error(`server exited early with ${code}: ${buf}`)))
      })
      expect(port).toBeGreaterThan(0)

      const up = await get(port, '/up')
      expect(up.status).toBe(200)
      expect(up.body).toBe('OK')

      const home = await get(port, '/')
      expect(home.status).toBe(200)
      expect(home.type).toMatch(/^text\/html/)
      expect(home.body).toContain(`Hello from ${os.hostname()}`)
      expect(home.body).toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/)

      expect((await get(port, '/nope')).status).toBe(404)

      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  })
})

describe('test and build entry points', () => {
  it('.ci/run and scripts/test.sh are executable bash scripts', async () => {
    for (const f of ['.ci/run', 'scripts/test.sh']) {
      expect(fs.statSync(path.join(root, f)).mode & 0o111).toBe(0o111)
      const r = await run('bash', ['-n', path.join(root, f)])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }
    // CI runs exactly the README's test command.
    const readmeCommand = /^(\.\/scripts\/test\.sh) #/m.exec(read('README.md'))?.[1]
    expect(readmeCommand).toBe('./scripts/test.sh')
    expect(read('.ci/run').trim().split('\n').pop()).toBe(readmeCommand)
    expect(read('scripts/test.sh')).toMatch(/^set -euo pipefail$/m)
  })

  it('Makefile declares the phony targets, build first', () => {
    const mk = read('Makefile')
    const phony = mk.match(/^\.PHONY:(.*)$/m)?.[1].trim().split(/\s+/) ?? []
    for (const t of ['build', 'test', 'docker', 'clean', 'bench']) {
      expect(phony).toContain(t)
      expect(mk).toMatch(new RegExp(`^${t}:`, 'm'))
    }
    const firstTarget = mk.match(/^([a-z][\w-]*):/m)?.[1]
    expect(firstTarget).toBe('build')
  })
})
