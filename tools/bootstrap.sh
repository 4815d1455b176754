# Sourced by tools/test.sh and tools/demo.sh: installs what a fresh Debian
# machine lacks, once.  Debian packages: Go and govmomi's source build VMware's
# vcsim; RabbitMQ carries Nova's notifications to the pool agent; Open
# vSwitch is each simulated XenServer host's switch.  Python
# packages live in tox's own environments, built from requirements files.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEBIAN_PACKAGES="golang-go golang-github-vmware-govmomi-dev rabbitmq-server mariadb-server genisoimage git openvswitch-switch"
TOOLS_VENV="${NOVA_HYPERVISORS_TOOLS_VENV:-$REPO/.venv}"

missing_debian_packages() {
    local pkg
    for pkg in $DEBIAN_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
            grep -q 'install ok installed' || echo "$pkg"
    done
}

install_debian_packages() {
    local missing
    missing="$(missing_debian_packages | tr '\n' ' ')"
    [ -z "${missing// /}" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "Please install these Debian packages first: $missing" >&2
        exit 1
    fi
    echo "== installing Debian packages: $missing"
    apt-get update -q
    # The RabbitMQ package would start a broker through systemd/init; tests
    # start their own on loopback, so keep the package from starting one.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    rm -f /usr/sbin/policy-rc.d
}

install_tox() {
    if [ ! -x "$TOOLS_VENV/bin/tox" ]; then
        echo "== creating $TOOLS_VENV with tox"
        python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install -q --upgrade pip
        "$TOOLS_VENV/bin/pip" install -q 'tox>=4'
    fi
}

install_debian_packages
install_tox
cd "$REPO"
