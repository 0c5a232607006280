#!/usr/bin/env bash
# natmatrix setup: install the OS tools natmatrix drives (only those missing), then the npm packages.
# Idempotent: a second run installs nothing and only re-checks. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'natmatrix setup: %s\n' "$*"; }
die() { printf 'natmatrix setup: %s\n' "$*" >&2; exit 2; }

[ "$(uname -s)" = Linux ] || die "natmatrix needs Linux network namespaces; this is $(uname -s)"

# command → Debian package
declare -A PKG=([ip]=iproute2 [nft]=nftables [conntrack]=conntrack [tcpdump]=tcpdump [nsenter]=util-linux)
missing=()
for cmd in ip nft conntrack tcpdump nsenter; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root to install them: sudo npm run setup"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get here: install them with your package manager"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "OS tools present (ip, nft, conntrack, tcpdump, nsenter)"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "natmatrix needs Node.js 20 or newer (found $(node --version 2>/dev/null || echo none))"

say "installing npm packages (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
say "ready: sudo npm run scenario symmetric-vs-cone"
