#!/usr/bin/env bash
# Installs the services the signaling tests run for real (redis-server, coturn's
# turnserver) from Debian's packages when they are missing. The tests start their
# own instances on free loopback ports; no system daemon is started or left running.
# Usage: scripts/services.sh   (as root, or with sudo available)
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v turnserver >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# policy-rc.d answering 101 tells the packages' install scripts not to start their
# daemons (which would hold 6379 and 3478); ours is removed again afterwards.
POLICY=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    placed_policy=1
fi
cleanup() {
    if [ "$placed_policy" = 1 ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "== installing redis-server and coturn from Debian's packages"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server coturn >/dev/null

# Where an init system started them anyway, stop them: the tests need no system daemon.
for svc in redis-server coturn; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        $SUDO systemctl stop "$svc" || true
        $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
done

command -v redis-server >/dev/null
command -v turnserver >/dev/null
echo "== redis-server and turnserver installed"
