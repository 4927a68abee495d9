#!/usr/bin/env bash
# The browser SDK and the operators' console: built from web/ (protobufjs and esbuild,
# pinned in web/package-lock.json) into signaling/static/, which is committed and
# served by the signaling server (signaling/web.py).
#
#   scripts/web.sh            npm ci when needed, then build into signaling/static
#   scripts/web.sh --check    build into a temporary directory; exit 1 if the
#                             committed files differ (CI runs this, like gen_proto.py --check)
#   scripts/web.sh --setup    (CI, as root) install node/npm and chromium from Debian's
#                             packages when missing, then npm ci
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=signaling/static

apt_install() {
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${1:-}" = "--setup" ]; then
    missing=()
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing ${missing[*]} from Debian's packages"
        apt_install "${missing[@]}"
    fi
fi

# npm ci installs exactly the lock file; skipped when node_modules already matches it.
if [ ! -f web/node_modules/.package-lock.json ] ||
   ! cmp -s web/package-lock.json web/node_modules/.package-lock.json.src 2>/dev/null; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    cp web/package-lock.json web/node_modules/.package-lock.json.src
fi
[ "${1:-}" = "--setup" ] && exit 0

build() {
    local out=$1
    mkdir -p "$out"
    local esbuild=web/node_modules/.bin/esbuild
    "$esbuild" web/src/actr.js --bundle --format=esm --minify --target=es2020 \
        --loader:.proto=text --log-level=warning --outfile="$out/actr.js"
    # The console imports the SDK the server serves, as any page would.
    "$esbuild" web/src/console.js --bundle --format=esm --minify --target=es2020 \
        --external:/sdk/actr.js --log-level=warning --outfile="$out/console.js"
    cp web/console/login.html web/console/console.html "$out/"
}

if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    build "$tmp"
    if ! diff -rq "$tmp" "$OUT" >/dev/null; then
        diff -rq "$tmp" "$OUT" >&2 || true
        echo "stale browser bundles in $OUT: run scripts/web.sh" >&2
        exit 1
    fi
    echo "== browser bundles in $OUT are fresh"
else
    build "$OUT"
fi
