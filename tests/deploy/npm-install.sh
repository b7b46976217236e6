#!/usr/bin/env bash
# Installs the deploy tests' npm packages (tests/deploy/package-lock.json: the Kubernetes and
# KEDA schema validators of kubernetes-models, a YAML parser) into a cache outside the work
# tree. Does nothing when the cache already holds this lockfile's packages.
#   DW_DEPLOY_NPM_CACHE   where (default $HOME/.cache/delivery-worker/deploy-npm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DW_DEPLOY_NPM_CACHE:-$HOME/.cache/delivery-worker/deploy-npm}
if cmp -s "$here/package-lock.json" "$cache/installed.lock" &&
   [[ -d "$cache/node_modules/kubernetes-models" && -d "$cache/node_modules/yaml" ]]; then
  echo "setup: deploy test npm packages present"
  exit 0
fi
command -v npm >/dev/null || { echo "setup: npm is missing (deploy/setup.sh --test installs it)" >&2; exit 1; }
mkdir -p "$cache"
rm -f "$cache/installed.lock"
cp "$here/package.json" "$here/package-lock.json" "$cache/"
(cd "$cache" && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true)
[[ -d "$cache/node_modules/kubernetes-models" ]] || { echo "setup: npm ci failed in $cache" >&2; exit 1; }
cp "$here/package-lock.json" "$cache/installed.lock"
echo "setup: deploy test npm packages installed in $cache"
