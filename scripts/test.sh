#!/usr/bin/env bash
# The one test command for a fresh Debian 12 machine (also .ci/run and `make test`):
#   1. installs the real tools the tests start or call (redis-server, pebble, docker-compose,
#      systemd-analyze, ss) from apt, only those that are missing;
#   2. runs `npm ci` when node_modules is missing or older than package-lock.json;
#   3. runs `npm test` (build, typecheck, jest).
set -euo pipefail

cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A pkg_for=(
  [redis-server]=redis-server
  [pebble]=pebble
  [docker-compose]=docker-compose
  [systemd-analyze]=systemd
  [ss]=iproute2
)

missing=()
for cmd in redis-server pebble docker-compose systemd-analyze ss; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("${pkg_for[$cmd]}")
  fi
done

if ((${#missing[@]})); then
  echo "test.sh: installing missing packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "test.sh: run as root, or install sudo, to install: ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# npm writes node_modules/.package-lock.json on every install: if it is missing or older than
# package-lock.json, the installed tree is out of date.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci
fi

npm test
