#!/usr/bin/env bash
# natmatrix setup: install the OS tools natmatrix drives (only those missing), then the npm packages.
# Idempotent: a second run installs nothing and only re-checks. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'natmatrix setup: %s\n' "$*"; }
die() { printf 'natmatrix setup: %s\n' "$*" >&2; exit 2; }

[ "$(uname -s)" = Linux ] || die "natmatrix needs Linux network namespaces; this is $(uname -s)"

# command → Debian package
# (openssl makes the relay's per-run certificate; unshare and setpriv confine the agents)
declare -A PKG=([ip]=iproute2 [nft]=nftables [conntrack]=conntrack [tcpdump]=tcpdump [nsenter]=util-linux [unshare]=util-linux [setpriv]=util-linux [openssl]=openssl)
tools=(ip nft conntrack tcpdump nsenter unshare setpriv openssl)
missing=()
for cmd in "${tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root to install them: sudo npm run setup"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get here: install them with your package manager"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  updated=1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  printf -v present '%s, ' "${tools[@]}"
  say "OS tools present (${present%, })"
fi

# coturn: the tests' independent RFC 5780 oracle (turnutils_natdiscovery against turnserver, both run
# only inside natmatrix's own namespaces). Its Debian package enables and starts a TURN service on the
# host; when setup installs it, a temporary policy-rc.d keeps the service from starting and it is left
# disabled. An existing coturn installation is left exactly as it is.
if ! command -v turnutils_natdiscovery >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "missing coturn (for the tests); run as root to install it: sudo npm run setup"
  command -v apt-get >/dev/null 2>&1 || die "missing coturn (for the tests) and no apt-get here: install it with your package manager"
  say "installing coturn (test oracle; its service stays off)"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# natmatrix setup: no service starts while coturn is installed\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  [ "${updated:-0}" = 1 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends coturn >/dev/null || { [ "$made_policy" = 1 ] && rm -f "$policy"; die "apt-get could not install coturn"; }
  [ "$made_policy" = 1 ] && rm -f "$policy"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now coturn.service >/dev/null 2>&1 || true
  fi
fi

# chromium: the browser of the tests' report.html check, in a checkout only (an installed package runs
# no tests). Best effort: where Debian's package is not to be had (Ubuntu ships chromium as a snap),
# setup says so and goes on, and the browser test names what is missing (it also takes Google Chrome).
case "$(pwd)" in
  */node_modules/*) ;;
  *)
    if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1 && ! command -v google-chrome-stable >/dev/null 2>&1; then
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing chromium (the tests' browser for report.html)"
        export DEBIAN_FRONTEND=noninteractive
        [ "${updated:-0}" = 1 ] || { apt-get update -qq; updated=1; }
        apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
          || say "could not install Debian's chromium here: the browser test of report.html will say what is missing"
      else
        say "no chromium: the browser test of report.html needs it (sudo apt-get install chromium)"
      fi
    fi
    ;;
esac

# util.styleText (terminal colours) arrived in Node 20.12
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 12) ? 0 : 1)' 2>/dev/null \
  || die "natmatrix needs Node.js 20.12 or newer (found $(node --version 2>/dev/null || echo none))"

here=$(pwd)
case "$here" in
  */node_modules/*)
    # installed as a package: its npm packages came with it, into the user's project
    say "natmatrix is installed as a package ($here): its npm packages came with your npm install, nothing to install"
    say "ready: sudo npx natmatrix scenario symmetric-vs-cone"
    exit 0
    ;;
esac

say "installing npm packages (npm ci)"
npm ci --no-audit --no-fund --loglevel=error

# Under sudo, npm ci made node_modules/ root's, and earlier runs made runs/ root's: a later npm install
# or rm as the user would fail. When the checkout is the sudo user's, give both back and say so.
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ] && [ "$(stat -c %u .)" = "$SUDO_UID" ]; then
  for dir in node_modules runs; do
    [ -d "$dir" ] || continue
    if [ -n "$(find "$dir" -maxdepth 3 -uid 0 -print -quit)" ]; then
      chown -R -h "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$dir"
      say "gave $dir/ to ${SUDO_USER:-uid $SUDO_UID} (sudo had made it root's)"
    fi
  done
fi
say "ready: sudo npm run scenario symmetric-vs-cone"
