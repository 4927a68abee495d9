#!/usr/bin/env bash
# Sets up the real Rust actr peer that tests/interop talks to: actr's published napi
# module for Node.js (@actrium/actr-linux-x64-gnu), node and npm to run it, and, where
# this system's glibc is older than the 2.39 the module needs, a Debian trixie userland
# whose loader and libraries node runs through. Installs only what is missing, so a
# second run takes a second; everything it fetches lives in the cache directory,
# outside the clone, and ends with a peer.json there that the tests read.
#
# Usage: scripts/interop.sh          (as root, or with sudo available)
#   ACTR_INTEROP_CACHE   where to keep it all (default /var/cache/actr-interop)
set -euo pipefail

VERSION=0.5.9
PACKAGE=@actrium/actr-linux-x64-gnu
# npm's own integrity string for that version: a republished or altered tarball stops here.
INTEGRITY="sha512-GsPBeGSW6/SOHKC5AQHwkfvqIMvGMcNPyNpl/CpXEWHXYAFLvib18EvF26/cTPNco/lCvlmJEglmKKUeFYX1JA=="
MODULE_FILE=actr.linux-x64-gnu.node
NEED_GLIBC=2.39
SUITE=trixie

CACHE=${ACTR_INTEROP_CACHE:-/var/cache/actr-interop}
ROOTFS=$CACHE/$SUITE
MODULE_DIR=$CACHE/actr-linux-x64-gnu-$VERSION

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        $SUDO apt-get update -qq
        apt_updated=1
    fi
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

now() { date +%s.%N; }
took() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }

# The Debian mirror this system's apt already uses (deb822 sources first, then one-line
# sources), skipping the security archive, which has no full suite.
debian_mirror() {
    {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
            awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' || true
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {print $i; break}}' || true
    } | grep -i debian | grep -v security | head -n1 || true
}

$SUDO mkdir -p "$CACHE"
if [ -n "$SUDO" ]; then
    $SUDO chown "$(id -u):$(id -g)" "$CACHE"
fi

# --- node and npm ------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "== installing nodejs and npm from Debian's packages"
    t=$(now)
    apt_install nodejs npm
    echo "   done in $(took "$t")"
fi
NODE=$(command -v node)

# --- a userland with glibc >= 2.39, when this one is older -------------------------
glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
launcher_json="[]"
if [ "$(printf '%s\n%s\n' "$NEED_GLIBC" "$glibc" | sort -V | head -n1)" = "$NEED_GLIBC" ]; then
    echo "== glibc $glibc: actr's module runs on this system as it is"
else
    loader=$ROOTFS/lib64/ld-linux-x86-64.so.2
    libdir=$ROOTFS/usr/lib/x86_64-linux-gnu
    if [ ! -e "$ROOTFS/.complete" ]; then
        if ! command -v debootstrap >/dev/null 2>&1; then
            echo "== installing debootstrap"
            apt_install debootstrap
        fi
        # The Debian mirror this system's apt already uses (deb822 sources first, then
        # one-line sources), skipping the security archive, which has no full suite.
        mirror=$(debian_mirror)
        if [ -z "$mirror" ]; then
            echo "error: found no Debian mirror in /etc/apt/sources.list{,.d}" >&2
            exit 1
        fi
        echo "== building a minimal Debian $SUITE userland in $ROOTFS (glibc $glibc < $NEED_GLIBC)"
        t=$(now)
        # Built aside and moved in place at the end: a half-made tree is never used.
        $SUDO rm -rf "$ROOTFS.tmp"
        if ! $SUDO debootstrap --variant=minbase "$SUITE" "$ROOTFS.tmp" "$mirror" \
            >"$CACHE/debootstrap.log" 2>&1; then
            tail -n 20 "$CACHE/debootstrap.log" >&2
            echo "error: debootstrap $SUITE failed (log: $CACHE/debootstrap.log)" >&2
            exit 1
        fi
        $SUDO rm -rf "$ROOTFS"
        $SUDO mv "$ROOTFS.tmp" "$ROOTFS"
        $SUDO touch "$ROOTFS/.complete"
        echo "   done in $(took "$t")"
    fi
    launcher_json="[\"$loader\", \"--library-path\", \"$libdir\"]"
fi

# --- actr's published module ---------------------------------------------------------
if [ ! -e "$MODULE_DIR/$MODULE_FILE" ]; then
    echo "== fetching $PACKAGE@$VERSION with npm pack"
    t=$(now)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
    tarball=$(ls "$work"/*.tgz)
    got="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
    if [ "$got" != "$INTEGRITY" ]; then
        echo "error: $PACKAGE@$VERSION has integrity $got, expected $INTEGRITY" >&2
        exit 1
    fi
    tar -xzf "$tarball" -C "$work"
    rm -rf "$MODULE_DIR.tmp"
    mv "$work/package" "$MODULE_DIR.tmp"
    rm -rf "$MODULE_DIR"
    mv "$MODULE_DIR.tmp" "$MODULE_DIR"
    echo "   done in $(took "$t")"
fi

# --- check that it loads, then tell the tests where everything is --------------------
launcher=()
if [ "$launcher_json" != "[]" ]; then
    launcher=("$ROOTFS/lib64/ld-linux-x86-64.so.2" --library-path "$ROOTFS/usr/lib/x86_64-linux-gnu")
fi
if ! exports=$("${launcher[@]}" "$NODE" -e \
    'console.log(Object.keys(require(process.argv[1])).sort().join(","))' \
    "$MODULE_DIR/$MODULE_FILE" 2>&1); then
    echo "$exports" >&2
    echo "error: node could not load $MODULE_DIR/$MODULE_FILE" >&2
    exit 1
fi
case ",$exports," in
    *,ActrNode,*) ;;
    *)
        echo "error: $MODULE_FILE exports $exports, no ActrNode" >&2
        exit 1
        ;;
esac

cat >"$CACHE/peer.json.tmp" <<EOF
{
  "actr_version": "$VERSION",
  "node": "$NODE",
  "launcher": $launcher_json,
  "module": "$MODULE_DIR/$MODULE_FILE"
}
EOF
mv "$CACHE/peer.json.tmp" "$CACHE/peer.json"
echo "== actr $VERSION's node module is ready ($CACHE/peer.json)"
