#!/usr/bin/env bash
# What the README's commands run. Each entry point installs what it needs first, so a
# fresh Debian machine with Node 20 needs nothing else:
#   npm start       -> SoftHSM2 (apt) + npm dependencies + build (service and console), then serve on 127.0.0.1:4599
#   npm test        -> the same preparation, Chromium and PostgreSQL (apt), then the whole test suite
#                      (the tests start a throwaway PostgreSQL server of their own)
#   npm run bench   -> the same preparation plus PostgreSQL (apt), then the benchmark
set -euo pipefail
cd "$(dirname "$0")/.."

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

# Installs the Debian packages whose marker file is missing: "package:file ...".
ensure_packages() {
  local missing=()
  for entry in "$@"; do
    [ -e "${entry#*:}" ] || missing+=("${entry%%:*}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "p11kms: installing from apt: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null || { echo "p11kms: run as root or install ${missing[*]} yourself" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_softhsm() {
  ensure_packages "softhsm2:$SOFTHSM_MODULE"
}

# The test suite also runs against a second token (NSS softokn, native-config/nss-softokn.json),
# makes its TLS test CA with openssl, drives boto3 against the HTTPS listener, runs a throwaway
# PostgreSQL, and drives the console's browser tests with Debian's Chromium (playwright-core
# downloads no browser). One list, so a fresh machine pays for one apt-get update.
ensure_test_packages() {
  ensure_packages "softhsm2:$SOFTHSM_MODULE" \
    "chromium:/usr/bin/chromium" \
    "libnss3:/usr/lib/$(uname -m)-linux-gnu/libsoftokn3.so" \
    "openssl:/usr/bin/openssl" \
    "python3-boto3:/usr/lib/python3/dist-packages/boto3/__init__.py" \
    "postgresql:/usr/share/doc/postgresql/copyright"
}

ensure_node_modules() {
  # Reinstall when package.json or the lock file changed since the last install.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
    echo "p11kms: installing npm dependencies" >&2
    npm ci --no-audit --no-fund --loglevel=error
  fi
  # pkcs11js is a native addon; a blocked or failed install script leaves it unbuilt.
  if [ ! -f node_modules/pkcs11js/build/Release/pkcs11.node ]; then
    npm rebuild pkcs11js --loglevel=error
  fi
}

build() {
  # tsc never deletes: a module moved or removed in the sources would keep its old .js in dist,
  # where require() can still find it first (dist/src/wire/huawei/actions.js once shadowed actions/).
  rm -rf dist/src dist/test dist/bench
  npx --no-install tsc -p tsconfig.json
  node scripts/build-console.mjs
}

prepare() {
  ensure_softhsm
  ensure_node_modules
  build
}

command="${1:-start}"
shift || true
case "$command" in
  start)
    prepare
    exec node dist/src/main.js serve "$@"
    ;;
  test)
    ensure_test_packages
    prepare
    exec npx --no-install mocha "$@"
    ;;
  bench)
    # The PostgreSQL rows run a throwaway server from these binaries.
    ensure_packages "postgresql:/usr/share/doc/postgresql/copyright"
    prepare
    exec node dist/bench/bench.js "$@"
    ;;
  *)
    echo "usage: scripts/run.sh start|test|bench [args]" >&2
    exit 2
    ;;
esac
