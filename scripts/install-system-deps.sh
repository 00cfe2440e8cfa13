#!/usr/bin/env bash
# Installs the real AWS clients the end-to-end tests drive: boto3 and the AWS CLI, from Debian.
# Nothing to do when both are present. Without root (or passwordless sudo) it says what is missing
# and carries on: those tests then skip and say why.
set -euo pipefail

need=()
/usr/bin/python3 -c 'import boto3' 2>/dev/null || need+=(python3-boto3)
[ -x /usr/bin/aws ] || need+=(awscli)
[ ${#need[@]} -eq 0 ] && exit 0

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  else
    echo "install-system-deps: ${need[*]} missing and no root to install them; the boto3 / AWS CLI tests will skip" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: ${need[*]} missing and no apt-get; the boto3 / AWS CLI tests will skip" >&2
  exit 0
fi
echo "install-system-deps: installing ${need[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
}
