#!/bin/sh
# Installs the npm dependencies (which bring Node 24 as node_modules/.bin/node) when they are
# missing or older than the lock file, so `npm test` and `npm run demo` work on a fresh clone.
set -e
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-install: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi
version=$(node_modules/.bin/node --version)
case "$version" in
  v24.*) ;;
  *) echo "ensure-install: node_modules/.bin/node is $version, expected v24" >&2; exit 1 ;;
esac
