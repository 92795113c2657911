'use strict'
// A tiny dependency-free app for trying mproxy (docker-compose.yml runs four of it).
//   GET /up  -> 200 "OK"            (mproxy's default health check path)
//   GET /    -> HTML "Hello from <hostname>" and the time
// PORT (default 3000; PORT=0 picks a free port). Once listening it logs one JSON line with the
// bound port. On SIGTERM/SIGINT it stops accepting, finishes in-flight requests, then exits 0.
const http = require('node:http')
const os = require('node:os')

const hostname = os.hostname()
const port = Number.parseInt(process.env.PORT ?? '3000', 10)

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n')
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]
  if (path === '/up') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
    res.end('OK')
    return
  }
  if (path === '/') {
    const now = new Date().toISOString()
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(
      '<!doctype html>\n<html><head><meta charset="utf-8"><title>mproxy example</title></head>\n' +
        `<body><h1>Hello from ${escapeHtml(hostname)}</h1>\n<p>The time is <time>${now}</time>.</p></body></html>\n`,
    )
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  res.end('Not found\n')
})

server.listen(Number.isNaN(port) ? 3000 : port, () => {
  log('listening', { port: server.address().port, hostname, pid: process.pid })
})

let stopping = false
function stop(signal) {
  if (stopping) return
  stopping = true
  log('stopping', { signal })
  // Stop accepting; idle keep-alive sockets are closed now, busy ones after their response.
  server.close(() => {
    log('stopped')
    process.exit(0)
  })
  server.closeIdleConnections()
  // Do not hang forever on a stuck client.
  setTimeout(() => process.exit(0), 10_000).unref()
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
