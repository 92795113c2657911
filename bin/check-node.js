// Older Node lacks what mproxy is built on (SO_REUSEPORT listeners, undici 8): say so in one line.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`Error: mproxy needs Node 22.19 or later (24 LTS recommended); this is Node ${process.versions.node}\n`)
  process.exit(1)
}
