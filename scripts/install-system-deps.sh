#!/usr/bin/env bash
# Installs, from Debian, the real tools the tests drive: boto3 and the AWS CLI (end-to-end tests),
# promtool from the prometheus package (the k8s tests check and unit-test the alerting rules with it;
# its version is pinned in scripts/tool-versions.env) and `ip` from iproute2 (the open-proxy test
# makes a network namespace with it). Nothing to do when all are present. When they
# are missing and cannot be installed (no root or passwordless sudo, no apt-get, the install fails) it
# stops the build and says what to do: those tests are part of `make test` and never skip.
# Only promtool is wanted from the prometheus package: the Prometheus server it also ships is kept
# from starting during the install and disabled at boot, and the install fails if one is left listening.
set -euo pipefail
# shellcheck source=tool-versions.env
. "$(dirname "$0")/tool-versions.env"

promtool=/usr/bin/promtool

missing() {
  need=()
  /usr/bin/python3 -c 'import boto3' 2>/dev/null || need+=(python3-boto3)
  /usr/bin/python3 -c 'import awscrt.auth' 2>/dev/null || need+=(python3-awscrt)
  [ -x /usr/bin/aws ] || need+=(awscli)
  [ -x "$promtool" ] || need+=(prometheus)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
}

fail() {
  cat >&2 <<MSG
install-system-deps: cannot install ${need[*]}: $1
  The end-to-end tests drive boto3 (/usr/bin/python3 -c 'import boto3'), aws-c-auth's SigV4A
  presigning through python3-awscrt (/usr/bin/python3 -c 'import awscrt.auth') and the AWS CLI
  (/usr/bin/aws); the k8s tests run promtool $PROMTOOL_VERSION ($promtool, from Debian's prometheus
  package); test/security/openProxy.e2e.spec.ts runs ip (iproute2), as root. make test needs all
  five. What to do:
    * run make test (or scripts/install-system-deps.sh) once as root or with passwordless sudo,
    * or install them yourself: apt-get install --no-install-recommends python3-boto3 python3-awscrt awscli prometheus iproute2
      (then keep the Prometheus server off: systemctl disable --now prometheus)
MSG
  exit 1
}

# promtool must be the pinned version: the rule tests are written against its PromQL.
check_promtool_version() {
  local got
  got="$("$promtool" --version 2>&1)" || fail "$promtool --version failed: $got"
  got="${got%%$'\n'*}" # the first line (not `| head -n 1`: under pipefail its SIGPIPE would fail the check)
  case "$got" in
    "promtool, version $PROMTOOL_VERSION+"* | "promtool, version $PROMTOOL_VERSION "*) ;;
    *)
      need=(prometheus)
      fail "$promtool reports '$got', not version $PROMTOOL_VERSION (scripts/tool-versions.env): install Debian's prometheus $PROMTOOL_VERSION, or change the pin and run the k8s tests"
      ;;
  esac
}

prometheus_listening() {
  command -v ss >/dev/null 2>&1 && grep -q '"prometheus"' <<<"$(ss -Hltnp 2>/dev/null)"
}

missing
if [ ${#need[@]} -eq 0 ]; then
  check_promtool_version
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  else
    fail "not root, and no passwordless sudo"
  fi
fi
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine"

installing_prometheus=false
case " ${need[*]} " in *" prometheus "*) installing_prometheus=true ;; esac
# Debian starts a package's service on install unless /usr/sbin/policy-rc.d forbids it (exit 101).
# Where there is no such file, one forbids it for the length of the install.
policy_rc=/usr/sbin/policy-rc.d
own_policy_rc=false
if $installing_prometheus && [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\n# scripts/install-system-deps.sh: no service starts while it installs packages\nexit 101\n' |
    "${sudo_cmd[@]}" tee "$policy_rc" >/dev/null
  "${sudo_cmd[@]}" chmod 0755 "$policy_rc"
  own_policy_rc=true
  trap '"${sudo_cmd[@]}" rm -f "$policy_rc"' EXIT
fi

echo "install-system-deps: installing ${need[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt_install=("${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}")
if ! "${apt_install[@]}" >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq || fail "apt-get update failed"
  "${apt_install[@]}" || fail "apt-get install ${need[*]} failed"
fi
if $own_policy_rc; then
  "${sudo_cmd[@]}" rm -f "$policy_rc"
  trap - EXIT
fi

if $installing_prometheus; then
  # Keep the Prometheus server from starting at boot, too (systemd and sysvinit alike).
  if command -v deb-systemd-helper >/dev/null 2>&1; then "${sudo_cmd[@]}" deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true; fi
  if command -v update-rc.d >/dev/null 2>&1; then "${sudo_cmd[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
  if prometheus_listening; then
    need=(prometheus)
    fail "the install left a Prometheus server listening ($(ss -Hltnp | grep '"prometheus"' | awk '{print $4}' | tr '\n' ' ')); only promtool is needed: stop it (systemctl disable --now prometheus, or service prometheus stop)"
  fi
fi

missing
[ ${#need[@]} -eq 0 ] || fail "apt-get finished, but ${need[*]} is still missing"
check_promtool_version
