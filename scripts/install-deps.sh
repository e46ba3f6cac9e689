#!/usr/bin/env bash
# Installs what reachd's tests and demo use on a fresh Debian machine:
# iproute2 (ip netns for the lab), and the independent witnesses and peers
# that tests compare reachd with, and headless Chromium for the dashboard's
# browser test. Safe to run again.
set -euo pipefail
pkgs=(iproute2 iputils-ping fping nftables conntrack victoria-metrics ca-certificates chromium fonts-dejavu-core bird2)
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
