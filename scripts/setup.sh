#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) for lblab/lbreport: Debian packages
# (tshark, the lab's servers), a virtualenv in .venv with lbreport installed.
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for cmd_pkg in tshark:tshark dumpcap:tshark nginx:nginx haproxy:haproxy apache2:apache2 \
               ab:apache2-utils ip:iproute2 curl:curl pkill:procps \
               ethtool:ethtool ping:iputils-ping openssl:openssl \
               wireshark:wireshark Xvfb:xvfb xdotool:xdotool import:imagemagick xclip:xclip \
               chromium:chromium luac5.2:lua5.2 luac5.4:lua5.4 luacheck:lua-check \
               sshd:openssh-server ssh:openssh-client dnsmasq:dnsmasq dig:bind9-dnsutils \
               tcpdump:tcpdump editcap:wireshark-common nft:nftables varnishd:varnish; do
    cmd=${cmd_pkg%%:*}; pkg=${cmd_pkg##*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
        need_apt+=("$pkg")
    fi
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}" >&2
    apt-get update -q >/dev/null
    # tshark and wireshark ask a debconf question (non-root capture) unless non-interactive.
    # wireshark (Qt), xvfb, xdotool and imagemagick are for the GUI test (tests/test_gui.py);
    # chromium loads the HTML report headless (tests/test_html.py).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi
# Debian starts the servers it installs where an init system runs; the lab starts
# its own copies inside network namespaces, so stop any host-wide ones.
for svc in nginx apache2 haproxy ssh dnsmasq varnish; do
    service "$svc" stop >/dev/null 2>&1 || true
done

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
        python3 -m venv .venv
    }
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (CI images
# often do) every run would compile lbreport from source again (~40 ms before tshark starts):
# compiled once here, as a wheel's install does (a .pyc older than its source is ignored).
.venv/bin/python -m compileall -q postproc/lbreport >/dev/null
echo "setup: ready ($(tshark --version | head -1))" >&2
