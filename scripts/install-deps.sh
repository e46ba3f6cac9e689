#!/usr/bin/env bash
# Installs what reachd's tests and demo use on a fresh Debian machine:
# iproute2 (ip netns for the lab), and the independent witnesses and peers
# that tests compare reachd with, headless Chromium for the dashboard's
# browser test, and for the packaging tests: lintian, adduser and
# init-system-helpers (the package's maintainer scripts), systemd
# (systemd-analyze verify/security), prometheus (promtool, and a real
# server scraping reachd in the lab) and util-linux (setpriv, for reachd as
# an unprivileged user in the e2e tests). Safe to run again.
set -euo pipefail
pkgs=(iproute2 iputils-ping fping nftables conntrack victoria-metrics ca-certificates chromium fonts-dejavu-core bird2
  lintian adduser init-system-helpers systemd prometheus util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
