#!/usr/bin/env bash
# Installs the real AWS clients the end-to-end tests drive: boto3 and the AWS CLI, from Debian.
# Nothing to do when both are present. When they are missing and cannot be installed (no root or
# passwordless sudo, no apt-get, the install fails) it stops the build and says what to do: the
# boto3 and AWS CLI tests are part of `make test` and never skip.
set -euo pipefail

missing() {
  need=()
  /usr/bin/python3 -c 'import boto3' 2>/dev/null || need+=(python3-boto3)
  [ -x /usr/bin/aws ] || need+=(awscli)
}

fail() {
  cat >&2 <<MSG
install-system-deps: cannot install ${need[*]}: $1
  The end-to-end tests drive boto3 (/usr/bin/python3 -c 'import boto3') and the AWS CLI
  (/usr/bin/aws); make test needs both. What to do:
    * run make test (or scripts/install-system-deps.sh) once as root or with passwordless sudo,
    * or install them yourself: apt-get install python3-boto3 awscli
MSG
  exit 1
}

missing
[ ${#need[@]} -eq 0 ] && exit 0

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  else
    fail "not root, and no passwordless sudo"
  fi
fi
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine"

echo "install-system-deps: installing ${need[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq || fail "apt-get update failed"
  "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" || fail "apt-get install ${need[*]} failed"
fi
missing
[ ${#need[@]} -eq 0 ] || fail "apt-get finished, but ${need[*]} is still missing"
